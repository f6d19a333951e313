"""Run every benchmarks/bench_*.py in turn, each in its own interpreter.

    python benchmarks/run_all.py            # all of them (./dev.sh bench runs this)
    python benchmarks/run_all.py check      # only those whose name contains "check"

Each script prints its own table and exits non-zero when it misses a target; this
runner streams their output, then prints one line per script and exits 1 if any failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(p for p in HERE.glob("bench_*.py") if not argv or any(a in p.stem for a in argv))
    if not scripts:
        print(f"no benchmarks matching {argv} in {HERE}", file=sys.stderr)
        return 2
    results = []
    for script in scripts:
        print(f"==> {script.name}", flush=True)
        start = time.perf_counter()
        code = subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode
        results.append((script.name, code, time.perf_counter() - start))
        print(flush=True)
    for name, code, seconds in results:
        print(f"{name:<32} {'ok' if code == 0 else f'FAILED (exit {code})':<16} {seconds:7.1f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
