"""Random points of a network in high precision, for judging claimed formulas.

A point is a random input, target, weights and biases, written with two
decimals so a counterexample prints short and exactly, and never 0.  At each point the
forward pass, the loss and the delta equations of backprop.py are evaluated
in mpmath at `DIGITS` digits, giving an environment: every network symbol
(x, y, W, b, z, a, delta) and the loss symbol ``L`` mapped to its value.  Any
expression over those symbols is then evaluated by `evaluate`, compiled once
by `lambdify` for mpmath.  `numeric_delta` gives dL/dz by central differences
of the forward pass alone, a second route to the deltas for claims that name
them.

Targets respect the loss: in [0.05, 0.95] for bce and cross-entropy, and
summing to exactly 1 after a softmax with cross-entropy (the simplified
a - y assumes it).  Near the kink of a ReLU-family layer the one-sided
derivatives differ, so points with a pre-activation within `KINK_MARGIN` of 0
are drawn again.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import mpmath
import numpy as np
import sympy

from ..calculus.model import Param
from ..spec.registry import X

#: Working precision (decimal digits) of every evaluation.
DIGITS = 40
#: Symbol the claim parser maps ``L`` (the loss) to.
LOSS = sympy.Symbol("L", real=True)
#: Seed of the random points: the same claim always meets the same points.
SEED = 4
KINK_MARGIN = 1e-3
#: Digits and step (h = 10**-DELTA_STEP) of the central differences of `numeric_delta`.
DELTA_DIGITS, DELTA_STEP = 2 * DIGITS, 27
#: |claimed - true| <= RTOL * max(|claimed|, |true|) + ATOL counts as equal.
RTOL = mpmath.mpf(10) ** -25
ATOL = mpmath.mpf(10) ** -(DIGITS - 5)
_RANGES = {"x": 2.0, "W": 1.5, "b": 1.0, "y": 1.0}


@dataclass(frozen=True)
class Point:
    """Raw values, 1-based layers as in a values file: W[l][j-1][k-1]."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    W: dict
    b: dict

    def as_table(self) -> dict:
        """The point as a values table (what a values TOML file would hold)."""
        table = {"x": list(self.x), "y": list(self.y)}
        for l in self.W:
            table[f"W{l}"] = [list(r) for r in self.W[l]]
            if self.b:
                table[f"b{l}"] = list(self.b[l])
        return table


class Sampler:
    """Seeded random points of one network and the values of its symbols there."""

    def __init__(self, net, seed: int = SEED):
        self.net, self.model, self.rng = net, net.model, np.random.default_rng(seed)
        self.n, self.L = net.model.n, net.model.L

    def __repr__(self) -> str:
        return f"Sampler({self.net.spec.describe()})"

    def _uniform(self, kind: str, *shape: int) -> list:
        """Two-decimal values in [-r, -0.1] and [0.1, r]: never 0, which would hide
        factors (a zero input makes every path through it vanish)."""
        r = _RANGES[kind]
        sign = self.rng.choice([-1.0, 1.0], size=shape)
        return np.round(sign * self.rng.uniform(0.1, r, size=shape), 2).tolist()

    def _targets(self) -> list:
        spec, nL = self.net.spec, self.n[self.L]
        if spec.activations[-1].vector and spec.loss.name == "cross_entropy":
            while True:  # whole percentages summing to exactly 100
                cents = self.rng.integers(1, 101, size=nL)
                shares = np.round(100 * cents / cents.sum()).astype(int)
                shares[-1] = 100 - shares[:-1].sum()
                if shares[-1] >= 0:
                    return (shares / 100).tolist()
        if spec.loss.probabilistic:
            return np.round(self.rng.uniform(0.05, 0.95, size=nL), 2).tolist()
        return self._uniform("y", nL)

    def draw(self) -> Point:
        n, L = self.n, self.L
        W = {l: self._uniform("W", n[l], n[l - 1]) for l in range(1, L + 1)}
        b = {l: self._uniform("b", n[l]) for l in range(1, L + 1)} if self.net.spec.bias else {}
        return Point(tuple(self._uniform("x", n[0])), tuple(self._targets()), W, b)

    def stream(self, first=None) -> Iterator[tuple[Point, "Environment"]]:
        """Points with their environments, one at a time, away from activation kinks;
        `first` (a spec's `Values`) leads if given, so a counterexample can be the user's."""
        if first is not None:
            point = values_point(first)
            env = self.environment(point)
            if not self._near_kink(env):
                yield point, env
        while True:
            point = self.draw()
            env = self.environment(point)
            if not self._near_kink(env):
                yield point, env

    def points(self, count: int) -> list[tuple[Point, "Environment"]]:
        return list(itertools.islice(self.stream(), count))

    def _near_kink(self, env: "Environment") -> bool:
        acts = self.net.spec.activations
        return any(acts[l - 1].kink and abs(z) < KINK_MARGIN
                   for l, zs in env.arrays["z"].items() for z in zs)

    def environment(self, point: Point) -> "Environment":
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

    def _layer(self, l: int, point: Point, prev: list, arrays: dict) -> list:
        """z(l) = W(l) a(l-1) + b(l) and a(l) = f_l(z(l)), stored in `arrays`."""
        W = arrays["W"][l] = [[_mpf(v) for v in r] for r in point.W[l]]
        b = arrays["b"][l] = [_mpf(v) for v in point.b[l]] if point.b else [0] * self.n[l]
        zs = arrays["z"][l] = [mpmath.fdot(r, prev) + bj for r, bj in zip(W, b)]
        outs = arrays["a"][l] = self._activate(l, zs)
        return outs

    def _activate(self, l: int, zs: list) -> list:
        """a(l) = f_l(z(l)) at the current precision, softmax shifted by its maximum."""
        row = self.net.spec.activations[l - 1]
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
        d, deltas = self.net.derivation, env.arrays["delta"]
        with mpmath.workdps(DIGITS):
            if self.L not in deltas:
                deltas[self.L] = [evaluate(d.delta_definition(self.L, j), env)
                                  for j in range(1, self.n[self.L] + 1)]
            for l in range(self.L - 1, down_to - 1, -1):
                if l in deltas:
                    continue
                f = _function(d._activation_derivative_row(l))
                W, up, zs = env.arrays["W"][l + 1], deltas[l + 1], env.arrays["z"][l]
                deltas[l] = [mpmath.fdot([r[j] for r in W], up) * f(zs[j])
                             for j in range(self.n[l])]


def values_point(values) -> Point:
    """A spec's `Values` as a `Point`."""
    return Point(tuple(values.x), tuple(values.y),
                 {l: [list(r) for r in m] for l, m in values.W.items()},
                 {l: list(v) for l, v in values.b.items()})


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


@lru_cache(maxsize=4096)
def compiled(expr: sympy.Expr):
    """(symbols, mpmath function) for an expression over network symbols."""
    symbols = tuple(sorted(expr.free_symbols, key=lambda s: s.name))
    return symbols, sympy.lambdify(symbols, expr, modules="mpmath")


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
    """Equal within the tolerances; an undefined or complex value equals nothing."""
    if c is None or isinstance(c, mpmath.mpc):
        return False
    return abs(c - t) <= RTOL * max(abs(c), abs(t)) + ATOL
