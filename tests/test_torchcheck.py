"""`derive check --against torch`: derived gradients against PyTorch autograd.

PyTorch is installed by ./dev.sh (.venv).  Without it these tests skip locally
but FAIL under CI (the `CI` environment variable), so a CI run can never pass
by silently not comparing with torch.  The paths that need no torch (custom
expressions refused, torch missing) run everywhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import derive.check.torchcheck as torchcheck
from derive import Network, SpecError, ToolError
from derive.cli import main
from derive.check.evaluate import Evaluator
from derive.spec.registry import ACTIVATIONS, LOSSES

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TINY = str(EXAMPLES / "tiny.toml")
TINY_VALUES = str(EXAMPLES / "tiny-values.toml")
DEEP = str(EXAMPLES / "deep.toml")


@pytest.fixture
def torch():
    try:
        import torch
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("PyTorch is not installed, and CI must compare with it: "
                        "./dev.sh installs torch==2.13.0 into .venv")
        pytest.skip("PyTorch is not installed (under CI this fails instead)")
    return torch


#: Networks that together use every activation and every loss, with and without bias.
NETWORKS = [
    ([3, 4, 4, 3, 2], ["identity", "sigmoid", "tanh", "relu"], "mse", True),
    ([2, 3, 3, 3, 3], ["leaky_relu", "softplus", "elu", "silu"], "half_sse", False),
    ([2, 4, 3], ["gelu", "softmax"], "cross_entropy", True),
    ([3, 3, 2], ["tanh", "sigmoid"], "bce", False),
    ([2, 3, 3], ["relu", "softmax"], "bce", True),
    ([2, 2, 2], ["elu", "softplus"], "cross_entropy", True),
    ([2, 3, 2], ["silu", "sigmoid"], "cross_entropy", False),
    ([4, 3, 2], ["gelu", "identity"], "sse", True),
]


def test_networks_cover_every_activation_and_loss():
    assert {a for _, acts, _, _ in NETWORKS for a in acts} == set(ACTIVATIONS)
    assert {loss for *_, loss, _ in NETWORKS} == set(LOSSES)


@pytest.mark.parametrize("layers,acts,loss,bias", NETWORKS,
                         ids=[f"{','.join(n[1])}:{n[2]}" for n in NETWORKS])
def test_compare_with_torch_agrees(torch, layers, acts, loss, bias):
    net = Network(layers, acts, loss, bias=bias)
    report = torchcheck.compare_with_torch(net, points=3, seed=1)
    assert report.passed, report.table()
    assert report.points == 3
    assert [r.layer for r in report.layers] == list(range(1, len(layers)))
    assert sum(r.parameters for r in report.layers) == net.spec.parameter_count
    assert report.table().splitlines()[-1] == "torch agrees"


def test_torch_gradients_cover_every_parameter(torch):
    net = Network([2, 3, 2], ["tanh", "softmax"], "cross_entropy")
    values = {"x": [0.5, -1.0], "y": [0.25, 0.75], "W1": [[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6]],
              "b1": [0.0, 0.1, -0.1], "W2": [[0.7, -0.8, 0.9], [-1.0, 1.1, -1.2]], "b2": [0.2, -0.2]}
    loss, grads = torchcheck.torch_gradients(net, net.values(values))
    assert list(grads) == [p.name for p in net.params()]
    derived = net.gradients(values)
    for name, g in grads.items():
        assert abs(derived[name] - g) <= torchcheck.ATOL + torchcheck.RTOL * abs(g), name
    assert loss == pytest.approx(net.loss(values), rel=1e-14)


def test_compare_with_torch_uses_the_spec_values(torch):
    net = Network([2, 2], "sigmoid", "bce", values={"x": [1.0, 2.0], "y": [0.0, 1.0],
                                                    "W1": [[30.0, 1.0], [-1.0, 0.5]], "b1": [5.0, 0.0]})
    report = torchcheck.compare_with_torch(net, points=0)
    assert report.points == 1 and report.passed, report.table()  # z = 37: saturated sigmoid


def test_compare_with_torch_deep_example(torch):
    from derive import load

    report = torchcheck.compare_with_torch(load(DEEP), points=1)
    assert report.passed and report.points == 2
    assert len(report.layers) == 32


def test_compare_with_torch_fails_on_wrong_derivative(torch, monkeypatch):
    original = Evaluator._local
    monkeypatch.setattr(Evaluator, "_local", lambda self, l, trace: original(self, l, trace) * (1 + 1e-6))
    report = torchcheck.compare_with_torch(Network([2, 3, 3, 1], "tanh", "half_sse"), points=2)
    assert not report.passed
    rows = {r.layer: r for r in report.layers}
    assert rows[1].failures > 0 and rows[2].failures > 0 and rows[3].failures == 0
    assert "MISMATCH" in report.table() and report.table().splitlines()[-1] == "TORCH DISAGREES"


def test_compare_with_torch_fails_on_wrong_loss(torch, monkeypatch):
    original = Network.loss_and_gradients

    def wrong_loss(self, values=None):
        loss, grads = original(self, values)
        return loss + 1e-6, grads

    monkeypatch.setattr(Network, "loss_and_gradients", wrong_loss)
    report = torchcheck.compare_with_torch(Network([2, 2], "sigmoid", "mse"), points=1)
    assert not report.passed
    assert all(r.failures == 0 for r in report.layers)
    assert "loss MISMATCH: point 1" in report.table()


def test_cli_check_against_torch(torch, capsys):
    code = main(["check", TINY, "--values", TINY_VALUES, "--against", "torch"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "all gradients agree" in out and out.splitlines()[-1] == "torch agrees"
    assert "PyTorch " + torch.__version__ in out


def test_cli_check_against_torch_fails_when_torch_disagrees(torch, monkeypatch, capsys):
    # torch's own network with a wrong tanh: derive's own check passes, the torch one fails
    acts = torchcheck._activations

    def wrong(t):
        table = acts(t)
        return {**table, "tanh": lambda z: t.tanh(z) * 1.001}

    monkeypatch.setattr(torchcheck, "_activations", wrong)
    code = main(["check", "--layers", "2,3,1", "--activation", "tanh,sigmoid", "--against", "torch"])
    out = capsys.readouterr().out
    assert code == 1
    assert "all gradients agree" in out and out.splitlines()[-1] == "TORCH DISAGREES"


# -- the two checks side by side -----------------------------------------------------

def _wrong_in_one_parameter(monkeypatch, layer: int, j: int, k: int, factor: float) -> None:
    """Every derived value goes through Evaluator.run: scale dL/dW(layer)[j,k] there."""
    original = Evaluator.run

    def run(self, values):
        trace, gW, gb = original(self, values)
        gW = {l: g.copy() for l, g in gW.items()}
        gW[layer][j - 1, k - 1] *= factor
        return trace, gW, gb

    monkeypatch.setattr(Evaluator, "run", run)


@pytest.mark.parametrize("acts,loss", [(["tanh", "sigmoid"], "bce"), (["elu", "softmax"], "cross_entropy")])
def test_both_checks_flag_the_same_wrong_gradient(torch, monkeypatch, acts, loss):
    net = Network([3, 4, 2] if acts[-1] != "softmax" else [3, 4, 3], acts, loss)
    right, right_torch = net.check(points=3), torchcheck.compare_with_torch(net, points=3)
    assert right.passed and right_torch.passed, right.table() + right_torch.table()
    _wrong_in_one_parameter(monkeypatch, 2, 2, 3, 1 + 1e-5)  # one part in 100,000
    wrong, wrong_torch = net.check(points=3), torchcheck.compare_with_torch(net, points=3)
    for report in (wrong, wrong_torch):
        assert not report.passed
        assert [r.failures for r in report.layers] == [0, 3]  # W2[2,3] at each of 3 points
        assert report.layers[1].worst.startswith("W2[2,3]: derived ")
        assert report.table().splitlines()[-1] in ("GRADIENTS DISAGREE", "TORCH DISAGREES")


def test_complex_step_reference_needs_no_derivative_and_matches_torch(torch, monkeypatch):
    """verify's reference with every derived quantity broken still equals torch's autograd."""
    from derive.check.numeric import as_arrays
    from derive.check.points import Sampler
    from derive.check.verify import reference_gradients

    net = Network([3, 4, 3, 2], ["elu", "gelu", "sigmoid"], "bce")
    ev, point = net.evaluator, Sampler(net.evaluator, seed=9).fresh()
    _, (tW, tb) = torchcheck.torch_arrays(net, point)

    def broken(*args, **kwargs):
        raise AssertionError("the complex-step reference used the derivation")

    for name in ("backward", "_local", "_output_delta", "run", "gradients", "loss_and_gradients"):
        monkeypatch.setattr(Evaluator, name, broken)
    rW, rb = reference_gradients(ev, *as_arrays(point, ev.n, ev.spec.bias))
    for l in tW:
        assert abs(rW[l] - tW[l]).max() <= 1e-12 and abs(rb[l] - tb[l]).max() <= 1e-12, l


# -- paths that need no torch ---------------------------------------------------------

def test_compare_with_torch_refuses_custom_activation():
    net = Network([2, 2, 1], ["x/(1+abs(x))", "sigmoid"], "half_sse")
    with pytest.raises(SpecError, match=r"layer 1's activation 'x/\(1\+abs\(x\)\)' is a custom expression"):
        torchcheck.compare_with_torch(net)


def test_compare_with_torch_refuses_custom_loss():
    net = Network([2, 1], "tanh", "(a - y)^4/4")
    with pytest.raises(SpecError, match=r"the loss '\(a - y\)\^4/4' is a custom expression"):
        torchcheck.compare_with_torch(net)


def test_compare_with_torch_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(ToolError) as info:
        torchcheck.compare_with_torch(Network([2, 1], "tanh", "mse"))
    assert str(info.value) == "--against torch needs PyTorch: pip install torch==2.13.0 (CPU)"


def test_cli_check_against_torch_without_torch(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    code = main(["check", TINY, "--against", "torch"])
    err = capsys.readouterr().err
    assert code == 3
    assert err == "derive: --against torch needs PyTorch: pip install torch==2.13.0 (CPU)\n"


def test_compare_with_torch_needs_a_point(torch):
    with pytest.raises(SpecError, match="no point to compare"):
        torchcheck.compare_with_torch(Network([2, 1], "tanh", "mse"), points=0)
