"""Generated NumPy and PyTorch modules against the engine and against themselves.

For every activation and loss of the registry (and custom expressions), the
generated module is written to a temporary file and imported.  Its own
check() must pass (central differences for NumPy, autograd for PyTorch), and
its gradients must equal the engine's (`Network.gradients`, an independent
code path through evaluate.py) to 1e-12: per example, and for a batch as the
mean of the per-example engine gradients.  Torch tests skip without torch,
except under CI=true, where a missing torch is a failure.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
import sympy

import derive
from derive.cli import main as cli_main
from derive.check.stable import SIGMOID as sigmoid, SOFTPLUS as softplus, stabilize as stable
from derive.export.codegen import ArrayPrinter, generate, to_code
from derive.errors import RenderError
from derive.spec.registry import ACTIVATIONS, LOSSES

#: generated vs engine: |gen - eng| <= RTOL * |eng| + ATOL (both exact formulas in float64)
RTOL = 1e-12
ATOL = 1e-14

ELEMENTWISE = [name for name, row in ACTIVATIONS.items() if not row.vector]
CUSTOM_ACTIVATIONS = ["x/(1+abs(x))", "sigmoid(x)*x + max(x, 0)"]
ALL_LOSSES = list(LOSSES) + ["(a-y)**4/4 + abs(a-y)"]
TARGETS = ["numpy", "torch"]
_counter = itertools.count()


def _torch():
    try:
        import torch
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("torch not installed (pip install torch==2.13.0); required under CI=true")
    return torch


def load_module(source: str, tmp_path):
    """Import generated source from a file, as a user would."""
    path = tmp_path / f"generated_{next(_counter)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_case(net, rng, m):
    """Params (as NumPy arrays), x (m, n0), y (m, nL) suited to the loss."""
    n, spec = net.spec.layers, net.spec
    params = {}
    for l in range(1, len(n)):
        params[f"W{l}"] = rng.normal(0, n[l - 1] ** -0.5, (n[l], n[l - 1]))
        if spec.bias:
            params[f"b{l}"] = rng.uniform(-0.5, 0.5, n[l])
    x = rng.uniform(-1, 1, (m, n[0]))
    if spec.loss.probabilistic:
        y = rng.uniform(0.05, 0.95, (m, n[-1]))
        if spec.activations[-1].vector and spec.loss.name == "cross_entropy":
            y = y / y.sum(axis=1, keepdims=True)
    else:
        y = rng.uniform(-1, 1, (m, n[-1]))
    return params, x, y


def engine(net, params, x, y):
    """The engine's gradients for one example, as arrays shaped like params."""
    values = {"x": list(x), "y": list(y), **{k: v.tolist() for k, v in params.items()}}
    flat = net.gradients(values)
    out = {k: np.zeros_like(v) for k, v in params.items()}
    for p in net.params():
        key = f"{p.kind}{p.layer}"
        idx = (p.j - 1, p.k - 1) if p.kind == "W" else (p.j - 1,)
        out[key][idx] = flat[p.name]
    return out, net.loss(values)


def as_numpy(value):
    return value.detach().numpy() if hasattr(value, "detach") else np.asarray(value)


def assert_close(got, want, what):
    got, want = as_numpy(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, want {want.shape}"
    err = np.abs(got - want)
    bad = ~(err <= RTOL * np.abs(want) + ATOL)
    assert not bad.any(), f"{what}: max error {err.max():.3e}; got {got[bad]}, want {want[bad]}"


def run_case(net, target, tmp_path, seed=1, m=4):
    if target == "torch":
        torch = _torch()
    module = load_module(generate(net, target), tmp_path)
    worst = module.check(verbose=False)
    assert worst == worst and worst < 1e-6
    rng = np.random.default_rng(seed)
    params, x, y = random_case(net, rng, m)
    if target == "torch":
        params_in = {k: torch.tensor(v) for k, v in params.items()}
        x_in, y_in = torch.tensor(x), torch.tensor(y)
    else:
        params_in, x_in, y_in = params, x, y
    per_example = [engine(net, params, x[i], y[i]) for i in range(m)]
    for i, (want, want_loss) in enumerate(per_example):
        got = module.gradients(params_in, x_in[i], y_in[i])
        assert list(got) == list(params)
        for k in params:
            assert_close(got[k], want[k], f"{target} example {i} {k}")
        assert_close(float(module.loss(params_in, x_in[i], y_in[i])), want_loss, f"{target} loss {i}")
    got = module.gradients(params_in, x_in, y_in)
    for k in params:
        mean = np.mean([g[k] for g, _ in per_example], axis=0)
        assert_close(got[k], mean, f"{target} batch {k}")
    mean_loss = np.mean([v for _, v in per_example])
    assert_close(float(module.loss(params_in, x_in, y_in)), mean_loss, f"{target} batch loss")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("activation", ELEMENTWISE + CUSTOM_ACTIVATIONS)
def test_codegen_activation(activation, target, tmp_path):
    """Every layer `activation`, squared error: hidden local derivatives and the output's."""
    run_case(derive.Network([3, 4, 3, 2], activation, "half_sse"), target, tmp_path)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("loss", ALL_LOSSES)
@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_codegen_loss(loss, output, target, tmp_path):
    """Every loss after a sigmoid and after a softmax output (outputs in (0, 1))."""
    run_case(derive.Network([3, 4, 3], ["tanh", output], loss), target, tmp_path)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("loss", ["mse", "sse", "half_sse"])
@pytest.mark.parametrize("output", ["identity", "tanh", "relu", "softplus"])
def test_codegen_regression_outputs(loss, output, target, tmp_path):
    run_case(derive.Network([2, 3, 2], ["sigmoid", output], loss), target, tmp_path)


@pytest.mark.parametrize("target", TARGETS)
def test_codegen_no_bias_deep(target, tmp_path):
    net = derive.Network([2, 3, 3, 3, 3, 1], ["tanh", "gelu", "elu", "silu", "sigmoid"], "bce",
                         bias=False)
    source = generate(net, target)
    assert '"b1"' not in source
    run_case(net, target, tmp_path)


def test_codegen_prints_the_derivation(tmp_path):
    """The backward pass is the Simplifier's forms, one matrix step per layer."""
    source = generate(derive.Network([2, 3, 3, 1], ["tanh", "sigmoid", "sigmoid"], "bce"))
    assert "    d3 = (a3 - y) / m\n" in source
    assert '    d2 = (d3 @ params["W3"]) * (a2*(1 - a2))\n' in source
    assert '    d1 = (d2 @ params["W2"]) * (1 - a1**2)\n' in source
    assert '        "W1": d1.T @ a0,\n' in source
    assert "import derive" not in source and "from derive" not in source
    source = generate(derive.Network([2, 3], "softmax", "cross_entropy"))
    assert "-y*_log_softmax(z1)" in source
    assert "    d1 = (a1 * y.sum(axis=1, keepdims=True) - y) / m\n" in source


def test_codegen_stable_at_extreme_logits(tmp_path):
    """bce of a sigmoid and cross_entropy of a softmax stay finite where a = 0 or 1 exactly."""
    for activation, loss in [("sigmoid", "bce"), ("softmax", "cross_entropy"), ("sigmoid", "cross_entropy")]:
        module = load_module(generate(derive.Network([1, 2], activation, loss)), tmp_path)
        params = {"W1": np.array([[1000.0], [-1000.0]]), "b1": np.zeros(2)}
        x, y = np.array([1.0]), np.array([0.5, 0.5])
        value = module.loss(params, x, y)
        # independent: z = (1000, -1000); sigmoid+bce per output = softplus(z) - y z = 500 each
        want = {"bce": 1000.0, "cross_entropy": 500.0 if activation == "sigmoid" else 1000.0}[loss]
        assert value == pytest.approx(want, rel=1e-12)
        grads = module.gradients(params, x, y)
        assert all(np.isfinite(g).all() for g in grads.values())


def test_codegen_rejects_shapes(tmp_path):
    module = load_module(generate(derive.Network([2, 3, 1], "tanh", "mse")), tmp_path)
    params = {"W1": np.ones((3, 2)), "b1": np.ones(3), "W2": np.ones((1, 3)), "b2": np.ones(1)}
    with pytest.raises(ValueError, match=r"x must have shape \(2,\) or \(m, 2\), got \(3,\)"):
        module.gradients(params, np.ones(3), np.ones(1))
    with pytest.raises(ValueError, match="y has 1 rows but x has 2"):
        module.gradients(params, np.ones((2, 2)), np.ones(1))


def test_codegen_check_detects_a_wrong_gradient(tmp_path):
    source = generate(derive.Network([2, 2, 1], "tanh", "half_sse"))
    wrong = source.replace("(1 - a1**2)", "(1 - a1)")
    assert wrong != source
    module = load_module(wrong, tmp_path)
    with pytest.raises(AssertionError, match="disagree"):
        module.check(verbose=False)


def test_codegen_runs_as_script(tmp_path):
    out = tmp_path / "net.py"
    assert cli_main(["code", "--layers", "2,3,2", "--activation", "relu,softmax",
                     "--loss", "cross_entropy", "--target", "numpy", "-o", str(out)]) == 0
    run = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("check: 17 gradients, batch of 3, max |derived - central difference| = ")
    assert run.stdout.rstrip().endswith(": ok")
    bad = tmp_path / "bad.py"
    bad.write_text(out.read_text().replace("(d2 @ params[\"W2\"]) * np.where(z1 > 0, 1, 0)",
                                           "(d2 @ params[\"W2\"])"))
    run = subprocess.run([sys.executable, str(bad)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "check failed" in run.stderr


def test_codegen_unknown_target():
    with pytest.raises(RenderError, match="code target 'jax'; expected one of numpy, torch"):
        generate(derive.Network([1, 1]), "jax")


def test_codegen_unsupported_function():
    x = sympy.Symbol("z1", real=True)
    with pytest.raises(RenderError, match="no numpy code for the function 'gamma'"):
        to_code(sympy.gamma(x))


def test_printer_settings():
    with pytest.raises(ValueError, match="target 'jax'; expected one of numpy, torch"):
        ArrayPrinter({"target": "jax"})
    with pytest.raises(TypeError):
        ArrayPrinter({"colour": "red"})


@pytest.mark.parametrize("expr, printed", [
    ("1/(1 + exp(-u))", "_sigmoid(u)"),
    ("exp(-u)/(1 + exp(-u))**2", "_sigmoid(-u)*_sigmoid(u)"),
    ("exp(u)/(exp(u) + 1)", "_sigmoid(u)"),
    ("log(1 + exp(u))", "_softplus(u)"),
    ("log(1/(1 + exp(-u)))", "-_softplus(-u)"),
    ("log(1 - 1/(1 + exp(-u)))", "-_softplus(u)"),
    ("u*exp(-u)/(1 + exp(-u))**2 + 1/(1 + exp(-u))", "u*_sigmoid(-u)*_sigmoid(u) + _sigmoid(u)"),
])
def test_stable_identities(expr, printed):
    """Each rewrite prints as expected and keeps the value (checked at 30 digits)."""
    u = sympy.Symbol("u", real=True)
    raw = sympy.sympify(expr, locals={"u": u})  # our own literal test text, not user input
    assert to_code(raw) == printed
    back = stable(raw).replace(sigmoid, lambda v: 1 / (1 + sympy.exp(-v))).replace(
        softplus, lambda v: sympy.log(1 + sympy.exp(v)))
    for point in ("-7/2", "-1/4", "0", "3/4", "4"):
        assert abs((raw - back).subs(u, sympy.Rational(point)).evalf(30)) < 1e-25


def test_stable_values_far_out(tmp_path):
    """The printed sigmoid and softplus helpers at |z| = 1000, against exact values."""
    module = load_module(generate(derive.Network([1, 1], "sigmoid", "bce")), tmp_path)
    z = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    exact = [1 / (1 + sympy.exp(-sympy.Integer(int(v)))) for v in z]
    assert module._sigmoid(z) == pytest.approx([float(e) for e in exact], rel=1e-15, abs=0)
    assert module._softplus(z) == pytest.approx(
        [float(sympy.log(1 + sympy.exp(sympy.Integer(int(v)))).evalf(30)) for v in z], rel=1e-15)


def test_codegen_softmax_cross_entropy_targets_not_summing_to_one(tmp_path):
    """The generated delta is a*sum(y) - y, the true gradient even when y does not sum to 1
    (the CLI refuses such y, but a module runs wherever it is imported)."""
    import importlib.util

    net = derive.Network([2, 3, 2], ["tanh", "softmax"], "cross_entropy")
    path = tmp_path / "sm.py"
    path.write_text(net.code("numpy"))
    spec = importlib.util.spec_from_file_location("sm_generated", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(3)
    params = {"W1": rng.normal(size=(3, 2)), "b1": rng.normal(size=3),
              "W2": rng.normal(size=(2, 3)), "b2": rng.normal(size=2)}
    x, y = rng.normal(size=2), np.array([1.0, 1.0])
    grads, h = module.gradients(params, x, y), 1e-6

    def loss(W2):  # written here from the definition: -sum y ln softmax(z)
        z = W2 @ np.tanh(params["W1"] @ x + params["b1"]) + params["b2"]
        return -np.sum(y * (z - np.log(np.sum(np.exp(z)))))

    for j, k in [(0, 1), (1, 2)]:
        up, down = params["W2"].copy(), params["W2"].copy()
        up[j, k] += h
        down[j, k] -= h
        assert abs(grads["W2"][j, k] - (loss(up) - loss(down)) / (2 * h)) < 1e-7


@pytest.mark.parametrize("activations", [["tanh", "sigmoid"], ["leaky_relu", "identity"]])
def test_codegen_torch_float32_nn_linear(activations, tmp_path):
    """float32 nn.Linear weights: the module computes in float32 (no dtype clash) and its
    gradients match autograd through nn.Linear itself, written here, at float32 tolerance."""
    torch = _torch()
    net = derive.Network([3, 4, 2], activations, "half_sse")
    module = load_module(generate(net, "torch"), tmp_path)
    torch.manual_seed(0)
    layers = [torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)]
    assert layers[0].weight.dtype == torch.float32
    params = {"W1": layers[0].weight, "b1": layers[0].bias, "W2": layers[1].weight, "b2": layers[1].bias}
    x, y = torch.rand(5, 3) * 2 - 1, torch.rand(5, 2) * 2 - 1
    got = module.gradients(params, x, y)
    assert all(g.dtype == torch.float32 for g in got.values())
    act = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda z: z,
           "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01)}
    out = act[activations[1]](layers[1](act[activations[0]](layers[0](x))))
    torch.mean(torch.sum((out - y) ** 2, dim=1) / 2).backward()
    for name, p in params.items():
        assert torch.allclose(got[name], p.grad, rtol=1e-5, atol=1e-6), name
    assert module.loss(params, x, y).dtype == torch.float32


def test_codegen_torch_list_params(tmp_path):
    """Plain lists as params are float64 tensors; the result equals the tensor call's."""
    torch = _torch()
    net = derive.Network([2, 2, 1], "relu", "half_sse")
    module = load_module(generate(net, "torch"), tmp_path)
    params, x, y = random_case(net, np.random.default_rng(4), 3)
    as_lists = {k: v.tolist() for k, v in params.items()}
    got = module.gradients(as_lists, x.tolist(), y.tolist())
    want = module.gradients({k: torch.tensor(v) for k, v in params.items()}, torch.tensor(x), torch.tensor(y))
    for k in params:
        assert got[k].dtype == torch.float64 and torch.equal(got[k], want[k])


def test_codegen_numpy_nested_lists(tmp_path):
    """Nested-list params work and give the engine's gradients (evaluate.py, another path)."""
    net = derive.Network([2, 3, 2], ["tanh", "sigmoid"], "bce")
    module = load_module(generate(net, "numpy"), tmp_path)
    params, x, y = random_case(net, np.random.default_rng(5), 1)
    got = module.gradients({k: v.tolist() for k, v in params.items()}, x[0].tolist(), y[0].tolist())
    want, want_loss = engine(net, params, x[0], y[0])
    for k in params:
        assert_close(got[k], want[k], f"lists {k}")
    assert_close(module.loss({k: v.tolist() for k, v in params.items()}, x[0], y[0]), want_loss, "loss")


def test_stable_table_rows_all_print_for_both_targets():
    """Every placeholder the one table of stable rewrites writes has code in both targets."""
    from derive.check.stable import PLACEHOLDERS

    u = sympy.Symbol("u", real=True)
    for target in TARGETS:
        for f in PLACEHOLDERS:
            assert to_code(f(u), target) != "", (target, f)


@pytest.mark.parametrize("target", TARGETS)
def test_stable_forms_far_out_match_mpmath(target, tmp_path):
    """gelu's Phi(z) as erfc (no 1 - 0.99... at z = -8) and elu's e^z - 1 as expm1 (no
    cancellation at z = 1e-9): the generated forward pass against mpmath at 50 digits."""
    import mpmath

    if target == "torch":
        _torch()
    z = [-8.0, -3.0, -1e-9, 1e-9]
    for name, exact in [("gelu", lambda v: v * mpmath.ncdf(v)),
                        ("elu", lambda v: v if v > 0 else mpmath.expm1(v))]:
        module = load_module(generate(derive.Network([1, 4], name, "half_sse"), target), tmp_path)
        params = {"W1": np.array([[v] for v in z]), "b1": np.zeros(4)}
        if target == "torch":
            import torch

            params = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
            x = torch.ones((1, 1), dtype=torch.float64)
        else:
            x = np.ones((1, 1))
        got = np.asarray(module.forward(params, x)[-1]).ravel()
        with mpmath.workdps(50):
            ref = [float(exact(mpmath.mpf(v))) for v in z]
        for g, r, v in zip(got, ref, z):
            assert abs(g - r) <= 1e-14 * abs(r), (name, target, v, g, r)
