"""How derive scales on the networks people train (issue #10), side by side in one run.

    python benchmarks/bench_wide.py                 # the tables; exit 1 if a target is missed
    python benchmarks/bench_wide.py --repeat 3 --write-readme

Every figure is a fresh subprocess timed end to end (interpreter start and imports
included), its peak RSS measured by GNU time (`/usr/bin/time -f %M`: `os.wait4` on a
vfork'ed child reports the parent's own peak when that is higher); the ratio rows
are the median of --repeat runs, interleaved so a burst of load on the shared
machine hits every column alike; the baseline (minutes) runs --baseline-repeat
times and the every-command table --table-repeat times.  Sigmoid networks with
half-SSE loss and values (benchmarks/nets.py), the deep ones tanh of width 16
(examples/make_deep.py).  Targets:

  grad --json on 784-30-10 (with values) <= 0.25x the baseline delta recursion
      (benchmarks/baseline_delta_recursion.py: derives and prints every gradient)
  784-100-10 / 784-30-10 <= 4x                 (3.3x the parameters)
  32 / 8 layers of width 16 <= 5.5x            (check, as bench_check.py, and grad --json)
  grad --json --values-only / check on 784-30-10 <= 1.5x
  every command on 784-30-10 and 784-128-64-10 finishes, peak RSS < 1 GB
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nets import wide_spec  # noqa: E402
from readme_section import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "benchmarks" / "baseline_delta_recursion.py"
MAX_RSS_MB = 1024


def claim(net: str) -> tuple[str, str]:
    """A true claim for the output layer's W[1,1] (sigmoid + half_sse): delta a(L-1)_1."""
    L = net.count("-")
    return f"W{L}[1,1]", f"(a{L}[1] - y[1])*a{L}[1]*(1 - a{L}[1])*a{L - 1}[1]"


TIME = "/usr/bin/time"


def run_once(argv: list[str], out: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one subprocess; its stdout goes to `out`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rss = out.with_suffix(".rss")
    with open(out, "wb") as sink:
        start = time.perf_counter()
        proc = subprocess.run([TIME, "-f", "%M", "-o", str(rss), *argv], cwd=ROOT, env=env,
                              stdout=sink, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {proc.returncode}):\n{proc.stderr.decode()[-2000:]}")
    return seconds, int(rss.read_text().split()[-1]) / 1024  # GNU time reports KB


def derive(*args: str) -> list[str]:
    return [sys.executable, "-m", "derive", *args]


def specs(folder: Path) -> dict[str, Path]:
    """The benchmark networks as spec files with values."""
    sys.path.insert(0, str(ROOT / "examples"))
    from make_deep import deep_spec

    paths = {}
    for layers in ("784-30-10", "784-100-10", "784-128-64-10"):
        paths[layers] = folder / f"n{layers}.toml"
        paths[layers].write_text(wide_spec([int(n) for n in layers.split("-")]), encoding="utf-8")
    paths["deep8"] = folder / "deep8.toml"
    paths["deep8"].write_text(deep_spec(8, 16), encoding="utf-8")
    paths["deep32"] = ROOT / "examples" / "deep.toml"
    return paths


def jobs(paths: dict[str, Path], folder: Path) -> dict[str, list[str]]:
    """Every command timed, by a short name."""
    out = {"baseline 784-30-10": [sys.executable, str(BASELINE), "784,30,10"]}
    for net in ("784-30-10", "784-100-10", "deep8", "deep32"):
        out[f"grad --json {net}"] = derive("grad", str(paths[net]), "--json")
    out["check deep8"] = derive("check", str(paths["deep8"]))
    out["check deep32"] = derive("check", str(paths["deep32"]))
    for net in ("784-30-10", "784-128-64-10"):
        spec = str(paths[net])
        out.update({
            f"grad {net}": derive("grad", spec),
            f"grad --json --values-only {net}": derive("grad", spec, "--json", "--values-only"),
            f"check {net}": derive("check", spec),
            f"explain {net}": derive("explain", spec, "-o", str(folder / f"docs-{net}")),
            f"which {net}": derive("which", spec),
            f"which W1[1,1] {net}": derive("which", spec, "W1[1,1]"),
            f"claim {net}": derive("claim", spec, *claim(net)),
            f"code {net}": derive("code", spec),
        })
    out["grad --json 784-128-64-10"] = derive("grad", str(paths["784-128-64-10"]), "--json")
    return out


def measure(repeats: dict[str, int]) -> dict[str, tuple[float, float]]:
    """name -> (median seconds, largest peak RSS MB), runs interleaved across names;
    `repeats` gives the runs of "baseline", "ratio" (the other ratio rows) and "table"."""
    ratio_jobs = {name for _, num, den, _ in RATIOS for name in (num, den)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        todo = jobs(specs(folder), folder)
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in todo}
        for round_ in range(max(repeats.values())):
            for name, argv in todo.items():
                group = "baseline" if name.startswith("baseline") else "ratio" if name in ratio_jobs else "table"
                if round_ >= repeats[group]:
                    continue
                runs[name].append(run_once(argv, folder / "stdout"))
                if name.startswith("grad --json 784-30-10"):
                    _check_json(folder / "stdout", 23_860)
                print(f"  {name}: {runs[name][-1][0]:.2f} s, {runs[name][-1][1]:.0f} MB", flush=True)
    return {name: (statistics.median(s for s, _ in r), max(m for _, m in r)) for name, r in runs.items()}


def _check_json(path: Path, count: int) -> None:
    """The JSON parses and has every parameter with its value and both formulas."""
    data = json.loads(path.read_text())
    entries = data["gradients"]
    assert len(entries) == count and data["loss"] is not None, len(entries)
    assert all(set(e) == {"value", "latex", "expression"} for e in entries.values())


RATIOS = [  # (what, numerator, denominator, target)
    ("grad --json 784-30-10 / baseline delta recursion", "grad --json 784-30-10", "baseline 784-30-10", 0.25),
    ("grad --json 784-100-10 / 784-30-10", "grad --json 784-100-10", "grad --json 784-30-10", 4.0),
    ("check 32 / 8 layers of width 16", "check deep32", "check deep8", 5.5),
    ("grad --json 32 / 8 layers of width 16", "grad --json deep32", "grad --json deep8", 5.5),
    ("grad --json --values-only / check, 784-30-10", "grad --json --values-only 784-30-10",
     "check 784-30-10", 1.5),
]


def ratio_lines(res) -> tuple[list[str], bool]:
    lines, ok = ["| comparison | seconds | vs | ratio | target |", "|---|---:|---:|---:|---|"], True
    for what, num, den, target in RATIOS:
        ratio = res[num][0] / res[den][0]
        met = ratio <= target
        ok = ok and met
        lines.append(f"| {what} | {res[num][0]:.2f} | {res[den][0]:.2f} | {ratio:.2f}x | "
                     f"<= {target}x {'ok' if met else 'MISSED'} |")
    return lines, ok


def command_lines(res) -> tuple[list[str], bool]:
    nets = ("784-30-10", "784-128-64-10")
    commands = ["grad", "grad --json", "grad --json --values-only", "check", "explain", "which",
                "which W1[1,1]", "claim", "code"]
    lines = ["| command | " + " | ".join(f"{n} s | {n} peak MB" for n in nets) + " |",
             "|---|" + "---:|" * (2 * len(nets))]
    worst = 0.0
    for command in commands:
        cells = []
        for net in nets:
            seconds, mb = res[f"{command} {net}"]
            worst = max(worst, mb)
            cells += [f"{seconds:.2f}", f"{mb:.0f}"]
        lines.append(f"| `derive {command}` | " + " | ".join(cells) + " |")
    lines.append(f"\nLargest peak RSS: {worst:.0f} MB (target < {MAX_RSS_MB} MB) "
                 f"{'ok' if worst < MAX_RSS_MB else 'MISSED'}")
    return lines, worst < MAX_RSS_MB


HOW = """Measured by `benchmarks/bench_wide.py` ({machine}), all in one run: every figure is a
fresh subprocess timed end to end (interpreter start and imports included); ratio rows are the
median of {repeat} interleaved runs (the baseline, which takes minutes, {baseline} run(s)), the
every-command table {table} run(s); peak RSS is GNU time's `%M` for that command, the largest
of its runs.
Networks: sigmoid, half-SSE, with values (`benchmarks/nets.py`: 784-30-10 is Nielsen's MNIST
net, 23,860 parameters; 784-128-64-10 has 109,386); the deep ones are tanh of width 16
(`examples/deep.toml`, 32 layers, and `examples/make_deep.py --depth 8`). The baseline is
`benchmarks/baseline_delta_recursion.py`: the straightforward SymPy delta recursion (z, a,
delta as Symbols, `sympy.diff`, each gradient its delta equation times a(l-1)_k) deriving every
gradient and printing each as LaTeX and as a string. `explain` builds PDF, LaTeX and Markdown.
Load average at the end: {load:.1f} on {cores} cores (the machine is shared; ratios of
interleaved runs are what the targets compare)."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="derive on wide networks vs the baseline recursion")
    parser.add_argument("--repeat", type=int, default=3, help="runs per ratio figure; the median is shown")
    parser.add_argument("--baseline-repeat", type=int, default=1, help="runs of the baseline (default 1)")
    parser.add_argument("--table-repeat", type=int, default=1, help="runs per every-command figure")
    parser.add_argument("--write-readme", action="store_true",
                        help="replace the '## Wide networks' section of benchmarks/README.md")
    args = parser.parse_args(argv)
    res = measure({"baseline": args.baseline_repeat, "ratio": args.repeat, "table": args.table_repeat})
    ratios, ok_ratios = ratio_lines(res)
    commands, ok_rss = command_lines(res)
    print("\n".join(ratios + [""] + commands))
    if args.write_readme:
        import numpy
        import sympy

        machine = (f"{platform.system().lower()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}, SymPy {sympy.__version__}, NumPy {numpy.__version__}")
        how = HOW.format(machine=machine, repeat=args.repeat, baseline=args.baseline_repeat,
                         table=args.table_repeat, load=os.getloadavg()[0], cores=os.cpu_count())
        write_section("## Wide networks", "\n\n".join([how, "\n".join(ratios), "Every command:",
                                                      "\n".join(commands)]))
    return 0 if ok_ratios and ok_rss else 1


if __name__ == "__main__":
    sys.exit(main())
