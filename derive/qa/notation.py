"""The notation of a claim: what `derive claim` lets a formula say, as SymPy.

A claim is parsed by the whitelist parser (spec/expressions.py: nothing is
evaluated as Python) over the network's own quantities, in either spelling:

    x[k]  y[j]  W<l>[j,k]  b<l>[j]  z<l>[j]  a<l>[j]  delta<l>[j]   (a0[k] is x[k])
    x_k   y_j   W<l>_j_k   b<l>_j   z<l>_j   a<l>_j   delta<l>_j    (the API's names)

plus ``L`` (the loss), numbers, the parser's functions, every registry
activation by name and its derivative in prime notation, ``sigmoid'(z1[1])``.

A ``delta<l>[j]`` means dL/dz(l)_j.  It is parsed to a `DeltaName`, not to the
derivation's own delta symbol, because a claim written in deltas would
otherwise be checked against the very equations it names: the checker gives
a `DeltaName` the value of central differences of the forward pass
(points.py), and only the symbolic proof writes it out by the delta equations.

The prime is not Python, so before parsing ``f'`` becomes ``f`` plus one
identifier character that the text does not otherwise use (same length, so
positions in messages stay right), bound to the derivative of the row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import sympy

from ..calculus.model import Param
from ..check.points import LOSS
from ..errors import SpecError
from ..spec.expressions import DEFAULT_FUNCTIONS, format_error, parse_expression
from ..spec.registry import ACTIVATION_FUNCTIONS, ACTIVATIONS, X

FIELD = "EXPR"
#: Indices each kind takes; a layer is required for W, b, z, a, delta and absent for x, y.
_KINDS = {"x": 1, "y": 1, "W": 2, "b": 1, "z": 1, "a": 1, "delta": 1}
_INDEXED = re.compile(r"^(x|y|W|b|z|a|delta)(\d*)$")
_API_NAME = re.compile(r"^(x|y|W|b|z|a|delta)(\d*)_(\d+(?:_\d+)*)$")
_PRIME = re.compile(r"\b([A-Za-z_]\w*)('+)(?=\s*\()")
_USAGE = "use x[k], y[j], W<l>[j,k], b<l>[j], z<l>[j], a<l>[j], delta<l>[j], L"


class DeltaName(sympy.Symbol):
    """delta<l>[j] as a claim writes it: dL/dz(l)_j, named ``dLdz<l>_<j>``."""

    @classmethod
    def make(cls, layer: int, j: int) -> "DeltaName":
        return cls(f"dLdz{layer}_{j}", real=True)

    @property
    def layer(self) -> int:
        return int(self.name[4:].split("_")[0])

    @property
    def j(self) -> int:
        return int(self.name.split("_")[1])


def deltas_of(expr: sympy.Expr) -> list[DeltaName]:
    """The `DeltaName`s a parsed claim mentions, deepest layer first."""
    return sorted((s for s in expr.free_symbols if isinstance(s, DeltaName)),
                  key=lambda s: (s.layer, s.j))


class _Resolver:
    """Turns a name and indices into the model's symbol, or a positioned error."""

    def __init__(self, net, text: str):
        self.net, self.model, self.text = net, net.model, text

    def fail(self, position: int, problem: str, hint: str = "") -> None:
        raise SpecError(format_error(FIELD, self.text, position, problem, hint))

    def __call__(self, name: str, indices: tuple[int, ...], position: int) -> sympy.Expr:
        m = _INDEXED.match(name)
        kind, layer = (m.group(1), m.group(2)) if m else (None, "")
        if kind is None or (layer == "") != (kind in "xy"):
            self.fail(position, f"unknown name {name!r}", _USAGE)
        if len(indices) != _KINDS[kind]:
            count = _KINDS[kind]
            self.fail(position, f"{name} takes {count} ind{'ices' if count > 1 else 'ex'}, "
                                f"got {len(indices)}")
        l = int(layer) if layer else None
        self._check_range(kind, l, name, indices, position)
        model = self.model
        if kind == "W":
            return model.W(l, *indices)
        j = indices[0]
        return {"x": model.x, "y": model.y, "b": lambda j: model.b(l, j),
                "z": lambda j: model.z(l, j), "a": lambda j: model.a(l, j),
                "delta": lambda j: DeltaName.make(l, j)}[kind](j)

    def _check_range(self, kind, l, name, indices, position) -> None:
        model = self.model
        lo = 0 if kind == "a" else 1
        if l is not None and not lo <= l <= model.L:
            self.fail(position, f"layer {l} of {name!r} is not in {lo}..{model.L}")
        if kind == "b" and not self.net.spec.bias:
            self.fail(position, "this network has no biases (bias = false)")
        sizes = {"x": [model.n[0]], "y": [model.n[-1]]}.get(kind) or (
            [model.n[l], model.n[l - 1]] if kind == "W" else [model.n[l]])
        for v, size in zip(indices, sizes):
            if not 1 <= v <= size:
                self.fail(position, f"index {v} of {name}{list(indices)} is not in 1..{size}")


class _Names(Mapping):
    """L and the API's names (x_1, W2_1_3, delta1_2): resolved on demand, so a big
    network costs no dictionary; iterating gives a few examples for hints."""

    def __init__(self, resolver: _Resolver):
        self.resolver = resolver

    def __contains__(self, name) -> bool:
        return name == "L" or bool(isinstance(name, str) and _API_NAME.match(name))

    def __getitem__(self, name: str) -> sympy.Expr:
        if name == "L":
            return LOSS
        m = _API_NAME.match(name) if isinstance(name, str) else None
        if m is None:
            raise KeyError(name)
        where = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", self.resolver.text)
        indices = tuple(int(i) for i in m.group(3).split("_"))
        return self.resolver(m.group(1) + m.group(2), indices, where.start() if where else 0)

    def __iter__(self):
        return iter(["L", "x_1", "y_1", "W1_1_1", "b1_1", "z1_1", "a1_1", "delta1_1"])

    def __len__(self) -> int:
        return 8


def _derivative(row):
    derivative = row.derivative()
    return lambda v: derivative.xreplace({X: v})


#: f'(z) for every elementwise registry activation.
PRIMES = {name: _derivative(row) for name, row in ACTIVATIONS.items() if not row.vector}


def spell_primes(text: str) -> tuple[str, dict, dict]:
    """(text with each f' spelled as an identifier, the functions it adds, alias -> f')."""
    functions, aliases = {}, {}

    def replace(m: re.Match) -> str:
        name = m.group(1)
        if len(m.group(2)) > 1:
            raise SpecError(format_error(FIELD, text, m.start(2) + 1, "only first derivatives "
                                         f"f'(z) can be written with a prime, not {name}{m.group(2)}"))
        if name not in PRIMES:
            vector = name in ACTIVATIONS
            problem = (f"{name}' is not elementwise (write its Jacobian a_i(delta_im - a_m) "
                       f"with a<l>[i])" if vector else f"{name} is not an activation, so {name}' is not defined")
            raise SpecError(format_error(FIELD, text, m.start(1), problem,
                                         "the prime notation f'(z) is for " + ", ".join(PRIMES)))
        alias = next(name + c for c in "_0123456789QZ" if name + c not in text)  # text's own words stay
        functions[alias], aliases[alias] = PRIMES[name], name + "'"
        return alias

    source = _PRIME.sub(replace, text)
    # An odd quote after a name or bracket is a prime the parser would call a string.
    stray = re.search(r"(?<=[\w\])])'", source) if source.count("'") % 2 else None
    if stray:
        raise SpecError(format_error(FIELD, text, stray.start(), "a prime (') must follow an "
                                     "activation name", "write e.g. sigmoid'(z1[1]) or a1[1]*(1-a1[1])"))
    return source, functions, aliases


def parse_claim(net, text: str) -> sympy.Expr:
    """The claim as a SymPy expression over the model's symbols, `DeltaName`s and `LOSS`."""
    source, primes, aliases = spell_primes(text) if isinstance(text, str) else (text, {}, {})
    resolver = _Resolver(net, source)
    functions = {**DEFAULT_FUNCTIONS, **ACTIVATION_FUNCTIONS, **primes}
    try:
        return parse_expression(source, field=FIELD, names=_Names(resolver), functions=functions,
                                indexed=resolver)
    except SpecError as exc:
        message = str(exc)
        for alias, spelled in aliases.items():
            message = message.replace(repr(alias), f'"{spelled}"').replace(alias, spelled)
        raise SpecError(message) from None


def parse_param(net, text: str) -> Param:
    """`net.model.param`: the one parameter-name parser, its messages naming the position."""
    return net.model.param(text, field="PARAM")
