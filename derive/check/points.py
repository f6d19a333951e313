"""The one random-point sampler of the checks, and high-precision values there.

`Sampler` draws the points at which every check compares numbers: the
complex-step check (verify.py), the torch check (torchcheck.py) and the claim
check (qa/claim.py).  A point is a `Values`, the spec's own point type, so the
user's values and random ones go through the same code.  Every number is
drawn with two significant digits and never 0 (a zero input makes every
path through it vanish and would hide factors), so a counterexample prints
short and exactly: inputs in +-[0.1, 2], biases in +-[0.05, 0.5], weights in
+-[0.1, 1.7] / sqrt(fan-in) (so that a 32-layer network neither saturates nor
explodes), targets as the loss needs them: in [0.05, 0.95] for bce and
cross-entropy, whole percentages summing to exactly 1 after a softmax with
cross-entropy (the simplified a - y assumes it).  Near the kink of a
ReLU-family layer the one-sided derivatives differ, so a point with a
pre-activation within `KINK_MARGIN` of 0 is drawn again (at most `MAX_DRAWS`
times; the float64 forward pass of the registry definitions decides).
`numeric_delta` gives dL/dz by central differences of the forward pass alone,
a second route to the deltas for claims that name them.

For the claim check, `stream` adds each point's environment: the forward
pass, the loss and the delta equations of backprop.py evaluated in mpmath at
`DIGITS` digits, every network symbol (x, y, W, b, z, a, delta) and the loss
symbol ``L`` mapped to its value.  Any expression over those symbols is then
evaluated by `evaluate`, compiled once by `lambdify` for mpmath.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterator

import mpmath
import numpy as np
import sympy

from ..calculus.model import Param
from ..spec.network import Values
from ..spec.registry import X
from .compare import Tolerance
from .numeric import as_arrays

#: Working precision (decimal digits) of every high-precision evaluation.
DIGITS = 40
#: Symbol the claim parser maps ``L`` (the loss) to.
LOSS = sympy.Symbol("L", real=True)
#: Seed of the random points: the same network always meets the same points.
SEED = 4
#: Random points a check takes unless told otherwise.
DEFAULT_POINTS = 3
#: No pre-activation of a kinked layer (relu, leaky_relu, ...) nearer 0 than this.
KINK_MARGIN = 1e-3
#: Draws before a point near a kink is taken anyway (a very wide ReLU layer).
MAX_DRAWS = 100
#: Claimed and true values at DIGITS digits: equal to 25 digits.
PRECISE = Tolerance(rtol=mpmath.mpf(10) ** -25, atol=mpmath.mpf(10) ** -(DIGITS - 5))
#: Smallest and largest magnitude of each kind of number (weights: over sqrt(fan-in), and
#: E w^2 = 1/fan-in as in Glorot/He initialisations, so deep gradients do not vanish).
_RANGES = {"x": (0.1, 2.0), "W": (0.1, 1.7), "b": (0.05, 0.5), "y": (0.1, 1.0)}
#: Digits and step (h = 10**-DELTA_STEP) of the central differences of `numeric_delta`.
DELTA_DIGITS, DELTA_STEP = 2 * DIGITS, 27


def as_table(values: Values, row: bool = False) -> dict:
    """A point as a values table (what a values TOML file would hold): a minibatch's x and
    y as rows, W<l> as the layout writes it (`row`: n_(l-1) x n_l)."""
    if values.xs:
        table = {"x": [list(v) for v in values.xs], "y": [list(v) for v in values.ys]}
    else:
        table = {"x": list(values.x), "y": list(values.y)}
    for l in values.W:
        table[f"W{l}"] = [list(r) for r in (zip(*values.W[l]) if row else values.W[l])]
        if values.b:
            table[f"b{l}"] = list(values.b[l])
    return table


def _two_digits(v: np.ndarray) -> np.ndarray:
    """v (all 0 < |v| < 10) to two significant digits, each the float of a short decimal:
    an integer over a power of ten, both exact, so the division rounds correctly."""
    power = 10.0 ** (1 - np.floor(np.log10(np.abs(v))))
    return np.round(v * power) / power


class Sampler:
    """Seeded random points of one network (an `Evaluator`), away from activation kinks."""

    def __init__(self, evaluator, seed: int = SEED):
        self.ev, self.rng = evaluator, np.random.default_rng(seed)
        self.spec, self.model = evaluator.spec, evaluator.model
        self.n, self.L = evaluator.n, evaluator.L

    def __repr__(self) -> str:
        return f"Sampler({self.spec.describe()})"

    def _uniform(self, kind: str, *shape: int, scale: float = 1.0) -> np.ndarray:
        low, high = _RANGES[kind]
        sign = self.rng.choice([-1.0, 1.0], size=shape)
        return _two_digits(sign * self.rng.uniform(low * scale, high * scale, size=shape))

    def _targets(self) -> np.ndarray:
        spec, nL = self.spec, self.n[self.L]
        if spec.softmax_cross_entropy:
            while True:  # whole percentages summing to exactly 100
                cents = self.rng.integers(1, 101, size=nL)
                shares = np.round(100 * cents / cents.sum()).astype(int)
                shares[-1] = 100 - shares[:-1].sum()
                if shares[-1] >= 0:
                    return shares / 100
        if spec.loss.probabilistic:
            return np.round(self.rng.uniform(0.05, 0.95, size=nL), 2)
        return self._uniform("y", nL)

    def draw(self) -> Values:
        """One random point, kinks or not."""
        n, L = self.n, self.L
        W = {l: self._uniform("W", n[l], n[l - 1], scale=1 / np.sqrt(n[l - 1])) for l in range(1, L + 1)}
        b = {l: tuple(self._uniform("b", n[l]).tolist()) for l in W} if self.spec.bias else {}
        weights = {l: tuple(map(tuple, w.tolist())) for l, w in W.items()}
        examples = [(tuple(self._uniform("x", n[0]).tolist()), tuple(self._targets().tolist()))
                    for _ in range(self.spec.batch)]
        x, y = examples[0]
        if self.spec.batch == 1:
            return Values(x, y, weights, b)
        return Values(x, y, weights, b, None, tuple(e[0] for e in examples), tuple(e[1] for e in examples))

    def near_kink(self, values: Values) -> bool:
        """Whether a pre-activation of a kinked layer is within KINK_MARGIN of 0."""
        x, _, W, b = as_arrays(values, self.n, self.spec.bias)
        z = self.ev.forward(x, W, b).z
        return any(row.kink and np.min(np.abs(z[l])) < KINK_MARGIN
                   for l, row in enumerate(self.spec.activations, start=1))

    def fresh(self) -> Values:
        """A random point away from the kinks (the last draw if MAX_DRAWS all are near one)."""
        for _ in range(MAX_DRAWS):
            point = self.draw()
            if not self.near_kink(point):
                break
        return point

    def values(self, count: int, first: Values | None = None) -> list[Values]:
        """`first` (the user's point, kinks or not) if given, then `count` fresh points."""
        return ([first] if first is not None else []) + [self.fresh() for _ in range(count)]

    def stream(self, first: Values | None = None) -> Iterator[tuple[Values, "Environment"]]:
        """Points with their environments, one at a time; `first` (a spec's `Values`) leads
        if it is away from the kinks, so a counterexample can be the user's."""
        if first is not None and not self.near_kink(first):
            yield first, self.environment(first)
        while True:
            point = self.fresh()
            yield point, self.environment(point)

    def environment(self, point: Values) -> "Environment":
        """Every symbol's value at `point`: forward pass and loss (no deltas yet)."""
        with mpmath.workdps(DIGITS):
            a = [_mpf(v) for v in point.x]
            arrays = {"x": a, "y": [_mpf(v) for v in point.y], "W": {}, "b": {}, "z": {},
                      "a": {0: a}, "delta": {}}
            for l in range(1, self.L + 1):
                a = self._layer(l, point, a, arrays)
            env = Environment(arrays)
            env[LOSS] = evaluate(self.model.loss, env)
        return env

    def _layer(self, l: int, point: Values, prev: list, arrays: dict) -> list:
        """z(l) = W(l) a(l-1) + b(l) and a(l) = f_l(z(l)), stored in `arrays`."""
        W = arrays["W"][l] = [[_mpf(v) for v in r] for r in point.W[l]]
        b = arrays["b"][l] = [_mpf(v) for v in point.b[l]] if point.b else [0] * self.n[l]
        zs = arrays["z"][l] = [mpmath.fdot(r, prev) + bj for r, bj in zip(W, b)]
        outs = arrays["a"][l] = self._activate(l, zs)
        return outs

    def _activate(self, l: int, zs: list) -> list:
        """a(l) = f_l(z(l)) at the current precision, softmax shifted by its maximum."""
        row = self.spec.activations[l - 1]
        if row.vector:
            top = max(zs)
            e = [mpmath.exp(z - top) for z in zs]
            total = mpmath.fsum(e)
            return [v / total for v in e]
        f = _function(row.definition)
        return [f(z) for z in zs]

    def numeric_delta(self, env: "Environment", l: int, j: int):
        """dL/dz(l)_j by central differences of the forward pass from layer l on.

        Independent of the derivation (no derivative is taken anywhere): the
        loss is recomputed with z(l)_j moved by +-h, at `DELTA_DIGITS` digits
        with h = 10**-DELTA_STEP, so truncation (~h**2) and cancellation
        (~10**-DELTA_DIGITS / h) both stay near 1e-53, far below `RTOL`.
        Points are drawn away from kinks by `KINK_MARGIN`, which h never crosses."""
        arrays = env.arrays
        symbols, loss = compiled(self.model.loss)
        with mpmath.workdps(DELTA_DIGITS):
            h = mpmath.mpf(10) ** -DELTA_STEP

            def loss_at(shift):
                zs = list(arrays["z"][l])
                zs[j - 1] += shift
                a = self._activate(l, zs)
                for m in range(l + 1, self.L + 1):
                    W, b = arrays["W"][m], arrays["b"][m]
                    a = self._activate(m, [mpmath.fdot(r, a) + bj for r, bj in zip(W, b)])
                values = {self.model.a(self.L, i + 1): v for i, v in enumerate(a)}
                return loss(*[values[s] if s in values else env[s] for s in symbols])
            derivative = (loss_at(h) - loss_at(-h)) / (2 * h)
        return +derivative  # rounded to the working precision

    def add_deltas(self, env: "Environment", down_to: int) -> None:
        """delta(l)_j for l = L..down_to by the derivation's equations: the output
        layer's as written (compiled once), each hidden layer's as its equation
        reads, (sum_i W(l+1)_ij delta(l+1)_i) f_l'(z(l)_j), with f_l' the
        derivation's own local derivative compiled once per layer."""
        d, deltas = self.ev.simplifier.derivation, env.arrays["delta"]
        with mpmath.workdps(DIGITS):
            if self.L not in deltas:
                deltas[self.L] = [evaluate(d.delta_definition(self.L, j), env)
                                  for j in range(1, self.n[self.L] + 1)]
            for l in range(self.L - 1, down_to - 1, -1):
                if l in deltas:
                    continue
                f = _function(d.activation_derivative_row(l))
                W, up, zs = env.arrays["W"][l + 1], deltas[l + 1], env.arrays["z"][l]
                deltas[l] = [mpmath.fdot([r[j] for r in W], up) * f(zs[j])
                             for j in range(self.n[l])]


class Environment(dict):
    """Symbol -> value at one point; network symbols are read from the point's
    arrays on first use, so a deep network costs no symbol per weight."""

    def __init__(self, arrays: dict):
        super().__init__()
        self.arrays = arrays

    def __missing__(self, s):
        kind, layer, idx = _parts(s)
        table = self.arrays[kind]
        if kind in ("x", "y"):
            value = table[idx[0] - 1]
        elif kind == "W":
            value = table[layer][idx[0] - 1][idx[1] - 1]
        else:
            value = table[layer][idx[0] - 1]
        self[s] = value
        return value


@lru_cache(maxsize=65536)
def _parts(s) -> tuple:
    return s.kind, s.layer, s.idx


@lru_cache(maxsize=4096)
def _mpf(v: float):
    """The decimal v (two decimals) at working precision; callers hold workdps(DIGITS)."""
    return mpmath.mpf(repr(v))


@lru_cache(maxsize=64)
def _function(definition: sympy.Expr):
    return sympy.lambdify([X], definition, modules="mpmath")


#: Largest argument `_bounded_exp` takes: e**1e9 is still a number mpmath holds at once;
#: exp(exp(exp(100))) would need an exponent of ~10**(10**43) bits and never finish.
MAX_EXP_ARGUMENT = 10**9


def _bounded_exp(v):
    """mpmath's exp, refusing (OverflowError: undefined here) an argument no point can use."""
    if mpmath.re(v) > MAX_EXP_ARGUMENT:
        raise OverflowError("exp argument too large")
    return mpmath.exp(v)


@lru_cache(maxsize=4096)
def compiled(expr: sympy.Expr):
    """(symbols, mpmath function) for an expression over network symbols; exp is bounded,
    so a claim such as exp(exp(exp(100 w))) is undefined at a point instead of endless."""
    symbols = tuple(sorted(expr.free_symbols, key=lambda s: s.name))
    return symbols, sympy.lambdify(symbols, expr, modules=[{"exp": _bounded_exp}, "mpmath"])


def evaluate(expr: sympy.Expr, env: dict):
    """`expr` at a point's environment, in mpmath; None where it is undefined there."""
    symbols, fn = compiled(expr)
    try:
        with mpmath.workdps(DIGITS):
            value = fn(*[env[s] for s in symbols])
    except (ZeroDivisionError, ValueError, OverflowError, TypeError):
        return None
    if isinstance(value, mpmath.mpc):
        return value if abs(value.imag) > abs(value.real) * mpmath.mpf(10) ** (5 - DIGITS) else value.real
    return mpmath.mpf(value)


def gradient_value(net, p: Param, env: dict):
    """dL/dp at a point whose environment already holds the deltas of layer p.layer."""
    m = net.model
    delta = env[m.delta(p.layer, p.j)]
    return delta * env[m.a(p.layer - 1, p.k)] if p.kind == "W" else delta


def equal(c, t) -> bool:
    """Claimed `c` equals true `t` within `PRECISE`; an undefined or complex value equals nothing."""
    if c is None or isinstance(c, mpmath.mpc):
        return False
    return bool(PRECISE.close(c, t))
