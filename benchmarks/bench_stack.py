"""[[layer]] networks: `derive grad` and `derive check` on a LeNet-sized CNN (next to torch), an RNN and an LSTM.

    python benchmarks/bench_stack.py [--write-readme]

The network: a 1x28x28 input (MNIST's), conv2d 4 channels 5x5 + relu, max-pool 2,
conv2d 8 channels 5x5 + relu, max-pool 2, flatten (128), dense 10 + softmax,
cross-entropy, a minibatch of 2, values from a fixed seed.  Each command runs as a
subprocess end to end (interpreter start, imports, parsing); peak memory is the
child's maximum resident set.  The baseline is PyTorch autograd computing the same
gradients in float64 (graph built and backward run, in this process, median of 20),
so the table shows what backprop through the layer table and its complex-step
check cost against the tool people train with.  Every figure is the median of
--repeat runs.  The generated modules (`derive code --target numpy|torch`) are
timed the same way in process: one gradients() call, median of 20.
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_section import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LAYERS = """
[[layer]]
kind = "conv2d"
channels = 4
kernel = 5
activation = "relu"
[[layer]]
kind = "maxpool2d"
kernel = 2
[[layer]]
kind = "conv2d"
channels = 8
kernel = 5
activation = "relu"
[[layer]]
kind = "maxpool2d"
kernel = 2
[[layer]]
kind = "flatten"
[[layer]]
kind = "dense"
units = 10
activation = "softmax"
"""
SHAPES = {"K1": (4, 1, 5, 5), "b1": (4,), "K3": (8, 4, 5, 5), "b3": (8,), "W6": (10, 128), "b6": (10,)}


def write_spec(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    lines = ['title = "LeNet-sized CNN"', "input = [1, 28, 28]", 'loss = "cross_entropy"', "batch = 2", LAYERS,
             "[values]", f"x = {np.round(rng.uniform(0, 1, (2, 1, 28, 28)), 3).tolist()}",
             f"y = {np.eye(10)[[3, 7]].tolist()}"]
    for name, shape in SHAPES.items():
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        lines.append(f"{name} = {np.round(rng.uniform(-1, 1, shape) / np.sqrt(fan_in), 4).tolist()}")
    path = folder / "lenet.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


RECURRENT = """
[[layer]]
kind = "{kind}"
units = 8
[[layer]]
kind = "dense"
units = 3
activation = "softmax"
"""


def write_recurrent(folder: Path, kind: str, steps: int) -> Path:
    """An rnn or lstm of width 8 over `steps` steps, 4 input features, softmax over 3 at the last step."""
    rng = np.random.default_rng(steps)
    gates = "ifgo" if kind == "lstm" else [""]
    lines = [f'title = "{kind} over {steps} steps"', "input = [4]", f"steps = {steps}", 'loss = "cross_entropy"',
             "batch = 2", RECURRENT.format(kind=kind), "[values]",
             f"x = {np.round(rng.uniform(-1, 1, (2, steps, 4)), 3).tolist()}", f"y = {np.eye(3)[[0, 2]].tolist()}"]
    for g in gates:
        for letter, shape in (("W", (8, 4)), ("R", (8, 8)), ("b", (8,))):
            lines.append(f"{letter}1{g} = {np.round(rng.uniform(-0.35, 0.35, shape), 3).tolist()}")
    lines += [f"W2 = {np.round(rng.uniform(-0.35, 0.35, (3, 8)), 3).tolist()}", "b2 = [0.0, 0.0, 0.0]"]
    path = folder / f"{kind}-{steps}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


RECURRENT_CASES = (("rnn", 25), ("rnn", 50), ("lstm", 10), ("lstm", 20))


def recurrent_rows(folder: Path, repeat: int) -> list[list]:
    """grad and check of an RNN (T = 25, 50) and an LSTM (T = 10, 20) end to end: the doubling
    shows the cost in T (the engine's own seconds are added by `engine_seconds`)."""
    rows = []
    for kind, steps in RECURRENT_CASES:
        spec = write_recurrent(folder, kind, steps)
        for label, args in (("grad --values-only", ["grad", str(spec), "--json", "--values-only"]),
                            ("check (values + 1 point)", ["check", str(spec), "--points", "1"])):
            runs = [run(args) for _ in range(repeat)]
            rows.append([kind, steps, label, spec, statistics.median(r[0] for r in runs), max(r[1] for r in runs)])
    return rows


def engine_seconds(row: list, repeat: int) -> float:
    """The same work in this process, without interpreter start and imports: the fastest of the
    runs (the least disturbed by other jobs on the machine; the growth in T is what it shows)."""
    from derive.api import load

    net = load(row[3])
    work = (lambda: net.loss_and_gradients()) if row[2].startswith("grad") else (lambda: net.check(points=1))
    times = []
    for _ in range(max(3, repeat)):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def run(args: list[str]) -> tuple[float, float, str]:
    """Seconds and peak MB of one `derive` subprocess (its own rusage, from wait4), and its stdout."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([sys.executable, "-m", "derive", *args], stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"derive {' '.join(args)} failed: {err.read() or out.read()}")
        return seconds, usage.ru_maxrss / 1024, out.read()


def torch_seconds(spec: Path) -> float:
    import tomllib

    import torch
    import torch.nn.functional as F

    v = tomllib.loads(spec.read_text())["values"]
    t = {k: torch.tensor(v[k], dtype=torch.float64) for k in SHAPES}
    x, y = torch.tensor(v["x"], dtype=torch.float64), torch.tensor(v["y"], dtype=torch.float64)
    times = []
    for _ in range(20):
        leaves = {k: t[k].clone().requires_grad_() for k in t}
        start = time.perf_counter()
        a = F.max_pool2d(torch.relu(F.conv2d(x, leaves["K1"], leaves["b1"])), 2)
        a = F.max_pool2d(torch.relu(F.conv2d(a, leaves["K3"], leaves["b3"])), 2)
        z = F.linear(torch.flatten(a, 1), leaves["W6"], leaves["b6"])
        (-(y * torch.log_softmax(z, 1)).sum(1).mean()).backward()
        times.append(time.perf_counter() - start)
    return min(times)


def generated_seconds(spec: Path, folder: Path, target: str) -> float:
    """Median seconds of one gradients() call of the module `derive code` writes for `spec`."""
    import importlib.util
    import tomllib

    path = folder / f"lenet_{target}.py"
    run(["code", str(spec), "--target", target, "-o", str(path)])
    loader = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    v = tomllib.loads(spec.read_text())["values"]
    if target == "torch":
        import torch

        v = {k: torch.tensor(val, dtype=torch.float64) for k, val in v.items()}
    else:
        v = {k: np.asarray(val, dtype=float) for k, val in v.items()}
    params = {k: v[k] for k in SHAPES}
    times = []
    for _ in range(20):
        start = time.perf_counter()
        module.gradients(params, v["x"], v["y"])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write-readme", action="store_true")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = write_spec(Path(tmp))
        rows, params = [], None
        for label, args in (("derive grad --json (numbers and formulas)", ["grad", str(spec), "--json"]),
                            ("derive check (values + 1 random point)", ["check", str(spec), "--points", "1"])):
            runs = [run(args) for _ in range(opts.repeat)]
            if params is None:
                params = len(json.loads(runs[0][2])["gradients"])
            rows.append((label, statistics.median(r[0] for r in runs), max(r[1] for r in runs)))
        recurrent = recurrent_rows(Path(tmp), opts.repeat)
        # torch last: a child forked after torch is imported would count the parent's pages in
        # its peak resident set (ru_maxrss includes the memory it had before exec)
        baseline = torch_seconds(spec)
        table_rows = [f"| {kind}, width 8, T = {steps} | {label} | {seconds:.2f} | {engine_seconds(row, opts.repeat):.3f} "
                      f"| {mb:.0f} |" for row in recurrent for kind, steps, label, _, seconds, mb in [row]]
        generated = {t: generated_seconds(spec, Path(tmp), t) for t in ("numpy", "torch")}
    lines = [f"Measured by `benchmarks/bench_stack.py` ({platform.system().lower()}, Python "
             f"{platform.python_version()}, NumPy {np.__version__}): LeNet-sized CNN (1x28x28, conv 4@5x5 "
             f"relu, max-pool 2, conv 8@5x5 relu, max-pool 2, dense 10 softmax, cross-entropy), batch 2, "
             f"{params} parameters; median of {opts.repeat} subprocess runs.", "",
             "| command | seconds | peak MB |", "|---|---:|---:|"]
    lines += [f"| {label} | {seconds:.2f} | {mb:.0f} |" for label, seconds, mb in rows]
    lines += [f"| generated NumPy module, gradients() (in-process) | {generated['numpy']:.4f} | |",
              f"| generated PyTorch module, gradients() (in-process) | {generated['torch']:.4f} | |",
              f"| baseline: torch autograd, the same gradients (in-process) | {baseline:.4f} | |", "",
              "Recurrent networks (4 input features, batch 2, softmax over 3 at the last step); "
              "each T doubled to show the cost's growth in T:", "",
              "| network | command | seconds end to end | engine seconds (in-process, best of 3) | peak MB |",
              "|---|---|---:|---:|---:|"] + table_rows + [""]
    table = "\n".join(lines)
    print(table)
    if opts.write_readme:
        write_section("CNN ([[layer]] networks)", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
