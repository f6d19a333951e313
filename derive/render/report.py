"""Stage 5a: what `derive grad` prints, as a JSON object or a readable table.

The JSON is a contract other tools read (issue #2): one object with "loss"
and "gradients", every parameter named W<l>[j,k] / b<l>[j], each with
"value" (float, or null without values), "latex" (the simplified factored
form) and "expression" (SymPy's string of the explicit form, or of the
factored form where the explicit one is too large).  It is streamed entry by
entry, so an 8,704-parameter network starts printing at once and never
holds the whole document as one string.

Printing is the slow part (one SymPy printer call per gradient would cost
~0.5 ms each), so compose.py prints each neuron's delta once and composes
every weight's strings from it: cost per neuron, not per parameter.

`--values-only` (`values_only=True`) skips the formulas altogether: the
same object with "value" alone in each entry, as fast as one backward pass.
"""

from __future__ import annotations

import json
import math
import re
from typing import IO, Iterator, TYPE_CHECKING

from .compose import Composer
from ..errors import SpecError

if TYPE_CHECKING:
    from ..api import Network


def _num(v: float | None):
    """A float for JSON; non-finite values become null (JSON has no NaN)."""
    return v + 0.0 if v is not None and math.isfinite(v) else None  # + 0.0: no "-0.0"


def _numbers(net: Network, values, values_only: bool):
    """(loss, gradients by name), or (None, {}) without values; --values-only needs them."""
    vals = net.values(values)
    if vals is None and values_only:
        raise SpecError("--values-only: no values (add a [values] table to the spec or pass --values FILE)")
    return net.loss_and_gradients(vals) if vals is not None else (None, {})


def grad_json_chunks(net: Network, values=None, values_only: bool = False) -> Iterator[str]:
    """The `derive grad --json` object, as text chunks in order."""
    loss, grads = _numbers(net, values, values_only)
    training = training_json(net.spec)
    yield ('{"loss": ' + json.dumps(_num(loss)) + (', "training": ' + json.dumps(training) if training else "")
           + ', "gradients": {')
    composer = Composer(net)
    for i, p in enumerate(net.params()):
        entry = {"value": _num(grads.get(p.name))}
        if not values_only:
            entry["latex"], entry["expression"] = (composer.whole(p, "latex"), composer.whole(p, "expression"))
            if training:  # the per-example form inside the batch sum, for readers that want it
                entry["per_example"] = dict(zip(("latex", "expression"), composer.forms(p, ("latex", "expression"))))
        yield ("" if i == 0 else ", ") + json.dumps(p.name) + ": " + json.dumps(entry)
    yield "}}\n"


def training_json(spec) -> dict | None:
    """The minibatch, layout and regulariser of a non-default spec (None for one example,
    column layout, no regulariser: that JSON is unchanged)."""
    t = spec.training
    if t.single and not t.row:
        return None
    reg = t.regularization
    return {"batch": t.batch, "reduction": t.reduction, "layout": t.layout,
            "l2": reg.l2, "l1": reg.l1, "regularize_biases": reg.biases}


def write_grad_json(net: Network, out: IO[str], values=None, values_only: bool = False) -> None:
    for chunk in grad_json_chunks(net, values, values_only):
        out.write(chunk)


def grad_table(net: Network, values=None, values_only: bool = False) -> Iterator[str]:
    """Lines of a readable table: parameter, value, simplified formula (not with values_only)."""
    loss, grads = _numbers(net, values, values_only)
    spec = net.spec
    yield f"{spec.title or spec.describe()}"
    if not spec.training.single:
        yield training_line(spec)
    if loss is not None:
        yield f"loss L = {loss + 0.0:.9g}"  # + 0.0: no "-0"
    width = max(len(p.name) for p in net.params())
    yield f"{'parameter':<{max(width, 9)}}  {'dL/dparam':>16}" + ("" if values_only else "  simplified factored form")
    composer = Composer(net)
    used: set[tuple[int, int]] = set()
    for p in net.params():
        value = f"{grads[p.name]:16.9g}" if p.name in grads else f"{'-':>16}"
        if values_only:
            yield f"{p.name:<{max(width, 9)}}  {value}"
            continue
        text = composer.whole(p, "text")
        used.update((int(l), int(j)) for l, j in _DELTA.findall(text))
        yield f"{p.name:<{max(width, 9)}}  {value}  {text}"
    yield from delta_lines(composer, used)


_DELTA = re.compile(r"delta(\d+)\[(\d+)\]")


def delta_lines(composer: Composer, used: set[tuple[int, int]]) -> Iterator[str]:
    """"where delta2[1] = ..." for every delta the table's formulas name, and for the
    deltas those definitions name in turn, from the output layer down.  delta(l)_j is
    dL/db(l)_j, already printed for the table: nothing is printed twice."""
    todo, defined = sorted(used), {}
    while todo:
        l, j = todo.pop()
        if (l, j) in defined:
            continue
        text = composer.delta(l, j, "text")
        defined[(l, j)] = text
        todo.extend((int(m), int(i)) for m, i in _DELTA.findall(text) if (int(m), int(i)) not in defined)
    if defined:
        yield "where (delta(l) = dL/dz(l), from the output layer down)"
    for (l, j) in sorted(defined, key=lambda key: (-key[0], key[1])):
        yield f"  delta{l}[{j}] = {defined[(l, j)]}"


def training_line(spec) -> str:
    """One line saying what the formulas below sum and add: 'L = (1/3) sum_n loss_n + ...'."""
    t, reg = spec.training, spec.regularization
    total = ("loss_1" if t.batch == 1 else f"(1/{t.batch}) sum_n loss_n" if t.reduction == "mean"
             else "sum_n loss_n")
    terms = ([f"(l2/2) sum w^2 (l2 = {reg.l2:g})"] if reg.l2 else []) + (
        [f"l1 sum |w| (l1 = {reg.l1:g})"] if reg.l1 else [])
    over = " over weights and biases" if reg.biases else " over the weights" if terms else ""
    per = "; mean_n[...] is (1/m) sum over the m examples of the per-example form" if t.batched else ""
    return f"L = {' + '.join([total] + terms)}{over}{per}"


def stack_grad(net, as_json: bool, values_only: bool = False) -> Iterator[str]:
    """`derive grad` of a [[layer]] network: each entry's value (with values) and its formula
    in delta and a (render/layer_rules.py); delta(l) = dL/dz(l) of the minibatch loss."""
    from .layer_rules import entry_latex, entry_text

    point = net.values()
    if point is None and values_only:
        raise SpecError("--values-only: no values (add a [values] table to the spec or pass --values FILE)")
    loss, grads = net.loss_and_gradients(point) if point is not None else (None, {})
    entries = list(net.entries())
    if as_json:
        yield '{"loss": ' + json.dumps(_num(loss)) + ', "gradients": {'
        for i, (name, layer, letter, idx) in enumerate(entries):
            entry = {"value": _num(grads.get(name))}
            if not values_only:
                entry["latex"], entry["expression"] = entry_latex(layer, letter, idx), entry_text(layer, letter, idx)
            yield ("" if i == 0 else ", ") + json.dumps(name) + ": " + json.dumps(entry)
        yield "}}"
        return
    spec = net.spec
    yield spec.title or spec.describe()
    if loss is not None:
        yield f"loss L = {loss + 0.0:.9g}"
    width = max(9, max(len(e[0]) for e in entries))
    yield f"{'parameter':<{width}}  {'dL/dparam':>16}" + ("" if values_only else "  formula (delta(l) = dL/dz(l) of the batch loss)")
    for name, layer, letter, idx in entries:
        value = f"{grads[name]:16.9g}" if name in grads else f"{'-':>16}"
        yield f"{name:<{width}}  {value}" + ("" if values_only else "  " + entry_text(layer, letter, idx))
