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

Points: the user's values (if any) and `points` random ones from the one
sampler of points.py (seeded, away from ReLU kinks), the same points the
torch check meets; one comparison and report table, compare.py's.
"""

from __future__ import annotations

import numpy as np

from .compare import CheckReport, Reference, Tolerance
from .evaluate import Evaluator
from .numeric import as_arrays, matmul_t, regularizer
from .points import DEFAULT_POINTS, SEED, Sampler
from ..spec.network import Values

#: Tolerances: |derived - reference| <= ATOL + RTOL * |reference|.
#: Far tighter than PyTorch gradcheck's atol 1e-5, rtol 1e-3.
RTOL = 1e-7
ATOL = 1e-9
STEP = 1e-30
#: Complex numbers per batch array in the reference (16 MiB): bounds its memory.
CHUNK_VALUES = 1 << 20
COMPLEX_STEP = Reference("complex-step (h = 1e-30) of the forward pass", Tolerance(RTOL, ATOL))


def reference_gradients(ev: Evaluator, x, y, W, b):
    """Complex-step dL/dW(l), dL/db(l) for all layers, batched per layer.

    A layer's batch is cut into chunks of at most `CHUNK_VALUES` complex
    numbers per array, so a 5,000-wide layer needs megabytes, not gigabytes.
    """
    trace = ev.forward(x, W, b)
    examples = x.shape[0] if x.ndim == 2 else 1
    chunk = max(1, CHUNK_VALUES // (max(ev.n) * examples))
    gW, gb = {}, {}
    for l in range(1, ev.L + 1):
        n_out, n_in = W[l].shape
        total = n_out * n_in + (n_out if ev.spec.bias else 0)
        g = np.concatenate([_complex_step(ev, trace, y, W, b, l, np.arange(s, min(s + chunk, total)))
                            for s in range(0, total, chunk)])
        gW[l] = g[: n_out * n_in].reshape(n_out, n_in) + _regularizer_step(ev.spec, W[l], "W")
        gb[l] = g[n_out * n_in:] + (_regularizer_step(ev.spec, b[l], "b") if ev.spec.bias else 0)
    return gW, gb


def _regularizer_step(spec, w: np.ndarray, kind: str):
    """Complex-step dR/dw of each weight from R's own definition (numeric.regularizer),
    one weight at a time: R is a sum, so its other terms carry no imaginary part."""
    if not spec.regularization.covers(kind):
        return 0.0
    out = np.empty(w.shape)
    for i in np.ndindex(w.shape):
        bumped = w.astype(complex)
        bumped[i] += 1j * STEP
        out[i] = np.imag(regularizer(spec, {1: bumped}, {}) if kind == "W" else
                         regularizer(spec, {}, {1: bumped})) / STEP
    return out


def _complex_step(ev: Evaluator, trace, y, W, b, l: int, rows: np.ndarray) -> np.ndarray:
    """dL/dp for some of layer l's parameters: row r < n_out n_in is the weight
    W(l)[r // n_in, r % n_in], a later row the bias r - n_out n_in."""
    n_out, n_in = W[l].shape
    weight = rows < n_out * n_in
    at = np.arange(len(rows))
    below = trace.a[l - 1]  # (n_in,), or (m, n_in) for a minibatch: then pert is (rows, m, n_out)
    pert = np.zeros((len(rows),) + below.shape[:-1] + (n_out,), dtype=complex)
    pert[at[weight], ..., rows[weight] // n_in] = 1j * STEP * np.moveaxis(
        below[..., rows[weight] % n_in], -1, 0)
    pert[at[~weight], ..., rows[~weight] - n_out * n_in] = 1j * STEP
    z = trace.z[l] + pert  # complex from here on; W and b stay real
    a = ev.activation_functions[l](z)
    for m in range(l + 1, ev.L + 1):
        z = matmul_t(a, W[m]) + b[m]
        a = ev.activation_functions[m](z)
    losses = np.imag(ev.loss_at(_BatchTrace(z, a, ev.L), y)) / STEP
    return ev.spec.training.scale * (losses if below.ndim == 1 else np.sum(losses, axis=-1))


class _BatchTrace:
    """The last layer of a batched forward pass, shaped like a Trace for loss_at."""

    def __init__(self, z, a, L):
        self.z, self.a = {L: z}, {L: a}


def check(ev: Evaluator, values: Values | None = None, points: int = DEFAULT_POINTS,
          seed: int = SEED) -> CheckReport:
    """Compare the derived gradients with the complex-step reference."""
    pts = Sampler(ev, seed).values(points, first=values)
    report = CheckReport.empty(ev.n, ev.spec.bias, len(pts), COMPLEX_STEP)
    for vals in pts:
        _, dW, db = ev.run(vals)
        report.compare_gradients((dW, db), reference_gradients(ev, *as_arrays(vals, ev.n, ev.spec.bias)))
    return report
