"""How long `derive check` takes on deep networks, next to a naive SymPy derivation.

    python benchmarks/bench_check.py            # the table for 8 and 32 layers
    python benchmarks/bench_check.py --repeat 5 --depths 8,16,32

For tanh networks of width 16 with values (examples/make_deep.py), side by side:

  naive derive   a straightforward SymPy delta recursion (below, ~50 lines, the way a
                 competent user writes it: z, a and delta as Symbols, local derivatives
                 by sympy.diff, gradients as delta_j * a_k), timed only while it derives
                 every gradient; each repetition in a fresh interpreter, so SymPy's cache
                 starts cold as it would for a user.
  derive check   `python -m derive.cli check FILE` as a subprocess, end to end: interpreter
                 start, imports, parsing, the derivation and the numeric check of every
                 gradient at the values and 3 random points.

Each figure is the median of --repeat runs.  Targets (issue #2): derive check on 32 layers
faster than the naive derivation on 32 layers, and 32 layers at most 5.5x the cost of 8.
Exit status 1 if a target is missed.  --write-readme replaces this benchmark's section of
benchmarks/README.md with the table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_section import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 16
MAX_DEPTH_RATIO = 5.5


def naive_derive(depth: int, width: int) -> dict:
    """Every dL/dW and dL/db of a tanh net with half-SSE loss, by a plain delta recursion."""
    import sympy as sp

    n = [width] * (depth + 1)
    x = [sp.Symbol(f"x_{k}") for k in range(n[0])]
    y = [sp.Symbol(f"y_{j}") for j in range(n[depth])]
    W, b, z, a, delta = {}, {}, {}, {0: x}, {}
    for l in range(1, depth + 1):
        W[l] = [[sp.Symbol(f"W{l}_{j}_{k}") for k in range(n[l - 1])] for j in range(n[l])]
        b[l] = [sp.Symbol(f"b{l}_{j}") for j in range(n[l])]
        z[l] = [sp.Symbol(f"z{l}_{j}") for j in range(n[l])]
        a[l] = [sp.Symbol(f"a{l}_{j}") for j in range(n[l])]
        delta[l] = [sp.Symbol(f"delta{l}_{j}") for j in range(n[l])]
    # the forward pass, as definitions: z = W a + b, a = tanh(z)
    forward = {}
    for l in range(1, depth + 1):
        for j in range(n[l]):
            forward[z[l][j]] = sum(W[l][j][k] * a[l - 1][k] for k in range(n[l - 1])) + b[l][j]
            forward[a[l][j]] = sp.tanh(z[l][j])
    loss = sum((a[depth][j] - y[j]) ** 2 for j in range(n[depth])) / 2
    # the delta equations: output layer, then backwards
    equations = {}
    for j in range(n[depth]):
        local = sp.diff(forward[a[depth][j]], z[depth][j])
        equations[delta[depth][j]] = sp.diff(loss, a[depth][j]) * local
    for l in range(depth - 1, 0, -1):
        for j in range(n[l]):
            back = sum(W[l + 1][i][j] * delta[l + 1][i] for i in range(n[l + 1]))
            equations[delta[l][j]] = back * sp.diff(forward[a[l][j]], z[l][j])
    # the gradients
    grads = {}
    for l in range(1, depth + 1):
        for j in range(n[l]):
            for k in range(n[l - 1]):
                grads[W[l][j][k]] = delta[l][j] * a[l - 1][k]
            grads[b[l][j]] = delta[l][j]
    return {"gradients": grads, "deltas": equations, "forward": forward}


def time_naive_once(depth: int) -> float:
    """One naive derivation in a fresh interpreter (cold SymPy cache); seconds."""
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]); import sympy; "
            "from bench_check import naive_derive; t = time.perf_counter(); "
            "out = naive_derive(int(sys.argv[2]), int(sys.argv[3])); "
            "print(time.perf_counter() - t, len(out['gradients']))")
    res = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(depth), str(WIDTH)],
                         capture_output=True, text=True, check=True)
    seconds, count = res.stdout.split()
    assert int(count) == depth * (WIDTH * WIDTH + WIDTH), count
    return float(seconds)


def time_check_once(spec: Path) -> float:
    """`derive check SPEC` end to end as a subprocess; wall-clock seconds."""
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "derive.cli", "check", str(spec)], cwd=ROOT,
                         capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if res.returncode != 0 or "all gradients agree" not in res.stdout:
        raise SystemExit(f"derive check {spec} failed (exit {res.returncode}):\n{res.stdout}{res.stderr}")
    return elapsed


def time_startup_once() -> float:
    """Interpreter start and derive's imports alone: the fixed part of every `derive check`."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import derive.cli, derive.api, derive.check.verify"], cwd=ROOT,
                   check=True)
    return time.perf_counter() - t


def spec_file(depth: int, folder: Path) -> Path:
    """examples/deep.toml for 32 layers, else the same generator at another depth."""
    if depth == 32:
        return ROOT / "examples" / "deep.toml"
    sys.path.insert(0, str(ROOT / "examples"))
    from make_deep import deep_spec

    path = folder / f"deep{depth}.toml"
    path.write_text(deep_spec(depth, WIDTH), encoding="utf-8")
    return path


README = ROOT / "benchmarks" / "README.md"
SECTION = "## derive check on deep networks"
HOW = """Measured by `benchmarks/bench_check.py` ({machine}): tanh networks of width 16 with values
(`examples/deep.toml` for 32 layers, `examples/make_deep.py --depth 8` for 8; half-SSE loss).
**naive derive** is the straightforward SymPy delta recursion written out in the benchmark
(z, a and delta as Symbols, local derivatives by `sympy.diff`, gradients as delta_j a_k), timed
in-process around the derivation only, each run in a fresh interpreter so SymPy's cache starts
cold. **derive check** is `python -m derive.cli check FILE` run as a subprocess and timed end to
end: interpreter start, imports, parsing, the derivation and the complex-step check of every
gradient at the values and 3 random points. Median of {repeat} runs each; load average at the
end {load:.1f} on {cores} cores (other jobs slow both columns alike)."""


def measure(depths: list[int], repeat: int) -> dict[int, tuple[int, float, float]]:
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for depth in depths:
            spec = spec_file(depth, Path(tmp))
            naive = statistics.median(time_naive_once(depth) for _ in range(repeat))
            check = statistics.median(time_check_once(spec) for _ in range(repeat))
            rows[depth] = (depth * (WIDTH * WIDTH + WIDTH), naive, check)
    return rows


def verdicts(rows) -> tuple[list[str], bool]:
    """One line per target, and whether all were met."""
    lines, ok = [], True
    if 8 in rows and 32 in rows:
        ratio = rows[32][2] / rows[8][2]
        ok = ratio <= MAX_DEPTH_RATIO
        lines.append(f"derive check, 32 layers / 8 layers: {ratio:.2f}x (target <= {MAX_DEPTH_RATIO}x) "
                     f"{'ok' if ok else 'MISSED'}")
    if 32 in rows:
        faster = rows[32][2] < rows[32][1]
        ok = ok and faster
        lines.append(f"derive check on 32 layers is {'faster' if faster else 'NOT faster'} than the "
                     f"naive derivation alone: {rows[32][2]:.2f} s vs {rows[32][1]:.2f} s "
                     f"{'ok' if faster else 'MISSED'}")
    return lines, ok


def text_table(rows) -> list[str]:
    lines = [f"{'layers':>6}  {'parameters':>10}  {'naive derive s':>14}  {'derive check s':>14}  "
             f"{'naive/check':>11}"]
    for depth, (params, naive, check) in rows.items():
        lines.append(f"{depth:>6}  {params:>10,}  {naive:>14.2f}  {check:>14.2f}  {naive / check:>10.1f}x")
    return lines


def markdown_table(rows) -> list[str]:
    lines = ["| layers | parameters | naive derive (s) | derive check (s) | naive / check |",
             "|---:|---:|---:|---:|---:|"]
    for depth, (params, naive, check) in rows.items():
        lines.append(f"| {depth} | {params:,} | {naive:.2f} | {check:.2f} | {naive / check:.1f}x |")
    return lines


def write_readme(text: str) -> None:
    write_section(SECTION, text, README)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="derive check vs a naive SymPy derivation")
    parser.add_argument("--depths", default="8,32", help="comma list of layer counts (default 8,32)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is shown")
    parser.add_argument("--write-readme", action="store_true",
                        help=f"replace the '{SECTION}' section of benchmarks/README.md")
    args = parser.parse_args(argv)
    rows = measure([int(d) for d in args.depths.split(",")], args.repeat)
    lines, ok = verdicts(rows)
    startup = statistics.median(time_startup_once() for _ in range(args.repeat))
    lines.append(f"of derive check's time, interpreter start and imports alone take {startup:.2f} s")
    print(f"tanh networks, width {WIDTH}, with values; median of {args.repeat} runs")
    print("\n".join(text_table(rows) + lines))
    if args.write_readme:
        import numpy
        import sympy

        machine = (f"{platform.system().lower()}, Python {platform.python_version()}, "
                   f"SymPy {sympy.__version__}, NumPy {numpy.__version__}")
        how = HOW.format(machine=machine, repeat=args.repeat, load=os.getloadavg()[0],
                         cores=os.cpu_count())
        write_readme("\n\n".join([how, "\n".join(markdown_table(rows)),
                                  "\n".join(f"- {v}" for v in lines)]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
