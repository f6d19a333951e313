"""Generated modules and the torch check for minibatches, reductions, layouts and regularisers.

The loss of a spec with training fields is L = s sum_n loss_n + R(W), s = 1/m or 1,
R = (l2/2) sum w^2 + l1 sum |w| (spec/training.py).  For seeded random networks
(depth 1-3, widths 1-4, several activations and losses, batch 1-4, mean and sum, l1
and l2 with and without the biases, both layouts) the generated NumPy and PyTorch
modules must give the engine's loss and gradients (`net.loss_and_gradients`,
`net.gradients(shaped=True)`: evaluate.py, another code path) to 1e-12, and their own
check() must pass.  Independently of derive, torch autograd written in this file
checks a row-layout minibatch with L2.  The torch check (`compare_with_torch`) must
pass on the same networks and fail when the engine's regulariser or reduction is
wrong.  torch is installed in the venv: these tests do not skip.
"""

from __future__ import annotations

import importlib.util
import itertools

import numpy as np
import pytest
import torch

import derive
from derive.check import torchcheck
from derive.export.codegen import generate

#: generated vs engine: |gen - eng| <= TOL * max(1, |eng|)
TOL = 1e-12
HIDDEN = ["tanh", "sigmoid", "relu", "elu", "softplus", "gelu", "silu", "leaky_relu", "identity"]
#: (output activation, loss): softmax + cross_entropy, bce, half_sse among them
OUTPUTS = [("softmax", "cross_entropy"), ("sigmoid", "bce"), ("identity", "half_sse"),
           ("tanh", "half_sse"), ("sigmoid", "cross_entropy"), ("softplus", "mse"),
           ("identity", "sse"), ("softmax", "bce")]
REGULARIZERS = [None, {"l2": 0.05}, {"l1": 0.02}, {"l2": 0.1, "l1": 0.03, "biases": True}]
CASES = 32
_counter = itertools.count()


def random_network(seed: int) -> derive.Network:
    """Case `seed`: layout, reduction and regulariser cycle through every combination
    (8 cases per regulariser); sizes, activations, loss, bias and batch are drawn."""
    rng = np.random.default_rng(1000 + seed)
    depth = int(rng.integers(1, 4))
    output, loss = OUTPUTS[seed % len(OUTPUTS)]
    widths = [int(rng.integers(1, 5)) for _ in range(depth + 1)]
    if output == "softmax":
        widths[-1] = max(widths[-1], 2)  # a softmax of one output is the constant 1
    acts = [str(rng.choice(HIDDEN)) for _ in range(depth - 1)] + [output]
    return derive.Network(widths, acts, loss, bias=bool(rng.random() < 0.8),
                          batch=int(rng.integers(1, 5)), reduction=["mean", "sum"][seed // 2 % 2],
                          layout=["column", "row"][seed % 2], regularization=REGULARIZERS[seed // 4 % 4])


def random_point(net, rng) -> dict:
    """x, y of the spec's batch (flat for one example) and W<l> in the network's layout."""
    spec, n, m = net.spec, net.spec.layers, net.spec.batch
    point = {}
    for l in range(1, spec.depth + 1):
        shape = (n[l - 1], n[l]) if spec.row_layout else (n[l], n[l - 1])
        point[f"W{l}"] = rng.normal(0, n[l - 1] ** -0.5, shape)
        if spec.bias:
            point[f"b{l}"] = rng.uniform(-0.5, 0.5, n[l])
    x = rng.uniform(-1, 1, (m, n[0]))
    if spec.loss.probabilistic:
        y = rng.uniform(0.05, 0.95, (m, n[-1]))
        if spec.softmax_cross_entropy:
            y = y / y.sum(axis=1, keepdims=True)
    else:
        y = rng.uniform(-1, 1, (m, n[-1]))
    point["x"], point["y"] = (x[0], y[0]) if m == 1 else (x, y)
    return point


def load_module(source: str, tmp_path):
    path = tmp_path / f"generated_training_{next(_counter)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def params_of(point: dict) -> dict:
    return {k: v for k, v in point.items() if k[0] in "Wb"}


def assert_close(got, want, what: str) -> None:
    got = got.detach().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, want {want.shape}"
    err = np.abs(got - want)
    assert (err <= TOL * np.maximum(1, np.abs(want))).all(), f"{what}: max error {err.max():.3e}"


def module_results(module, point: dict, target: str):
    """loss() and gradients() of a generated module at a point (tensors for torch)."""
    params, x, y = params_of(point), point["x"], point["y"]
    if target == "torch":
        params = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
        x, y = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    return float(module.loss(params, x, y)), module.gradients(params, x, y)


def test_cases_cover_every_combination():
    nets = [random_network(i) for i in range(CASES)]
    seen = {(n.spec.training.layout, n.spec.training.reduction, n.spec.regularization) for n in nets}
    assert len(seen) == 2 * 2 * len(REGULARIZERS)
    assert {(n.spec.activations[-1].name, n.spec.loss.name) for n in nets} == set(OUTPUTS)
    assert {n.spec.depth for n in nets} == {1, 2, 3} and {n.spec.batch for n in nets} == {1, 2, 3, 4}
    assert {w for n in nets for w in n.spec.layers} == {1, 2, 3, 4}
    assert any(not n.spec.bias for n in nets)


@pytest.mark.parametrize("case", range(CASES))
def test_generated_modules_match_the_engine(case, tmp_path):
    """NumPy and PyTorch modules: loss and every gradient equal the engine's, keys and
    shapes those of net.gradients(shaped=True) (the user's layout); check() passes."""
    net = random_network(case)
    point = random_point(net, np.random.default_rng(case))
    want_loss, _ = net.loss_and_gradients(point)
    want = net.gradients(point, shaped=True)
    for target in ("numpy", "torch"):
        module = load_module(generate(net, target), tmp_path)
        assert module.PARAMS == {k: v.shape for k, v in want.items()}
        got_loss, got = module_results(module, point, target)
        assert_close(got_loss, want_loss, f"{target} loss")
        assert list(got) == list(want)
        for k in want:
            assert_close(got[k], want[k], f"{target} {k}")
        assert module.check(verbose=False) < 1e-6


@pytest.mark.parametrize("settings", [
    {"layers": [3, 4, 2], "activation": ["tanh", "sigmoid"], "loss": "half_sse", "bias": True,
     "reduction": "mean", "regularization": {"l2": 0.05}},
    {"layers": [2, 3, 3], "activation": ["softplus", "softmax"], "loss": "cross_entropy",
     "bias": True, "reduction": "sum", "regularization": {"l2": 0.2, "biases": True}},
])
def test_row_layout_l2_batch_against_torch_autograd(settings, tmp_path):
    """Z = X W + b with W<l> n_(l-1) x n_l, batch 4 and L2, written here in torch and
    differentiated by autograd: the generated modules' loss and gradients equal it."""
    net = derive.Network(settings["layers"], settings["activation"], settings["loss"],
                         bias=settings["bias"], batch=4, reduction=settings["reduction"],
                         layout="row", regularization=settings["regularization"])
    point = random_point(net, np.random.default_rng(7))
    leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for k, v in params_of(point).items()}
    X, Y = torch.tensor(point["x"]), torch.tensor(point["y"])
    act = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "softmax": lambda z: torch.softmax(z, dim=1),
           "softplus": torch.nn.functional.softplus}
    a = X
    for l, name in enumerate(settings["activation"], start=1):
        a = act[name](a @ leaves[f"W{l}"] + leaves[f"b{l}"])
    per_example = (((a - Y) ** 2).sum(dim=1) / 2 if settings["loss"] == "half_sse"
                   else -(Y * torch.log(a)).sum(dim=1))
    reg = settings["regularization"]
    covered = [v for k, v in leaves.items() if k[0] == "W" or reg.get("biases")]
    total = (per_example.mean() if settings["reduction"] == "mean" else per_example.sum()) \
        + reg["l2"] / 2 * sum((w ** 2).sum() for w in covered)
    total.backward()
    total = float(total.detach())
    for target in ("numpy", "torch"):
        got_loss, got = module_results(load_module(generate(net, target), tmp_path), point, target)
        assert abs(got_loss - total) <= 1e-12 * max(1, abs(total)), target
        for k, leaf in leaves.items():
            assert got[k].shape == tuple(leaf.shape), (target, k)
            assert_close(got[k], leaf.grad.numpy(), f"{target} {k} vs autograd")


def test_generated_constants_and_sources(tmp_path):
    """L2, L1 and REGULARIZED are the spec's; the sum has no / m; the row layout computes
    X @ W + b; a spec with the default training fields prints the single-example module."""
    net = derive.Network([2, 3, 1], ["tanh", "identity"], "half_sse", batch=2, reduction="sum", layout="row",
                         regularization={"l2": 0.125, "l1": 0.5, "biases": True})
    source = generate(net, "numpy")
    module = load_module(source, tmp_path)
    assert (module.L2, module.L1) == (0.125, 0.5)
    assert module.REGULARIZED == ("W1", "b1", "W2", "b2")
    assert "#: The spec's regularization" in source
    assert '    z1 = a0 @ params["W1"] + params["b1"]\n' in source
    assert "    d2 = a2 - y\n" in source and "/ m" not in source
    plain = derive.Network([2, 3, 1], "tanh", "half_sse")
    explicit = derive.Network([2, 3, 1], "tanh", "half_sse", batch=1, reduction="mean",
                              layout="column", regularization={"l2": 0, "l1": 0, "biases": True})
    for target in ("numpy", "torch"):
        assert generate(plain, target) == generate(explicit, target)
        assert "REGULARIZED" not in generate(plain, target)


def test_l1_check_moves_weights_off_the_kink(tmp_path):
    """check() moves every L1-regularised entry within 1e-3 of 0 out to +-1e-3 (central
    differences across |w|'s kink measure nothing), and passes on a wide relu layer where
    redrawing until no weight is that close would never end."""
    net = derive.Network([3, 2, 1], "tanh", "half_sse", regularization={"l1": 1.0, "biases": True})
    module = load_module(generate(net, "numpy"), tmp_path)
    params = {"W1": np.array([[0.5, 1e-4, -2e-4], [0.0, -0.7, 0.3]]), "b1": np.array([-1e-9, 2.0]),
              "W2": np.array([[0.2, 0.4]]), "b2": np.zeros(1)}
    moved = module._off_l1_kink({k: v.copy() for k, v in params.items()})
    assert moved["W1"].tolist() == [[0.5, 1e-3, -1e-3], [1e-3, -0.7, 0.3]]
    assert moved["b1"].tolist() == [-1e-3, 2.0] and moved["b2"].tolist() == [1e-3]
    wide = derive.Network([40, 30, 2], ["relu", "identity"], "half_sse", regularization={"l1": 0.01})
    assert load_module(generate(wide, "numpy"), tmp_path).check(verbose=False) < 1e-6


@pytest.mark.parametrize("case", range(0, CASES, 3))
def test_torch_check_passes_on_training_networks(case):
    """`compare_with_torch` on batch / row / l2 / l1 networks: at random points and at
    values given in the network's layout."""
    net = random_network(case)
    report = torchcheck.compare_with_torch(net, points=2, seed=case)
    assert report.passed and report.points == 2, report.table()
    point = random_point(net, np.random.default_rng(50 + case))
    report = torchcheck.compare_with_torch(net, values=point, points=0)
    assert report.passed and report.points == 1, report.table()
    loss, grads = torchcheck.torch_gradients(net, net.values(point))
    assert loss == pytest.approx(net.loss(point), rel=1e-12)
    assert list(grads) == [p.name for p in net.params()]


def test_torch_check_flags_a_wrong_regularizer(monkeypatch):
    """An engine that adds 1.001 l2 w: the torch check (R from its definition) disagrees."""
    import derive.check.evaluate as evaluate

    original = evaluate.regularizer_gradient
    net = derive.Network([2, 3, 2], ["tanh", "softmax"], "cross_entropy", batch=3, layout="row",
                         regularization={"l2": 0.5})
    assert torchcheck.compare_with_torch(net, points=1).passed
    monkeypatch.setattr(evaluate, "regularizer_gradient",
                        lambda spec, w, kind: 1.001 * original(spec, w, kind))
    report = torchcheck.compare_with_torch(net, points=1)
    assert not report.passed and report.table().splitlines()[-1] == "TORCH DISAGREES"


def test_torch_check_flags_a_wrong_reduction(monkeypatch):
    """An engine that sums where the spec says mean: torch's own mean disagrees."""
    from derive.spec.training import Training

    net = derive.Network([2, 2, 1], "sigmoid", "bce", batch=3)
    assert torchcheck.compare_with_torch(net, points=1).passed
    monkeypatch.setattr(Training, "scale", property(lambda self: 1.0))
    report = torchcheck.compare_with_torch(net, points=1)
    assert not report.passed and all(r.failures > 0 for r in report.layers)
