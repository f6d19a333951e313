"""Stage 3d: numbers from the derivation, layer by layer.

The delta equations of backprop.py are evaluated as one vectorised step per
layer: delta(L) from the output term, delta(l) = W(l+1)^T delta(l+1) * f_l'
and dL/dW(l) = delta(l) a(l-1)^T.  Every local derivative is the compiled
SymPy expression of the derivation, in the simplified form of simplify.py
(a(1-a) rather than e^-z/(1+e^-z)^2; a - y at the output where it cancels),
with a written as f(z) so that stable.stabilize can turn it into a form
without cancellation or overflow (a(1-a) -> sigma(z) sigma(-z)): the same
value, proven by the tests against mpmath, finite and accurate for z = +-1000.
Cost is one matrix product per layer, so a 32-layer width-16 network takes
microseconds, not a symbolic expansion.

The forward pass and the loss come from the registry definitions alone (the
loss of an elementwise output as a function of z, so sigmoid + bce at z = 1000
is softplus(z), not -ln 0); verify.py differentiates those numerically as the
independent reference.  Where a number really is undefined or beyond float64
(ln 0 in bce at an output of exactly 1, exp(1000) in a custom activation),
`run` raises a one-line `SpecError` naming the quantity instead of returning nan.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy

from ..errors import SpecError
from ..calculus.model import Param
from .numeric import as_arrays, compile_expr, regularizer, regularizer_gradient
from ..spec.registry import A, X, Y
from ..calculus.simplify import Simplifier


@dataclass
class Trace:
    """A forward and backward pass at one point: per-layer arrays (index l)."""

    z: dict[int, np.ndarray]
    a: dict[int, np.ndarray]
    loss: float
    delta: dict[int, np.ndarray] | None = None
    losses: np.ndarray | None = None

    def example(self, n: int) -> "Trace":
        """Example n's (0-based) rows of a minibatch trace, as a one-example trace."""
        pick = lambda arrays: None if arrays is None else {l: v[n] for l, v in arrays.items()}  # noqa: E731
        return Trace(pick(self.z), pick(self.a), float(self.losses[n]), pick(self.delta))

    def __repr__(self) -> str:
        return f"Trace(layers={len(self.z)}, loss={self.loss!r})"


def softmax(z: np.ndarray) -> np.ndarray:
    """exp(z_j) / sum_m exp(z_m), shifted by max Re z so it cannot overflow."""
    e = np.exp(z - np.max(np.real(z), axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """ln softmax(z) by log-sum-exp, finite even when softmax underflows to 0."""
    s = z - np.max(np.real(z), axis=-1, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=-1, keepdims=True))


def _others_of_top(a: np.ndarray):
    """The index of the largest output, and sum over the other outputs of an array.

    1 - a_top cancels when softmax puts almost everything on one output; the sum of
    the other outputs is the same number without the cancellation.
    """
    top = np.argmax(np.real(a), axis=-1)[..., None]
    others = np.ones(a.shape, dtype=bool)
    np.put_along_axis(others, top, False, axis=-1)
    return top, lambda v: np.sum(np.where(others, v, 0), axis=-1, keepdims=True)


def softmax_backward(a: np.ndarray, g: np.ndarray, top=None, rest=None) -> np.ndarray:
    """a_i (g_i - sum_m a_m g_m), the softmax Jacobian against dL/da = g.

    Written a_i (g_i c_i - u_i) with c_i = sum_{m != i} a_m and u_i = sum_{m != i}
    a_m g_m (equal, as sum_m a_m = 1), both summed directly for the top output.
    """
    if top is None:
        top, rest = _others_of_top(a)
    c = np.sum(a, axis=-1, keepdims=True) - a
    u = np.sum(a * g, axis=-1, keepdims=True) - a * g
    np.put_along_axis(c, top, rest(a), -1)
    np.put_along_axis(u, top, rest(a * g), -1)
    return a * (g * c - u)


class Evaluator:
    """Compiled forward pass, loss and delta equations of one network."""

    def __init__(self, simplifier: Simplifier):
        self.simplifier = simplifier
        self.model = simplifier.model
        self.spec = self.model.spec
        self.L, self.n = self.model.L, self.model.n

    def __repr__(self) -> str:
        return f"Evaluator({self.spec.describe()})"

    # -- compiled pieces ------------------------------------------------------
    @cached_property
    def activation_functions(self):
        """Per layer l = 1..L, f_l as a NumPy function of z(l) (softmax for a vector row)."""
        return [None] + [softmax if row.vector else compile_expr(row.definition, (X,))
                         for row in self.spec.activations]

    @cached_property
    def _derivative(self):
        """Per elementwise layer: f' as a function of (a, z), the a-identity at a = f(z)."""
        return [None] + [None if row.vector else compile_expr(_local_derivative(row), (A, X))
                         for row in self.spec.activations]

    @cached_property
    def _loss_term(self):
        """One output's loss term as a function of (a, z, y): of z where composing is safe."""
        row = self.spec.activations[-1]
        term = self.spec.loss.per_output(A, Y, self.n[self.L])
        return compile_expr(term if row.vector else _compose(term, row), (A, X, Y))

    @cached_property
    def _loss_term_derivative(self):
        return compile_expr(self.simplifier.derivation.loss_term_derivative, (A, Y))

    @cached_property
    def _output_term(self):
        """delta(L)_j of an elementwise output as a function of (a, z, y)."""
        row = self.spec.activations[-1]
        term = self.simplifier.output_term
        if row.in_terms_of_a is None:
            term = term * row.derivative()
        return compile_expr(_compose(term, row), (A, X, Y))

    def _softmax_ce(self) -> bool:
        return self.spec.softmax_cross_entropy

    # -- passes ---------------------------------------------------------------
    def forward(self, x, W, b) -> Trace:
        """z(l), a(l) for l = 1..L and the loss is filled by `loss_at`."""
        z, a = {}, {0: x}
        with np.errstate(all="ignore"):  # overflow is reported by `diagnose`, not warned
            for l in range(1, self.L + 1):
                z[l] = a[l - 1] @ W[l].T + b[l]
                a[l] = self.activation_functions[l](z[l])
        return Trace(z, a, float("nan"))

    def loss_at(self, trace: Trace, y) -> np.ndarray:
        """The loss (per example if batched); log-sum-exp for softmax + cross_entropy."""
        if self._softmax_ce():
            return -np.sum(y * log_softmax(trace.z[self.L]), axis=-1)
        with np.errstate(all="ignore"):
            return np.sum(self._loss_term(trace.a[self.L], trace.z[self.L], y), axis=-1)

    def _local(self, l: int, trace: Trace) -> np.ndarray:
        return self._derivative[l](trace.a[l], trace.z[l])

    def _output_delta(self, trace: Trace, y) -> np.ndarray:
        a = trace.a[self.L]
        if self.spec.activations[-1].vector:
            top, rest = _others_of_top(a)
            if self._softmax_ce():  # a - y, with a_top - y_top as (1 - y_top) - sum of the rest
                delta = a - y
                y_top = np.take_along_axis(np.broadcast_to(y, a.shape), top, -1)
                np.put_along_axis(delta, top, 1 - y_top - rest(a), -1)
                return delta
            g = self._loss_term_derivative(a, y)
            return softmax_backward(a, g, top, rest)
        return self._output_term(a, trace.z[self.L], y)

    def backward(self, trace: Trace, y, W) -> Trace:
        delta = {self.L: self._output_delta(trace, y)}
        with np.errstate(all="ignore"):
            for l in range(self.L - 1, 0, -1):
                delta[l] = (delta[l + 1] @ W[l + 1]) * self._local(l, trace)
        trace.delta = delta
        return trace

    def run(self, values) -> tuple[Trace, dict[int, np.ndarray], dict[int, np.ndarray]]:
        """Forward, loss and backward at a `Values` point: (trace, dL/dW, dL/db).

        A minibatch runs as one pass with an example per row: the trace holds each
        example's z, a and delta (dloss_n/dz, the per-example delta), `trace.losses`
        each example's loss, and the gradients are s sum_n delta_n a_n^T plus the
        regulariser's l2 w + l1 sign(w) (training.py)."""
        x, y, W, b = as_arrays(values, self.n, self.spec.bias)
        trace = self.forward(x, W, b)
        trace.losses = self.loss_at(trace, y)
        trace.loss = float(self.spec.training.scale * np.sum(trace.losses) + regularizer(self.spec, W, b))
        self.backward(trace, y, W)
        problem = batch_diagnose(self, trace, y)
        if problem:
            raise SpecError(f"values: {problem}")
        gW, gb = self._batch_gradients(trace, W, b)
        for l, g in gW.items():
            if not np.all(np.isfinite(g)):
                j, k = np.unravel_index(int(np.argmax(~np.isfinite(g))), g.shape)
                raise SpecError(f"values: dL/dW{l}[{j + 1},{k + 1}] = delta{l}[{j + 1}] * "
                                f"a{l - 1}[{k + 1}] is beyond float64 (overflow) at these values")
        return trace, gW, gb

    def _batch_gradients(self, trace: Trace, W, b):
        """s sum_n delta(l)_n a(l-1)_n^T and s sum_n delta(l)_n, plus dR/dp (training.py)."""
        s, spec = self.spec.training.scale, self.spec
        with np.errstate(all="ignore"):
            if trace.delta[self.L].ndim == 1:  # one example: an outer product
                gW = {l: s * np.outer(trace.delta[l], trace.a[l - 1]) for l in range(1, self.L + 1)}
                gb = {l: s * trace.delta[l] for l in range(1, self.L + 1)}
            else:
                gW = {l: s * (trace.delta[l].T @ trace.a[l - 1]) for l in range(1, self.L + 1)}
                gb = {l: s * np.sum(trace.delta[l], axis=0) for l in range(1, self.L + 1)}
            gW = {l: g + regularizer_gradient(spec, W[l], "W") for l, g in gW.items()}
            gb = {l: g + regularizer_gradient(spec, b[l], "b") for l, g in gb.items()} if spec.bias else {}
        return gW, gb

    def gradients(self, values) -> dict[Param, float]:
        """dL/dp for every parameter at `values`, keyed by `Param`."""
        return self.loss_and_gradients(values)[1]

    def loss_and_gradients(self, values) -> tuple[float, dict[Param, float]]:
        """The loss and every dL/dp from one forward and backward pass."""
        trace, gW, gb = self.run(values)
        return trace.loss, self.by_parameter(gW, gb)

    def by_parameter(self, gW, gb) -> dict[Param, float]:
        """`run`'s per-layer gradient arrays as {Param: dL/dp}."""
        return {p: float(gW[p.layer][p.j - 1, p.k - 1] if p.kind == "W" else gb[p.layer][p.j - 1])
                for p in self.model.params()}


def _compose(expr: sympy.Expr, row) -> sympy.Expr:
    """`expr` with the output symbol a written as f(z) (in X), so stable.stabilize can
    rewrite a(1-a) as sigma(z) sigma(-z); unchanged where that would be unsafe
    (piecewise f: 1/f has a zoo branch) or where the row has no a-identity."""
    if row.in_terms_of_a is None or row.definition.has(sympy.Piecewise):
        return expr
    composed = expr.xreplace({A: row.definition})
    if composed.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return expr
    return composed


def _local_derivative(row) -> sympy.Expr:
    """f' of an elementwise row: its identity in a (with a = f(z)), else sympy.diff in z."""
    if row.in_terms_of_a is not None:
        return _compose(row.in_terms_of_a(A), row)
    return row.derivative()


def _first_bad(arr: np.ndarray) -> int | None:
    bad = np.flatnonzero(~np.isfinite(arr))
    return int(bad[0]) if bad.size else None


def _what(v: float, reason: str = "") -> str:
    """'infinite' for ln 0, 'beyond float64' for an overflow, 'undefined (nan)' otherwise."""
    if np.isnan(v):
        return "undefined (nan)"
    return "infinite" if reason else "beyond float64 (overflow)"


def batch_diagnose(ev: Evaluator, trace: Trace, y) -> str | None:
    """`diagnose`, example by example for a minibatch (naming the example)."""
    if trace.z[1].ndim == 1:
        return diagnose(ev, trace, y)
    for n in range(trace.z[1].shape[0]):
        problem = diagnose(ev, trace.example(n), y[n])
        if problem:
            return f"example {n + 1}: {problem}"
    return None


def diagnose(ev: Evaluator, trace: Trace, y) -> str | None:
    """Why a forward/backward pass is not finite, in one line; None if it is."""
    for l in range(1, ev.L + 1):
        if (j := _first_bad(trace.z[l])) is not None:
            return (f"z{l}[{j + 1}] = W{l} a{l - 1} + b{l} is {_what(trace.z[l][j])} "
                    f"at these values; scale the weights or inputs down")
        if (j := _first_bad(trace.a[l])) is not None:
            row = ev.spec.activations[l - 1]
            return (f"a{l}[{j + 1}], activation {row.name!r} at z{l}[{j + 1}] = "
                    f"{trace.z[l][j]:.6g}, is {_what(trace.a[l][j])}")
    reason = _loss_reason(ev, trace, y)
    if not np.isfinite(trace.loss):
        return f"the loss is {_what(trace.loss, reason)} at these values{reason}"
    for l in range(ev.L, 0, -1):
        if (j := _first_bad(trace.delta[l])) is not None:
            return (f"delta{l}[{j + 1}] = dL/dz{l}[{j + 1}] is {_what(trace.delta[l][j], reason)} "
                    f"at these values, and so are the gradients of layer {l} and below{reason}")
    return None


def _loss_reason(ev: Evaluator, trace: Trace, y) -> str:
    """'; bce takes ln(1 - a) and output a2[1] = 1 ...' when an output leaves the loss's domain."""
    name, a, L = ev.spec.loss.name, trace.a[ev.L], ev.L
    for j, aj in enumerate(a, start=1):
        if (name == "bce" and not 0 < aj < 1) or (name == "cross_entropy" and aj <= 0):
            where = "ln(1 - a)" if aj >= 1 else "ln(a)"
            kind = "ln 0" if aj in (0, 1) else "the ln of a negative number"
            need = ("every output strictly between 0 and 1 (a sigmoid output layer keeps it there)"
                    if name == "bce" else "positive outputs (softmax or sigmoid keeps them there)")
            return f": {name} takes {where} and output a{L}[{j}] = {aj:.6g}, where it is {kind}; {name} needs {need}"
    return ""


def evaluate_expr(expr: sympy.Expr, model, trace: Trace, values) -> float:
    """A derived expression (over x, y, W, b, z, a, delta symbols) at a traced point."""
    from ..calculus.model import NetSymbol

    subs = {}
    for s in expr.free_symbols:
        if not isinstance(s, NetSymbol):
            continue
        kind, l, idx = s.kind, s.layer, s.idx
        if kind == "x":
            subs[s] = values.x[idx[0] - 1]
        elif kind == "y":
            subs[s] = values.y[idx[0] - 1]
        elif kind == "W":
            subs[s] = values.W[l][idx[0] - 1][idx[1] - 1]
        elif kind == "b":
            subs[s] = values.b[l][idx[0] - 1]
        else:
            arr = {"z": trace.z, "a": trace.a, "delta": trace.delta}[kind][l]
            subs[s] = float(arr[idx[0] - 1])
    return float(expr.xreplace({k: sympy.Float(v, 30) for k, v in subs.items()}).evalf(30))
