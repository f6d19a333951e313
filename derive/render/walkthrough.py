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

Every factor, path, \sum and delta form is printed by `chain`, the printer
`derive which` uses too.  `choose` reads --params ("W1[1,1],b2[*]", `*` =
every index) with the model's one parameter-name parser and picks the
default representatives; `results` lists every parameter's gradient for
small networks and one weight and one bias per layer for large ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import chain as printer
from .chain import result_latex
from .content import DELTA
from ..errors import SpecError
from ..check.evaluate import evaluate_expr
from .formulas import Style, format_number
from ..calculus.model import Param
from ..calculus.paths import count_paths, path_product, paths
from .printing import partial_latex
from .worked import DIGITS
from .batchform import batch_latex, regularizer_term

if TYPE_CHECKING:
    from ..api import Network

#: Parameters with at most this many paths get every path written out.
MAX_LISTED_PATHS = 8
#: Most parameters --params may pick for a step-by-step chain rule.
MAX_CHAINS = 24
#: Networks with at most this many parameters get every gradient in the results.
SMALL_PARAMETERS = 40


# -- which parameters ---------------------------------------------------------------
def default_params(net: Network) -> list[Param]:
    """W(l)[1,1] for every layer of a network up to 4 deep, from the output back;
    deeper, the last two layers and the first."""
    L = net.spec.depth
    layers = range(L, 0, -1) if L <= 4 else (L, L - 1, 1)
    return [net.model.weight(l, 1, 1) for l in layers]


def choose(net: Network, text: str | None) -> list[Param]:
    """The parameters a --params text names, in order, without repeats."""
    if text is None:
        return default_params(net)
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"--params {text!r} is empty; give names like 'W1[1,1],b2[*]'")
    chosen = net.model.select(text)
    if len(chosen) > MAX_CHAINS:
        raise SpecError(f"--params {text!r} selects {len(chosen)} parameters; at most {MAX_CHAINS} "
                        f"get a step-by-step chain rule (the results section lists the others)")
    return chosen


# -- the chain rule -----------------------------------------------------------------
def chain(net: Network, p: Param, style: Style, trace=None, values=None) -> dict:
    """Everything the chain-rule template says about one parameter (for a minibatch,
    the values are example 1's: the paths are one example's chain rule)."""
    batched = trace is not None and values.batch > 1
    if batched:
        trace, values = trace.example(0), values.example(0)
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
        out["general"] = f"{out['partial']} = {printer.sum_over_paths(net, p, style)}"
        out["result"] = printer.delta_form(net, p, style)
    if trace is not None:
        out["value"] = format_number(_gradient_value(net, p, trace), DIGITS)
    # a minibatch: the paths are one example's; their values are example 1's (the
    # document's batch section sums the examples), said so in the sentence
    out["example_loss"] = rf"{style.L}_{{[1]}}" if batched else None
    return out


def _count_tex(count: int) -> str:
    """1{,}024 (LaTeX thousands separators), or about 8.31 x 10^34 for huge counts."""
    if count < 10**9:
        return f"{count:,}".replace(",", "{,}")
    return rf"\approx {format_number(float(count), 3)}"


def _path(style: Style, path, net: Network, trace, values) -> dict:
    value = None
    if trace is not None:
        value = format_number(evaluate_expr(path_product(path, simplified=True), net.model,
                                            trace, values), DIGITS)
    return {**printer.path_lines(style, path), "value": value}


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


def results(net: Network, style: Style) -> dict:
    """Section 6: every gradient (small networks) or one weight per layer."""
    small = net.spec.parameter_count <= SMALL_PARAMETERS
    # large: the first weight of every layer (a bias's gradient is its delta, shown with it)
    chosen = list(net.params()) if small else [net.model.weight(l, 1, 1) for l in range(1, net.spec.depth + 1)]
    rows = [{"name": q.name, **_batched(net, q, style, result_latex(net, q, style))} for q in chosen]
    return {"small": small, "rows": rows, "count": net.spec.parameter_count,
            "general_w": rf"{style.d_loss(style.w('l', 'j', style.frm))} = "
                         rf"{style.sym('delta', 'l', 'j')}\, {style.a('l-1', style.frm)}",
            "delta_symbol": DELTA}


def _batched(net: Network, p: Param, style: Style, result: dict) -> dict:
    r"""A result row for the loss that is trained: \frac{1}{m} \sum_n (...)_{[n]} + dR/dp
    (batchform.py, as grad prints it), unchanged for one example without a regulariser."""
    if net.spec.training.single:
        return result
    rhs = batch_latex(net.model, result["rhs"], regularizer_term(net, p, "latex"))
    return {**result, "rhs": rhs, "equation": f"{result['lhs']} = {rhs}"}
