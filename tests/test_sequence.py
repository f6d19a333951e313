"""Backpropagation through time as printed: per-step norms and shares against torch.

The RNN and the LSTM are unrolled here step by step in torch (float64), every h_t
(and c_t) kept with retain_grad, so h_t.grad is the whole dL/dh_t (from the output
at t and through every later step): its norm per step is what the document's
table prints.  A recurrent weight's per-step terms must sum to torch's gradient.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from derive.api.stack import StackNetwork
from derive.render.sequence import sequence_layers, step_terms
from derive.spec.stack import make_stack
from derive.spec.stack_values import make_stack_values
from test_stack import _random_values


def _table(kind: str, steps: int) -> dict:
    return {"input": [3], "steps": steps, "loss": "half_sse", "batch": 2, "sequence_loss": "last",
            "layer": [{"kind": kind, "units": 3}, {"kind": "dense", "units": 2}]}


def _torch_unrolled(kind, values, steps):
    P = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in values.items() if k not in "xy"}
    x, y = torch.tensor(values["x"], dtype=torch.float64), torch.tensor(values["y"], dtype=torch.float64)
    h = c = torch.zeros(x.shape[0], 3, dtype=torch.float64)
    hs, cs = [], []
    for t in range(steps):
        if kind == "rnn":
            h = torch.tanh(x[:, t] @ P["W1"].T + h @ P["R1"].T + P["b1"])
        else:
            g = {q: x[:, t] @ P[f"W1{q}"].T + h @ P[f"R1{q}"].T + P[f"b1{q}"] for q in "ifgo"}
            c = torch.sigmoid(g["f"]) * c + torch.sigmoid(g["i"]) * torch.tanh(g["g"])
            h = torch.sigmoid(g["o"]) * torch.tanh(c)
            c.retain_grad()
            cs.append(c)
        h.retain_grad()
        hs.append(h)
    out = h @ P["W2"].T + P["b2"]
    (((out - y) ** 2).sum(1) / 2).mean().backward()
    return P, hs, cs


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_step_norms_and_shares_match_torch_unrolled(kind):
    table = _table(kind, 5)
    values = _random_values(table, random.Random(2))
    spec = make_stack(table)
    net = StackNetwork(spec)
    trace = net.evaluator.trace(make_stack_values(spec, values))
    P, hs, cs = _torch_unrolled(kind, values, 5)
    section = sequence_layers(net, trace)[0]
    want = [float(h.grad.norm()) for h in hs]
    np.testing.assert_allclose([float(r["h"]) for r in section["norms"]], want, rtol=1e-3)
    if kind == "lstm":
        np.testing.assert_allclose([float(r["c"]) for r in section["norms"]], [float(c.grad.norm()) for c in cs],
                                   rtol=1e-3)
    layer = spec.layers[0]
    for letter, name in (("R", "R1"), ("W", "W1"), ("b", "b1")) if kind == "rnn" else (
            ("Rf", "R1f"), ("Wi", "W1i"), ("bo", "b1o")):
        idx = (2, 3) if letter[0] != "b" else (2,)
        terms = step_terms(trace, layer, letter, idx)
        ref = float(P[name].grad[tuple(i - 1 for i in idx)])
        assert len(terms) == 5 and abs(terms.sum() - ref) <= 1e-12 + 1e-9 * abs(ref)
    assert section["steps"] == 5 and r"\xrightarrow" in section["unrolled"]
