"""Wrong formulas that people really write, for "which formula is dL/dparam?".

The true gradient is a sum over paths of products of local derivatives
(calculus/paths.py).  Each classic mistake is a change to that sum:

    missing activation derivative   the paths without their da/dz factors
    one path instead of the sum     the first path alone
    transposed index                the formula of W[k,j] offered for W[j,k]
    wrong sign                      minus the gradient
    extra factor                    the output's activation derivative twice
    the loss instead of its derivative   the loss term where dL/da belongs

Every option is printed in `derive claim`'s syntax and judged by claim's
machinery: the key must be proved correct, and a distractor is kept only if
the checker finds a counterexample (a "mistake" that happens to equal the
gradient on this network, such as one path where there is only one, is
dropped).  The options depend on the network, not on the values, so they
are built once per parameter.
"""

from __future__ import annotations

from functools import reduce
from operator import mul
from typing import TYPE_CHECKING

import sympy

from ..calculus.paths import path_product
from ..errors import SpecError
from ..render.printing import to_text
from .claim import check_claim

if TYPE_CHECKING:
    from ..api import Network

def _product(factors) -> sympy.Expr:
    return reduce(mul, factors, sympy.Integer(1))


def _mistakes(net: "Network", name: str) -> list[tuple[sympy.Expr, str]]:
    g = net.gradient(name)
    paths = g.paths if isinstance(g.paths, list) else list(g.paths)
    total = sympy.Add(*[path_product(p, simplified=True) for p in paths])
    m, L = net.model, net.spec.depth
    loss = net.spec.loss.per_output
    out: list[tuple[sympy.Expr, str]] = [
        (sympy.Add(*[_product(f.simplified for f in p if f.role != "activation") for p in paths]),
         "leaves out the activation derivatives da/dz: the loss is not a function of z directly"),
        (path_product(paths[0], simplified=True),
         "follows one path only: the chain rule sums over every path from the parameter to the loss"),
        (-total, "has the wrong sign"),
        (total * _output_derivative(net, paths[0]),
         "multiplies by the output's activation derivative twice"),
        (sympy.Add(*[_product((loss(f.denominator, m.y(f.denominator.idx[0]), m.n[L])
                               if f.role == "loss" else f.simplified) for f in p) for p in paths]),
         "uses the loss itself where its derivative dL/da belongs"),
    ]
    p = net.param(name)
    if p.kind == "W" and p.k <= m.n[p.layer] and p.j <= m.n[p.layer - 1] and p.j != p.k:
        swapped = net.gradient(f"W{p.layer}[{p.k},{p.j}]").simplified
        out.insert(1, (swapped, f"uses the indices the wrong way round: that is dL/dW{p.layer}[{p.k},{p.j}]"))
    # The key in the engine's display form (a - y after softmax with cross-entropy), which
    # equals the sum over paths at every point the checker uses (targets summing to 1).
    return [(g.simplified, "right: the sum over paths of the chain-rule products")] + out


def _output_derivative(net: "Network", path) -> sympy.Expr:
    top = next(f for f in path if f.role == "activation")
    return top.simplified


def formula_options(net: "Network", name: str) -> list[tuple[str, str]]:
    """[(formula, feedback), ...]: the key first, then every mistake that is really wrong
    here (each judged by `check_claim`); a question offers a few of them."""
    (key, why), *rest = _mistakes(net, name)
    key_text = to_text(key)
    if not check_claim(net, name, key_text).correct:  # an internal invariant, said plainly
        raise SpecError(f"exercises: the key for dL/d{name} failed its own check")
    options, seen = [(key_text, why)], {key_text}
    for expr, feedback in rest:
        text = to_text(expr)
        if text in seen or expr == 0 or expr.has(sympy.Piecewise, sympy.Heaviside):
            continue
        verdict = check_claim(net, name, text)
        if verdict.correct:
            continue
        seen.add(text)
        options.append((text, feedback))
    return options
