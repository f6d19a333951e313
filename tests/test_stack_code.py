"""Generated NumPy and PyTorch modules of [[layer]] networks against the engine, torch and themselves.

The random stacks of tests/test_stack.py (every layer kind, activation and
loss, batch 2-3, mean and sum) are exported, written to a file and imported
as a user would.  Their loss and gradients must equal the engine's
(`StackEvaluator.run`) to 1e-12, and the gradients of the network built
in the test from torch.nn.functional and differentiated by autograd (an
independent reference: it shares nothing with derive but the numbers).
Each module's own check() must pass, and must fail when one of its backward
rules is planted wrong.
"""

from __future__ import annotations

import ast
import itertools
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from derive.api.stack import StackNetwork
from derive.check.stack_eval import StackEvaluator
from derive.cli import main
from derive.errors import RenderError
from derive.spec.stack import make_stack
from derive.spec.stack_values import make_stack_values
from test_stack import _random_stack, _random_values, _write, torch_loss

#: generated vs engine (both the same exact rules in float64): |got - want| <= RTOL |want| + ATOL
RTOL, ATOL = 1e-12, 1e-13
TARGETS = ["numpy", "torch"]
_RNG = random.Random(11)  # one stream: each stack its own draw
STACKS = [_random_stack(_RNG, i) for i in range(16)]
_counter = itertools.count()


def load_module(source: str, tmp_path):
    """Import generated source from a file."""
    import importlib.util

    path = tmp_path / f"stack_generated_{next(_counter)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inputs(values: dict, target: str):
    """params, x, y, masks for the module: NumPy arrays, or float64 tensors for torch."""
    convert = (lambda v: torch.tensor(v, dtype=torch.float64)) if target == "torch" else np.asarray
    params = {k: convert(v) for k, v in values.items() if k not in ("x", "y") and not k.startswith("mask")}
    masks = {k: convert(v) for k, v in values.items() if k.startswith("mask")}
    return params, convert(values["x"]), convert(values["y"]), masks


def _close(got, want, what: str, rtol: float = RTOL, atol: float = ATOL) -> None:
    got = got.detach().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    assert got.shape == np.shape(want), f"{what}: shape {got.shape}, want {np.shape(want)}"
    err = np.abs(got - want)
    assert (err <= rtol * np.abs(want) + atol).all(), f"{what}: max error {err.max():.3e}"


def test_stacks_cover_every_kind_and_loss():
    kinds = {layer["kind"] for table, _ in STACKS for layer in table["layer"]}
    assert len(kinds) == 13 and {table["loss"] for table, _ in STACKS} == {
        "cross_entropy", "half_sse", "mse", "bce", "sse"}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("table,values", STACKS, ids=[f"stack{i}" for i in range(len(STACKS))])
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
    reference, leaves = torch_loss(table, values)  # built in the test, differentiated by autograd
    reference.backward()
    for name, leaf in leaves.items():
        _close(got[name], leaf.grad.numpy(), f"{name} vs torch autograd", 1e-9, 1e-11)
    assert module.check(verbose=False) < 1e-6


def test_numpy_module_draws_the_specs_dropout_masks(tmp_path):
    """Without masks, the NumPy module draws each dropout mask from the layer's seed as derive
    does for the spec's batch, so the numbers are the spec's."""
    table, values = next((t, v) for t, v in STACKS if any(x["kind"] == "dropout" for x in t["layer"]))
    values = {k: v for k, v in values.items() if not k.startswith("mask")}
    spec = make_stack(table)
    want_loss, want = StackEvaluator(spec).run(make_stack_values(spec, values))
    module = load_module(StackNetwork(spec).code("numpy"), tmp_path)
    params, x, y, _ = _inputs(values, "numpy")
    got = module.gradients(params, x, y)
    _close(module.loss(params, x, y), want_loss, "loss")
    for name in want:
        _close(got[name], want[name], name)


CNN = {"title": "A small CNN", "input": [1, 6, 6], "loss": "cross_entropy", "layer": [
    {"kind": "conv2d", "channels": 2, "kernel": 3, "padding": 1, "stride": 2, "activation": "relu"},
    {"kind": "maxpool2d", "kernel": 2}, {"kind": "flatten"},
    {"kind": "dense", "units": 3, "activation": "softmax"}]}


@pytest.mark.parametrize("target", TARGETS)
def test_one_example_without_the_batch_axis(target, tmp_path):
    values = _random_values(CNN, random.Random(5))
    values = {**values, "x": values["x"][0], "y": values["y"][0]}  # batch 1: x is (1, 6, 6), y is (3,)
    spec = make_stack(CNN)
    want_loss, want = StackEvaluator(spec).run(make_stack_values(spec, values))
    module = load_module(StackNetwork(spec).code(target), tmp_path)
    params, x, y, _ = _inputs(values, target)
    assert tuple(x.shape) == (1, 6, 6)
    got = module.gradients(params, x, y)
    _close(float(module.loss(params, x, y)), want_loss, "loss")
    for name in want:
        _close(got[name], want[name], name)
    with pytest.raises(ValueError, match=r"x must have shape \(1, 6, 6\)"):
        module.loss(params, x[0], y)


def _imports(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module.split(".")[0])
    return names


def test_modules_are_standalone():
    table = {"input": [2, 7], "loss": "mse", "batch": 2, "layer": [
        {"kind": "conv1d", "channels": 2, "kernel": 3}, {"kind": "batchnorm", "activation": "gelu"},
        {"kind": "avgpool1d", "kernel": 2}, {"kind": "maxpool1d", "kernel": 2}, {"kind": "flatten"},
        {"kind": "dropout", "p": 0.5}, {"kind": "layernorm"}, {"kind": "dense", "units": 2}]}
    net = StackNetwork(make_stack(table))
    assert _imports(net.code("numpy")) == {"math", "sys", "numpy"}  # math: gelu's erf
    assert _imports(net.code("torch")) == {"itertools", "math", "sys", "torch"}
    with pytest.raises(RenderError, match="code target 'jax'"):
        net.code("jax")


def test_numpy_rules_are_vectorised():
    """No loop over positions: the only loop statements of the NumPy module run over kernel
    offsets (_scatter), dropout layers (_masks), parameter arrays (_arrays, random_point)
    and check()'s entries; no forward or backward rule has one."""
    table = {"input": [1, 6, 6], "loss": "sse", "batch": 2, "layer": [
        {"kind": "conv2d", "channels": 2, "kernel": 3}, {"kind": "batchnorm"}, {"kind": "avgpool2d", "kernel": 2},
        {"kind": "flatten"}, {"kind": "layernorm"}, {"kind": "dense", "units": 2}]}
    tree = ast.parse(StackNetwork(make_stack(table)).code("numpy"))
    looping = {f.name for f in tree.body if isinstance(f, ast.FunctionDef)
               and any(isinstance(n, (ast.For, ast.While)) for n in ast.walk(f))}
    assert looping == {"_scatter", "_masks", "_arrays", "random_point", "check"}


PLANTS = [  # (target, what is planted wrong, source text, replacement)
    ("numpy", "batchnorm's mean path dropped", "count * dxhat - dxhat.sum(axis=axes, keepdims=True)",
     "count * dxhat"),
    ("torch", "batchnorm's variance path dropped", "- xhat * (dxhat * xhat).sum(dim=axes, keepdim=True)", ""),
    ("numpy", "max-pool routed to each window's first entry", "d * (arg == np.ravel_multi_index(off, kernel))",
     "d * (0 == np.ravel_multi_index(off, kernel))"),
    ("torch", "max-pool indices off by one", "grad.scatter_add_(2, indices.flatten(2), d.flatten(2))",
     "grad.scatter_add_(2, (indices.flatten(2) + 1) % grad.shape[2], d.flatten(2))"),
    ("numpy", "a conv kernel gradient 1% off", 'return np.einsum(f"mo{sp},mc{sp}{wn}->oc{wn}", d, win)',
     'return 1.01 * np.einsum(f"mo{sp},mc{sp}{wn}->oc{wn}", d, win)'),
    ("torch", "a conv kernel gradient 1% off", 'return torch.einsum(f"mo{sp},mc{sp}{wn}->oc{wn}", d, win)',
     'return 1.01 * torch.einsum(f"mo{sp},mc{sp}{wn}->oc{wn}", d, win)'),
]


@pytest.mark.parametrize("target,what,old,new", PLANTS, ids=[f"{t}: {w}" for t, w, _, _ in PLANTS])
def test_check_catches_a_planted_wrong_rule(target, what, old, new, tmp_path):
    table = {"input": [1, 5, 5], "loss": "half_sse", "batch": 3, "layer": [
        {"kind": "conv2d", "channels": 2, "kernel": 2, "activation": "tanh"},
        {"kind": "batchnorm", "activation": "sigmoid"}, {"kind": "maxpool2d", "kernel": 2},
        {"kind": "flatten"}, {"kind": "dense", "units": 2}]}
    source = StackNetwork(make_stack(table)).code(target)
    assert load_module(source, tmp_path).check(verbose=False) < 1e-6
    assert source.count(old) == 1
    with pytest.raises(AssertionError, match="disagree"):
        load_module(source.replace(old, new), tmp_path).check(verbose=False)


def test_numpy_check_skips_differences_across_a_kink(tmp_path, capsys):
    """relu, max-pool and an identity output with half_sse: the loss is piecewise quadratic in
    each parameter, so a central difference is exact on one piece whatever the step.  A large
    step crosses kinks; check() skips those differences and passes, and counting them would fail."""
    table = {"input": [1, 6, 6], "loss": "half_sse", "batch": 2, "layer": [
        {"kind": "conv2d", "channels": 2, "kernel": 3, "activation": "relu"},
        {"kind": "maxpool2d", "kernel": 2}, {"kind": "flatten"}, {"kind": "dense", "units": 2}]}
    module = load_module(StackNetwork(make_stack(table)).code("numpy"), tmp_path)
    module.H = 0.05
    module.check()
    skipped = int(capsys.readouterr().out.split("(")[1].split()[0])
    assert skipped > 0
    module._same = lambda a, b: True
    with pytest.raises(AssertionError, match="disagree"):
        module.check(verbose=False)


@pytest.mark.parametrize("target", TARGETS)
def test_cli_writes_a_module_that_checks_itself(target, tmp_path):
    spec = _write(tmp_path, CNN)
    out = tmp_path / f"cnn_{target}.py"
    assert main(["code", spec, "--target", target, "-o", str(out)]) == 0
    run = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("check: ") and run.stdout.strip().endswith(": ok")


@pytest.mark.parametrize("target", TARGETS)
def test_custom_activation_and_loss_match_the_engine(target, tmp_path):
    """Expressions the user wrote are printed by the same printer as the table's rows; the
    engine compiles them separately (check/numeric.py)."""
    table = {"input": [2, 5], "loss": "(a-y)**4/4 + abs(a-y)", "batch": 2, "reduction": "sum", "layer": [
        {"kind": "conv1d", "channels": 2, "kernel": 2, "activation": "x/(1+abs(x))"},
        {"kind": "layernorm", "activation": "gelu"}, {"kind": "flatten"},
        {"kind": "dense", "units": 3, "activation": "sigmoid(x)*x + max(x, 0)"}]}
    values = _random_values(table, random.Random(2))
    spec = make_stack(table)
    want_loss, want = StackEvaluator(spec).run(make_stack_values(spec, values))
    module = load_module(StackNetwork(spec).code(target), tmp_path)
    params, x, y, masks = _inputs(values, target)
    got = module.gradients(params, x, y, masks)
    _close(float(module.loss(params, x, y, masks)), want_loss, "loss")
    for name in want:
        _close(got[name], want[name], name)
    assert module.check(verbose=False) < 1e-6


def test_torch_module_computes_in_float32_params_dtype(tmp_path):
    spec = make_stack(CNN)
    values = _random_values(CNN, random.Random(5))
    module = load_module(StackNetwork(spec).code("torch"), tmp_path)
    params = {k: torch.tensor(v, dtype=torch.float32) for k, v in values.items() if k not in ("x", "y")}
    got = module.gradients(params, values["x"][0], values["y"][0])
    _, want = StackEvaluator(spec).run(make_stack_values(spec, {**values, "x": values["x"][0],
                                                                "y": values["y"][0]}))
    for name in want:
        assert got[name].dtype == torch.float32
        _close(got[name].double(), want[name], name, 1e-4, 1e-5)
