"""Stage 5a: what `derive grad` prints, as a JSON object or a readable table.

The JSON is a contract other tools read (issue #2): one object with "loss"
and "gradients", every parameter named W<l>[j,k] / b<l>[j], each with
"value" (float, or null without values), "latex" (the simplified factored
form) and "expression" (SymPy's string of the explicit form, or of the
factored form where the explicit one is too large).  It is streamed entry by
entry, so an 8,704-parameter network starts printing at once and never
holds the whole document as one string.

Printing is the slow part (SymPy orders the terms of every sum it prints),
so `Printed` prints each neuron's delta once where the explicit form is out
of reach: dL/dW(l)_jk = a(l-1)_k delta(l)_j and dL/db(l)_j = delta(l)_j
share it, which turns 8,704 printings of a 16-term sum into 512.
"""

from __future__ import annotations

import json
import math
import re
from typing import IO, Iterator, TYPE_CHECKING

from ..calculus.model import Param
from .printing import to_latex, to_text

if TYPE_CHECKING:
    from ..api import Network


def _num(v: float | None):
    """A float for JSON; non-finite values become null (JSON has no NaN)."""
    return v + 0.0 if v is not None and math.isfinite(v) else None  # + 0.0: no "-0.0"


class Printed:
    """(latex, expression, text) of every gradient, each delta printed once."""

    def __init__(self, net: Network):
        self.net = net
        self._deltas: dict[tuple[int, int], tuple[str, str, str, bool]] = {}

    def __repr__(self) -> str:
        return f"Printed({self.net!r}, {len(self._deltas)} deltas printed)"

    def forms(self, p: Param) -> tuple[str, str, str]:
        d = self.net.derivation
        if d.expansion_stop(p.layer) == d.L:  # small enough for the explicit form
            g = self.net.gradient(p)
            return g.latex, g.expression, to_text(g.simplified)
        latex, expression, text, wrap = self._delta(p.layer, p.j)
        if p.kind == "b":
            return latex, expression, text
        a = self.net.model.a(p.layer - 1, p.k)
        if wrap:
            latex, expression, text = rf"\left({latex}\right)", f"({expression})", f"({text})"
        return f"{to_latex(a)} {latex}", f"{a}*{expression}", f"{to_text(a)}*{text}"

    def _delta(self, layer: int, j: int):
        if (layer, j) not in self._deltas:
            delta = Param(layer, "b", j)  # dL/db(l)_j is delta(l)_j, bias or not
            simplified = self.net.simplifier.simplified(delta)
            factored = self.net.derivation.expanded(delta)
            latex = to_latex(simplified)
            wrap = simplified.is_Add or factored.is_Add or latex.startswith("-")
            self._deltas[(layer, j)] = (latex, str(factored), to_text(simplified), wrap)
        return self._deltas[(layer, j)]


def grad_json_chunks(net: Network, values=None) -> Iterator[str]:
    """The `derive grad --json` object, as text chunks in order."""
    vals = net.values(values)
    loss, grads = net.loss_and_gradients(vals) if vals is not None else (None, {})
    yield '{"loss": ' + json.dumps(_num(loss)) + ', "gradients": {'
    printed = Printed(net)
    for i, p in enumerate(net.params()):
        latex, expression, _ = printed.forms(p)
        entry = {"value": _num(grads.get(p.name)), "latex": latex, "expression": expression}
        yield ("" if i == 0 else ", ") + json.dumps(p.name) + ": " + json.dumps(entry)
    yield "}}\n"


def write_grad_json(net: Network, out: IO[str], values=None) -> None:
    for chunk in grad_json_chunks(net, values):
        out.write(chunk)


def grad_table(net: Network, values=None) -> Iterator[str]:
    """Lines of a readable table: parameter, value, simplified formula."""
    vals = net.values(values)
    loss, grads = net.loss_and_gradients(vals) if vals is not None else (None, {})
    spec = net.spec
    yield f"{spec.title or spec.describe()}"
    if loss is not None:
        yield f"loss L = {loss + 0.0:.9g}"  # + 0.0: no "-0"
    width = max(len(p.name) for p in net.params())
    yield f"{'parameter':<{max(width, 9)}}  {'dL/dparam':>16}  simplified factored form"
    printed = Printed(net)
    used: set[tuple[int, int]] = set()
    for p in net.params():
        value = f"{grads[p.name]:16.9g}" if p.name in grads else f"{'-':>16}"
        text = printed.forms(p)[2]
        used.update((int(l), int(j)) for l, j in _DELTA.findall(text))
        yield f"{p.name:<{max(width, 9)}}  {value}  {text}"
    yield from delta_lines(printed, used)


_DELTA = re.compile(r"delta(\d+)\[(\d+)\]")


def delta_lines(printed: Printed, used: set[tuple[int, int]]) -> Iterator[str]:
    """"where delta2[1] = ..." for every delta the table's formulas name, and for the
    deltas those definitions name in turn, from the output layer down.  delta(l)_j is
    dL/db(l)_j, already printed for the table: nothing is printed twice."""
    todo, defined = sorted(used), {}
    while todo:
        l, j = todo.pop()
        if (l, j) in defined:
            continue
        text = printed._delta(l, j)[2]
        defined[(l, j)] = text
        todo.extend((int(m), int(i)) for m, i in _DELTA.findall(text) if (int(m), int(i)) not in defined)
    if defined:
        yield "where (delta(l) = dL/dz(l), from the output layer down)"
    for (l, j) in sorted(defined, key=lambda key: (-key[0], key[1])):
        yield f"  delta{l}[{j}] = {defined[(l, j)]}"
