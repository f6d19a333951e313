"""The one table of stable rewrites, read by the checks and by generated code.

Each row of `REWRITES` is an exact identity that removes an overflow or a
cancellation: the same value, computed without inf/inf or 1 - 0.999...  `stabilize`
applies the rows in table order (later rows match what earlier ones wrote:
ln sigma(w) exists only once 1 + e^-w has become 1/sigma(w)).  The rewritten
expression holds placeholders, `SIGMOID`, `SOFTPLUS`, `ERFC` and SymPy's
`expm1`/`log1p`, whose stable numeric code each consumer supplies: numeric.py
maps them to NumPy branches that also take complex arguments (complex step),
export/codegen.py prints them as the generated module's helpers.  So adding an
identity is adding a row, and both the check and the exported code use it.

The rows, in order: e^w - 1 -> expm1(w); ln(1 + e^w) -> softplus(w);
1 + e^w -> 1/sigma(-w) with the e^w beside it -> sigma(w)/sigma(-w);
+-sigma(w) + u without the cancellation (1 - sigma(w) -> sigma(-w), sigma(w) - y
-> (1 - y) sigma(w) - y sigma(-w)); ln sigma(w) -> -softplus(-w);
1 - tanh^2 w -> 1/cosh^2 w; c + c erf(u) -> c erfc(-u); ln(1 + u) -> log1p(u).
tests/test_stability.py proves every row an identity at 100 digits and the
forms finite at z = +-1000.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy
from sympy.codegen.cfunctions import expm1, log1p

#: Placeholders the rewrites write; each consumer gives them stable code.
SIGMOID = sympy.Function("stable_sigmoid")
SOFTPLUS = sympy.Function("stable_softplus")
ERFC = sympy.Function("stable_erfc")  # sympy.erfc would turn erfc(-u) back into 2 - erfc(u)
#: Every function a stabilized expression may hold beyond its input's own.
PLACEHOLDERS = (SIGMOID, SOFTPLUS, ERFC, expm1, log1p)


@dataclass(frozen=True)
class Rewrite:
    """One exact identity: what it removes, and the function applying it everywhere."""

    identity: str
    reason: str
    apply: Callable[[sympy.Expr], sympy.Expr]

    def __repr__(self) -> str:
        return f"Rewrite({self.identity})"


def _rewrite(match, build):
    """A row's `apply`: replace every subexpression `match` accepts by `build` of its match."""
    return lambda expr: expr.replace(lambda e: match(e) is not None, lambda e: build(match(e)))


def _one_plus_exp(e) -> sympy.Expr | None:
    """w if `e` is exactly 1 + exp(w), else None."""
    if isinstance(e, sympy.Add) and len(e.args) == 2 and e.args[0] == 1 \
            and isinstance(e.args[1], sympy.exp):
        return e.args[1].exp
    return None


def _exp_minus_one(e) -> sympy.Expr | None:
    if isinstance(e, sympy.Add) and len(e.args) == 2 and e.args[0] == -1 \
            and isinstance(e.args[1], sympy.exp):
        return e.args[1].exp
    return None


def _log_of(inner):
    def match(e):
        return inner(e.args[0]) if isinstance(e, sympy.log) else None
    return match


def _sigmoid_ratio(expr: sympy.Expr) -> sympy.Expr:
    """1 + e^w -> 1/sigma(-w), and every e^(+-w) beside it -> sigma(+-w)/sigma(-+w).

    Exponentials of the same w must change together, or e^w sigma(-w) would be
    left as inf * 0 where it is sigma(w)."""
    ws = {w for e in sympy.preorder_traversal(expr) if (w := _one_plus_exp(e)) is not None}
    if not ws:
        return expr
    expr = _rewrite(_one_plus_exp, lambda w: 1 / SIGMOID(-w))(expr)
    ratios = {}
    for w in ws:
        ratios[sympy.exp(w)] = SIGMOID(w) / SIGMOID(-w)
        ratios[sympy.exp(-w)] = SIGMOID(-w) / SIGMOID(w)
    return expr.xreplace(ratios)


def _sigmoid_plus(e) -> sympy.Expr | None:
    """+-sigma(w) + u rewritten without the cancellation of a sigma(w) that rounds to 1.

    As sigma(w) + sigma(-w) = 1: sigma(w) + u = (1 + u) sigma(w) + u sigma(-w) and
    u - sigma(w) = (u - 1) sigma(w) + u sigma(-w).  So 1 - a becomes sigma(-w) and
    a - y becomes (1 - y) sigma(w) - y sigma(-w), exact for y in {0, 1}.
    """
    if not isinstance(e, sympy.Add) or len(e.args) != 2:
        return None
    for s, u in (e.args, e.args[::-1]):
        if u.has(SIGMOID):
            continue
        if isinstance(s, SIGMOID) and not (u.is_number and u.is_positive):
            return (1 + u) * s + u * SIGMOID(-s.args[0])
        if s.is_Mul and len(s.args) == 2 and s.args[0] == -1 and isinstance(s.args[1], SIGMOID) \
                and not (u.is_number and u.is_negative):
            w = s.args[1].args[0]
            return (u - 1) * SIGMOID(w) + u * SIGMOID(-w)
    return None


def _tanh_squared(e) -> sympy.Expr | None:
    """w if `e` is exactly 1 - tanh(w)**2."""
    if isinstance(e, sympy.Add) and len(e.args) == 2 and e.args[0] == 1:
        neg = e.args[1]
        if isinstance(neg, sympy.Mul) and len(neg.args) == 2 and neg.args[0] == -1:
            p = neg.args[1]
            if isinstance(p, sympy.Pow) and p.exp == 2 and isinstance(p.base, sympy.tanh):
                return p.base.args[0]
    return None


def _erf_complement(e) -> sympy.Expr | None:
    """c + c*erf(u) + rest -> c*erfc(-u) + rest: Phi(z) without 1 - 0.999... cancellation."""
    if not isinstance(e, sympy.Add) or not e.has(sympy.erf):
        return None
    terms = list(e.args)
    for i, t in enumerate(terms):
        c, f = t.as_independent(sympy.erf, as_Add=False)
        if isinstance(f, sympy.erf) and c.is_number and c in terms:
            rest = [u for j, u in enumerate(terms) if j != i]
            rest.remove(c)
            return sympy.Add(c * ERFC(-f.args[0]), *rest)
    return None


def _log_one_plus(e) -> sympy.Expr | None:
    if isinstance(e, sympy.log) and isinstance(e.args[0], sympy.Add) and e.args[0].args[0] == 1:
        return e.args[0] - 1
    return None


def _same(new):
    return new


REWRITES = (
    Rewrite("e^w - 1 = expm1(w)", "cancellation near w = 0", _rewrite(_exp_minus_one, expm1)),
    Rewrite("ln(1 + e^w) = softplus(w)", "e^w overflows for large w",
            _rewrite(_log_of(_one_plus_exp), SOFTPLUS)),
    Rewrite("1 + e^w = 1/sigma(-w), e^w = sigma(w)/sigma(-w)", "inf/inf for large w", _sigmoid_ratio),
    Rewrite("1 - sigma(w) = sigma(-w), sigma(w) - y = (1 - y) sigma(w) - y sigma(-w)",
            "1 - 0.999... cancels", _rewrite(_sigmoid_plus, _same)),
    Rewrite("ln sigma(w) = -softplus(-w)", "ln 0 where sigma underflows",
            _rewrite(_log_of(lambda e: e.args[0] if isinstance(e, SIGMOID) else None),
                     lambda w: -SOFTPLUS(-w))),
    Rewrite("1 - tanh^2 w = 1/cosh^2 w", "1 - 0.999... cancels",
            _rewrite(_tanh_squared, lambda w: sympy.cosh(w) ** -2)),
    Rewrite("c + c erf(u) = c erfc(-u)", "1 - 0.999... cancels", _rewrite(_erf_complement, _same)),
    Rewrite("ln(1 + u) = log1p(u)", "cancellation for small u", _rewrite(_log_one_plus, log1p)),
)


def stabilize(expr: sympy.Expr) -> sympy.Expr:
    """`expr` rewritten by every row of `REWRITES`, in order (same value, no overflow)."""
    if not expr.has(sympy.exp, sympy.tanh, sympy.log, sympy.erf):
        return expr
    for row in REWRITES:
        expr = row.apply(expr)
    return expr
