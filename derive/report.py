"""Stage 5a: what `derive grad` prints, as a JSON object or a readable table.

The JSON is a contract other tools read (issue #2): one object with "loss"
and "gradients", every parameter named W<l>[j,k] / b<l>[j], each with
"value" (float, or null without values), "latex" (the simplified factored
form) and "expression" (SymPy's string of the explicit form, or of the
factored form where the explicit one is too large).  It is streamed entry by
entry, so an 8,704-parameter network starts printing at once and never
holds the whole document as one string.
"""

from __future__ import annotations

import json
import math
from typing import IO, Iterator

from .api import Network
from .printing import to_text


def _num(v: float | None):
    """A float for JSON; non-finite values become null (JSON has no NaN)."""
    return v if v is not None and math.isfinite(v) else None


def grad_json_chunks(net: Network, values=None) -> Iterator[str]:
    """The `derive grad --json` object, as text chunks in order."""
    vals = net.values(values)
    grads = net.gradients(vals) if vals is not None else {}
    loss = net.loss(vals) if vals is not None else None
    yield '{"loss": ' + json.dumps(_num(loss)) + ', "gradients": {'
    for i, p in enumerate(net.params()):
        g = net.gradient(p)
        entry = {"value": _num(grads.get(p.name)), "latex": g.latex, "expression": g.expression}
        yield ("" if i == 0 else ", ") + json.dumps(p.name) + ": " + json.dumps(entry)
    yield "}}\n"


def write_grad_json(net: Network, out: IO[str], values=None) -> None:
    for chunk in grad_json_chunks(net, values):
        out.write(chunk)


def grad_table(net: Network, values=None) -> Iterator[str]:
    """Lines of a readable table: parameter, value, simplified formula."""
    vals = net.values(values)
    grads = net.gradients(vals) if vals is not None else {}
    spec = net.spec
    yield f"{spec.title or spec.describe()}"
    if vals is not None:
        yield f"loss L = {net.loss(vals):.9g}"
    width = max(len(p.name) for p in net.params())
    yield f"{'parameter':<{max(width, 9)}}  {'dL/dparam':>16}  simplified factored form"
    for p in net.params():
        g = net.gradient(p)
        value = f"{grads[p.name]:16.9g}" if p.name in grads else f"{'-':>16}"
        yield f"{p.name:<{max(width, 9)}}  {value}  {to_text(g.simplified)}"
