r"""Worked solutions for the answer key: each step written out with the variant's numbers.

For a gradient the key shows the chain rule path by path, every factor
painted in its role colour and then replaced by its value at this variant's
point, and the sum; a delta shows its recursion with numbers; z, a, L and
the update step show their formula with numbers.  Everything is printed here
(LaTeX through render's printer and `Style`), so the templates only arrange.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy

from ..calculus.paths import path_product
from ..check.evaluate import evaluate_expr
from ..render.formulas import Style
from .exercises import parameter_value

if TYPE_CHECKING:
    from ..api import Network
    from .exercises import Question, Variant


def number(v: float) -> str:
    """A number as a person writes it in a hand computation: 4 significant digits."""
    text = f"{v:.4g}" if v != 0 else "0"  # no "-0"
    if "e" in text:
        mantissa, exp = text.split("e")
        text = rf"{mantissa} \cdot 10^{{{int(exp)}}}"
    return text if not text.startswith("-") else "-" + text[1:]


def with_numbers(expr: sympy.Expr, at, style: Style) -> str:
    """`expr` printed with every network quantity replaced by its value at the point."""
    from ..calculus.model import NetSymbol

    # Plain symbols of the same names keep SymPy's term order and stop it from merging
    # two quantities that happen to have the same value; the printer shows the numbers.
    plain = {s: sympy.Symbol(s.name) for s in expr.free_symbols if isinstance(s, NetSymbol)}
    names = {plain[s]: _paren(number(at(s))) for s in plain}
    return style.latex(expr.xreplace(plain), mul_symbol="dot", symbol_names=names)


def _paren(text: str) -> str:
    return rf"\left({text}\right)" if text.startswith("-") else text


def solution(net: "Network", variant: "Variant", q: "Question", style: Style) -> list[str]:
    """LaTeX lines (each one equation) of the worked solution of `q`."""
    values, trace = net.values(variant.values), variant.work["trace"]
    at = lambda expr: evaluate_expr(expr, net.model, trace, values)  # noqa: E731
    if q.kind in ("gradient", "update", "factors", "formula"):
        lines = _chain(net, q.target, style, at)
        if q.kind == "update":
            g, w = variant.work["gradients"][q.target], parameter_value(net, variant.values, q.target)
            sym = style.latex(net.model.symbol(net.param(q.target)))
            lines.append(rf"{sym} - \eta\,\frac{{\partial {style.L}}}{{\partial {sym}}} = {number(w)} - "
                         rf"{number(values.learning_rate)} \cdot {_paren(number(g))} = {number(q.answer)}")
        return lines
    if q.kind == "loss":
        m = net.model
        return [rf"{style.L} = {style.latex(m.loss)} = {with_numbers(m.loss, at, style)} = {number(q.answer)}"]
    s = net.symbol(q.target)
    return _neuron(net, s.kind, s.layer, s.idx[0], style, at, q.answer)


def _neuron(net, kind: str, l: int, j: int, style: Style, at, answer: float) -> list[str]:
    m, d = net.model, net.simplifier
    if kind == "z":
        rhs = m.z_definition(l, j)
        return [rf"{style.latex(m.z(l, j))} = {style.latex(rhs)} = {with_numbers(rhs, at, style)} "
                rf"= {number(answer)}"]
    if kind == "a":
        row = net.spec.activations[l - 1]
        rhs = style.latex(m.activation_of(l, j)) if row.vector else rf"{row.latex}\left({style.latex(m.z(l, j))}\right)"
        return [rf"{style.latex(m.a(l, j))} = {rhs} = {row.latex}({number(at(m.z(l, j)))}) = {number(answer)}"
                if not row.vector else rf"{style.latex(m.a(l, j))} = {rhs} = {number(answer)}"]
    rhs = d.delta_definition(l, j)
    return [rf"{style.latex(m.delta(l, j))} = {style.latex(rhs)} = {with_numbers(rhs, at, style)} "
            rf"= {number(answer)}"]


def _chain(net, name: str, style: Style, at) -> list[str]:
    """dL/dparam = sum over paths of the painted factors, then their numbers, then the sum."""
    p = net.param(name)
    g = net.gradient(p)
    paths = list(g.paths)
    lhs = rf"\frac{{\partial {style.L}}}{{\partial {style.latex(net.model.symbol(p))}}}"
    symbolic = [r" \cdot ".join(style.paint(f.role, _factor_latex(style, f.simplified))
                                for f in path) for path in paths]
    numeric = [r" \cdot ".join(style.paint(f.role, _paren(number(at(f.simplified)))) for f in path)
               for path in paths]
    values = [at(path_product(path, simplified=True)) for path in paths]
    lines = [rf"{lhs} = " + " + ".join(symbolic), "= " + " + ".join(numeric)]
    if len(paths) > 1:
        lines.append("= " + " + ".join(_paren(number(v)) for v in values))
    lines.append(rf"= {number(sum(values))}")
    return lines


def _factor_latex(style: Style, expr: sympy.Expr) -> str:
    text = style.latex(expr)
    return rf"\left({text}\right)" if isinstance(expr, sympy.Add) else text
