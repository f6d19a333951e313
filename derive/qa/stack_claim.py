"""`derive claim` for a [[layer]] network: a formula for one entry's gradient, judged by numbers.

The formula is parsed by the whitelist parser (spec/expressions.py; nothing is
executed) over the stack's quantities, each with the example index n first
(as `derive grad` prints them, 1-based):

    x[n, ...]  y[n, ...]  a<l>[n, ...]  z<l>[n, ...]  delta<l>[n, ...]   (a0 is x)
    K1[c,c',u,v]  b1[c]  W4[j,k]  gamma2[j]  beta2[j]  E1[v,d]  W1i[j,k] ...  (parameter entries)

delta<l> is dL/dz<l> of the minibatch loss (the 1/m inside), from the backward
pass through the layer table, whose numbers the tests hold against torch.
The claim and the true gradient are compared at the spec's values (if any)
and three random points (check/stack_check.random_point): equal to 1e-9
relative everywhere is correct; otherwise the first point where they differ
is the counterexample, and a constant ratio between them is named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import sympy

from ..check.stack_check import SEED, stack_points
from ..errors import SpecError
from .claim import VerdictDisplay
from ..spec.expressions import DEFAULT_FUNCTIONS, format_error, parse_expression
from ..spec.registry import ACTIVATION_FUNCTIONS

FIELD = "EXPR"
POINTS = 3
RTOL, ATOL = 1e-9, 1e-12
_QUANTITY = re.compile(r"^(x|y|a|z|delta)(\d*)$")
_ENTRY = re.compile(r"^([A-Za-z]+)(\d+)([a-z]?)\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]$")


@dataclass
class StackVerdict(VerdictDisplay):
    """The outcome of a stack claim: `.correct`, `.text()`, `.to_json()`."""

    parameter: str
    claim: str
    correct: bool
    points: int
    counterexample: dict | None = None
    diagnosis: str | None = None
    at_values: dict | None = field(default=None)

    def text(self) -> str:
        head = f"dL/d{self.parameter} = {self.claim}"
        if self.correct:
            return (f"correct: {head}\n  equal to the gradient at {self.points} points "
                    f"(the spec's values first, if any) to {RTOL:g} relative")
        ce = self.counterexample
        lines = [f"incorrect: {head}"] + ([f"  {self.diagnosis}"] if self.diagnosis else [])
        lines += [f"  at {ce['point']}:", f"    claimed  {ce['claimed']:.12g}", f"    true     {ce['true']:.12g}"]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"parameter": self.parameter, "claim": self.claim, "correct": self.correct,
                "method": "numeric", "points": self.points, "counterexample": self.counterexample,
                "diagnosis": self.diagnosis}


class _Resolver:
    """Maps a name and its indices to a placeholder symbol, remembering how to read its value."""

    def __init__(self, net, text: str):
        self.spec, self.text, self.reads = net.spec, text, {}
        self.arrays = dict(net.spec.parameter_arrays())

    def fail(self, position: int, problem: str, hint: str = "use x[n,...], a<l>[n,...], z<l>[n,...], "
             "delta<l>[n,...] or a parameter entry") -> None:
        raise SpecError(format_error(FIELD, self.text, position, problem, hint))

    def __call__(self, name: str, indices: tuple[int, ...], position: int) -> sympy.Symbol:
        idx = tuple(i - 1 for i in indices)
        if name in self.arrays:
            self._check(name, idx, self.arrays[name], position)
            return self._symbol(("param", name, idx))
        m = _QUANTITY.match(name)
        if not m or (m.group(1) in "xy") == bool(m.group(2)):
            self.fail(position, f"unknown name {name!r}")
        kind, layer = m.group(1), int(m.group(2) or 0)
        if kind == "x":
            kind, layer = "a", 0
        shape = self._shape(kind, layer, name, position)
        self._check(name, idx, shape, position)
        return self._symbol((kind, layer, idx))

    def _shape(self, kind: str, layer: int, name: str, position: int) -> tuple[int, ...]:
        spec = self.spec
        if kind == "y":
            return (spec.batch,) + ((spec.steps,) if spec.every_step else ()) + (spec.output_size,)
        low = 0 if kind == "a" else 1
        if not low <= layer <= spec.depth:
            self.fail(position, f"layer {layer} of {name!r} is not in {low}..{spec.depth}")
        if kind == "delta" and spec.layers[layer - 1].kind.recurrent:
            self.fail(position, f"{name} of an {spec.layers[layer - 1].kind.name} layer is inside its "
                                f"recurrence (the delta grad prints there is dL/dz_t of the step)",
                      "claim with its a, W, R, b and x, or with the layers' deltas above it")
        return (spec.batch,) + (spec.input if layer == 0 else spec.layers[layer - 1].output)

    def _check(self, name, idx, shape, position) -> None:
        if len(idx) != len(shape):
            self.fail(position, f"{name} takes {len(shape)} indices"
                      + (" (the example n first)" if name[0] in "xyazd" and name not in self.arrays else ""))
        for i, n in zip(idx, shape):
            if not 0 <= i < n:
                self.fail(position, f"index {i + 1} of {name} is not in 1..{n}")

    def _symbol(self, read) -> sympy.Symbol:
        sym = self.reads.setdefault(read, sympy.Symbol(f"q{len(self.reads)}", real=True))
        return sym


def check_stack_claim(net, param: str, expr: str) -> StackVerdict:
    """Judge `expr` as a formula for dL/dparam of a stack (see the module docstring)."""
    name, idx = _parameter(net, param)
    resolver = _Resolver(net, expr)
    functions = {**DEFAULT_FUNCTIONS, **ACTIVATION_FUNCTIONS}
    claim = parse_expression(expr, field=FIELD, names={}, functions=functions, indexed=resolver)
    spec, ev = net.spec, net.evaluator
    values = net.values()
    labels = (["the spec's values"] if values is not None else []) + [
        f"random point {i + 1} (seed {SEED})" for i in range(POINTS)]
    points = list(zip(labels, stack_points(spec, values, POINTS, SEED)))
    ratios = []
    for label, point in points:
        t = ev.trace(point)
        true = float(t.grads[name][idx])
        numbers = {sym: _read(read, point, t.z, t.a, t.delta) for read, sym in resolver.reads.items()}
        claimed = complex(claim.xreplace({s: sympy.Float(v, 30) for s, v in numbers.items()}).evalf(30))
        if abs(claimed.imag) > 0 or not abs(claimed.real - true) <= ATOL + RTOL * abs(true):
            ratios.append(claimed.real / true if true else None)
            return StackVerdict(param, expr, False, len(points),
                                {"point": label, "claimed": claimed.real, "true": true}, _diagnose(ratios))
        ratios.append(1.0)
    return StackVerdict(param, expr, True, len(points))


def _read(read, point, z, a, delta) -> float:
    kind = read[0]
    if kind == "param":
        return float(point.params[read[1]][read[2]])
    if kind == "y":
        return float(point.y[read[2]])
    source = {"a": a, "z": z, "delta": delta}[kind]
    return float(np.real(source[read[1]][read[2]]))


def _diagnose(ratios) -> str | None:
    r = ratios[-1]
    if r is None:
        return "the true gradient is 0 here"
    if r and abs(r - round(r)) < 1e-9 and round(r) not in (0, 1):
        return f"the claim is {round(r)} times the gradient here (a 1/m, or a sum counted twice?)"
    if r and abs(1 / r - round(1 / r)) < 1e-9 and round(1 / r) not in (0, 1):
        return f"the claim is 1/{round(1 / r)} of the gradient here"
    return None


def _parameter(net, text: str) -> tuple[str, tuple[int, ...]]:
    m = _ENTRY.match(text.strip()) if isinstance(text, str) else None
    arrays = dict(net.spec.parameter_arrays())
    name = m and f"{m.group(1)}{m.group(2)}{m.group(3)}"
    if isinstance(text, str) and text.strip() in arrays:
        raise SpecError(f"PARAM {text!r}: a whole matrix is claimed on layers = [...] networks only; for a "
                        f"[[layer]] network claim one entry, like {text.strip()}[{','.join(['1'] * len(arrays[text.strip()]))}]")
    if not m or name not in arrays:
        raise SpecError(f"PARAM {text!r} is not a parameter entry of this network, like "
                        f"{net.spec.parameter_names()[0]!r} (arrays: {', '.join(arrays)})")
    idx = tuple(int(i) - 1 for i in m.group(4).split(","))
    shape = arrays[name]
    if len(idx) != len(shape) or any(not 0 <= i < n for i, n in zip(idx, shape)):
        raise SpecError(f"PARAM {text!r}: {name} is {'x'.join(map(str, shape))}; give "
                        f"{len(shape)} indices, each from 1")
    return name, idx
