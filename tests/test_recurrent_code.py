"""Generated NumPy and PyTorch modules of recurrent networks (rnn, lstm) against the engine,
torch.nn.RNN / torch.nn.LSTM and themselves.

The random networks of tests/test_recurrent.py (1-2 recurrent layers, widths 1-4, T = 1-5,
sequence losses "last" and "all", every loss, a dense layer at every step) are exported and
imported from a file.  Loss and gradients must equal the engine's (`StackEvaluator.run`) to
1e-12, and the gradients of torch.nn.RNN / torch.nn.LSTM built in test_recurrent.py and
differentiated by autograd (an independent reference) to 1e-9.  Each module's check() passes,
and fails when its BPTT rule is planted wrong.
"""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from derive.api.stack import StackNetwork
from derive.check.stack_eval import StackEvaluator
from derive.cli import main
from derive.spec.stack import make_stack
from derive.spec.stack_values import make_stack_values
from test_recurrent import random_recurrent, torch_reference
from test_stack import _random_values, _write
from test_stack_code import TARGETS, _close, _inputs, load_module

#: one stream: widths 1-4, T 1-5, a relu rnn, batch 2-3 (test_stack._random_values writes a batch
#: of 1 with its batch axis, which values of batch 1 omit; one example is tested below)
_RNG = random.Random(399)
CASES = [random_recurrent(_RNG, i) for i in range(12)]


def test_cases_cover_both_kinds_depths_and_sequence_losses():
    seen = {(t["layer"][0]["kind"], len(t["layer"]) - 1, t["sequence_loss"]) for t, _ in CASES}
    assert seen == {(k, d, s) for k in ("rnn", "lstm") for d in (1, 2) for s in ("last", "all")}
    assert {t["loss"] for t, _ in CASES} == {"cross_entropy", "half_sse", "mse", "bce", "sse"}
    assert {t["steps"] for t, _ in CASES} == {1, 2, 3, 4, 5}
    assert {x["units"] for t, _ in CASES for x in t["layer"][:-1]} == {1, 2, 3, 4}
    assert "relu" in {x.get("activation") for t, _ in CASES for x in t["layer"][:-1]}  # a kink in BPTT


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("table,values", CASES, ids=[f"{t['layer'][0]['kind']}{i}" for i, (t, _) in enumerate(CASES)])
def test_generated_module_matches_engine_and_torch(table, values, target, tmp_path):
    spec = make_stack(table)
    module = load_module(StackNetwork(spec).code(target), tmp_path)
    want_loss, want = StackEvaluator(spec).run(make_stack_values(spec, values))
    params, x, y, masks = _inputs(values, target)
    got = module.gradients(params, x, y, masks)
    assert list(got) == [name for name, _ in spec.parameter_arrays()]
    _close(float(module.loss(params, x, y, masks)), want_loss, "loss")
    for name in want:
        _close(got[name], want[name], name)
    torch_loss, torch_grads = torch_reference(table, values)
    _close(float(module.loss(params, x, y, masks)), float(torch_loss), "loss vs torch", 1e-9, 1e-11)
    for name, grad in torch_grads.items():
        _close(got[name], grad, f"{name} vs torch autograd", 1e-9, 1e-11)
    assert module.check(verbose=False) < 1e-6


RNN = {"input": [3], "steps": 4, "loss": "half_sse", "sequence_loss": "all", "batch": 2,
       "layer": [{"kind": "rnn", "units": 3, "activation": "tanh"}, {"kind": "dense", "units": 2}]}
LSTM = {**RNN, "sequence_loss": "last", "layer": [{"kind": "lstm", "units": 3}, {"kind": "dense", "units": 2}]}

PLANTS = [  # (network, target, what is planted wrong, source text, replacement)
    (RNN, "numpy", "BPTT without the path through h_(t+1)", "carry = dz @ R", "carry = 0.0"),
    (RNN, "torch", "R's gradient against h_t instead of h_(t-1)", "dR += dz.T @ h[:, t - 1]",
     "dR += dz.T @ h[:, t]"),
    (LSTM, "numpy", "the cell path without the forget gate", "dc_next = dc * f ", "dc_next = dc "),
    (LSTM, "torch", "no gradient from h_(t+1) through R", "dh_next = dh_next + dk @ R", "dh_next = 0.0"),
]


@pytest.mark.parametrize("table,target,what,old,new", PLANTS, ids=[f"{t}: {w}" for _, t, w, _, _ in PLANTS])
def test_check_catches_a_planted_wrong_bptt_rule(table, target, what, old, new, tmp_path):
    source = StackNetwork(make_stack(table)).code(target)
    assert load_module(source, tmp_path).check(verbose=False) < 1e-6
    assert source.count(old) == 1
    with pytest.raises(AssertionError, match="disagree"):
        load_module(source.replace(old, new), tmp_path).check(verbose=False)


def test_cli_writes_a_module_whose_self_check_passes(tmp_path):
    """`derive code` on an LSTM file (it used to refuse recurrent layers): the file runs its check()."""
    out = tmp_path / "lstm_code.py"
    assert main(["code", _write(tmp_path, LSTM), "--target", "numpy", "-o", str(out)]) == 0
    source = out.read_text()
    assert "W1i (3, 3)" in source and "for t in range(x.shape[1])" in source
    run = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("check: ") and run.stdout.strip().endswith(": ok")


@pytest.mark.parametrize("target", TARGETS)
def test_one_sequence_without_the_batch_axis(target, tmp_path):
    """x (T, features) and, for sequence_loss = "all", y (T, n_out): one example, batch 1."""
    table = {**RNN, "batch": 1}
    values = _random_values({**RNN, "batch": 2}, random.Random(3))
    values = {**values, "x": values["x"][0], "y": values["y"][0]}
    spec = make_stack(table)
    want_loss, want = StackEvaluator(spec).run(make_stack_values(spec, values))
    module = load_module(StackNetwork(spec).code(target), tmp_path)
    params, x, y, _ = _inputs(values, target)
    assert tuple(x.shape) == (4, 3) and tuple(y.shape) == (4, 2)
    got = module.gradients(params, x, y)
    _close(float(module.loss(params, x, y)), want_loss, "loss")
    for name in want:
        _close(got[name], want[name], name)
