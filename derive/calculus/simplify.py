"""Stage 3b: the simplified form used for display, by rules from the tables.

No general-purpose `sympy.simplify` runs here: on a closed-form gradient it
can take minutes (FACTS.md).  Instead, local derivatives are rewritten with
the registry's identities in terms of the layer's output a (sigma' = a(1-a),
tanh' = 1-a^2), and the output delta dL/da * f'(z) is cancelled once, on the
row symbols a and y, where that makes it shorter: sigmoid + bce and
identity + half_sse come out as a - y by `sympy.cancel` itself.  Softmax with
cross-entropy gives a_j sum_i y_i - y_j, which is a_j - y_j because the
targets of a cross-entropy are a distribution (spec.py enforces sum y = 1).
The tests evaluate every simplified form against the factored one.

`shorter` runs cancel/factor under a time budget (`SIMPLIFY_SECONDS`): a
custom loss or activation can make them slow, and then the unsimplified
form, of the same value, is shown instead of waiting.
"""

from __future__ import annotations

from functools import cached_property, lru_cache

import sympy

from .backprop import Derivation, softmax_jacobian
from ..spec.expressions import OutOfTime, time_budget
from .model import Param
from ..spec.registry import A, Y

#: Output layers whose delta the simplifier writes as a - y, and why.
CANCELLATIONS = {
    ("sigmoid", "bce"): r"\sigma'(z) = a(1-a) cancels the denominators of the loss derivative",
    ("identity", "half_sse"): r"f'(z) = 1 and the \tfrac12 cancels the exponent 2",
    ("softmax", "cross_entropy"): r"the softmax Jacobian against -y_i/a_i gives a_j\sum_i y_i - y_j, and \sum_i y_i = 1",
}


#: Seconds `shorter` may spend on one expression before keeping it as it is.
SIMPLIFY_SECONDS = 2.0


@lru_cache(maxsize=64)
def shorter(expr: sympy.Expr) -> sympy.Expr:
    """factor(cancel(expr)) where that is shorter and done within the budget, else expr."""
    try:
        with time_budget(SIMPLIFY_SECONDS):
            candidate = sympy.factor(sympy.cancel(expr))
    except OutOfTime:
        return expr
    return candidate if sympy.count_ops(candidate) < sympy.count_ops(expr) else expr


class Simplifier:
    """The display form of a `Derivation`: same values, shorter formulas."""

    def __init__(self, derivation: Derivation):
        self.derivation = derivation
        self.model = derivation.model
        self.L = derivation.L

    def __repr__(self) -> str:
        return f"Simplifier({self.model.spec.describe()})"

    def cancellation(self) -> str | None:
        """Why delta(L) = a - y for this network, or None."""
        spec = self.model.spec
        return CANCELLATIONS.get((spec.activations[-1].name, spec.loss.name))

    def activation_derivative(self, l: int, i: int, m: int) -> sympy.Expr:
        """f_l' written in a(l) where the table has an identity, else as derived."""
        row = self.model.spec.activations[l - 1]
        if row.in_terms_of_a is not None and not row.vector:
            return row.in_terms_of_a(self.model.a(l, m)) if i == m else sympy.Integer(0)
        return self.derivation.activation_derivative(l, i, m)

    @cached_property
    def _output_term(self) -> sympy.Expr:
        """dL/da * f'(z) for one elementwise output, in the row symbols a, y."""
        spec = self.model.spec
        row = spec.activations[-1]
        d_loss = self.derivation._loss_term_derivative
        if row.in_terms_of_a is None:
            return d_loss  # multiplied by f'(z) per neuron in output_delta
        return shorter(d_loss * row.in_terms_of_a(A))

    def output_delta(self, j: int) -> sympy.Expr:
        m, L = self.model, self.L
        row, loss = m.spec.activations[-1], m.spec.loss
        a, y = m.a(L, j), m.y(j)
        if row.vector:
            if loss.name == "cross_entropy":
                return a - y
            return sympy.Add(*[self.derivation.loss_derivative(i) *
                               softmax_jacobian(m.a(L, i), a, i == j)
                               for i in range(1, m.n[L] + 1)])
        term = self._output_term.xreplace({A: a, Y: y})
        if row.in_terms_of_a is None:
            term = term * self.derivation.activation_derivative(L, j, j)
        return term

    def delta_definition(self, l: int, j: int) -> sympy.Expr:
        if l == self.L:
            return self.output_delta(j)
        m = self.model
        back = sympy.Add(*[m.W(l + 1, i, j) * m.delta(l + 1, i) for i in range(1, m.n[l + 1] + 1)])
        return back * self.activation_derivative(l, j, j)

    def simplified(self, p: Param) -> sympy.Expr:
        """dL/dp for display: the expanded factored form with the rules above."""
        return self.derivation.expanded(p, self.delta_definition)
