"""[[layer]] networks: the layer table's gradients against PyTorch float64 autograd.

Random stacks of every kind (conv1d/2d with stride and padding, max- and
average-pools, flatten, dense, batchnorm, layernorm, dropout, residual,
embedding), every activation and loss, small sizes.  The reference network is
built here from torch.nn.functional, its weights filled from the same nested
lists, and differentiated by autograd; it shares nothing with derive but the
numbers.  The complex-step check derive runs itself must pass as well.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from derive.cli import main
from derive.errors import SpecError
from derive.spec.stack import make_stack
from derive.spec.stack_values import make_stack_values
from derive.check.stack_eval import StackEvaluator

ATOL, RTOL = 1e-10, 1e-8

TORCH_ACT = {"identity": lambda v: v, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
             "leaky_relu": lambda v: F.leaky_relu(v, 0.01), "softplus": F.softplus, "elu": F.elu,
             "silu": F.silu, "gelu": F.gelu}
ACTS = sorted(TORCH_ACT)


def torch_loss(spec_table: dict, values: dict) -> tuple[torch.Tensor, dict]:
    """The batch loss of the table's network in torch, and its parameter leaves by name."""
    leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for k, v in values.items() if k not in ("x", "y") and not k.startswith("mask")}
    m = spec_table.get("batch", 1)
    x = torch.tensor(values["x"] if m > 1 else [values["x"]], dtype=torch.float64)
    y = torch.tensor(values["y"] if m > 1 else [values["y"]], dtype=torch.float64)
    outs, a = {0: x}, x
    for n, layer in enumerate(spec_table["layer"], start=1):
        a = _torch_layer(layer, n, a, leaves, outs, values, m)
        act = layer.get("activation", "identity")
        a = torch.softmax(a, dim=1) if act == "softmax" else TORCH_ACT[act](a)
        outs[n] = a
    loss = spec_table["loss"]
    if loss == "cross_entropy":
        per = -(y * torch.log(a)).sum(1)
    elif loss == "half_sse":
        per = ((a - y) ** 2).sum(1) / 2
    elif loss == "mse":
        per = ((a - y) ** 2).mean(1)
    elif loss == "bce":
        per = -(y * torch.log(a) + (1 - y) * torch.log(1 - a)).sum(1)
    else:
        per = ((a - y) ** 2).sum(1)
    total = per.mean() if spec_table.get("reduction", "mean") == "mean" else per.sum()
    return total, leaves


def _torch_layer(layer, n, a, P, outs, values, m):
    kind = layer["kind"]
    if kind == "dense":
        return F.linear(a, P[f"W{n}"], P.get(f"b{n}"))
    if kind in ("conv1d", "conv2d"):
        conv = F.conv1d if kind == "conv1d" else F.conv2d
        return conv(a, P[f"K{n}"], P.get(f"b{n}"), stride=layer.get("stride", 1), padding=layer.get("padding", 0))
    if kind.endswith("pool1d") or kind.endswith("pool2d"):
        pool = {"maxpool1d": F.max_pool1d, "maxpool2d": F.max_pool2d,
                "avgpool1d": F.avg_pool1d, "avgpool2d": F.avg_pool2d}[kind]
        return pool(a, layer["kernel"], layer.get("stride", layer["kernel"]))
    if kind == "flatten":
        return torch.flatten(a, 1)
    if kind == "batchnorm":
        return F.batch_norm(a, None, None, P[f"gamma{n}"], P[f"beta{n}"], training=True, eps=1e-5)
    if kind == "layernorm":
        shape = a.shape[1:]
        return F.layer_norm(a, shape, P[f"gamma{n}"].reshape(shape), P[f"beta{n}"].reshape(shape), eps=1e-5)
    if kind == "dropout":
        mask = torch.tensor(values[f"mask{n}"] if m > 1 else [values[f"mask{n}"]], dtype=torch.float64)
        return a * mask / (1 - layer["p"])
    if kind == "residual":
        return a + outs[layer["from"]]
    if kind == "embedding":
        return F.embedding(a.long() - 1, P[f"E{n}"])
    raise AssertionError(kind)


def _random_stack(rng: random.Random, i: int) -> tuple[dict, dict]:
    """A small random stack: one of a few shapes, with random kinds, activations, loss."""
    act = lambda: ACTS[rng.randrange(len(ACTS))]  # noqa: E731
    m = rng.randint(2, 3)
    form = i % 4
    if form == 0:  # 2-D conv net
        k, s, p = rng.choice([(3, 1, 0), (3, 2, 1), (2, 1, 1)])
        layers = [{"kind": "conv2d", "channels": rng.randint(1, 2), "kernel": k, "stride": s, "padding": p,
                   "activation": act()},
                  {"kind": "batchnorm", "activation": act()},
                  {"kind": ["maxpool2d", "avgpool2d"][(i // 4) % 2], "kernel": 2, "stride": rng.choice([1, 2])},
                  {"kind": "flatten"}]
        inp = [rng.randint(1, 2), 6, 5]
    elif form == 1:  # 1-D conv net
        layers = [{"kind": "conv1d", "channels": 2, "kernel": 3, "stride": rng.choice([1, 2]),
                   "padding": rng.randint(0, 1), "activation": act()},
                  {"kind": ["maxpool1d", "avgpool1d"][(i // 4) % 2], "kernel": 2},
                  {"kind": "flatten"}, {"kind": "dropout", "p": 0.25, "seed": i}]
        inp = [2, 7]
    elif form == 2:  # residual MLP with layernorm
        layers = [{"kind": "dense", "units": 3, "activation": act()},
                  {"kind": "dense", "units": 3, "activation": act()},
                  {"kind": "residual", "from": 1},
                  {"kind": "layernorm", "activation": act()}]
        inp = [3]
    else:  # embedding
        layers = [{"kind": "embedding", "vocabulary": 5, "units": 2}, {"kind": "flatten"},
                  {"kind": "dense", "units": 3, "activation": act()}]
        inp = [3]
    loss = rng.choice(["cross_entropy", "half_sse", "mse", "bce", "sse"])
    out_act = {"cross_entropy": "softmax", "bce": "sigmoid"}.get(loss, act())
    layers.append({"kind": "dense", "units": rng.randint(2, 3), "activation": out_act})
    table = {"input": inp, "loss": loss, "batch": m, "reduction": rng.choice(["mean", "sum"]), "layer": layers}
    return table, _random_values(table, rng)


def _random_values(table: dict, rng: random.Random) -> dict:
    spec = make_stack(table)
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    m = spec.batch
    if spec.embedding_input:
        x = nrng.integers(1, spec.layers[0].cfg["vocabulary"] + 1, size=(m,) + spec.input).astype(float)
    else:
        x = nrng.uniform(-1, 1, size=(m,) + spec.input)
    n_out = spec.output_size
    rows = (m, spec.steps) if table.get("sequence_loss") == "all" else (m,)  # a sequence's every step
    if table["loss"] == "cross_entropy":
        y = nrng.dirichlet(np.ones(n_out), size=rows)
    elif table["loss"] == "bce":
        y = nrng.uniform(0.1, 0.9, size=rows + (n_out,))
    else:
        y = nrng.uniform(-1, 1, size=rows + (n_out,))
    values = {"x": x.tolist(), "y": y.tolist()}
    for name, shape in spec.parameter_arrays():
        values[name] = nrng.uniform(-0.8, 0.8, size=shape).tolist()
    for layer in spec.layers:
        if layer.kind.name == "dropout":
            values[f"mask{layer.number}"] = (nrng.random((m,) + layer.input) >= 0.25).astype(float).tolist()
    return values


STACKS = [_random_stack(random.Random(7), i) for i in range(24)]


def test_stacks_cover_every_kind():
    kinds = {layer["kind"] for table, _ in STACKS for layer in table["layer"]}
    assert kinds == {"conv1d", "conv2d", "maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d", "flatten",
                     "dense", "batchnorm", "layernorm", "dropout", "residual", "embedding"}


@pytest.mark.parametrize("table,values", STACKS, ids=[f"stack{i}" for i in range(len(STACKS))])
def test_stack_gradients_match_torch_autograd(table, values):
    spec = make_stack(table)
    point = make_stack_values(spec, values)
    loss, grads = StackEvaluator(spec).run(point)
    want, leaves = torch_loss(table, values)
    want.backward()
    assert abs(loss - want.item()) <= ATOL + RTOL * abs(want.item())
    for name, leaf in leaves.items():
        ref = leaf.grad.numpy().reshape(grads[name].shape)
        np.testing.assert_allclose(grads[name], ref, rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("table,values", STACKS[:8], ids=[f"stack{i}" for i in range(8)])
def test_stack_gradients_match_complex_step(table, values):
    spec = make_stack(table)
    point = make_stack_values(spec, values)
    ev = StackEvaluator(spec)
    _, grads = ev.run(point)
    ref = ev.reference(point)
    for name in grads:
        np.testing.assert_allclose(grads[name], ref[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_maxpool_routes_the_gradient_to_the_first_maximum():
    """A tie sends the whole gradient to the first maximum, as torch.  By hand: x = (0.5, 0.25,
    0.5), K = (1, 1) gives z = (0.75, 0.75); the pool takes z_1, so a = 0.75, L = a^2/2 and
    dL/dK = a * (x_1, x_2) = (0.375, 0.1875); the second maximum would give (0.1875, 0.375)."""
    table = {"input": [1, 1, 3], "loss": "half_sse", "layer": [
        {"kind": "conv2d", "channels": 1, "kernel": [1, 2], "bias": False},
        {"kind": "maxpool2d", "kernel": [1, 2]}, {"kind": "flatten"},
        {"kind": "dense", "units": 1, "bias": False}]}
    spec = make_stack(table)
    point = make_stack_values(spec, {"x": [[[0.5, 0.25, 0.5]]], "y": [0.0], "K1": [[[[1.0, 1.0]]]],
                                     "W4": [[1.0]]})
    _, grads = StackEvaluator(spec).run(point)
    assert grads["K1"].ravel().tolist() == [0.375, 0.1875]


@pytest.mark.parametrize("table,message", [
    ({"input": [1, 2, 2], "loss": "mse", "layer": [{"kind": "conv2d", "channels": 1, "kernel": 3}]},
     r"^layer 1.kernel 3 is larger than its input 2x2$"),
    ({"input": [3], "loss": "mse", "batch": 1, "layer": [{"kind": "batchnorm"}]},
     r"^layer 1 is batchnorm, which normalises with the batch's statistics: it needs batch >= 2 \(got 1\)$"),
    ({"input": [3], "loss": "mse", "layer": [{"kind": "dense", "units": 2}, {"kind": "dense", "units": 2},
                                             {"kind": "residual", "from": 0}]},
     r"^layer 3.from = 0: its output is 3 but this layer's input is 2; a residual adds equal shapes$"),
    ({"input": [3], "loss": "mse", "layer": [{"kind": "dense", "units": 2}, {"kind": "embedding",
                                                                            "vocabulary": 3, "units": 2}]},
     r"^layer 2: embedding can only be the first layer"),
    ({"input": [1, 4, 4], "loss": "mse", "layer": [{"kind": "dense", "units": 2}]},
     r"^layer 1: dense does not take an input shaped 1x4x4"),
    ({"input": [3], "loss": "mse", "layer": [{"kind": "convolution"}]},
     r"^layer 1.kind 'convolution' is not a layer kind"),
])
def test_bad_stacks_get_one_line(table, message):
    with pytest.raises(SpecError, match=message):
        make_stack(table)


CNN = {"title": "A small CNN", "input": [1, 6, 6], "loss": "cross_entropy", "batch": 2, "layer": [
    {"kind": "conv2d", "channels": 3, "kernel": 3, "padding": 1, "activation": "relu"},
    {"kind": "maxpool2d", "kernel": 2}, {"kind": "flatten"},
    {"kind": "dense", "units": 3, "activation": "softmax"}]}


def _write(tmp_path, table: dict, values: dict | None = None) -> str:
    def toml(v):
        return json.dumps(v)

    lines = [f"{k} = {toml(v)}" for k, v in table.items() if k != "layer"]
    for layer in table["layer"]:
        lines += ["[[layer]]"] + [f"{k} = {toml(v)}" for k, v in layer.items()]
    if values:
        lines += ["[values]"] + [f"{k} = {toml(v)}" for k, v in values.items()]
    path = tmp_path / "net.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_cli_grad_json_of_a_cnn_matches_torch(tmp_path, capsys):
    values = _random_values(CNN, random.Random(3))
    assert main(["grad", _write(tmp_path, CNN, values), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    want, leaves = torch_loss(CNN, values)
    want.backward()
    assert abs(doc["loss"] - want.item()) <= ATOL + RTOL * abs(want.item())
    names = make_stack(CNN).parameter_names()
    assert list(doc["gradients"]) == names and names[0] == "K1[1,1,1,1]"
    flat = np.concatenate([leaves[n].grad.numpy().ravel() for n in ("K1", "b1", "W4", "b4")])
    got = np.array([doc["gradients"][n]["value"] for n in names])
    np.testing.assert_allclose(got, flat, rtol=RTOL, atol=ATOL)


def test_cli_check_passes_on_a_cnn_and_catches_a_wrong_backward_rule(tmp_path, capsys, monkeypatch):
    from derive.check import layer_ops

    spec = _write(tmp_path, CNN)
    assert main(["check", spec, "--points", "2"]) == 0
    out = capsys.readouterr().out
    assert "all gradients agree" in out and "random directions" in out  # W4 has 81 entries
    forward, backward = layer_ops.LAYER_OPS["dense"]

    def wrong(layer, g, cache, P):  # a weight gradient off by 1%: the directional check sees it
        g_in, grads = backward(layer, g, cache, P)
        return g_in, {**grads, "W": grads["W"] * 1.01}

    monkeypatch.setitem(layer_ops.LAYER_OPS, "dense", (forward, wrong))
    assert main(["check", spec, "--points", "1"]) == 1
    out = capsys.readouterr().out
    assert "GRADIENTS DISAGREE" in out and [line for line in out.splitlines() if line.startswith("W4")
                                            and "MISMATCH" in line]


@pytest.mark.parametrize("command", [["explain", "--format", "html"], ["which", "K1[1,1,1,1]", "--format", "html"],
                                     ["exercises"]])
def test_commands_without_layer_support_say_so_in_one_line(tmp_path, capsys, command):
    spec = _write(tmp_path, CNN)
    argv = [command[0], spec] + command[1:]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not read [[layer]] networks yet" in err[0]


@pytest.mark.parametrize("table,values", STACKS[::3], ids=[f"stack{i}" for i in range(0, len(STACKS), 3)])
def test_check_against_torch_passes_on_random_stacks(table, values, tmp_path, capsys):
    assert main(["check", _write(tmp_path, table, values), "--points", "1", "--against", "torch"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("torch agrees")


@pytest.mark.parametrize("text,args,message", [
    ('input = [2]\nloss = "mse"\n[regularization]\nl2 = 0.1\n[[layer]]\nkind = "dense"\nunits = 1\n', [],
     "unknown key 'regularization' (regularization is for layers = [...] networks"),
    ('input = [2]\nsteps = 3\nloss = "mse"\n[[layer]]\nkind = "dense"\nunits = 1\n', [],
     "steps = 3 describes a sequence, but no layer is recurrent"),
    ('input = [2]\nloss = "mse"\n[[layer]]\nunits = 1\n', [], "layer 1 has no kind"),
    ('input = [2]\nloss = "mse"\n[[layer]]\nkind = "dense"\nunits = 1\n', ["--l2", "0.1"],
     "--l2/--l1 is for layers = [...] networks"),
])
def test_what_a_stack_does_not_take_is_one_line(tmp_path, capsys, text, args, message):
    """Review findings: each refusal names what the user wrote, not another field."""
    path = tmp_path / "net.toml"
    path.write_text(text)
    assert main(["grad", str(path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_matrix_claims_and_questions_on_a_stack_say_what_to_do(tmp_path, capsys):
    spec = _write(tmp_path, CNN)
    assert main(["claim", spec, "W4", "dZ4 @ A3.T"]) == 2
    assert "claim one entry, like W4[1,1]" in capsys.readouterr().err
    assert main(["which", spec, "K1[1,1,1,1]", "--question", "l2"]) == 2
    assert "--question l2 is for layers = [...] networks" in capsys.readouterr().err
