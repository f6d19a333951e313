r"""The worked example of a minibatch: every example's table, then the averaged gradient.

All numbers come from the engine: `Evaluator.run` gives the batch trace (z, a,
delta of every example, one row each) and the gradients; each example is read
through `trace.example(n)`.  For each shown parameter the table writes example
n's own gradient (delta_[n] a_[n] for a weight, delta_[n] for a bias), their scaled
sum s sum_n, the regulariser's term dR/dp (calculus/batch.py's
`regularizer_gradient`, evaluated at the parameter's value) and the total, which
is the engine's dL/dp: the reader can add the columns up.

Past `SHOWN_EXAMPLES` examples the per-example tables stop (the sums still run
over all m); `derive grad --json` has every gradient.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import sympy

from .formulas import Style, format_number
from ..calculus.batch import regularizer_gradient, regularizer_values
from ..calculus.model import Param
from ..check.numeric import as_arrays, regularizer

if TYPE_CHECKING:
    from ..api import Network

#: Examples whose z, a, delta tables (and gradient columns) a document writes out.
SHOWN_EXAMPLES = 4
#: Significant digits of the per-example columns (narrower than the totals' 9).
EXAMPLE_DIGITS = 6
#: ... and of the totals (worked.DIGITS, the single-example tables' digits).
DIGITS_TOTAL = 9


def _num(v, digits: int) -> str:
    """A number printed, -0 as 0 (delta times an input of 0 is -0.0 in floating point)."""
    return format_number(float(v) + 0.0, digits)


def example_gradient(p: Param, trace_n) -> float:
    """One example's dloss_n/dp from its trace: delta_n a_n (weight) or delta_n (bias)."""
    d = float(trace_n.delta[p.layer][p.j - 1])
    return d * float(trace_n.a[p.layer - 1][p.k - 1]) if p.kind == "W" else d


def parameter_value(values, p: Param) -> float:
    return values.W[p.layer][p.j - 1][p.k - 1] if p.kind == "W" else values.b[p.layer][p.j - 1]


def regularizer_value(net: Network, p: Param, value: float) -> float:
    """dR/dp at the parameter's value, from the symbolic term the derivation adds."""
    term = regularizer_gradient(net.model, p)
    subs = {net.model.symbol(p): value, **regularizer_values(net.model)}
    return float(sympy.sympify(term).xreplace(subs))


def breakdown(net: Network, p: Param, values, trace) -> dict:
    """Per-example gradients, their scaled sum, dR/dp and the total, as floats."""
    m = values.batch
    per = [example_gradient(p, trace.example(n) if m > 1 else trace) for n in range(m)]
    scaled = net.spec.training.scale * sum(per)
    reg = regularizer_value(net, p, parameter_value(values, p))
    return {"per_example": per, "scaled": scaled, "regularizer": reg, "total": scaled + reg}


def _layers(net: Network, style: Style, trace_n, layers) -> list[dict]:
    spec, model, f = net.spec, net.model, lambda v: _num(v, EXAMPLE_DIGITS)  # noqa: E731
    return [{"layer": l, "activation": spec.activations[l - 1].latex,
             "rows": [{"j": j, "z": f(trace_n.z[l][j - 1]), "a": f(trace_n.a[l][j - 1]),
                       "delta": f(trace_n.delta[l][j - 1]), "z_symbol": style.latex(model.z(l, j)),
                       "a_symbol": style.latex(model.a(l, j)), "delta_symbol": style.latex(model.delta(l, j))}
                      for j in range(1, spec.layers[l] + 1)]} for l in layers]


def batch_examples(net: Network, style: Style, values, trace, layers, vector) -> list[dict]:
    """The first SHOWN_EXAMPLES examples: x, y, loss and the z, a, delta table of each."""
    out, losses = [], np.atleast_1d(trace.losses)  # each example's own loss, without R
    for n in range(min(values.batch, SHOWN_EXAMPLES)):
        t = trace.example(n) if values.batch > 1 else trace
        x, y = values.examples[n]
        out.append({"n": n + 1, "x": vector(style, x), "y": vector(style, y),
                    "loss": format_number(float(losses[n]), DIGITS_TOTAL), "layers": _layers(net, style, t, layers)})
    return out


def batch_rows(net: Network, style: Style, params, values, run) -> list[dict]:
    """Each parameter's breakdown, printed; `gradient` is the engine's dL/dp."""
    trace, gW, gb = run
    eta = values.learning_rate
    rows = []
    for p in params:
        parts = breakdown(net, p, values, trace)
        grad = float(gW[p.layer][p.j - 1, p.k - 1] if p.kind == "W" else gb[p.layer][p.j - 1])
        value = parameter_value(values, p)
        rows.append({"name": p.name, "symbol": style.latex(net.model.symbol(p)),
                     "value": format_number(value, DIGITS_TOTAL),
                     "per_example": [_num(v, EXAMPLE_DIGITS) for v in parts["per_example"][:SHOWN_EXAMPLES]],
                     "scaled": _num(parts["scaled"], DIGITS_TOTAL),
                     "regularizer": _num(parts["regularizer"], DIGITS_TOTAL),
                     "gradient": _num(grad, DIGITS_TOTAL),
                     "updated": None if eta is None else format_number(value - eta * grad, DIGITS_TOTAL)})
    return rows


def batch_loss(net: Network, values, trace) -> dict:
    """The loss as the reader adds it up: s sum_n L_[n], R, and the total."""
    _, _, W, b = as_arrays(values, net.spec.layers, net.spec.bias)
    losses = [float(v) for v in np.atleast_1d(trace.losses)]
    r = float(regularizer(net.spec, W, b))
    return {"losses": [format_number(v, DIGITS_TOTAL) for v in losses[:SHOWN_EXAMPLES]],
            "scaled": format_number(net.spec.training.scale * sum(losses), DIGITS_TOTAL),
            "penalty": format_number(r, DIGITS_TOTAL) if net.spec.regularization.active else None}
