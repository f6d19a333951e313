r"""The activation and loss rows of the registry, printed for a general neuron.

A row's formulas are written in its own symbols (x for z, a, y: registry.X,
A, Y).  `general` prints such a formula for "neuron j of layer l" by
swapping those symbols for printed names, so the document's tables, its
delta recursion and `derive which` print a row the same way.  Derivatives
are printed as the derivation uses them: in terms of the layer's output a
where the row has an identity (sigma' = a(1-a)), else as `sympy.diff` gives
them.  The loss derivative is `factor_terms` of the diff, which keeps the
textbook shape (-y/a + (1-y)/(1-a)) that `cancel` would merge away.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy

from .formulas import Style
from ..spec.registry import A, X, Y, Activation

if TYPE_CHECKING:
    from ..api import Network


def general(style: Style, expr: sympy.Expr, names: dict, **extra) -> str:
    """Print a registry formula with its symbols (A, Y, X) shown as `names`."""
    plain = {s: sympy.Symbol(f"_{i}_{s.name}", real=True) for i, s in enumerate(names)}
    return style.latex(expr.xreplace(plain), symbol_names={plain[s]: t for s, t in names.items()},
                       **extra)

def parens(tex: str, expr: sympy.Expr) -> str:
    return rf"\left({tex}\right)" if isinstance(expr, sympy.Add) else tex

def definition(style: Style, row: Activation) -> str:
    r"""\sigma(z) = \frac{1}{1 + e^{-z}}: the row's definition."""
    if row.vector:
        return rf"{row.latex}(\boldsymbol{{z}})_{{j}} = \frac{{e^{{z_{{j}}}}}}{{\sum_{{m}} e^{{z_{{m}}}}}}"
    expr = row.definition
    if isinstance(expr, sympy.Function):  # tanh(z) = tanh(z) says nothing: write it out
        expr = expr.rewrite(sympy.exp)
    return rf"{row.latex}(z) = " + general(style, expr, {X: "z"})

def activation_derivative(style: Style, row: Activation, layer, idx: str = "j",
                          vector: bool = False) -> str:
    """f'(z) of neuron `idx` of `layer` (or of the whole layer if `vector`), as the
    derivation uses it: in terms of the layer's output where the row has an identity."""
    if vector:
        a, z = rf"\boldsymbol{{a}}^{{({layer})}}", rf"\boldsymbol{{z}}^{{({layer})}}"
    else:
        a, z = style.sym("a", layer, idx), style.sym("z", layer, idx)
    if row.in_terms_of_a is not None:
        return general(style, row.in_terms_of_a(A), {A: a}, **({"mul_symbol": r" \odot "} if vector else {}))
    if vector:
        return rf"{row.latex}'\left({z}\right)"
    return general(style, row.derivative(), {X: z})

def loss_derivative_expr(net: Network) -> sympy.Expr:
    """dL/da of one output's loss term, in the registry symbols a, y, tidied."""
    n_out = net.spec.layers[-1]
    return sympy.factor_terms(sympy.diff(net.spec.loss.per_output(A, Y, n_out), A))

def loss_derivative(style: Style, net: Network, idx: str = "j", vector: bool = False) -> str:
    L = net.spec.depth
    if vector:
        names = {A: rf"\boldsymbol{{a}}^{{({L})}}", Y: r"\boldsymbol{y}"}
    else:
        names = {A: style.sym("a", L, idx), Y: style.sym("y", None, idx)}
    return general(style, loss_derivative_expr(net), names)

def output_names(style: Style, L: int) -> dict:
    return {A: style.sym("a", L, "j"), Y: style.sym("y", None, "j"), X: style.sym("z", L, "j")}

def output_delta_general(net: Network) -> sympy.Expr:
    """Simplifier.output_delta(1) with neuron 1's symbols turned back into the row's a, y, z."""
    m, L = net.model, net.spec.depth
    return net.simplifier.output_delta(1).xreplace({m.a(L, 1): A, m.y(1): Y, m.z(L, 1): X})

def fprime(row: Activation) -> sympy.Expr:
    return row.in_terms_of_a(A) if row.in_terms_of_a is not None else row.derivative()

def vparens(tex: str, expr: sympy.Expr) -> str:
    """A vector factor next to an odot: bracketed if it is a sum."""
    return rf"\bigl({tex}\bigr)" if isinstance(expr, sympy.Add) else tex

