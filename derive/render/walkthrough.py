r"""The chain rule step by step for chosen parameters, and the per-parameter results.

For a parameter with few paths to the loss (`MAX_LISTED_PATHS`), every path
of `paths.paths` is written twice, each factor in its role's colour: as
partial derivatives, then with the local derivatives substituted; then the
gradient as the derivation simplifies it.  With values, each path's product
is evaluated, so the reader sees the paths add up to the gradient.

With more paths (a 30-layer width-16 network has 16^29 for a first-layer
weight) the sum is written with \sum over the neurons each path passes,
eliding the middle layers, next to one example path and the delta form that
computes the same sum layer by layer.

`choose` parses --params ("W1[1,1],b2[*]", `*` = every index) and picks the
default representatives; `results` lists every parameter's gradient for
small networks and one weight and one bias per layer for large ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import re

import sympy

from .content import DELTA
from ..errors import SpecError
from ..check.evaluate import evaluate_expr
from .formulas import Style, chunks, format_number
from ..calculus.model import Param
from ..calculus.paths import count_paths, path_product, paths
from .printing import factor_partial_latex, partial_latex
from .worked import DIGITS

if TYPE_CHECKING:
    from ..api import Network

#: Parameters with at most this many paths get every path written out.
MAX_LISTED_PATHS = 8
#: Most parameters --params may pick for a step-by-step chain rule.
MAX_CHAINS = 24
#: Networks with at most this many parameters get every gradient in the results.
SMALL_PARAMETERS = 40
#: A gradient printed longer than this (LaTeX characters) is shown in its delta form.
MAX_RESULT_LATEX = 900
#: Factors of a path written on one line (fewer once substituted: they are wider).
FACTORS_PER_LINE = 6
#: ... or wider than this (roughly, in characters; about a line of an A4 page).
MAX_RESULT_WIDTH = 64
#: Factors of one path written out before its middle is elided.
MAX_PATH_FACTORS = 14
#: Layers written out in a \sum-over-paths formula before the middle is elided.
SHOWN_LAYERS = 3

_ITEM = re.compile(r"^\s*([Wb])\s*(\d+)\s*\[\s*(\*|\d+)\s*(?:,\s*(\*|\d+)\s*)?\]\s*$")


# -- which parameters ---------------------------------------------------------------
def default_params(net: Network) -> list[Param]:
    """W(l)[1,1] for every layer of a network up to 4 deep, from the output back;
    deeper, the last two layers and the first."""
    L = net.spec.depth
    layers = range(L, 0, -1) if L <= 4 else (L, L - 1, 1)
    return [Param(l, "W", 1, 1) for l in layers]


def _split(text: str) -> list[str]:
    """Split on commas outside brackets: 'W1[1,1],b2[*]' -> ['W1[1,1]', 'b2[*]']."""
    items, depth, current = [], 0, ""
    for ch in text:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    return items + [current]


def choose(net: Network, text: str | None) -> list[Param]:
    """The parameters a --params text names, in order, without repeats."""
    if text is None:
        return default_params(net)
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"--params {text!r} is empty; give names like 'W1[1,1],b2[*]'")
    chosen: list[Param] = []
    for item in _split(text):
        for p in _expand(net, item):
            if p not in chosen:
                chosen.append(p)
    if len(chosen) > MAX_CHAINS:
        raise SpecError(f"--params {text!r} selects {len(chosen)} parameters; at most {MAX_CHAINS} "
                        f"get a step-by-step chain rule (the results section lists the others)")
    return chosen


def _expand(net: Network, item: str) -> list[Param]:
    if "*" not in item:
        return [net.model.param(item.strip(), field="--params item")]
    m = _ITEM.match(item)
    if not m:
        raise SpecError(f"--params item {item.strip()!r} is not a parameter name like 'W1[1,2]', "
                        f"'W2[*]' or 'b1[*]'")
    kind, l, j, k = m.group(1), int(m.group(2)), m.group(3), m.group(4)
    n = net.spec.layers
    if not 1 <= l <= net.spec.depth:
        raise SpecError(f"--params item {item.strip()!r}: layer {l} is not in 1..{net.spec.depth}")
    if kind == "W" and k is None:  # W2[*]: every row and column
        k = "*"
    rows = range(1, n[l] + 1) if j == "*" else [int(j)]
    cols = [None] if kind == "b" else (range(1, n[l - 1] + 1) if k == "*" else [int(k)])
    names = [f"{kind}{l}[{r}]" if c is None else f"{kind}{l}[{r},{c}]" for r in rows for c in cols]
    return [net.model.param(name, field="--params item") for name in names]


# -- the chain rule -----------------------------------------------------------------
def chain(net: Network, p: Param, style: Style, trace=None, values=None) -> dict:
    """Everything the chain-rule template says about one parameter."""
    d = net.derivation
    count = count_paths(d, p)
    out = {"name": p.name, "partial": partial_latex(p, **style.settings), "count": count,
           "inline": style.inline_partial(style.latex(net.model.symbol(p))),
           "count_tex": _count_tex(count),
           "layer": p.layer, "kind": p.kind, "listed": count <= MAX_LISTED_PATHS,
           "symbol": style.latex(net.model.symbol(p))}
    if out["listed"]:
        listed = list(paths(d, p, net.simplifier))
        out["paths"] = [_path(style, q, net, trace, values) for q in listed]
        out["roles"] = _roles(style, listed)
        out["result"] = result_latex(net, p, style)
        out["general"] = None
    else:
        first = next(paths(d, p, net.simplifier))
        out["paths"] = [_path(style, first, net, None, None)]
        out["roles"] = _roles(style, [first])
        out["general"] = sum_over_paths(net, p, style)
        out["result"] = delta_form(net, p, style)
    if trace is not None:
        out["value"] = format_number(_gradient_value(net, p, trace), DIGITS)
    return out


def _count_tex(count: int) -> str:
    """1{,}024 (LaTeX thousands separators), or about 8.31 x 10^34 for huge counts."""
    if count < 10**9:
        return f"{count:,}".replace(",", "{,}")
    return rf"\approx {format_number(float(count), 3)}"


def _factor_tex(style: Style, f) -> str:
    """A factor of a product: in parentheses if it is a sum or negative.

    The loss factor is printed as its row's derivative reads in a textbook
    (-y/a + (1-y)/(1-a), 2(a-y)/n): `factor_terms`, not `factor`."""
    expr = sympy.factor_terms(f.expr) if f.role == "loss" else f.simplified
    tex = style.latex(expr)
    return rf"\left({tex}\right)" if isinstance(expr, sympy.Add) or expr.could_extract_minus_sign() else tex


def _path(style: Style, path, net: Network, trace, values) -> dict:
    symbolic = _elide([style.paint(f.role, factor_partial_latex(f, **style.settings)) for f in path])
    local = _elide([style.paint(f.role, _factor_tex(style, f)) for f in path])
    value = None
    if trace is not None:
        value = format_number(evaluate_expr(path_product(path, simplified=True), net.model,
                                            trace, values), DIGITS)
    return {"symbolic": [r"\,".join(c) for c in chunks(symbolic, FACTORS_PER_LINE)],
            "local": [r" \cdot ".join(c) for c in chunks(local, FACTORS_PER_LINE - 1)],
            "value": value, "factors": len(path)}


def _elide(factors: list[str]) -> list[str]:
    """A path through many layers: its first and last steps around a \\cdots."""
    if len(factors) <= MAX_PATH_FACTORS:
        return factors
    return factors[:5] + [r"\cdots"] + factors[-4:]


def _roles(style: Style, listed) -> dict:
    """The distinct factors of each role over the paths, painted, in order of appearance."""
    roles: dict[str, list[str]] = {"loss": [], "activation": [], "weight": [], "input": []}
    for path in listed:
        for f in path:
            top = style.L if f.role == "loss" else style.latex(f.numerator)
            tex = style.paint(f.role, style.inline_partial(style.latex(f.denominator), top)
                              if f.role in ("loss", "activation") else style.latex(f.simplified))
            if tex not in roles[f.role]:
                roles[f.role].append(tex)
    return roles


def _gradient_value(net: Network, p: Param, trace) -> float:
    l = p.layer
    delta = trace.delta[l][p.j - 1]
    return float(delta * trace.a[l - 1][p.k - 1]) if p.kind == "W" else float(delta)


def sum_over_paths(net: Network, p: Param, style: Style) -> str:
    """dL/dp as \\sum over the neurons of the later layers of the product along a path."""
    L, l0 = net.spec.depth, p.layer
    idx = {t: f"m_{{{t}}}" for t in range(l0 + 1, L + 1)}
    idx[l0] = str(p.j)
    later = list(range(l0 + 1, L + 1))
    shown = later if len(later) <= SHOWN_LAYERS else [later[0], None, later[-1]]
    sums = " ".join(r"\cdots" if t is None else rf"\sum_{{{idx[t]}=1}}^{{{net.spec.layers[t]}}}"
                    for t in shown)
    act = lambda t: style.paint("activation", style.partial(  # noqa: E731
        style.sym("a", t, idx[t]), style.sym("z", t, idx[t])))
    factors = [style.paint("loss", style.d_loss(style.sym("a", L, idx[L]))), act(L)]
    top_down = list(range(L, l0, -1))
    if len(top_down) > SHOWN_LAYERS:
        top_down = [top_down[0], None, top_down[-1]]
    for t in top_down:
        if t is None:
            factors.append(r"\cdots")
            continue
        factors.append(style.paint("weight", style.w(t, idx[t], idx[t - 1])))
        if t - 1 > l0 or t - 1 == l0:
            factors.append(act(t - 1))
    if p.kind == "W":
        factors.append(style.paint("input", style.a(l0 - 1, p.k)))
    if net.spec.activations[-1].vector:  # the softmax Jacobian couples every output
        factors[0:2] = [rf"\sum_{{o=1}}^{{{net.spec.layers[L]}}}"
                        + style.paint("loss", style.d_loss(style.sym("a", L, "o"))),
                        style.paint("activation", style.partial(style.sym("a", L, "o"),
                                                                style.sym("z", L, idx[L])))]
    return f"{partial_latex(p, **style.settings)} = {sums} " + r"\,".join(factors)


def delta_form(net: Network, p: Param, style: Style) -> dict:
    """dL/dp = delta(l)_j a(l-1)_k with delta(l)_j's own equation, one level deep."""
    m, l, j = net.model, p.layer, p.j
    delta = style.latex(m.delta(l, j))
    rhs = f"{delta}\\, {style.latex(m.a(l - 1, p.k))}" if p.kind == "W" else delta
    lhs = partial_latex(p, **style.settings)
    return {"lhs": lhs, "rhs": rhs, "equation": f"{lhs} = {rhs}",
            "delta": f"{delta} = {style.latex(net.simplifier.delta_definition(l, j))}"}


def result_latex(net: Network, p: Param, style: Style) -> dict:
    """The simplified gradient if it fits on a line, else the delta form."""
    d = net.derivation
    if d.expansion_stop(p.layer) >= net.spec.depth:
        tex = style.latex(net.gradient(p).simplified)
        if len(tex) <= MAX_RESULT_LATEX and visible_width(tex) <= MAX_RESULT_WIDTH:
            lhs = partial_latex(p, **style.settings)
            return {"lhs": lhs, "rhs": tex, "equation": f"{lhs} = {tex}", "delta": None}
    return delta_form(net, p, style)


def visible_width(tex: str) -> float:
    """Roughly how many characters wide `tex` prints: scripts count 0.6, commands 1."""
    tex = re.sub(r"\\(left|right|bigl|bigr|Bigl|Bigr)\b", "", tex)
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
        if ch == "{":
            if depth_script:
                depth_script[-1] += 1
        elif ch == "}":
            if depth_script and depth_script[-1] == 0:
                depth_script.pop()
            elif depth_script:
                depth_script[-1] -= 1
        elif not ch.isspace():
            width += 0.6 if depth_script else 1.0
        i += 1
    return width


def results(net: Network, style: Style) -> dict:
    """Section 6: every gradient (small networks) or one weight per layer."""
    small = net.spec.parameter_count <= SMALL_PARAMETERS
    # large: the first weight of every layer (a bias's gradient is its delta, shown with it)
    chosen = list(net.params()) if small else [Param(l, "W", 1, 1) for l in range(1, net.spec.depth + 1)]
    rows = [{"name": q.name, **result_latex(net, q, style)} for q in chosen]
    return {"small": small, "rows": rows, "count": net.spec.parameter_count,
            "general_w": rf"{style.d_loss(style.w('l', 'j', style.frm))} = "
                         rf"{style.sym('delta', 'l', 'j')}\, {style.a('l-1', style.frm)}",
            "delta_symbol": DELTA}
