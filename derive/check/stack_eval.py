"""Numbers of a [[layer]] network: the forward pass, the loss, backprop through the table.

`StackEvaluator.run(values)` is one forward pass layer by layer (each kind's
row of layer_ops.py, then the layer's activation; a residual adds the output
of its `from` layer), the loss s sum_n loss_n, and one backward pass: the
output's delta (a - y for softmax with cross-entropy, the loss derivative
times the activation's otherwise), then each layer's local rule in reverse,
a residual handing its gradient to its `from` layer as well.  Activation
derivatives are compiled from `sympy.diff` of the registry definitions.

`reference(values)` is the independent number: complex-step differentiation
of the forward pass alone (dL/dp = Im L(p + ih) / h, h = 1e-30), one
parameter entry at a time; no backward rule takes part.  For large arrays,
`directional(values, name, v)` gives Im L(P + ih v) / h = sum_i dL/dP_i v_i
along a random direction v: one forward pass per direction instead of one
per entry, so checking a LeNet costs a few dozen passes, not thousands, and a
wrong entry still shows (its error times v_i is almost surely not cancelled).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..spec.registry import A, X, Y
from .evaluate import log_softmax, softmax, softmax_backward
from .layer_ops import layer_ops
from .numeric import compile_expr

STEP = 1e-30


@dataclass
class StackTrace:
    """One forward and backward pass: the loss, every array's gradient, each layer's z, a
    and delta (dL/dz), and a recurrent layer's per-step dh, dz (rnn) or dh, dc, d<gate> (lstm)."""

    loss: float
    grads: dict
    z: dict
    a: dict
    delta: dict
    inner: dict
    caches: dict = field(default_factory=dict)
    g: dict = field(default_factory=dict)
    identity: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def step_norms(self, layer: int) -> np.ndarray:
        """||dL/dh_t|| per step t of a recurrent layer (over the batch and the units): where
        gradients vanish or explode through time."""
        dh = self.inner[layer]["dh"]
        return np.sqrt(np.sum(np.abs(dh) ** 2, axis=(0, 2)))


class StackEvaluator:
    """Compiled forward and backward passes of one `StackSpec`."""

    def __init__(self, spec):
        self.spec = spec
        self.ops = layer_ops(lambda layer: self._functions[layer.number - 1])

    def __repr__(self) -> str:
        return f"StackEvaluator({self.spec.describe()})"

    @cached_property
    def _functions(self):
        """Per layer: (f, f') of its activation, compiled (softmax: None, handled at the loss)."""
        out = []
        for layer in self.spec.layers:
            row = layer.activation
            out.append(None if row.vector else (compile_expr(row.definition, (X,)),
                                                compile_expr(row.derivative(), (X,))))
        return out

    @cached_property
    def _loss_terms(self):
        import sympy

        n = self.spec.output_size
        term = self.spec.loss.per_output(A, Y, n)
        return compile_expr(term, (A, Y)), compile_expr(sympy.diff(term, A), (A, Y))

    # -- forward ----------------------------------------------------------------
    def forward(self, x, params, masks):
        """Every layer's pre-activation z, output a and cache; a[0] is x."""
        a, z, caches = {0: x}, {}, {}
        for layer in self.spec.layers:
            n = layer.number
            P = {letter: params[layer.kind.array_name(letter, n)] for letter in layer.params}
            out, caches[n] = self.ops[layer.kind.name][0](layer, a[n - 1], P, masks.get(n))
            if layer.kind.name == "residual":
                out = out + a[layer.cfg["from"]]
            z[n] = out
            fns = self._functions[n - 1]
            if layer.kind.recurrent:  # its activation is the recurrence's f, applied inside
                a[n] = out
            else:
                a[n] = softmax(out) if fns is None else fns[0](out)
        return z, a, caches

    def losses(self, z_last, a_last, y) -> np.ndarray:
        """Each example's loss (log-sum-exp for softmax with cross-entropy); a sequence's is
        its last step's ("last") or the sum over its steps ("all")."""
        if self.spec.steps is not None and self.spec.sequence_loss == "last":
            z_last, a_last = z_last[:, -1], a_last[:, -1]
        if self.spec.softmax_cross_entropy:
            per = -np.sum(y * log_softmax(z_last), axis=-1)
        else:
            per = np.sum(self._loss_terms[0](a_last, y), axis=-1)
        return per.sum(axis=-1) if per.ndim > 1 else per

    def loss_at(self, values, params=None) -> complex | float:
        params = values.params if params is None else params
        z, a, _ = self.forward(values.x, params, values.masks)
        L = self.spec.depth
        return self.spec.scale * np.sum(self.losses(z[L], a[L], values.y))

    # -- backward ---------------------------------------------------------------
    def _output_delta(self, z, a, y) -> np.ndarray:
        """dL/dz of the last layer (before the scale s); a "last" sequence's at its last step alone."""
        L = self.spec.depth
        if self.spec.steps is not None and self.spec.sequence_loss == "last":
            delta = np.zeros(z[L].shape, dtype=np.result_type(z[L], y))
            delta[:, -1] = self._step_delta({L: z[L][:, -1]}, {L: a[L][:, -1]}, y)
            return delta
        return self._step_delta(z, a, y)

    def _step_delta(self, z, a, y) -> np.ndarray:
        L, last = self.spec.depth, self.spec.layers[-1]
        if last.activation.vector:
            if self.spec.softmax_cross_entropy:
                return a[L] - y
            return softmax_backward(a[L], self._loss_terms[1](a[L], y))
        return self._loss_terms[1](a[L], y) * self._functions[L - 1][1](z[L])

    def run(self, values):
        """(loss, {array name: dL/darray}) at a `StackValues` point."""
        t = self.trace(values)
        return t.loss, t.grads

    def trace(self, values) -> "StackTrace":
        """The whole pass, kept for documents, `which` and claims: the loss, the gradients and per
        layer n z[n], a[n], caches[n], delta[n] = dL/dz(n) (for an rnn or lstm dL/dh from above),
        g[n] = dL/da(n) (g[0] for the input), identity[f] = what residual layers with from = f
        added to g[f], and a recurrent layer's per-step BPTT quantities in inner[n]."""
        z, a, caches = self.forward(values.x, values.params, values.masks)
        L, s = self.spec.depth, self.spec.scale
        loss = float(s * np.sum(self.losses(z[L], a[L], values.y)))
        grads, pending, delta, g, identity, inner = {}, {}, {}, {}, {}, {}
        g_z = s * self._output_delta(z, a, values.y)
        for layer in reversed(self.spec.layers):
            n = layer.number
            if n != L:
                g_z = g[n] if layer.kind.recurrent else g[n] * self._functions[n - 1][1](z[n])
            delta[n] = g_z
            if layer.kind.name == "residual":
                source = layer.cfg["from"]
                pending[source] = pending.get(source, 0) + g_z
                identity[source] = pending[source]
            P = {letter: values.params[layer.kind.array_name(letter, n)] for letter in layer.params}
            g_in, local = self.ops[layer.kind.name][1](layer, g_z, caches[n], P)
            inner[n] = {k[1:]: local.pop(k) for k in [k for k in local if k.startswith("_")]}
            grads.update({layer.kind.array_name(letter, n): v for letter, v in local.items()})
            if g_in is not None:
                g[n - 1] = g_in + pending.pop(n - 1, 0)
        grads = {name: grads[name] for name, _ in self.spec.parameter_arrays()}
        return StackTrace(loss, grads, z, a, delta, inner, caches, g, identity, values.params)

    # -- the reference ------------------------------------------------------------
    def reference(self, values, names=None) -> dict[str, np.ndarray]:
        """Complex-step dL/dp of every parameter entry (of the arrays `names`, default all),
        from the forward pass alone."""
        out = {}
        for name, shape in self.spec.parameter_arrays():
            if names is not None and name not in names:
                continue
            grad = np.empty(shape)
            for idx in np.ndindex(*shape):
                bumped = values.params[name].astype(complex)
                bumped[idx] += 1j * STEP
                grad[idx] = np.imag(self.loss_at(values, {**values.params, name: bumped})) / STEP
            out[name] = grad
        return out

    def directional(self, values, name: str, direction: np.ndarray) -> float:
        """Complex-step derivative of the loss along `direction` in array `name`."""
        bumped = values.params[name] + 1j * STEP * direction
        return float(np.imag(self.loss_at(values, {**values.params, name: bumped})) / STEP)
