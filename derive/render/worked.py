r"""The worked numeric example and the verification summary (sections 7 and 8).

Numbers come from `Evaluator.run` (the derivation's own delta equations,
compiled) and are printed to `DIGITS` significant digits by
`formulas.format_number`.  With a learning rate, each parameter after one
gradient-descent step is p - eta * dL/dp, and the loss at the stepped
parameters (the engine's own forward pass) shows whether the step helped.
Vectors longer than `VECTOR_CHARS` characters (an MNIST input has 784) print
their ends around a \dots, as the weights do.  Large networks get the loss, the
output layer, one weight and one bias per layer, and a table of each layer's
delta and gradient norms (where vanishing or exploding gradients show),
instead of thousands of numbers; `derive grad --json` has every value.

The verification is `Network.check` (complex-step differentiation of the
forward pass, independent of the derivation) at the values, if any, and at
seeded random points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import DeriveError
from . import minibatch_example as mex
from .formulas import Style, format_number
from ..calculus.model import Param
from ..check.numeric import as_arrays, regularizer
from ..check.verify import ATOL, RTOL

if TYPE_CHECKING:
    from ..api import Network

DIGITS = 9
#: Networks with at most this many neurons (hidden and output) get every z, a, delta.
SMALL_NEURONS = 24
#: ... and at most this many parameters get every gradient and update.
SMALL_PARAMETERS = 60
#: A vector printed longer than this many characters (a 784-pixel x) shows its first
#: entries, \dots and its last one, and its length, so it never runs off the page.
VECTOR_CHARS = 60


def _vector(style: Style, v) -> str:
    texts = [format_number(float(x), DIGITS) for x in v]
    if sum(len(t) + 2 for t in texts) <= VECTOR_CHARS:
        return rf"\bigl({', '.join(texts)}\bigr)^{{\top}}"
    head, used = [], len(texts[-1]) + 8  # room for ", \dots, last"
    for t in texts[:-1]:
        if used + len(t) + 2 > VECTOR_CHARS:
            break
        head.append(t)
        used += len(t) + 2
    body = ", ".join([*head, r"\dots", texts[-1]])
    return rf"\bigl({body}\bigr)^{{\top}} \in \mathbb{{R}}^{{{len(v)}}}"


def loss_after_step(net: Network, values, run) -> float:
    """The loss after one gradient-descent step on every parameter at once,
    p - eta * dL/dp, from the engine's forward pass."""
    _, gW, gb = run
    eta = values.learning_rate
    x, y, W, b = as_arrays(values, net.spec.layers, net.spec.bias)
    W = {l: W[l] - eta * gW[l] for l in W}
    b = {l: b[l] - eta * gb[l] for l in b} if net.spec.bias else b
    ev = net.evaluator
    losses = ev.loss_at(ev.forward(x, W, b), y)
    if net.spec.training.single:
        return float(losses)
    # a minibatch or a regulariser: the loss that is trained, s sum_n L_n + R (training.py)
    return float(net.spec.training.scale * np.sum(losses) + regularizer(net.spec, W, b))


def example_section(net: Network, style: Style, values, run) -> dict | None:
    """Section 7 from `run` = net.evaluator.run(values); None without values."""
    if values is None:
        return None
    trace, gW, gb = run
    spec, m = net.spec, net.model
    first = trace.example(0) if values.batch > 1 else trace  # a minibatch: example 1 stands in
    small_neurons = sum(spec.layers[1:]) <= SMALL_NEURONS
    layers = []
    shown = range(1, spec.depth + 1) if small_neurons else [spec.depth]
    for l in shown:
        rows = [{"j": j, "z": format_number(float(first.z[l][j - 1]), DIGITS),
                 "a": format_number(float(first.a[l][j - 1]), DIGITS),
                 "delta": format_number(float(first.delta[l][j - 1]), DIGITS),
                 "z_symbol": style.latex(m.z(l, j)), "a_symbol": style.latex(m.a(l, j)),
                 "delta_symbol": style.latex(m.delta(l, j))} for j in range(1, spec.layers[l] + 1)]
        layers.append({"layer": l, "rows": rows, "activation": spec.activations[l - 1].latex})
    small = spec.parameter_count <= SMALL_PARAMETERS
    params = list(net.params()) if small else [
        q for l in range(1, spec.depth + 1)
        for q in ([m.weight(l, 1, 1)] + ([Param(l, "b", 1)] if spec.bias else []))]
    eta = values.learning_rate
    rows = param_rows(net, style, params, values, run)
    return {
        "batch": None if spec.training.single else _batch(net, style, values, run, params, shown),
        "x": _vector(style, values.x), "y": _vector(style, values.y),
        "shortened": any(r"\dots" in _vector(style, v) for v in (values.x, values.y)),
        "loss": format_number(trace.loss, DIGITS), "layers": layers, "all_layers": small_neurons,
        "loss_after": None if eta is None else format_number(loss_after_step(net, values, run), DIGITS),
        "params": rows, "all_params": small, "count": spec.parameter_count,
        "eta": None if eta is None else format_number(eta, DIGITS),
        "norms": None if small_neurons else _norms(net, trace, gW),
        "digits": DIGITS,
    }


def _batch(net: Network, style: Style, values, run, params, layers) -> dict:
    """The minibatch's worked example (minibatch_example.py): every example, then the sum."""
    t = net.spec.training
    return {"m": values.batch, "mean": t.reduction == "mean", "batched": t.batched,
            "examples": mex.batch_examples(net, style, values, run[0], layers, _vector),
            "all_examples": values.batch <= mex.SHOWN_EXAMPLES,
            "params": mex.batch_rows(net, style, params, values, run),
            "loss": mex.batch_loss(net, values, run[0]),
            "regularized": net.spec.regularization.active}


def param_rows(net: Network, style: Style, params, values, run) -> list[dict]:
    """Value, gradient and (with a learning rate) value after one step, per parameter."""
    _, gW, gb = run
    return [_param_row(net, style, q, values, gW, gb, values.learning_rate) for q in params]


def _param_row(net: Network, style: Style, p: Param, values, gW, gb, eta) -> dict:
    if p.kind == "W":
        value, grad = values.W[p.layer][p.j - 1][p.k - 1], gW[p.layer][p.j - 1, p.k - 1]
    else:
        value, grad = values.b[p.layer][p.j - 1], gb[p.layer][p.j - 1]
    grad = float(grad)
    return {"name": p.name, "symbol": style.latex(net.model.symbol(p)),
            "value": format_number(value, DIGITS), "gradient": format_number(grad, DIGITS),
            "updated": None if eta is None else format_number(value - eta * grad, DIGITS)}


def _norms(net: Network, trace, gW) -> list[dict]:
    """Per layer: the Euclidean norm of delta(l) and the Frobenius norm of dL/dW(l)."""
    return [{"layer": l, "delta": format_number(float(np.linalg.norm(trace.delta[l])), 4),
             "gradient": format_number(float(np.linalg.norm(gW[l])), 4)}
            for l in range(1, net.spec.depth + 1)]


def check_section(net: Network, values) -> dict:
    """Section 8: `Network.check` summarised (or why it could not run, e.g. a loss
    that is undefined at the random points for this output layer)."""
    try:
        report = net.check(values)
    except DeriveError as exc:
        return {"error": str(exc), "passed": False, "parameters": net.spec.parameter_count}
    return {"error": None, "passed": report.passed, "points": report.points, "method": report.method,
            "max_abs": format_number(report.max_abs, 3), "max_rel": format_number(report.max_rel, 3),
            "parameters": net.spec.parameter_count, "with_values": values is not None,
            "atol": format_number(ATOL, 3), "rtol": format_number(RTOL, 3),
            "failures": sum(r.failures for r in report.layers)}
