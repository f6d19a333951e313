r"""The one chain-rule printer: `derive which` and the documents print through it.

Both say the same things about a parameter (one path's factors as partials
and as local derivatives, the sum over paths, the delta form, the delta
recursion), so both take them from here, printed by one `formulas.Style`
(notation, loss symbol, target).  The same factor is then the same string
in a `which` answer and in `derive explain` (tests/test_which.py compares
them for every activation and loss, in both notations).

A factor is printed as the derivation gives it, with two display rules:
the loss factor is `factor_terms` of its derivative, which keeps the
textbook shape (1-y)/(1-a) - y/a; and a factor that is a sum or negative is
parenthesised, so a product never reads "+ -y/a".  A path longer than
`MAX_PATH_FACTORS` is elided around a \cdots, and a \sum over paths shows at
most `SHOWN_LAYERS` later layers.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import sympy

from .content import recursion_section
from .formulas import Style, chunks
from ..calculus.model import Param
from ..calculus.paths import Factor, Path
from .printing import factor_partial_latex, partial_latex

if TYPE_CHECKING:
    from ..api import Network

#: Factors of one path written out before its middle is elided.
MAX_PATH_FACTORS = 14
#: Layers written out in a \sum-over-paths formula before the middle is elided.
SHOWN_LAYERS = 3
#: Factors of a path on one line (fewer once substituted: they are wider).
FACTORS_PER_LINE = 6
#: A gradient printed longer than this (LaTeX characters) is shown in its delta form.
MAX_RESULT_LATEX = 900
#: ... or wider than this (roughly, in characters; about a line of an A4 page).
MAX_RESULT_WIDTH = 64
#: A "where delta = ..." wider than this goes on its own line below its gradient.
MAX_WHERE_WIDTH = 34


# -- one factor, one path ------------------------------------------------------------
def factor_expr(f: Factor) -> sympy.Expr:
    """The expression a factor is printed as (its value is the factor's)."""
    return sympy.factor_terms(f.expr) if f.role == "loss" else f.simplified


def factor_latex(style: Style, f: Factor) -> str:
    """The local derivative, painted; in parentheses if it is a sum or negative."""
    expr = factor_expr(f)
    tex = style.latex(expr)
    if isinstance(expr, sympy.Add) or expr.could_extract_minus_sign():
        tex = rf"\left({tex}\right)"
    return style.paint(f.role, tex)


def factor_partial(style: Style, f: Factor) -> str:
    r"""The factor as a partial derivative (\frac{\partial a}{\partial z}), painted."""
    return style.paint(f.role, factor_partial_latex(f, **style.settings))


def _elide(factors: list[str]) -> list[str]:
    """A path through many layers: its first and last steps around a \\cdots."""
    if len(factors) <= MAX_PATH_FACTORS:
        return factors
    return factors[:5] + [r"\cdots"] + factors[-4:]


def path_lines(style: Style, path: Path) -> dict:
    """One path's product, as lines of an `aligned` block: partials, then substituted."""
    symbolic = _elide([factor_partial(style, f) for f in path])
    local = _elide([factor_latex(style, f) for f in path])
    return {"symbolic": [r"\,".join(c) for c in chunks(symbolic, FACTORS_PER_LINE)],
            "local": [r" \cdot ".join(c) for c in chunks(local, FACTORS_PER_LINE - 1)],
            "factors": len(path)}


# -- every path at once ---------------------------------------------------------------
def _later_layers(top_down: list[int]) -> list[int | None]:
    return top_down if len(top_down) <= SHOWN_LAYERS else [top_down[0], None, top_down[-1]]


def sum_over_paths(net: Network, p: Param, style: Style) -> str:
    r"""dL/dp's right-hand side: \sum over the neurons of the later layers of a path's product."""
    L, l0 = net.spec.depth, p.layer
    idx = {t: f"m_{{{t}}}" for t in range(l0 + 1, L + 1)}
    idx[l0] = str(p.j)
    sums = " ".join(r"\cdots" if t is None else rf"\sum_{{{idx[t]}=1}}^{{{net.spec.layers[t]}}}"
                    for t in _later_layers(list(range(l0 + 1, L + 1))))
    act = lambda t: style.paint("activation", style.partial(  # noqa: E731
        style.sym("a", t, idx[t]), style.sym("z", t, idx[t])))
    factors = [style.paint("loss", style.d_loss(style.sym("a", L, idx[L]))), act(L)]
    for t in _later_layers(list(range(L, l0, -1))):
        if t is None:
            factors.append(r"\cdots")
            continue
        factors += [style.paint("weight", style.w(t, idx[t], idx[t - 1])), act(t - 1)]
    if p.kind == "W":
        factors.append(style.paint("input", style.a(l0 - 1, p.k)))
    if net.spec.softmax_output:  # the softmax Jacobian couples every output
        factors[0:2] = [rf"\sum_{{o=1}}^{{{net.spec.layers[L]}}} "
                        + style.paint("loss", style.d_loss(style.sym("a", L, "o"))),
                        style.paint("activation", style.partial(style.sym("a", L, "o"),
                                                                style.sym("z", L, idx[L])))]
    return f"{sums} " + r"\,".join(factors)


def delta_form(net: Network, p: Param, style: Style) -> dict:
    """dL/dp = delta(l)_j a(l-1)_k with delta(l)_j's own equation, one level deep."""
    m, l, j = net.model, p.layer, p.j
    delta = style.latex(m.delta(l, j))
    rhs = f"{delta}\\, {style.latex(m.a(l - 1, p.k))}" if p.kind == "W" else delta
    lhs = partial_latex(p, **style.settings)
    equation = f"{delta} = {style.latex(net.simplifier.delta_definition(l, j))}"
    # beside the gradient while it is short, else on a line of its own (an ELU layer's
    # two-branch derivative after a sum of three terms would run off the page)
    return {"lhs": lhs, "rhs": rhs, "equation": f"{lhs} = {rhs}", "delta": equation,
            "delta_break": visible_width(equation) > MAX_WHERE_WIDTH}


def result_latex(net: Network, p: Param, style: Style) -> dict:
    """The simplified gradient if it fits on a line, else the delta form."""
    if net.derivation.expansion_stop(p.layer) >= net.spec.depth:
        tex = style.latex(net.gradient(p).simplified)
        if len(tex) <= MAX_RESULT_LATEX and visible_width(tex) <= MAX_RESULT_WIDTH:
            lhs = partial_latex(p, **style.settings)
            return {"lhs": lhs, "rhs": tex, "equation": f"{lhs} = {tex}", "delta": None,
                    "delta_break": False}
    return delta_form(net, p, style)


def delta_lines(net: Network, style: Style) -> list[str]:
    """The document's delta recursion (content.recursion_section) as `aligned` rows."""
    rec = recursion_section(net, style)
    lines = [rf"{rec['output_lhs']} &= {rec['output_rhs']} = {rec['output_special']}"]
    for h in rec["hidden"]:
        where = rf"\qquad ({h['range']})" if h["several"] else ""
        lines.append(rf"{h['lhs']} &= {h['rhs']}{where}")
    w_lhs, w_rhs = rec["gradient_w"].split(" = ", 1)
    rule = rf"{w_lhs} &= {w_rhs}"
    if rec["gradient_b"]:
        rule += rf", \qquad {rec['gradient_b']}"
    return lines + [rule]


_SPACING = re.compile(r"\\(left|right|bigl|bigr|Bigl|Bigr)\b")


def visible_width(tex: str) -> float:
    """Roughly how many characters wide `tex` prints: scripts count 0.6, commands 1."""
    tex = _SPACING.sub("", tex)
    width, depth_script, i = 0.0, [], 0
    while i < len(tex):
        ch = tex[i]
        if ch == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", tex[i:])
            width += 0.6 if depth_script else 1.0
            i += len(m.group(0))
            continue
        if ch in "^_" and i + 1 < len(tex) and tex[i + 1] == "{":
            depth_script.append(0)
            i += 2
            continue
        if ch == "{" and depth_script:
            depth_script[-1] += 1
        elif ch == "}" and depth_script:
            if depth_script[-1] == 0:
                depth_script.pop()
            else:
                depth_script[-1] -= 1
        elif ch not in "{}" and not ch.isspace():
            width += 0.6 if depth_script else 1.0
        i += 1
    return width
