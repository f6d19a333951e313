"""The names a user types for network quantities, read into `NetSymbol`s.

Two spellings name the same quantity: the bracket names of tables, claims and
--params (``W1[1,2]``, ``x[1]``, ``delta2[1]``) and SymPy's own symbol names
the API prints (``W1_1_2``, ``x_1``, ``delta2_1``).  Symbols are created with
``real=True``, so ``sympy.Symbol("x_1")`` is a different symbol that matches
nothing in a derived expression; `symbol_named` is the way to get the real one.
"""

from __future__ import annotations

import re

from ..errors import SpecError
from .model import NetSymbol, SymbolicModel

_KINDS = "delta|x|y|W|b|z|a"
_BRACKETS = re.compile(rf"^\s*({_KINDS})(\d*)\s*\[\s*(\d+)\s*(?:,\s*(\d+)\s*)?\]\s*$")
_UNDERSCORES = re.compile(rf"^\s*({_KINDS})(\d*)_(\d+)(?:_(\d+))?\s*$")

EXAMPLES = "'x[1]', 'W1[1,2]', 'b1[1]', 'z1[1]', 'a1[1]', 'delta1[1]', 'y[1]' (or W1_1_2, x_1)"


def bracket_name(text: str) -> str:
    """W1_1_2 -> W1[1,2], b2_1 -> b2[1]; any other text unchanged."""
    m = _UNDERSCORES.match(text) if isinstance(text, str) else None
    if not m:
        return text
    kind, layer, j, k = m.groups()
    return f"{kind}{layer}[{j}{'' if k is None else ',' + k}]"


def symbol_named(model: SymbolicModel, text: str) -> NetSymbol:
    """The network's symbol for a name, its layer and indices checked against the sizes."""
    m = _BRACKETS.match(bracket_name(text)) if isinstance(text, str) else None
    if not m:
        raise SpecError(f"symbol {text!r} is not a name like {EXAMPLES}")
    kind, layer, j, k = m.group(1), m.group(2), int(m.group(3)), m.group(4)
    n, L = model.n, model.L
    if kind in ("x", "y"):
        if layer:
            raise SpecError(f"symbol {text!r}: {kind} has no layer number (write {kind}[{j}])")
        size, what = (n[0], "inputs") if kind == "x" else (n[L], "outputs")
    else:
        low = 0 if kind == "a" else 1  # a0[k] is the input x[k]
        if not layer or not low <= int(layer) <= L:
            raise SpecError(f"symbol {text!r}: {kind} needs a layer in {low}..{L}, e.g. {kind}1[{j}]")
        l = int(layer)
        size, what = n[l], f"neurons in layer {l}"
    if (kind == "W") != (k is not None):
        raise SpecError(f"symbol {text!r}: W takes two indices [j,k], {kind} takes one")
    if kind == "W" and model.row:
        size, what = n[l - 1], f"neurons in layer {l - 1}"
    if not 1 <= j <= size:
        raise SpecError(f"symbol {text!r}: index {j} is not in 1..{size} ({size} {what})")
    if kind == "W":
        return _weight(model, text, l, j, int(k))
    if kind in ("x", "y"):
        return getattr(model, kind)(j)
    return model.a(l, j) if kind == "a" else getattr(model, kind)(l, j)


def _weight(model: SymbolicModel, text: str, l: int, first: int, second: int) -> NetSymbol:
    """W<l>[j,k] (column layout) or W<l>[k,j] (row layout): the first index is checked."""
    size = model.n[l] if model.row else model.n[l - 1]
    if not 1 <= second <= size:
        raise SpecError(f"symbol {text!r}: column {second} is not in 1..{size}")
    return model.W(l, second, first) if model.row else model.W(l, first, second)
