"""Stage 3d: numbers from the derivation, layer by layer.

The delta equations of backprop.py are evaluated as one vectorised step per
layer: delta(L) from the output term, delta(l) = W(l+1)^T delta(l+1) * f_l'
and dL/dW(l) = delta(l) a(l-1)^T.  Every local derivative is the compiled
SymPy expression of the derivation, in the simplified form of simplify.py
(a(1-a) rather than e^-z/(1+e^-z)^2; a - y at the output where it cancels):
the same value, proven by the tests, and it stays finite for z = +-1000
where the raw form gives inf/inf.  Cost is one matrix product per layer, so
a 32-layer width-16 network takes microseconds, not a symbolic expansion.

The forward pass and the loss come from the registry definitions alone;
verify.py differentiates those numerically as the independent reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy

from .model import Param
from .numeric import as_arrays, compile_expr
from .registry import A, X, Y
from .simplify import Simplifier


@dataclass
class Trace:
    """A forward and backward pass at one point: per-layer arrays (index l)."""

    z: dict[int, np.ndarray]
    a: dict[int, np.ndarray]
    loss: float
    delta: dict[int, np.ndarray] | None = None

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
    def _forward(self):
        return [None] + [softmax if row.vector else compile_expr(row.definition, (X,))
                         for row in self.spec.activations]

    @cached_property
    def _derivative(self):
        """Per hidden/elementwise layer: (f' callable, takes 'a' or 'z')."""
        out = [None]
        for row in self.spec.activations:
            if row.vector:
                out.append(None)
            elif row.in_terms_of_a is not None:
                out.append((compile_expr(row.in_terms_of_a(A), (A,)), "a"))
            else:
                out.append((compile_expr(row.derivative(), (X,)), "z"))
        return out

    @cached_property
    def _loss_term(self):
        return compile_expr(self.spec.loss.per_output(A, Y, self.n[self.L]), (A, Y))

    @cached_property
    def _loss_term_derivative(self):
        return compile_expr(self.simplifier.derivation._loss_term_derivative, (A, Y))

    @cached_property
    def _output_term(self):
        return compile_expr(self.simplifier._output_term, (A, Y))

    def _softmax_ce(self) -> bool:
        return self.spec.activations[-1].vector and self.spec.loss.name == "cross_entropy"

    # -- passes ---------------------------------------------------------------
    def forward(self, x, W, b) -> Trace:
        """z(l), a(l) for l = 1..L and the loss is filled by `loss_at`."""
        z, a = {}, {0: x}
        for l in range(1, self.L + 1):
            z[l] = a[l - 1] @ W[l].T + b[l]
            a[l] = self._forward[l](z[l])
        return Trace(z, a, float("nan"))

    def loss_at(self, trace: Trace, y) -> np.ndarray:
        """The loss (per example if batched); log-sum-exp for softmax + cross_entropy."""
        out = trace.a[self.L]
        if self._softmax_ce():
            return -np.sum(y * log_softmax(trace.z[self.L]), axis=-1)
        with np.errstate(all="ignore"):
            return np.sum(self._loss_term(out, y), axis=-1)

    def _local(self, l: int, trace: Trace) -> np.ndarray:
        fn, arg = self._derivative[l]
        return fn(trace.a[l] if arg == "a" else trace.z[l])

    def _output_delta(self, trace: Trace, y) -> np.ndarray:
        a = trace.a[self.L]
        row = self.spec.activations[-1]
        if row.vector:
            if self._softmax_ce():
                return a - y
            g = self._loss_term_derivative(a, y)
            return a * (g - np.sum(a * g, axis=-1, keepdims=True))
        term = self._output_term(a, y)
        return term * self._local(self.L, trace) if row.in_terms_of_a is None else term

    def backward(self, trace: Trace, y, W) -> Trace:
        delta = {self.L: self._output_delta(trace, y)}
        with np.errstate(all="ignore"):
            for l in range(self.L - 1, 0, -1):
                delta[l] = (delta[l + 1] @ W[l + 1]) * self._local(l, trace)
        trace.delta = delta
        return trace

    def run(self, values) -> tuple[Trace, dict[int, np.ndarray], dict[int, np.ndarray]]:
        """Forward, loss and backward at a `Values` point: (trace, dL/dW, dL/db)."""
        x, y, W, b = as_arrays(values, self.n, self.spec.bias)
        trace = self.forward(x, W, b)
        trace.loss = float(self.loss_at(trace, y))
        self.backward(trace, y, W)
        gW = {l: np.outer(trace.delta[l], trace.a[l - 1]) for l in range(1, self.L + 1)}
        gb = {l: trace.delta[l] for l in range(1, self.L + 1)} if self.spec.bias else {}
        return trace, gW, gb

    def gradients(self, values) -> dict[Param, float]:
        """dL/dp for every parameter at `values`, keyed by `Param`."""
        _, gW, gb = self.run(values)
        return {p: float(gW[p.layer][p.j - 1, p.k - 1] if p.kind == "W" else gb[p.layer][p.j - 1])
                for p in self.model.params()}


def evaluate_expr(expr: sympy.Expr, model, trace: Trace, values) -> float:
    """A derived expression (over x, y, W, b, z, a, delta symbols) at a traced point."""
    from .model import NetSymbol

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
