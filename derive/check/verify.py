"""Stage 4: check every derived gradient against an independent number.

The reference is complex-step differentiation of the forward pass and loss
(the registry definitions, nothing derived): dL/dp = Im L(p + ih) / h with
h = 1e-30, exact to float64 precision because nothing is subtracted.  It
needs no derivative of anything, so it is independent of backprop.py.

It is batched by layer: perturbing W(l)_jk by ih changes z(l)_j by
ih a(l-1)_k, so all of layer l's parameters form one batch that is pushed
forward through layers l..L together.  The forward pass below layer l is
shared, which keeps a 32-layer, width-16 network (8,704 parameters) to a few
hundred small matrix products per point.

Points: the user's values (if any) and `points` seeded random ones.  Near
a ReLU-family kink the one-sided derivatives differ, so random points are
redrawn until every pre-activation of a kinked layer is at least
`KINK_MARGIN` from 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .evaluate import Evaluator
from .numeric import as_arrays, matmul_t
from ..spec.network import Values

#: Tolerances: |derived - reference| <= ATOL + RTOL * |reference|.
#: Far tighter than PyTorch gradcheck's atol 1e-5, rtol 1e-3.
RTOL = 1e-7
ATOL = 1e-9
STEP = 1e-30
#: Complex numbers per batch array in the reference (16 MiB): bounds its memory.
CHUNK_VALUES = 1 << 20
KINK_MARGIN = 1e-4
DEFAULT_POINTS = 3
SEED = 20261129


@dataclass
class LayerResult:
    """Largest errors over one layer's parameters and all points."""

    layer: int
    parameters: int
    max_abs: float = 0.0
    max_rel: float = 0.0
    failures: int = 0
    worst: str = ""

    def __repr__(self) -> str:
        return f"LayerResult(l={self.layer}, abs={self.max_abs:.2e}, rel={self.max_rel:.2e})"


@dataclass
class CheckReport:
    """The outcome of `check`: per-layer rows, points used, method, verdict."""

    layers: list[LayerResult]
    points: int
    method: str = "complex-step (h = 1e-30) of the forward pass"
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.failures == 0 for r in self.layers)

    @property
    def max_abs(self) -> float:
        return max(r.max_abs for r in self.layers)

    @property
    def max_rel(self) -> float:
        return max(r.max_rel for r in self.layers)

    def __repr__(self) -> str:
        return f"CheckReport(passed={self.passed}, points={self.points}, max_abs={self.max_abs:.2e})"

    def _repr_markdown_(self) -> str:
        """Jupyter shows the table as it prints in a terminal."""
        return "```\n" + self.table() + "\n```"

    def table(self) -> str:
        head = f"{'layer':>5}  {'params':>7}  {'max abs err':>12}  {'max rel err':>12}  result"
        lines = [head, "-" * len(head)]
        for r in self.layers:
            verdict = "ok" if r.failures == 0 else f"{r.failures} MISMATCH (worst {r.worst})"
            lines.append(f"{r.layer:>5}  {r.parameters:>7}  {r.max_abs:>12.3e}  {r.max_rel:>12.3e}  {verdict}")
        lines.append(f"{self.points} point(s); reference: {self.method}; "
                     f"tolerance |err| <= {ATOL:g} + {RTOL:g}*|ref|")
        lines += self.notes
        lines.append("all gradients agree" if self.passed else "GRADIENTS DISAGREE")
        return "\n".join(lines)


def reference_gradients(ev: Evaluator, x, y, W, b):
    """Complex-step dL/dW(l), dL/db(l) for all layers, batched per layer.

    A layer's batch is cut into chunks of at most `CHUNK_VALUES` complex
    numbers per array, so a 5,000-wide layer needs megabytes, not gigabytes.
    """
    trace = ev.forward(x, W, b)
    chunk = max(1, CHUNK_VALUES // max(ev.n))
    gW, gb = {}, {}
    for l in range(1, ev.L + 1):
        n_out, n_in = W[l].shape
        total = n_out * n_in + (n_out if ev.spec.bias else 0)
        g = np.concatenate([_complex_step(ev, trace, y, W, b, l, np.arange(s, min(s + chunk, total)))
                            for s in range(0, total, chunk)])
        gW[l] = g[: n_out * n_in].reshape(n_out, n_in)
        gb[l] = g[n_out * n_in:]
    return gW, gb


def _complex_step(ev: Evaluator, trace, y, W, b, l: int, rows: np.ndarray) -> np.ndarray:
    """dL/dp for some of layer l's parameters: row r < n_out n_in is the weight
    W(l)[r // n_in, r % n_in], a later row the bias r - n_out n_in."""
    n_out, n_in = W[l].shape
    weight = rows < n_out * n_in
    at = np.arange(len(rows))
    pert = np.zeros((len(rows), n_out), dtype=complex)
    pert[at[weight], rows[weight] // n_in] = 1j * STEP * trace.a[l - 1][rows[weight] % n_in]
    pert[at[~weight], rows[~weight] - n_out * n_in] = 1j * STEP
    z = trace.z[l] + pert  # complex from here on; W and b stay real
    a = ev._forward[l](z)
    for m in range(l + 1, ev.L + 1):
        z = matmul_t(a, W[m]) + b[m]
        a = ev._forward[m](z)
    return np.imag(ev.loss_at(_BatchTrace(z, a, ev.L), y)) / STEP


class _BatchTrace:
    """The last layer of a batched forward pass, shaped like a Trace for loss_at."""

    def __init__(self, z, a, L):
        self.z, self.a = {L: z}, {L: a}


def random_values(ev: Evaluator, rng: np.random.Generator) -> Values:
    """A random point: x in [-1, 1], weights ~ N(0, 1/fan_in), targets the loss accepts."""
    n, spec = ev.n, ev.spec
    for _ in range(100):
        W = {l: rng.normal(0, 1 / np.sqrt(n[l - 1]), (n[l], n[l - 1])) for l in range(1, ev.L + 1)}
        b = {l: rng.uniform(-0.5, 0.5, n[l]) if spec.bias else np.zeros(n[l]) for l in W}
        x = rng.uniform(-1, 1, n[0])
        if spec.loss.probabilistic:
            y = rng.uniform(0.05, 0.95, n[-1])
            if spec.activations[-1].vector and spec.loss.name == "cross_entropy":
                y = y / y.sum()
        else:
            y = rng.uniform(-1, 1, n[-1])
        trace = ev.forward(x, W, b)
        if not any(row.kink and np.min(np.abs(trace.z[l])) < KINK_MARGIN
                   for l, row in enumerate(spec.activations, start=1)):
            break
    return Values(tuple(x), tuple(y), {l: tuple(map(tuple, w)) for l, w in W.items()},
                  {l: tuple(v) for l, v in b.items()} if spec.bias else {})


def check(ev: Evaluator, values: Values | None = None, points: int = DEFAULT_POINTS,
          seed: int = SEED) -> CheckReport:
    """Compare the derived gradients with the complex-step reference."""
    rng = np.random.default_rng(seed)
    pts = ([values] if values is not None else []) + [random_values(ev, rng) for _ in range(points)]
    rows = [LayerResult(l, ev.n[l] * ev.n[l - 1] + (ev.n[l] if ev.spec.bias else 0))
            for l in range(1, ev.L + 1)]
    report = CheckReport(rows, len(pts))
    for vals in pts:
        _, dW, db = ev.run(vals)
        x, y, W, b = as_arrays(vals, ev.n, ev.spec.bias)
        rW, rb = reference_gradients(ev, x, y, W, b)
        for r in rows:
            _compare(r, dW[r.layer], rW[r.layer], "W")
            if ev.spec.bias:
                _compare(r, db[r.layer], rb[r.layer], "b")
    return report


def _compare(row: LayerResult, derived: np.ndarray, ref: np.ndarray, kind: str) -> None:
    err = np.abs(derived - ref)
    err = np.where(np.isnan(err), np.inf, err)
    rel = err / np.maximum(np.abs(ref), 1e-300)
    bad = err > ATOL + RTOL * np.abs(ref)
    row.max_abs = max(row.max_abs, float(err.max(initial=0)))
    row.max_rel = max(row.max_rel, float(np.where(np.abs(ref) > ATOL, rel, 0).max(initial=0)))
    if bad.any():
        row.failures += int(bad.sum())
        idx = np.unravel_index(int(np.argmax(np.where(bad, err, -1))), bad.shape)
        name = f"W{row.layer}[{idx[0] + 1},{idx[1] + 1}]" if kind == "W" else f"b{row.layer}[{idx[0] + 1}]"
        row.worst = f"{name}: derived {derived[idx]!r}, reference {ref[idx]!r}"
