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

The stable rewrites (1 + e^w -> 1/sigma(-w), ln(1 + e^w) -> softplus(w), ...)
are the one table of stable.py, applied by `compile_expr` before lambdify; the
placeholders they write are mapped here to NumPy code: sigma and softplus
branch-wise on the sign of Re w, so they never exponentiate a large positive
number and still take complex arguments.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import sympy

from .stable import ERFC, SIGMOID, SOFTPLUS, stabilize


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


#: NumPy code for the functions lambdify must not take from NumPy as they are
#: (complex step, stability), stable.py's placeholders among them.
_MODULES = [{"Abs": _abs, "sign": _sign, "Heaviside": _heaviside, "Max": _max, "Min": _min,
             "erf": _erf, "tanh": _tanh, ERFC.__name__: _erfc, SIGMOID.__name__: _stable_sigmoid,
             SOFTPLUS.__name__: _stable_softplus}, "numpy"]


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
    """(x, y, W, b) of a `Values` as float arrays; W[l] is (n_l, n_{l-1}); a minibatch's
    x and y are (m, n_0) and (m, n_L), one example per row."""
    W = {l: np.array(m, dtype=float).reshape(layers[l], layers[l - 1]) for l, m in values.W.items()}
    b = ({l: np.array(v, dtype=float) for l, v in values.b.items()} if bias
         else {l: np.zeros(layers[l]) for l in W})
    x, y = (values.xs, values.ys) if values.xs else (values.x, values.y)
    return np.array(x, dtype=float), np.array(y, dtype=float), W, b


def regularizer(spec, W: dict, b: dict):
    """R(W) = (l2/2) sum w^2 + l1 sum |w| (biases too if asked), complex-step safe:
    |w| is continued analytically as w sign(Re w), so Im R(w + ih)/h = l1 sign(w)."""
    reg = spec.regularization
    if not reg.active:
        return 0.0
    arrays = list(W.values()) + (list(b.values()) if reg.biases and spec.bias else [])
    return sum(reg.l2 / 2 * np.sum(w * w) + reg.l1 * np.sum(w * np.sign(np.real(w))) for w in arrays)


def regularizer_gradient(spec, w: np.ndarray, kind: str) -> np.ndarray | float:
    """dR/dw = l2 w + l1 sign(w) (sign(0) = 0, the subgradient numpy and torch take)."""
    reg = spec.regularization
    if not reg.covers(kind) or (kind == "b" and not spec.bias):
        return 0.0
    return reg.l2 * w + reg.l1 * np.sign(w)
