"""Recurrent layers (rnn, lstm) against torch.nn.RNN / torch.nn.LSTM and mpmath central differences.

Random networks: 1-2 recurrent layers, widths 1-4, T = 1-5 steps, "last" and
"all" sequence losses, every loss, a dense layer applied at every step.  The
torch network is built here from torch.nn.RNN / torch.nn.LSTM (float64, batch
first), its weights filled from the values (an LSTM's gates stacked i, f, g,
o; b_hh = 0), and differentiated by autograd.  The mpmath reference is a
loop-based forward pass of the same equations at 40 digits, with central
differences for every entry.
"""

from __future__ import annotations

import json
import random

import mpmath
import numpy as np
import pytest
import torch

import test_gradients_hypothesis as base
from derive.cli import main
from derive.errors import SpecError
from derive.spec.stack import make_stack
from test_stack import _random_values, _write

ATOL, RTOL = 1e-10, 1e-8
LOSSES = ["cross_entropy", "half_sse", "mse", "bce", "sse"]


def random_recurrent(rng: random.Random, i: int) -> tuple[dict, dict]:
    kind = ("rnn", "lstm")[i % 2]
    layers = [{"kind": kind, "units": rng.randint(1, 4)} for _ in range(1 + (i // 2) % 2)]
    if kind == "rnn":
        for layer in layers:
            layer["activation"] = rng.choice(["tanh", "relu"])
    loss = LOSSES[i % len(LOSSES)]
    out = {"cross_entropy": "softmax", "bce": "sigmoid"}.get(loss, rng.choice(["identity", "tanh"]))
    layers.append({"kind": "dense", "units": rng.randint(2, 3), "activation": out})
    table = {"input": [rng.randint(1, 4)], "steps": rng.randint(1, 5), "loss": loss,
             "sequence_loss": ("last", "all")[(i // 4) % 2], "batch": rng.randint(1, 3), "layer": layers}
    return table, _random_values(table, rng)


CASES = [random_recurrent(random.Random(11), i) for i in range(20)]


def torch_reference(table: dict, values: dict):
    """The loss and its gradients by torch.nn.RNN / LSTM and autograd."""
    m = table.get("batch", 1)
    x = torch.tensor(values["x"] if m > 1 else [values["x"]], dtype=torch.float64)
    y = torch.tensor(values["y"] if m > 1 else [values["y"]], dtype=torch.float64)
    leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for k, v in values.items() if k not in ("x", "y")}
    a = x
    for n, layer in enumerate(table["layer"], start=1):
        if layer["kind"] == "dense":
            a = a @ leaves[f"W{n}"].T + leaves[f"b{n}"]
            act = layer["activation"]
            a = {"softmax": lambda v: torch.softmax(v, -1), "sigmoid": torch.sigmoid, "tanh": torch.tanh,
                 "identity": lambda v: v}[act](a)
            continue
        units = layer["units"]
        if layer["kind"] == "rnn":
            module = torch.nn.RNN(a.shape[-1], units, nonlinearity=layer["activation"], batch_first=True,
                                  dtype=torch.float64)
            w = {"weight_ih_l0": leaves[f"W{n}"], "weight_hh_l0": leaves[f"R{n}"], "bias_ih_l0": leaves[f"b{n}"]}
        else:
            module = torch.nn.LSTM(a.shape[-1], units, batch_first=True, dtype=torch.float64)
            w = {"weight_ih_l0": torch.cat([leaves[f"W{n}{g}"] for g in "ifgo"]),
                 "weight_hh_l0": torch.cat([leaves[f"R{n}{g}"] for g in "ifgo"]),
                 "bias_ih_l0": torch.cat([leaves[f"b{n}{g}"] for g in "ifgo"])}
        w["bias_hh_l0"] = torch.zeros(module.bias_hh_l0.shape, dtype=torch.float64)
        a, _ = torch.func.functional_call(module, w, (a,))
    if table["sequence_loss"] == "last":
        a = a[:, -1]
    loss = table["loss"]
    per = {"cross_entropy": lambda: -(y * torch.log(a)).sum(-1), "half_sse": lambda: ((a - y) ** 2).sum(-1) / 2,
           "mse": lambda: ((a - y) ** 2).mean(-1), "sse": lambda: ((a - y) ** 2).sum(-1),
           "bce": lambda: -(y * torch.log(a) + (1 - y) * torch.log(1 - a)).sum(-1)}[loss]()
    if per.ndim > 1:
        per = per.sum(1)
    total = per.mean() if table.get("reduction", "mean") == "mean" else per.sum()
    total.backward()
    return total.item(), {k: v.grad.numpy() for k, v in leaves.items()}


def test_cases_cover_rnn_lstm_depths_steps_and_losses():
    kinds = {(t["layer"][0]["kind"], len(t["layer"]) - 1) for t, _ in CASES}
    assert kinds == {("rnn", 1), ("rnn", 2), ("lstm", 1), ("lstm", 2)}
    assert {t["sequence_loss"] for t, _ in CASES} == {"last", "all"}
    assert {t["loss"] for t, _ in CASES} == set(LOSSES) and {t["steps"] for t, _ in CASES} >= {1, 5}


@pytest.mark.parametrize("table,values", CASES, ids=[f"{t['layer'][0]['kind']}{i}" for i, (t, _) in enumerate(CASES)])
def test_grad_json_matches_torch_rnn_and_lstm(table, values, tmp_path, capsys):
    assert main(["grad", _write(tmp_path, table, values), "--json", "--values-only"]) == 0
    doc = json.loads(capsys.readouterr().out)
    want_loss, want = torch_reference(table, values)
    assert abs(doc["loss"] - want_loss) <= ATOL + RTOL * abs(want_loss)
    for name, grad in want.items():
        for idx in np.ndindex(*grad.shape):
            entry = f"{name}[{','.join(str(i + 1) for i in idx)}]"
            got, ref = doc["gradients"][entry]["value"], float(grad[idx])
            assert abs(got - ref) <= ATOL + RTOL * abs(ref), (entry, got, ref)


def _mp_recurrent(layer, n, xs, P):
    """One example's recurrent layer in mpmath, step by step from the textbook equations."""
    sig = lambda v: 1 / (1 + mpmath.exp(-v))  # noqa: E731
    units = layer["units"]
    h, c, out = [mpmath.mpf(0)] * units, [mpmath.mpf(0)] * units, []
    for x in xs:
        def pre(W, R, b):
            return [mpmath.fsum(W[j][k] * x[k] for k in range(len(x))) + mpmath.fsum(R[j][k] * h[k] for k in range(units))
                    + b[j] for j in range(units)]
        if layer["kind"] == "rnn":
            f = base.ACT[layer["activation"]]
            h = [f(v) for v in pre(P[f"W{n}"], P[f"R{n}"], P[f"b{n}"])]
        else:
            g = {gate: pre(P[f"W{n}{gate}"], P[f"R{n}{gate}"], P[f"b{n}{gate}"]) for gate in "ifgo"}
            c = [sig(g["f"][j]) * c[j] + sig(g["i"][j]) * mpmath.tanh(g["g"][j]) for j in range(units)]
            h = [sig(g["o"][j]) * mpmath.tanh(c[j]) for j in range(units)]
        out.append(h)
    return out


def mp_loss(table, P, values):
    m = table.get("batch", 1)
    xs_all = values["x"] if m > 1 else [values["x"]]
    ys_all = values["y"] if m > 1 else [values["y"]]
    total = mpmath.mpf(0)
    for xs, ys in zip(xs_all, ys_all):
        seq = [[mpmath.mpf(v) for v in row] for row in xs]
        for n, layer in enumerate(table["layer"], start=1):
            if layer["kind"] != "dense":
                seq = _mp_recurrent(layer, n, seq, P)
                continue
            W, b, act = P[f"W{n}"], P[f"b{n}"], layer["activation"]
            zs = [[mpmath.fsum(W[j][k] * a[k] for k in range(len(a))) + b[j] for j in range(len(W))] for a in seq]
            if act == "softmax":
                seq = [[mpmath.exp(v) / mpmath.fsum(mpmath.exp(u) for u in z) for v in z] for z in zs]
            else:
                seq = [[base.ACT[act](v) for v in z] for z in zs]
        steps = [(seq[-1], ys)] if table["sequence_loss"] == "last" else list(zip(seq, ys))
        total += mpmath.fsum(base.TERM[table["loss"]](p, mpmath.mpf(t), len(a))
                             for a, y in steps for p, t in zip(a, y))
    return total / (m if table.get("reduction", "mean") == "mean" else 1)


@pytest.mark.parametrize("table,values", CASES[:8], ids=[f"case{i}" for i in range(8)])
def test_grad_json_matches_mpmath_central_differences(table, values, tmp_path, capsys):
    assert main(["grad", _write(tmp_path, table, values), "--json", "--values-only"]) == 0
    doc = json.loads(capsys.readouterr().out)["gradients"]
    with mpmath.workdps(40):
        P = {k: [[mpmath.mpf(v) for v in r] for r in arr] if isinstance(arr[0], list) else [mpmath.mpf(v) for v in arr]
             for k, arr in values.items() if k not in ("x", "y")}
        step = mpmath.mpf("1e-15")
        for name, arr in P.items():
            cells = [(j, k) for j in range(len(arr)) for k in range(len(arr[0]))] if isinstance(arr[0], list) \
                else [(j,) for j in range(len(arr))]
            for cell in cells:
                diffs = []
                for sign in (1, -1):
                    bumped = {**P, name: [list(r) for r in arr] if isinstance(arr[0], list) else list(arr)}
                    if len(cell) == 2:
                        bumped[name][cell[0]][cell[1]] += sign * step
                    else:
                        bumped[name][cell[0]] += sign * step
                    diffs.append(mp_loss(table, bumped, values))
                ref = (diffs[0] - diffs[1]) / (2 * step)
                got = doc[f"{name}[{','.join(str(i + 1) for i in cell)}]"]["value"]
                assert abs(mpmath.mpf(got) - ref) <= ATOL + RTOL * abs(ref), (name, cell, got, ref)


def test_check_passes_and_against_torch_agrees(tmp_path, capsys):
    table, values = CASES[3]
    spec = _write(tmp_path, table, values)
    assert main(["check", spec, "--points", "2", "--against", "torch"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("torch agrees")


@pytest.mark.parametrize("table,message", [
    ({"input": [3], "loss": "mse", "layer": [{"kind": "rnn", "units": 2}, {"kind": "dense", "units": 1}]},
     r"^layer 1 is rnn: give steps = T"),
    ({"input": [3], "steps": 4, "loss": "mse", "layer": [{"kind": "rnn", "units": 2}]},
     None),
    ({"input": [3], "steps": 0, "loss": "mse", "layer": [{"kind": "rnn", "units": 2}]},
     r"^steps must be an integer from 1 to 1000"),
    ({"input": [3], "steps": 2, "sequence_loss": "first", "loss": "mse", "layer": [{"kind": "rnn", "units": 2}]},
     r"^sequence_loss must be 'last'"),
    ({"input": [3], "steps": 2, "loss": "mse", "layer": [{"kind": "lstm", "units": 2, "activation": "softmax"}]},
     r"softmax is not one"),
])
def test_bad_recurrent_specs_get_one_line(table, message):
    if message is None:  # a recurrent last layer: its states are the outputs, one row per step
        assert make_stack(table).layers[-1].output == (4, 2)
        return
    with pytest.raises(SpecError, match=message):
        make_stack(table)
