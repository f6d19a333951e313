"""Stage 3: the factored (backprop) derivation.

The derivation is a system of small equations over the model's symbols, not
one big expression:

    delta(L)_m = sum_i dL/da(L)_i * da(L)_i/dz(L)_m
    delta(l)_j = (sum_i W(l+1)_ij delta(l+1)_i) * f_l'(z(l)_j)
    dL/dW(l)_jk = delta(l)_j a(l-1)_k,   dL/db(l)_j = delta(l)_j

Each local derivative comes from `sympy.diff` of a registry definition, once
per activation or loss row (not once per neuron), and is instantiated per
neuron by `xreplace`.  Every equation is built on demand, so cost grows
linearly with the number of parameters asked for.  Softmax's Jacobian is
used in its outputs' form a_i (delta_im - a_m) (like sigma' = a(1-a), an
identity from the table), which `tests/test_backprop.py` checks against
`sympy.diff` of exp(z_i)/sum_m exp(z_m).

`expanded(p)` substitutes the delta equations into one another while the
written-out result stays under a size budget: for small networks that is a
formula in z, a, W and y alone; deeper, the deltas of later layers remain as
symbols (with their own equations), instead of a tree exponential in depth.
"""

from __future__ import annotations

from functools import cached_property

import sympy

from .model import Param, SymbolicModel
from ..spec.registry import A, X, Y

#: Largest written-out expression (tree nodes) `expanded` produces.
EXPAND_BUDGET = 600


class Derivation:
    """The factored gradient of the loss for every parameter of a model."""

    def __init__(self, model: SymbolicModel):
        self.model = model
        self.L = model.L
        self.n = model.n
        # f_l'(x) per layer: a dict on the instance, not lru_cache on the method,
        # whose class-level cache would keep every Derivation alive
        self._derivative_rows: dict[int, sympy.Expr] = {}

    def __repr__(self) -> str:
        return f"Derivation({self.model.spec.describe()})"

    # -- local derivatives (SymPy calculus, once per row) ------------------
    @cached_property
    def loss_term_derivative(self) -> sympy.Expr:
        """d/da of one output's loss term, in the registry symbols a, y."""
        return sympy.diff(self.model.spec.loss.per_output(A, Y, self.n[self.L]), A)

    def activation_derivative_row(self, l: int) -> sympy.Expr:
        """f_l'(x) in the registry symbol x, derived once per layer."""
        if l not in self._derivative_rows:
            self._derivative_rows[l] = self.model.spec.activations[l - 1].derivative()
        return self._derivative_rows[l]

    def loss_derivative(self, j: int) -> sympy.Expr:
        """dL/da(L)_j (each loss term depends on its own output only)."""
        m = self.model
        return self.loss_term_derivative.xreplace({A: m.a(self.L, j), Y: m.y(j)})

    def activation_derivative(self, l: int, i: int, m: int) -> sympy.Expr:
        """da(l)_i/dz(l)_m: in z for elementwise layers (zero off the
        diagonal), in a for softmax (its full Jacobian)."""
        model = self.model
        if model.spec.activations[l - 1].vector:
            return softmax_jacobian(model.a(l, i), model.a(l, m), i == m)
        if i != m:
            return sympy.Integer(0)
        return self.activation_derivative_row(l).xreplace({X: model.z(l, m)})

    # -- the delta equations ------------------------------------------------
    def delta_definition(self, l: int, j: int) -> sympy.Expr:
        """delta(l)_j = dL/dz(l)_j, over the symbols of layer l and delta(l+1)."""
        m = self.model
        if l == self.L:
            if m.spec.activations[l - 1].vector:
                return sympy.Add(*[self.loss_derivative(i) * self.activation_derivative(l, i, j)
                                   for i in range(1, self.n[l] + 1)])
            return self.loss_derivative(j) * self.activation_derivative(l, j, j)
        back = sympy.Add(*[m.W(l + 1, i, j) * m.delta(l + 1, i) for i in range(1, self.n[l + 1] + 1)])
        return back * self.activation_derivative(l, j, j)

    def factored(self, p: Param) -> sympy.Expr:
        """dL/dp as delta(l)_j a(l-1)_k (or delta(l)_j for a bias)."""
        d = self.model.delta(p.layer, p.j)
        return d * self.model.a(p.layer - 1, p.k) if p.kind == "W" else d

    def expanded(self, p: Param, definition=None) -> sympy.Expr:
        """dL/dp with delta equations substituted as far as `EXPAND_BUDGET` allows.

        `definition(l, j)` gives the delta equation to substitute (the
        factored one by default; simplify.py passes the simplified one).
        """
        definition = definition or self.delta_definition
        stop = self.expansion_stop(p.layer)
        delta = self._expand_delta(p.layer, p.j, stop, definition)
        return delta * self.model.a(p.layer - 1, p.k) if p.kind == "W" else delta

    def expansion_stop(self, layer: int) -> int:
        """The deepest layer whose deltas get substituted, starting from `layer`.

        delta(l)'s own equation has about 4 n_(l+1) + 6 nodes; substituting
        the deltas of layer l+1 puts one copy of their equation in for each of
        the n_(l+1) symbols, the next layer's n_(l+1) n_(l+2), and so on.
        Substitution stops before the written-out size passes the budget.
        """
        size, copies, stop = self._equation_size(layer), 1, layer
        for l in range(layer + 1, self.L + 1):
            copies *= self.n[l]
            size += copies * self._equation_size(l)
            if size > EXPAND_BUDGET:
                break
            stop = l
        return stop

    def _equation_size(self, l: int) -> int:
        """Rough node count of delta(l)'s equation with later deltas as symbols."""
        return 4 * self.n[l] + 6 if l == self.L else 4 * self.n[l + 1] + 6

    def _expand_delta(self, l: int, j: int, stop: int, definition) -> sympy.Expr:
        expr = definition(l, j)
        if l >= stop:
            return expr
        m = self.model
        subs = {m.delta(l + 1, i): self._expand_delta(l + 1, i, stop, definition)
                for i in range(1, self.n[l + 1] + 1)}
        return expr.xreplace(subs)

    def equations(self, layer: int):
        """The delta equations still referenced by `expanded` for a layer-`layer` parameter."""
        stop = self.expansion_stop(layer)
        return [(self.model.delta(l, j), l) for l in range(stop + 1, self.L + 1)
                for j in range(1, self.n[l] + 1)]


def softmax_jacobian(a_i: sympy.Expr, a_m: sympy.Expr, same: bool) -> sympy.Expr:
    """da_i/dz_m of softmax, written in its outputs: a_i (delta_im - a_m)."""
    return a_i * (1 - a_i) if same else -a_i * a_m
