"""How fast are the generated gradients?  Four ways to one gradient, side by side.

A 4-layer width-8 network (8-8-8-8-8, float64, one example); each method
computes the loss's gradient for every weight and bias (288 numbers),
forward pass included:

    hand-written   NumPy backprop written in this file (a loop over layers)
    generated      gradients() of `derive code --target numpy`
    torch          PyTorch autograd, one thread, the network written in torch here
    lambdify       SymPy lambdify of the 288 gradient expressions in x, y, W, b
                   (cse=lambda e: sympy.cse(e, order='none'), FACTS.md)

Timing: ROUNDS rounds; in each, every method runs CALLS times back to back
(methods interleaved, so drift hits all alike); the per-gradient time is
the median over rounds of (round time / CALLS).  Every method is checked
against the engine (`Network.gradients`) first.  Targets (issue #6):
generated <= 1.5x hand-written, generated faster than torch, generated
agrees with the engine to 1e-12.

    python benchmarks/bench_codegen.py [--rounds N] [--write-readme]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_section import write_section  # noqa: E402

import numpy as np
import sympy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import derive  # noqa: E402

LAYERS = [8, 8, 8, 8, 8]
NETWORKS = [(["tanh", "tanh", "tanh", "sigmoid"], "bce"), (["sigmoid"] * 4, "half_sse")]
CALLS, ROUNDS = 200, 40
#: generated vs engine, the issue's bound
AGREE = 1e-12
README = ROOT / "benchmarks" / "README.md"
SECTION = "## Generated code"


# -- the hand-written baseline --------------------------------------------------
def hand_gradients(W, b, x, y, hidden, output, loss):
    """Textbook backprop for one example: lists of per-layer arrays in, out."""
    a = [x]
    for l in range(len(W)):
        z = W[l] @ a[-1] + b[l]
        f = hidden if l < len(W) - 1 else output
        a.append(np.tanh(z) if f == "tanh" else 1 / (1 + np.exp(-z)))
    out = a[-1]
    if loss == "bce":  # sigmoid + bce: delta = a - y
        d = out - y
    else:  # sigmoid + half_sse
        d = (out - y) * out * (1 - out)
    gW, gb = [None] * len(W), [None] * len(W)
    for l in range(len(W) - 1, -1, -1):
        gW[l], gb[l] = np.outer(d, a[l]), d
        if l:
            local = 1 - a[l] ** 2 if hidden == "tanh" else a[l] * (1 - a[l])
            d = (W[l].T @ d) * local
    return gW, gb


# -- torch autograd -------------------------------------------------------------
def torch_setup(W, b, x, y, hidden, output, loss):
    import torch

    torch.set_num_threads(1)
    Wt = [torch.tensor(w, requires_grad=True) for w in W]
    bt = [torch.tensor(v, requires_grad=True) for v in b]
    xt, yt = torch.tensor(x), torch.tensor(y)
    leaves = Wt + bt
    act = {"tanh": torch.tanh, "sigmoid": torch.sigmoid}

    def grad():
        a = xt
        for l in range(len(Wt)):
            a = act[hidden if l < len(Wt) - 1 else output](Wt[l] @ a + bt[l])
        if loss == "bce":
            value = -(yt * torch.log(a) + (1 - yt) * torch.log(1 - a)).sum()
        else:
            value = 0.5 * ((a - yt) ** 2).sum()
        return torch.autograd.grad(value, leaves)

    return grad, len(Wt)


# -- SymPy lambdify -------------------------------------------------------------
def lambdify_setup(net):
    """All gradients as one shared DAG in x, y, W, b, lambdified with an unordered cse."""
    m, s, L, n = net.model, net.simplifier, net.spec.depth, net.spec.layers
    subs = {}
    for l in range(1, L + 1):
        zs = [m.z_definition(l, j).xreplace(subs) for j in range(1, n[l] + 1)]
        for j in range(1, n[l] + 1):
            subs[m.z(l, j)] = zs[j - 1]
            subs[m.a(l, j)] = m.activation_of(l, j, zs)
    for l in range(L, 0, -1):
        for j in range(1, n[l] + 1):
            subs[m.delta(l, j)] = s.delta_definition(l, j).xreplace(subs)
    params = list(net.params())
    exprs = [net.derivation.factored(p).xreplace(subs) for p in params]
    args = ([m.x(k) for k in range(1, n[0] + 1)] + [m.y(j) for j in range(1, n[-1] + 1)]
            + [m.symbol(p) for p in params])
    fn = sympy.lambdify(args, exprs, modules="numpy", use_imps=False,
                        cse=lambda e: sympy.cse(e, order="none"))
    return fn, params


# -- the run --------------------------------------------------------------------
def load_generated(source: str):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated_bench.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("generated_bench", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def max_rel_error(got: dict, want: dict) -> float:
    return max(abs(got[k] - want[k]) / max(abs(want[k]), 1e-300) if want[k] else abs(got[k])
               for k in want)


def flat(net, gW, gb) -> dict:
    """Per-layer arrays -> {"W1[1,1]": value, ...}."""
    return {p.name: float(gW[p.layer - 1][p.j - 1, p.k - 1] if p.kind == "W" else gb[p.layer - 1][p.j - 1])
            for p in net.params()}


def measure(methods: dict, rounds: int) -> dict:
    times = {name: [] for name in methods}
    for _ in range(rounds):
        for name, fn in methods.items():
            start = time.perf_counter()
            for _ in range(CALLS):
                fn()
            times[name].append((time.perf_counter() - start) / CALLS)
    return {name: statistics.median(t) for name, t in times.items()}


def bench(activations, loss, rounds):
    net = derive.Network(LAYERS, activations, loss)
    rng = np.random.default_rng(20261129)
    L = net.spec.depth
    W = [rng.normal(0, LAYERS[l] ** -0.5, (LAYERS[l + 1], LAYERS[l])) for l in range(L)]
    b = [rng.uniform(-0.5, 0.5, LAYERS[l + 1]) for l in range(L)]
    x, y = rng.uniform(-1, 1, LAYERS[0]), rng.uniform(0.05, 0.95, LAYERS[-1])
    values = {"x": x.tolist(), "y": y.tolist(), **{f"W{l + 1}": W[l].tolist() for l in range(L)},
              **{f"b{l + 1}": b[l].tolist() for l in range(L)}}
    want = net.gradients(values)
    hidden, output = activations[0], activations[-1]

    module = load_generated(net.code("numpy"))
    params = {**{f"W{l + 1}": W[l] for l in range(L)}, **{f"b{l + 1}": b[l] for l in range(L)}}
    g = module.gradients(params, x, y)
    errors = {"generated": max_rel_error(flat(net, [g[f"W{l}"] for l in range(1, L + 1)],
                                              [g[f"b{l}"] for l in range(1, L + 1)]), want)}
    errors["hand-written"] = max_rel_error(flat(net, *hand_gradients(W, b, x, y, hidden, output, loss)), want)
    methods = {"hand-written NumPy": lambda: hand_gradients(W, b, x, y, hidden, output, loss),
               "generated NumPy": lambda: module.gradients(params, x, y)}
    try:
        torch_grad, nl = torch_setup(W, b, x, y, hidden, output, loss)
        tg = [t.numpy() for t in torch_grad()]
        errors["torch"] = max_rel_error(flat(net, tg[:nl], tg[nl:]), want)
        methods["PyTorch autograd (1 thread)"] = torch_grad
    except ImportError:
        print("torch not installed: its row is left out", file=sys.stderr)
    start = time.perf_counter()
    lam, lam_params = lambdify_setup(net)
    setup = time.perf_counter() - start
    args = x.tolist() + y.tolist() + [values[f"{p.kind}{p.layer}"][p.j - 1][p.k - 1] if p.kind == "W"
                                      else values[f"b{p.layer}"][p.j - 1] for p in lam_params]
    errors["lambdify"] = max_rel_error(dict(zip([p.name for p in lam_params], map(float, lam(*args)))), want)
    methods["SymPy lambdify (cse)"] = lambda: lam(*args)

    assert errors["generated"] <= AGREE, f"generated code disagrees with the engine: {errors['generated']:.2e}"
    times = measure(methods, rounds)
    return net, times, errors, setup


def table(results) -> str:
    lines = []
    for net, times, errors, setup in results:
        base = times["hand-written NumPy"]
        lines += [f"{net.spec.describe()}, {net.spec.parameter_count} gradients, float64, one example:", "",
                  "| method | µs per gradient | vs hand-written | max rel. error vs engine |",
                  "|---|---:|---:|---:|"]
        keys = {"hand-written NumPy": "hand-written", "generated NumPy": "generated",
                "PyTorch autograd (1 thread)": "torch", "SymPy lambdify (cse)": "lambdify"}
        for name, t in times.items():
            lines.append(f"| {name} | {t * 1e6:.1f} | {t / base:.2f}x | {errors[keys[name]]:.1e} |")
        gen = times["generated NumPy"]
        torch_t = times.get("PyTorch autograd (1 thread)")
        verdict = [f"generated / hand-written = {gen / base:.2f} (target <= 1.5)"]
        if torch_t:
            verdict.append(f"generated / torch = {gen / torch_t:.2f} (target < 1)")
        lines += ["", "; ".join(verdict) + f"; lambdify setup {setup:.1f} s", ""]
    return "\n".join(lines)


def write_readme(text: str) -> None:
    write_section(SECTION, text, README)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--write-readme", action="store_true",
                        help=f"replace the '{SECTION}' section of benchmarks/README.md")
    args = parser.parse_args(argv)
    results = [bench(acts, loss, args.rounds) for acts, loss in NETWORKS]
    text = table(results)
    print(text)
    ok = all(t["generated NumPy"] <= 1.5 * t["hand-written NumPy"]
             and t["generated NumPy"] < t.get("PyTorch autograd (1 thread)", float("inf"))
             for _, t, _, _ in results)
    if args.write_readme:
        how = (f"Measured by `benchmarks/bench_codegen.py` ({sys.platform}, {os.cpu_count()} cores, "
               f"Python {sys.version.split()[0]}, NumPy {np.__version__}, SymPy {sympy.__version__}"
               + (f", torch {__import__('torch').__version__}" if "torch" in sys.modules else "")
               + f"): {args.rounds} interleaved rounds of {CALLS} calls per method, median "
               "per-call time; every method computes all gradients of one example, forward pass "
               "included. lambdify gets its arguments as a prepared flat list of floats (its "
               "best case); torch builds the graph and runs `autograd.grad` each call. "
               f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
               "(other jobs inflate every absolute time alike; the interleaved ratios are what "
               "the targets compare).")
        write_readme(how + "\n\n" + text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
