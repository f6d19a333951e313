"""The printed gradient formulas of [[layer]] networks, evaluated against torch.

`derive grad --json` writes each entry's gradient as a formula in delta(l) =
dL/dz(l) and the layer's input a(l-1) ("sum_{n, p=1..3,q=1..3}
delta1[n,2,p,q]*a0[n,1,2p-2,q]").  Here the formula's text is read back and
evaluated with torch's own z.grad and inputs (retain_grad on every layer's
pre-activation), then compared with torch's gradient of the entry: the
formula, not only the number, is checked against an independent engine.
"""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from derive.cli import main
from test_stack import _random_values, _write

CONV2D = {"input": [2, 5, 6], "loss": "half_sse", "batch": 2, "layer": [
    {"kind": "conv2d", "channels": 2, "kernel": [3, 2], "stride": 2, "padding": 1, "activation": "tanh"},
    {"kind": "flatten"}, {"kind": "dense", "units": 2, "activation": "sigmoid"}]}
CONV1D = {"input": [1, 7], "loss": "mse", "batch": 3, "layer": [
    {"kind": "conv1d", "channels": 2, "kernel": 3, "padding": 1, "activation": "relu"},
    {"kind": "flatten"}, {"kind": "dense", "units": 2}]}
EMBED = {"input": [4], "loss": "half_sse", "batch": 2, "layer": [
    {"kind": "embedding", "vocabulary": 3, "units": 2}, {"kind": "flatten"}, {"kind": "dense", "units": 1}]}

_READ = re.compile(r"^(\d*)([pq])([+-]\d+)?$")


def _position(text: str, p: int, q: int) -> int:
    """'2p-2' at p (1-based) -> 2p - 2, the 1-based input position the formula names."""
    m = _READ.match(text)
    scale, letter, shift = int(m.group(1) or 1), m.group(2), int(m.group(3) or 0)
    return scale * (p if letter == "p" else q) + shift


def _torch(table, values):
    """Forward with retained pre-activations: (loss, leaves, z by layer, a by layer)."""
    leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for k, v in values.items() if k not in ("x", "y")}
    x = torch.tensor(values["x"], dtype=torch.float64)
    y = torch.tensor(values["y"], dtype=torch.float64)
    a, zs, outs = x, {}, {0: x}
    acts = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "identity": lambda v: v}
    for n, layer in enumerate(table["layer"], start=1):
        kind = layer["kind"]
        if kind == "conv2d":
            z = F.conv2d(a, leaves[f"K{n}"], leaves[f"b{n}"], stride=layer.get("stride", 1), padding=layer.get("padding", 0))
        elif kind == "conv1d":
            z = F.conv1d(a, leaves[f"K{n}"], leaves[f"b{n}"], stride=layer.get("stride", 1), padding=layer.get("padding", 0))
        elif kind == "flatten":
            z = torch.flatten(a, 1)
        elif kind == "embedding":
            z = F.embedding(a.long() - 1, leaves[f"E{n}"])
        else:
            z = F.linear(a, leaves[f"W{n}"], leaves[f"b{n}"])
        z.retain_grad()
        zs[n] = z
        a = acts[layer.get("activation", "identity")](z)
        outs[n] = a
    per = ((a - y) ** 2).sum(1) / 2 if table["loss"] == "half_sse" else ((a - y) ** 2).mean(1)
    per.mean().backward()
    return leaves, zs, outs


def _evaluate(text: str, zs, outs, x_tokens=None) -> float:
    """A printed conv/dense/embedding formula evaluated with torch's numbers."""
    if m := re.match(r"^sum_\{n, t: x\[n,t\] = (\d+)\} delta(\d+)\[n,t,(\d+)\]$", text):
        v, l, d = map(int, m.groups())
        g = zs[l].grad.numpy()
        return float(sum(g[n, t, d - 1] for n in range(g.shape[0]) for t in range(g.shape[1])
                         if x_tokens[n, t] == v))
    if m := re.match(r"^sum_n delta(\d+)\[n,(\d+)\](?:\*a(\d+)\[n,(\d+)\])?$", text):
        l, j = int(m.group(1)), int(m.group(2))
        g = zs[l].grad.numpy()[:, j - 1]
        return float(np.sum(g * (outs[int(m.group(3))].detach().numpy()[:, int(m.group(4)) - 1] if m.group(3) else 1)))
    m = re.match(r"^sum_\{n, (.+?)\} delta(\d+)\[n,(\d+),([pq,]+)\](?:\*a(\d+)\[n,(\d+),(.+)\])?$", text)
    assert m, text
    sizes = [int(r.split("..")[1]) for r in m.group(1).split(",")]
    l, c = int(m.group(2)), int(m.group(3))
    g = zs[l].grad.numpy()
    a = None if m.group(5) is None else outs[int(m.group(5))].detach().numpy()
    total = 0.0
    for n in range(g.shape[0]):
        for pos in np.ndindex(*sizes):
            p, q = pos[0] + 1, (pos[1] + 1 if len(pos) > 1 else 0)
            value = g[(n, c - 1) + pos]
            if a is not None:
                at = [_position(t, p, q) for t in m.group(7).split(",")]
                if any(not 1 <= i <= size for i, size in zip(at, a.shape[2:])):
                    continue  # the padding: a = 0 there
                value *= a[(n, int(m.group(6)) - 1) + tuple(i - 1 for i in at)]
            total += value
    return float(total)


@pytest.mark.parametrize("table", [CONV2D, CONV1D, EMBED], ids=["conv2d", "conv1d", "embedding"])
def test_printed_formulas_evaluate_to_torch_gradients(table, tmp_path, capsys):
    values = _random_values(table, random.Random(5))
    assert main(["grad", _write(tmp_path, table, values), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    leaves, zs, outs = _torch(table, values)
    tokens = np.array(values["x"]) if table is EMBED else None
    for name, entry in doc["gradients"].items():
        array, idx = re.match(r"^(\w+?\d+)\[(.+)\]$", name).groups()
        want = float(leaves[array].grad[tuple(int(i) - 1 for i in idx.split(","))])
        got = _evaluate(entry["expression"], zs, outs, tokens)
        assert abs(got - want) <= 1e-12 + 1e-9 * abs(want), (name, entry["expression"], got, want)
        assert abs(entry["value"] - want) <= 1e-12 + 1e-9 * abs(want), name
