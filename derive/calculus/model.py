"""Stage 2: the symbolic model of a network.

Every quantity of the network is a `NetSymbol`: a SymPy Symbol that knows its
kind (x, y, W, b, z, a, delta), its layer and its 1-based indices, so the
printer can typeset it (W^{(2)}_{13}) and the derivation can reason about it.
The forward pass is stored as definitions over these symbols, one layer at a
time (z(l) = W(l) a(l-1) + b(l), a(l) = f_l(z(l))), never written out: the
written-out closed form grows exponentially with depth (see explicit.py).

Symbols are created on demand and cached by SymPy, so a 32-layer width-16
model costs nothing until a stage asks for a symbol.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import sympy

from ..errors import SpecError
from ..spec.registry import X
from ..spec.network import NetworkSpec

KINDS = ("x", "y", "W", "b", "z", "a", "delta")
_NAME = re.compile(r"^(x|y|W|b|z|a|delta)(\d*)_([\d_]+)$")


class NetSymbol(sympy.Symbol):
    """A named network quantity; its SymPy name encodes kind, layer, indices.

    ``NetSymbol.make("W", 2, 1, 3)`` is W(2)_13 with SymPy name ``W2_1_3``.
    Inputs and targets have no layer: ``make("x", None, 2)`` is ``x_2``.
    """

    @classmethod
    def make(cls, kind: str, layer: int | None, *idx: int) -> "NetSymbol":
        assert kind in KINDS, kind
        name = f"{kind}{'' if layer is None else layer}_{'_'.join(map(str, idx))}"
        return cls(name, real=True)

    @property
    def _parts(self):
        m = _NAME.match(self.name)
        assert m, self.name
        return m.group(1), (int(m.group(2)) if m.group(2) else None), tuple(
            int(i) for i in m.group(3).split("_"))

    @property
    def kind(self) -> str:
        return self._parts[0]

    @property
    def layer(self) -> int | None:
        return self._parts[1]

    @property
    def idx(self) -> tuple[int, ...]:
        """The indices in the column layout's order: W(l)_jk joins k in layer l-1 to j in l."""
        return self._parts[2]

    @property
    def shown_idx(self) -> tuple[int, ...]:
        """The indices in the order the user's layout writes them (what printers show)."""
        return self._parts[2]


class RowWeight(NetSymbol):
    """A weight of a row-layout network: named ``W<l>_<k>_<j>`` as the user writes
    W<l>[k,j], while `idx` stays (j, k) like every other weight, so no stage but
    the printers needs to know the layout."""

    @classmethod
    def make_row(cls, layer: int, j: int, k: int) -> "RowWeight":
        return cls(f"W{layer}_{k}_{j}", real=True)

    @property
    def idx(self) -> tuple[int, ...]:
        return self._parts[2][::-1]


def param_name(kind: str, layer: int, j: int, k: int | None = None, row: bool = False) -> str:
    """The one way a parameter's name is written: W2[1,3], b1[2] (1-based, as users type it);
    in the row layout the weight joining k to j is W2[k,j]."""
    if kind != "W":
        return f"b{layer}[{j}]"
    return f"W{layer}[{k},{j}]" if row else f"W{layer}[{j},{k}]"


@dataclass(frozen=True, order=True)
class Param:
    """A trainable parameter: W(layer)[j, k] or b(layer)[j], 1-based, j in layer l and
    k in layer l-1 whatever the layout; `row` (not part of its identity) says the
    name is written in the row layout, W(layer)[k, j]."""

    layer: int
    kind: str
    j: int
    k: int | None = None
    row: bool = field(default=False, compare=False, repr=False)

    @property
    def name(self) -> str:
        return param_name(self.kind, self.layer, self.j, self.k, self.row)

    def __repr__(self) -> str:
        return f"Param({self.name})"


#: A parameter name as users type it: W2[1,3], b1[2]; `*` for every index (W2[*], b1[*], W2[1,*]).
PARAM_NAME = re.compile(r"^\s*([Wb])\s*(\d+)\s*\[\s*(\*|\d+)\s*(?:,\s*(\*|\d+)\s*)?\]\s*$")


def split_names(text: str) -> list[str]:
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


class SymbolicModel:
    """The forward pass of a `NetworkSpec` as definitions over `NetSymbol`s."""

    def __init__(self, spec: NetworkSpec):
        self.spec = spec
        self.n = spec.layers
        self.L = spec.depth
        self.row = spec.row_layout

    def weight(self, l: int, j: int, k: int) -> Param:
        """The parameter W(l)_jk, named in the network's layout."""
        return Param(l, "W", j, k, self.row)
    def __repr__(self) -> str:
        return f"SymbolicModel({self.spec.describe()})"

    # -- symbols -----------------------------------------------------------
    def x(self, k: int) -> NetSymbol:
        return NetSymbol.make("x", None, k)

    def y(self, j: int) -> NetSymbol:
        return NetSymbol.make("y", None, j)

    def W(self, l: int, j: int, k: int) -> NetSymbol:
        """W(l)_jk, from neuron k of layer l-1 to neuron j of layer l (either layout)."""
        return RowWeight.make_row(l, j, k) if self.row else NetSymbol.make("W", l, j, k)

    def b(self, l: int, j: int) -> NetSymbol:
        return NetSymbol.make("b", l, j)

    def z(self, l: int, j: int) -> NetSymbol:
        return NetSymbol.make("z", l, j)

    def a(self, l: int, j: int) -> sympy.Symbol:
        """a(l)_j; a(0)_k is the input x_k."""
        return self.x(j) if l == 0 else NetSymbol.make("a", l, j)

    def delta(self, l: int, j: int) -> NetSymbol:
        return NetSymbol.make("delta", l, j)

    def symbol(self, p: Param) -> NetSymbol:
        return self.W(p.layer, p.j, p.k) if p.kind == "W" else self.b(p.layer, p.j)

    # -- parameters --------------------------------------------------------
    def params(self):
        """Every parameter, layer by layer: W(l) row-major as the layout writes it, then b(l)."""
        for l in range(1, self.L + 1):
            rows, cols = (self.n[l - 1], self.n[l]) if self.row else (self.n[l], self.n[l - 1])
            for r in range(1, rows + 1):
                for c in range(1, cols + 1):
                    yield self.weight(l, c, r) if self.row else self.weight(l, r, c)
            if self.spec.bias:
                for j in range(1, self.n[l] + 1):
                    yield Param(l, "b", j)

    def param(self, name: str, field: str = "parameter") -> Param:
        """Parse one parameter name (``W2[1,3]``, ``b1[2]``) and check its range; an error
        names the position of the offending part."""
        params = self.select_one(name, field, wildcards=False)
        return params[0]

    def select(self, text: str, field: str = "--params") -> list[Param]:
        """The parameters a comma list of names with wildcards selects, in order, without repeats."""
        chosen: list[Param] = []
        for item in split_names(text):
            chosen += [p for p in self.select_one(item, f"{field} item") if p not in chosen]
        return chosen

    def select_one(self, name: str, field: str, wildcards: bool = True) -> list[Param]:
        """Every parameter one name selects: one, or all the indices a `*` stands for."""
        m = PARAM_NAME.match(name) if isinstance(name, str) else None
        if not m or (not wildcards and "*" in name):
            example = "'W1[1,2]', 'W2[*]' or 'b1[*]'" if wildcards else "'W1[1,2]' or 'b2[1]'"
            raise SpecError(f"{field} {name!r} is not a parameter name like {example} (at position 1)")
        kind, l, j, k = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        if kind == "W" and k is None and j == "*":  # W2[*]: every row and column
            k = "*"
        where = lambda g: f" (at position {m.start(g) + 1})"  # noqa: E731
        if (kind == "W") != (k is not None):
            pair = "[k,j]" if self.row else "[j,k]"
            raise SpecError(f"{field} {name!r}: W takes two indices {pair}, b takes one [j]{where(1)}")
        if not 1 <= l <= self.L:
            raise SpecError(f"{field} {name!r}: layer {l} is not in 1..{self.L}{where(2)}")
        if kind == "b" and not self.spec.bias:
            raise SpecError(f"{field} {name!r}: this network has no biases (bias = false){where(1)}")
        if kind == "b":
            return [Param(l, "b", r) for r in
                    self._indices(name, field, j, self.n[l], f"row j={j}", f"layer {l}", where(3))]
        if self.row:  # W(l)[k,j]: row k of layer l-1, column j of layer l
            rows = self._indices(name, field, j, self.n[l - 1], f"row k={j}", f"layer {l - 1}", where(3))
            cols = self._indices(name, field, k, self.n[l], f"column j={k}", f"layer {l}", where(4))
            return [self.weight(l, c, r) for r in rows for c in cols]
        rows = self._indices(name, field, j, self.n[l], f"row j={j}", f"layer {l}", where(3))
        cols = self._indices(name, field, k, self.n[l - 1], f"column k={k}", f"layer {l - 1}", where(4))
        return [self.weight(l, r, c) for r in rows for c in cols]

    @staticmethod
    def _indices(name, field, text, size, what, layer, where) -> range | list[int]:
        if text == "*":
            return range(1, size + 1)
        if not 1 <= int(text) <= size:
            raise SpecError(f"{field} {name!r}: {what} is not in 1..{size} ({layer} has {size} neurons){where}")
        return [int(text)]

    # -- forward definitions ----------------------------------------------
    def z_definition(self, l: int, j: int) -> sympy.Expr:
        """z(l)_j = sum_k W(l)_jk a(l-1)_k + b(l)_j."""
        s = sympy.Add(*[self.W(l, j, k) * self.a(l - 1, k) for k in range(1, self.n[l - 1] + 1)])
        return s + self.b(l, j) if self.spec.bias else s

    def activation_of(self, l: int, j: int, zs: list[sympy.Expr] | None = None) -> sympy.Expr:
        """a(l)_j as a function of layer l's pre-activations (symbols by default).

        Elementwise: f_l(z_j); softmax: exp(z_j) / sum_m exp(z_m).
        """
        zs = zs if zs is not None else [self.z(l, m) for m in range(1, self.n[l] + 1)]
        row = self.spec.activations[l - 1]
        if row.vector:
            return sympy.exp(zs[j - 1]) / sympy.Add(*[sympy.exp(v) for v in zs])
        return row.definition.xreplace({X: zs[j - 1]})

    def loss_of(self, outputs: list[sympy.Expr] | None = None) -> sympy.Expr:
        """The loss for one example, over output symbols a(L) by default."""
        nL = self.n[self.L]
        outs = outputs if outputs is not None else [self.a(self.L, j) for j in range(1, nL + 1)]
        return sympy.Add(*[self.spec.loss.per_output(outs[j - 1], self.y(j), nL)
                           for j in range(1, nL + 1)])

    @cached_property
    def loss(self) -> sympy.Expr:
        return self.loss_of()

    def flat_loss(self) -> sympy.Expr:
        """The loss written out in x, y, W, b (exponential in depth: small nets only)."""
        prev = [self.x(k) for k in range(1, self.n[0] + 1)]
        for l in range(1, self.L + 1):
            subs = {self.a(l - 1, k): prev[k - 1] for k in range(1, self.n[l - 1] + 1)}
            zs = [self.z_definition(l, j).xreplace(subs) for j in range(1, self.n[l] + 1)]
            prev = [self.activation_of(l, j, zs) for j in range(1, self.n[l] + 1)]
        return self.loss_of(prev)
