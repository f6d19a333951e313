"""Numbers from SymPy expressions: one `lambdify` wrapper shared by the stages.

Expressions are compiled to NumPy functions that take arrays (float64 or
complex128, for complex-step checks).  Two mappings make that safe:
Piecewise conditions compare the real part (so complex-step passes through
relu's branches), and |v| becomes the branch sign(Re v)·v, which is analytic
away from 0, unlike the complex modulus.  erf comes from SciPy, which accepts
complex arguments.  Floating-point warnings are silenced: overflow that turns
into inf/nan is reported by the caller, never printed mid-table.

Complex-step checks push thousands of complex values through tanh, which
NumPy's complex loop does slowly (~140 ns a value); `_tanh` computes the same
complex function from real parts by the addition formula
tanh(x+iy) = (tanh x + i tan y) / (1 + i tanh x tan y), about ten times
faster and finite for large |x|.  It is the function, not its derivative.

`stabilize` rewrites an expression by exact identities before it is compiled,
so that z = +-1000 gives the true float64 value instead of inf/inf = nan:
1 + e^w becomes 1/sigma(-w) (and the lone e^w beside it sigma(w)/sigma(-w)),
ln(1 + e^w) becomes softplus(w), ln sigma(w) becomes -softplus(-w),
1 - sigma(w) becomes sigma(-w) (and sigma(w) - y, (1-y) sigma(w) - y sigma(-w)), 1 - tanh^2 w becomes 1/cosh^2 w, c + c erf(u)
becomes c erfc(-u), e^w - 1 becomes expm1(w) and ln(1 + u) becomes log1p(u).  sigma and softplus are
computed branch-wise on the sign of Re w, so they never exponentiate a large
positive number and still take complex arguments.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import sympy
from sympy.codegen.cfunctions import expm1, log1p

#: Placeholders `stabilize` writes; `compile_expr` maps them to the NumPy code below.
SIGMOID = sympy.Function("stable_sigmoid")
SOFTPLUS = sympy.Function("stable_softplus")
ERFC = sympy.Function("stable_erfc")  # sympy.erfc would turn erfc(-u) back into 2 - erfc(u)


def _erf(v):
    from scipy import special  # imported on first use: SciPy costs 0.7 s to import

    return special.erf(v)


def _erfc(v):
    from scipy import special

    return special.erfc(v)


def _tanh(v):
    if not np.iscomplexobj(v):
        return np.tanh(v)
    t, s = np.tanh(v.real), np.tan(v.imag)
    return (t * (1 + s * s) + 1j * s * (1 - t * t)) / (1 + t * t * s * s)


def _stable_sigmoid(v):
    """1/(1 + e^-v), exponentiating only -|Re v|."""
    up = np.real(v) >= 0
    t = np.exp(np.where(up, -v, v))
    return np.where(up, 1 / (1 + t), t / (1 + t))


def _stable_softplus(v):
    """ln(1 + e^v) = max(v, 0) + ln(1 + e^-|v|), branch on Re v."""
    up = np.real(v) >= 0
    return np.where(up, v, 0) + np.log1p(np.exp(np.where(up, -v, v)))


def _abs(v):
    return np.where(np.real(v) >= 0, v, -v)


def _sign(v):
    return np.sign(np.real(v))


def _heaviside(v, h0=0.0):
    return np.where(np.real(v) > 0, 1.0, np.where(np.real(v) < 0, 0.0, h0))


def _max(*vs):
    out = vs[0]
    for v in vs[1:]:
        out = np.where(np.real(v) > np.real(out), v, out)
    return out


def _min(*vs):
    out = vs[0]
    for v in vs[1:]:
        out = np.where(np.real(v) < np.real(out), v, out)
    return out


_MODULES = [{"Abs": _abs, "sign": _sign, "Heaviside": _heaviside, "Max": _max, "Min": _min,
             "erf": _erf, "stable_erfc": _erfc, "tanh": _tanh, "stable_sigmoid": _stable_sigmoid,
             "stable_softplus": _stable_softplus}, "numpy"]


def _one_plus_exp(e) -> sympy.Expr | None:
    """w if `e` is exactly 1 + exp(w), else None."""
    if isinstance(e, sympy.Add) and len(e.args) == 2 and e.args[0] == 1 \
            and isinstance(e.args[1], sympy.exp):
        return e.args[1].exp
    return None


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


def _rewrite(expr, match, build):
    return expr.replace(lambda e: match(e) is not None, lambda e: build(match(e)))


def _exp_minus_one(e):
    if isinstance(e, sympy.Add) and len(e.args) == 2 and e.args[0] == -1 \
            and isinstance(e.args[1], sympy.exp):
        return e.args[1].exp
    return None


def _tanh_squared(e):
    """w if `e` is exactly 1 - tanh(w)**2."""
    if isinstance(e, sympy.Add) and len(e.args) == 2 and e.args[0] == 1:
        neg = e.args[1]
        if isinstance(neg, sympy.Mul) and len(neg.args) == 2 and neg.args[0] == -1:
            p = neg.args[1]
            if isinstance(p, sympy.Pow) and p.exp == 2 and isinstance(p.base, sympy.tanh):
                return p.base.args[0]
    return None


def _erf_complement(e):
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


def _log_of(inner):
    def match(e):
        return inner(e.args[0]) if isinstance(e, sympy.log) else None
    return match


def _log_one_plus(e):
    if isinstance(e, sympy.log) and isinstance(e.args[0], sympy.Add) and e.args[0].args[0] == 1:
        return e.args[0] - 1
    return None


def stabilize(expr: sympy.Expr) -> sympy.Expr:
    """`expr` rewritten by exact identities into a form that cannot overflow (see above)."""
    if not expr.has(sympy.exp, sympy.tanh, sympy.log, sympy.erf):
        return expr
    expr = _rewrite(expr, _exp_minus_one, expm1)
    expr = _rewrite(expr, _log_of(_one_plus_exp), SOFTPLUS)
    ws = {w for e in sympy.preorder_traversal(expr) if (w := _one_plus_exp(e)) is not None}
    if ws:
        expr = _rewrite(expr, _one_plus_exp, lambda w: 1 / SIGMOID(-w))
        ratios = {}
        for w in ws:
            ratios[sympy.exp(w)] = SIGMOID(w) / SIGMOID(-w)
            ratios[sympy.exp(-w)] = SIGMOID(-w) / SIGMOID(w)
        expr = expr.xreplace(ratios)
    expr = _rewrite(expr, _sigmoid_plus, lambda new: new)
    expr = _rewrite(expr, _log_of(lambda e: e.args[0] if isinstance(e, SIGMOID) else None),
                    lambda w: -SOFTPLUS(-w))
    expr = _rewrite(expr, _tanh_squared, lambda w: sympy.cosh(w) ** -2)
    expr = _rewrite(expr, _erf_complement, lambda new: new)
    return _rewrite(expr, _log_one_plus, log1p)


def _real_conditions(expr: sympy.Expr) -> sympy.Expr:
    """Rewrite Piecewise conditions to compare real parts (complex-step safe)."""
    if not expr.has(sympy.Piecewise):
        return expr

    def fix(pw):
        args = []
        for e, c in pw.args:
            if isinstance(c, sympy.core.relational.Relational):
                c = c.func(sympy.re(c.lhs), sympy.re(c.rhs), evaluate=False)
            args.append((e, c))
        return sympy.Piecewise(*args, evaluate=False)

    return expr.replace(lambda e: isinstance(e, sympy.Piecewise), fix)


@lru_cache(maxsize=512)
def compile_expr(expr: sympy.Expr, args: tuple[sympy.Symbol, ...]) -> Callable:
    """A NumPy function of `args` computing `expr` elementwise.

    Symbols are swapped for assumption-free dummies first, so that re(x)
    stays re(x) for complex inputs instead of simplifying to x.
    """
    free = tuple(sympy.Dummy(f"v{i}") for i in range(len(args)))
    body = _real_conditions(stabilize(expr.xreplace(dict(zip(args, free)))))
    fn = sympy.lambdify(free, body, modules=_MODULES)

    def call(*values):
        with np.errstate(all="ignore"):
            out = fn(*values)
        # constants come back as scalars: broadcast to the argument's shape
        return out + np.zeros(np.shape(values[0])) if np.ndim(out) < np.ndim(values[0]) else out

    return call


def matmul_t(a: np.ndarray, W: np.ndarray) -> np.ndarray:
    """a @ W.T for a real W; a complex `a` is split so BLAS runs on reals (3x faster)."""
    if np.iscomplexobj(a) and not np.iscomplexobj(W):
        return a.real @ W.T + 1j * (a.imag @ W.T)
    return a @ W.T


def as_arrays(values, layers: Sequence[int], bias: bool):
    """(x, y, W, b) of a `Values` as float arrays; W[l] is (n_l, n_{l-1})."""
    W = {l: np.array(m, dtype=float).reshape(layers[l], layers[l - 1]) for l, m in values.W.items()}
    b = ({l: np.array(v, dtype=float) for l, v in values.b.items()} if bias
         else {l: np.zeros(layers[l]) for l in W})
    return np.array(values.x, dtype=float), np.array(values.y, dtype=float), W, b
