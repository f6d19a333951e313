"""Printing by composition: each neuron's gradient printed once, each parameter composed.

dL/dW(l)_jk = delta(l)_j a(l-1)_k and dL/db(l)_j = delta(l)_j, so the n(l-1) weights
of neuron j share everything but their input symbol.  A SymPy printer call costs
about 0.5 ms on such a product; on 784-30-10 that is most of `derive grad`.  So
each neuron's product delta(l)_j a(l-1)_1 is printed once and cut at the text
of a(l-1)_1 into a template `head + SLOT + tail`; the weight k is then
`head + text(a(l-1)_k) + tail`, a string concatenation.

Why that is exactly the printer's output for every k: SymPy orders a product's
factors by class and then by name, and a(l-1)_k's name (x_k, a<l-1>_k) is
decided against the names in delta(l)_j (layers l and up, y, W) before its
index is reached (nor against neuron j's), and the printers print a symbol
alone the same way whatever its neighbours.  This is checked, not assumed: a
template whose slot text is not found exactly once is not used, and each
layer's first template is compared with the printer at the last k; where
that fails the layer is printed per parameter, slowly but never wrong.
tests/test_report.py compares every composed string with the printer's on
small networks of every activation and loss.

The explicit form (x, y, W, b alone) is decided once per neuron too: its
estimated size (explicit.py) is the same for every k, since every a(l-1)_k
writes out to the same size.  Only where it is small is it built per parameter.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, TYPE_CHECKING

import sympy

from ..calculus.model import Param
from .batchform import batch_latex, batch_text, regularizer_term
from .printing import to_latex, to_text

if TYPE_CHECKING:
    from ..api import Network

#: The three printed forms of a gradient in `derive grad`, and their printers.
PRINTERS: dict[str, Callable[[sympy.Expr], str]] = {"latex": to_latex, "expression": str, "text": to_text}


class Composer:
    """The printed forms (latex, expression, text) of every gradient of a network,
    each neuron's delta printed once (see the module docstring)."""

    def __init__(self, net: Network):
        self.net = net
        self._templates: dict[tuple[int, int, str], tuple[str, str] | None] = {}
        self._symbols = lru_cache(maxsize=None)(self._symbol_text)
        self._deltas = lru_cache(maxsize=None)(self._delta_expr)
        self._layer_ok: dict[tuple[int, str], bool] = {}
        self._small = lru_cache(maxsize=None)(self._explicit_is_small)
        self._printed_delta = lru_cache(maxsize=None)(self._print_delta)

    def __repr__(self) -> str:
        return f"Composer({self.net!r}, {len(self._templates)} templates)"

    def forms(self, p: Param, kinds=("latex", "expression", "text")) -> tuple[str, ...]:
        """The asked-for printed forms of dL/dp, in the order of `kinds`."""
        return tuple(self.form(p, kind) for kind in kinds)

    def whole(self, p: Param, kind: str) -> str:
        """dL/dp of the network's whole loss in form `kind`: the per-example form (`form`),
        summed over a minibatch and scaled, plus the regulariser's term (calculus/batch.py).
        The same string as `form` for one example without a regulariser."""
        per_example, spec = self.form(p, kind), self.net.spec
        if spec.training.single:
            return per_example
        reg = regularizer_term(self.net, p, kind)
        if kind == "latex":
            return batch_latex(self.net.model, per_example, reg)
        return batch_text(self.net.model, per_example, reg)

    def delta(self, layer: int, j: int, kind: str = "text") -> str:
        """delta(l)_j printed in form `kind` (once per neuron; dL/db(l)_j, bias or not)."""
        return self._printed_delta(layer, j, kind)

    def form(self, p: Param, kind: str) -> str:
        if kind == "expression" and self._small(p.layer, p.j, p.kind):
            return self.net.gradient(p).expression  # small: the explicit form, per parameter
        if p.kind == "b":
            return self._printed_delta(p.layer, p.j, kind)
        template = self._template(p.layer, p.j, kind)
        if template is None:  # the check failed: the printer, per parameter
            return PRINTERS[kind](self._delta(p.layer, p.j, kind) * self.net.model.a(p.layer - 1, p.k))
        head, tail = template
        return head + self._symbols(p.layer - 1, p.k, kind) + tail

    # -- once per neuron -------------------------------------------------------
    def _delta(self, layer: int, j: int, kind: str) -> sympy.Expr:
        """delta(l)_j as the form `kind` prints it: simplified for latex and text,
        factored for expression."""
        return self._deltas(layer, j, kind == "expression")

    def _delta_expr(self, layer: int, j: int, factored: bool) -> sympy.Expr:
        p = Param(layer, "b", j)  # dL/db(l)_j is delta(l)_j, bias or not
        return self.net.derivation.expanded(p) if factored else self.net.simplifier.simplified(p)

    def _print_delta(self, layer: int, j: int, kind: str) -> str:
        return PRINTERS[kind](self._delta(layer, j, kind))

    def _template(self, layer: int, j: int, kind: str) -> tuple[str, str] | None:
        key = (layer, j, kind)
        if key not in self._templates:
            self._templates[key] = self._make_template(layer, j, kind)
        return self._templates[key]

    def _make_template(self, layer: int, j: int, kind: str) -> tuple[str, str] | None:
        if self._layer_ok.get((layer, kind)) is False:
            return None
        slot = self._symbols(layer - 1, 1, kind)
        printed = PRINTERS[kind](self._delta(layer, j, kind) * self.net.model.a(layer - 1, 1))
        if printed.count(slot) != 1:
            return None
        head, tail = printed.split(slot)
        if (layer, kind) not in self._layer_ok:  # the layer's first template: check it at the last k
            k = self.net.model.n[layer - 1]
            last = PRINTERS[kind](self._delta(layer, j, kind) * self.net.model.a(layer - 1, k))
            self._layer_ok[(layer, kind)] = head + self._symbols(layer - 1, k, kind) + tail == last
        return (head, tail) if self._layer_ok[(layer, kind)] else None

    def _symbol_text(self, layer: int, k: int, kind: str) -> str:
        return PRINTERS[kind](self.net.model.a(layer, k))

    def _explicit_is_small(self, layer: int, j: int, kind: str) -> bool:
        """Whether this neuron's W (or b) gradients have an explicit form: the same for every k."""
        d = self.net.derivation
        if d.expansion_stop(layer) < d.L:
            return False  # deltas stay symbolic: the written-out form is too large
        p = Param(layer, kind, j, 1 if kind == "W" else None)
        return self.net.gradient(p).explicit is not None

