"""`derive claim SPEC W2 "dZ2 @ A1.T / m + l2*W2"`: matrix claims in both layouts.

The right formulas are written here by hand from the textbook matrix forms
(Ng's column layout dW = dZ A^T / m, db = sum(dZ, axis=1) / m; CS231n's row
layout dW = A^T dZ / m, db = sum(dZ, axis=0) / m; dZ = A - Y after sigmoid
with bce or softmax with cross-entropy; + l2 W and l1 sign(W) for the
regulariser), so a "correct" verdict means derive's engine agrees with the
textbook.  Each wrong formula makes one mistake, and the test asserts both
the verdict and the diagnosis naming that mistake.  The matrices the claim
is evaluated over (Z, A, dZ) are checked against a forward and backward
pass written here with NumPy, and the truth against central differences of
a loss written here.
"""

import contextlib
import io
import json

import numpy as np
import pytest

import derive
from derive.cli import main
from derive.qa.matrix_claim import Layout, check_matrix_claim, point

RELU, SIG = "relu", "sigmoid"


def network(layers=(2, 3, 2), act=("tanh", "sigmoid"), loss="bce", **training):
    return derive.Network(list(layers), list(act), loss, **training)


def claim(net, param, expr):
    return net.claim(param, expr)


def right(net, param, expr):
    v = claim(net, param, expr)
    assert v.correct, v.text()
    assert v.diagnosis is None and v.counterexample is None
    return v


def wrong(net, param, expr, *words):
    v = claim(net, param, expr)
    assert not v.correct, v.text()
    for w in words:
        assert w in (v.diagnosis or ""), v.text()
    return v


# -- right claims, column layout (Ng) -------------------------------------------------------------
COLUMN_RIGHT = [
    # (layers, activations, loss, training, param, formula)
    ((2, 3, 1), ("sigmoid", SIG), "bce", {"batch": 4}, "W2", "(A2 - Y) @ A1.T / m"),
    ((2, 3, 1), ("sigmoid", SIG), "bce", {"batch": 4}, "b2", "sum(A2 - Y, axis=1) / m"),
    ((2, 3, 1), ("sigmoid", SIG), "bce", {"batch": 4}, "W1", "((W2.T @ dZ2) * A1 * (1 - A1)) @ X.T / m"),
    ((2, 3, 1), ("sigmoid", SIG), "bce", {"batch": 4}, "b1", "sum((W2.T @ dZ2) * sigmoid'(Z1), axis=1) / m"),
    ((2, 3, 1), ("sigmoid", SIG), "bce", {"batch": 4}, "b1", "mean((W2.T @ dZ2) * A1 * (1 - A1), axis=1)"),
    ((2, 3, 3), ("tanh", "softmax"), "cross_entropy", {"batch": 3, "regularization": {"l2": 0.05}},
     "W2", "(A2 - Y) @ A1.T / m + l2*W2"),
    ((2, 3, 3), ("tanh", "softmax"), "cross_entropy", {"batch": 3, "regularization": {"l2": 0.05}},
     "W1", "((W2.T @ dZ2) * (1 - A1**2)) @ A0.T / m + l2*W1"),
    ((2, 3, 2), ("tanh", SIG), "bce", {"batch": 5, "reduction": "sum"}, "W2", "dZ2 @ A1.T"),
    ((2, 3, 2), ("tanh", SIG), "bce", {"batch": 5, "reduction": "sum"}, "b2", "sum(dZ2, axis=1)"),
    ((2, 3, 2), ("tanh", SIG), "bce", {"batch": 4, "regularization": {"l1": 0.03}},
     "W2", "dZ2 @ A1.T / m + l1*sign(W2)"),
    ((2, 3, 2), ("tanh", SIG), "bce", {"batch": 4, "regularization": {"l2": 0.1, "l1": 0.03}},
     "W2", "dZ2 @ A1.T / m + l2*W2 + l1*sign(W2)"),
    ((2, 3, 2), ("tanh", SIG), "bce", {"batch": 4, "regularization": {"l2": 0.1, "biases": True}},
     "b2", "sum(dZ2, axis=1) / m + l2*b2"),
    ((2, 3, 2), ("tanh", SIG), "bce", {"batch": 4, "regularization": {"l2": 0.1}},
     "b2", "sum(dZ2, axis=1) / m"),   # biases not regularised: no l2*b2
    ((2, 3, 2), ("tanh", SIG), "bce", {}, "W2", "dZ2 @ A1.T"),   # one example: m = 1
    ((2, 4, 2), (RELU, "identity"), "half_sse", {"batch": 3}, "W1", "(W2.T @ (A2 - Y)) * relu'(Z1) @ X.T / m"),
    ((2, 3, 2), ("sigmoid", SIG), "half_sse", {"batch": 3},
     "W2", "((A2 - Y) * A2 * (1 - A2)) @ A1.T / m"),
    ((2, 4, 2), (RELU, SIG), "bce", {"batch": 3}, "W1", "((W2.T @ dZ2) * (Z1 > 0)) @ X.T / m"),  # Ng's relu'
    ((2, 4, 2), (RELU, SIG), "bce", {"batch": 3}, "b1", "sum((W2.T @ dZ2) * sign(max(Z1, 0)), axis=1) / m"),
]

# -- right claims, row layout (CS231n) ------------------------------------------------------------
ROW = {"layout": "row"}
ROW_RIGHT = [
    ((2, 3, 2), ("tanh", "softmax"), "cross_entropy", {**ROW, "batch": 3, "regularization": {"l2": 0.01}},
     "W2", "A1.T @ dZ2 / m + l2*W2"),
    ((2, 3, 2), ("tanh", "softmax"), "cross_entropy", {**ROW, "batch": 3, "regularization": {"l2": 0.01}},
     "W2", "A1.T @ (A2 - Y) / m + l2*W2"),
    ((2, 3, 2), ("tanh", "softmax"), "cross_entropy", {**ROW, "batch": 3},
     "W1", "X.T @ ((dZ2 @ W2.T) * (1 - A1**2)) / m"),
    ((2, 3, 2), ("tanh", "softmax"), "cross_entropy", {**ROW, "batch": 3},
     "b1", "sum((dZ2 @ W2.T) * tanh'(Z1), axis=0) / m"),
    ((2, 3, 1), ("sigmoid", SIG), "bce", {**ROW, "batch": 4}, "W2", "A1.T @ (A2 - Y) / m"),
    ((2, 3, 3), ("tanh", "softmax"), "cross_entropy", {**ROW, "batch": 4},
     "W2", "A1.T @ (softmax(Z2) - Y) * (1/m)"),
    ((2, 3, 1), ("sigmoid", SIG), "bce", {**ROW, "batch": 4}, "b2", "mean(A2 - Y, axis=0)"),
    ((2, 3, 2), ("tanh", SIG), "bce", {**ROW, "batch": 4, "reduction": "sum",
                                        "regularization": {"l1": 0.02, "biases": True}},
     "b2", "sum(dZ2, axis=0) + l1*sign(b2)"),
]


@pytest.mark.parametrize("layers, act, loss, training, param, expr", COLUMN_RIGHT + ROW_RIGHT)
def test_right_claims(layers, act, loss, training, param, expr):
    v = right(network(layers, act, loss, **training), param, expr)
    assert v.layout == training.get("layout", "column")


def test_shapes_follow_the_layout():
    col = right(network((2, 3, 4), batch=5), "W2", "dZ2 @ A1.T / m")
    row = right(network((2, 3, 4), batch=5, layout="row"), "W2", "A1.T @ dZ2 / m")
    assert col.shape == (4, 3) and row.shape == (3, 4)
    assert right(network((2, 3, 4), batch=5), "b2", "sum(dZ2, axis=1)/m").shape == (4, 1)
    assert right(network((2, 3, 4), batch=5, layout="row"), "b2", "sum(dZ2, axis=0)/m").shape == (1, 4)


def test_values_lead_and_json(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text(B_TOML)
    out, _, code = cli("claim", str(path), "W2", "A1.T @ dZ2 / m + l2*W2", "--json")
    verdict = json.loads(out)
    assert code == 0 and verdict["correct"] and verdict["form"] == "matrix" and verdict["layout"] == "row"
    assert verdict["shape"] == [3, 2] == verdict["claimed_shape"] and verdict["points"] == 6
    # The truth at the values is checked against central differences of a loss written here.
    assert np.allclose(verdict["at_values"]["true"], central_differences_W2(), rtol=1e-7, atol=1e-10)


# -- the matrices a claim is written over ---------------------------------------------------------
def reference_pass(x, y, W1, b1, W2, b2):
    """tanh hidden, sigmoid output, bce: one example per row; dZ = dloss_n/dz per example."""
    Z1 = x @ W1.T + b1
    A1 = np.tanh(Z1)
    Z2 = A1 @ W2.T + b2
    A2 = 1 / (1 + np.exp(-Z2))
    dZ2 = A2 - y                            # sigmoid with bce
    dZ1 = (dZ2 @ W2) * (1 - A1 ** 2)
    return {"Z1": Z1, "A1": A1, "Z2": Z2, "A2": A2, "dZ2": dZ2, "dZ1": dZ1}


@pytest.mark.parametrize("layout", ["column", "row"])
def test_claim_matrices_equal_an_independent_pass(layout):
    net = network((2, 3, 2), ("tanh", SIG), "bce", batch=4, layout=layout)
    from derive.check.points import Sampler

    values = Sampler(net.evaluator).fresh()
    p = point(net, Layout(net.spec), "W", 2, values)
    W = {l: np.array(values.W[l]) for l in (1, 2)}
    b = {l: np.array(values.b[l]) for l in (1, 2)}
    ref = reference_pass(np.array(values.xs), np.array(values.ys), W[1], b[1], W[2], b[2])
    for name, rows in ref.items():
        written = rows if layout == "row" else rows.T
        assert np.allclose(p.env[name], written, rtol=1e-12, atol=1e-14), name
    assert np.allclose(p.env["W2"], W[2].T if layout == "row" else W[2])
    assert p.env["b1"].shape == ((1, 3) if layout == "row" else (3, 1))
    # And the truth is the textbook's dW2 from those matrices.
    dW2 = ref["dZ2"].T @ ref["A1"] / 4
    assert np.allclose(p.truth, dW2.T if layout == "row" else dW2, rtol=1e-12)


# -- mistakes, each named -------------------------------------------------------------------------
L2 = {"regularization": {"l2": 0.1}}


def test_transposed_result():
    wrong(network(batch=4), "W2", "A1 @ dZ2.T / m", "is dL/dW2 transposed", "dW2^T", "transpose it")


def test_transposed_term_plus_regulariser():
    wrong(network(batch=4, **L2), "W2", "A1 @ dZ2.T / m + l2*W2", "computes dW2^T",
          "A1 @ dZ2.T / m is 3x2", "(A1 @ dZ2.T / m).T + l2*W2 is right")


def test_transposed_and_missing_regulariser():
    wrong(network(batch=4, **L2), "W2", "A1 @ dZ2.T / m", "is transposed", "missing the regularisation term l2*W2")


def test_shapes_that_do_not_fit_name_both_and_the_transpose():
    v = wrong(network(batch=4), "W2", "dZ2 @ A1 / m", "dZ2 is 2x4 and A1 is 3x4", "inner sizes 4 and 3",
              "dZ2 @ A1.T fits, and with it the claim is right")
    assert v.counterexample is None and v.claimed_shape is None


def test_row_layout_shapes_do_not_fit():
    wrong(network(batch=4, layout="row"), "W2", "A1 @ dZ2 / m", "A1 is 4x3 and dZ2 is 4x2",
          "A1.T @ dZ2 fits, and with it the claim is right")


def test_row_layout_fix_that_gives_the_transpose():
    """dZ2.T @ A1 fits (the .T.T of A1.T cancels) but is dW2^T in the row layout: said so."""
    wrong(network(batch=4, layout="row"), "W2", "dZ2 @ A1.T / m", "dZ2.T @ A1 would fit there",
          "is dL/dW2 transposed")


def test_no_swap_across_unrelated_names():
    """After softmax + cross-entropy mean(dZ2) is 0, so mean(W2) -> mean(dZ2) would 'fix' the
    claim; W for dZ is not a mistake anyone makes, so it is not offered."""
    v = wrong(network((2, 3, 2), ("tanh", "softmax"), "cross_entropy", batch=4), "W2",
              "dZ2 @ A1.T / m + mean(W2)")
    assert "where dZ2 belongs" not in (v.diagnosis or "")


def test_broadcast_mismatch_is_a_verdict():
    wrong(network(batch=4), "b2", "dZ2 + b1", "dZ2 is 2x4 and b1 is 3x1", "broadcasts")


def test_missing_one_over_m():
    wrong(network(batch=4), "W2", "dZ2 @ A1.T", "missing the 1/m")


def test_missing_one_over_m_with_regulariser():
    wrong(network(batch=4, **L2), "W2", "dZ2 @ A1.T + l2*W2", "missing the 1/m", "m = 4 times")


def test_one_over_m_under_a_sum_reduction():
    wrong(network(batch=4, reduction="sum"), "W2", "dZ2 @ A1.T / m", "reduction is sum", "drop the 1/m")


def test_regulariser_divided_by_m():
    wrong(network(batch=4, **L2), "W2", "(dZ2 @ A1.T + l2*W2) / m", "divides the regularisation term by m")


def test_missing_l2():
    wrong(network(batch=4, **L2), "W2", "dZ2 @ A1.T / m", "missing the regularisation term l2*W2")


def test_doubled_l2():
    wrong(network(batch=4, **L2), "W2", "dZ2 @ A1.T / m + 2*l2*W2", "regularisation term l2*W2 twice")


def test_half_l2():
    wrong(network(batch=4, **L2), "W2", "dZ2 @ A1.T / m + l2*W2/2", "half the regularisation term")


def test_missing_l1():
    wrong(network(batch=4, regularization={"l1": 0.05}), "W1",
          "((W2.T @ dZ2) * (1 - A1**2)) @ X.T / m", "missing the regularisation term l1*sign(W1)")


def test_doubled_l1_row_layout():
    wrong(network(batch=4, layout="row", regularization={"l1": 0.05}), "W2",
          "A1.T @ dZ2 / m + 2*l1*sign(W2)", "l1*sign(W2) twice")


def test_bias_regularised_although_it_is_not():
    wrong(network(batch=4, **L2), "b2", "sum(dZ2, axis=1) / m + l2*b2", "biases are not regularised")


def test_bias_regulariser_missing():
    wrong(network(batch=4, regularization={"l2": 0.1, "biases": True}), "b2", "sum(dZ2, axis=1) / m",
          "missing the regularisation term l2*b2")


def test_bias_summed_over_the_neurons():
    wrong(network(batch=4), "b2", "sum(dZ2, axis=0) / m", "wrong axis", "axis=0 adds up the neurons",
          "sum(dZ2, axis=1)")


def test_bias_summed_over_the_neurons_row_layout():
    wrong(network(batch=4, layout="row"), "b2", "mean(dZ2, axis=1)", "wrong axis", "sum(dZ2, axis=0)")


def test_bias_summed_to_a_number():
    wrong(network(batch=4), "b2", "sum(dZ2) / m", "sums all of dZ2 to one number")


def test_missing_hidden_activation_derivative():
    wrong(network(batch=4), "W1", "(W2.T @ dZ2) @ X.T / m",
          "missing the activation derivative of layer 1, tanh'(Z1)", "(W2.T @ dZ2) * tanh'(Z1)")


def test_missing_output_activation_derivative():
    """Ng's dZ = A - Y where the loss is half_sse: sigmoid' is missing."""
    wrong(network(act=("tanh", SIG), loss="half_sse", batch=4), "W2", "(A2 - Y) @ A1.T / m",
          "missing the activation derivative of layer 2", "A - Y is dZ only for")


def test_activation_derivative_twice():
    wrong(network(act=("tanh", SIG), loss="bce", batch=4), "W2", "((A2 - Y) * A2 * (1 - A2)) @ A1.T / m",
          "once more")


def test_wrong_layer_shapes():
    wrong(network(batch=4), "W2", "dZ2 @ A2.T / m", "uses A2 where A1 belongs", "the wrong layer", "2x4")


def test_wrong_layer_same_sizes():
    wrong(network((2, 2, 2), batch=4), "W2", "dZ2 @ X.T / m", "uses X where A1 belongs")


def test_wrong_parameter():
    wrong(network((2, 2, 2), batch=4), "W1", "dZ2 @ A1.T / m", "is dL/dW2, not dL/dW1")


def test_wrong_sign():
    wrong(network(batch=4), "W2", "(Y - A2) @ A1.T / m", "wrong sign")


def test_undefined_claim():
    wrong(network(batch=4), "W2", "dZ2 @ log(-A1.T) / m", "not a finite number")


def test_wrong_shape_is_named():
    v = wrong(network(batch=4), "W2", "dZ2 @ dZ2.T / m", "has shape 2x2", "W2's shape 2x3")
    assert v.claimed_shape == (2, 2)


def test_another_parameters_gradient():
    wrong(network(batch=4), "W2", "sum(dZ2, axis=1) / m", "is dL/db2, not dL/dW2")


def test_flat_bias_is_accepted():
    from derive.qa.matrix_eval import close

    assert close(np.array([1.0, 2.0]), np.array([[1.0], [2.0]]))
    assert not close(np.array([1.0, 2.0, 3.0]), np.array([[1.0], [2.0]]))


def test_scalar_claims_unchanged():
    net = network((2, 2, 1), ("sigmoid", SIG), "half_sse")
    v = net.claim("W2[1,1]", "(a2[1]-y[1])*a2[1]*(1-a2[1])*a1[1]")
    assert v.correct and v.method == "symbolic" and "form" not in v.to_json()


# -- text and CLI -------------------------------------------------------------------------------------
def cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return out.getvalue(), err.getvalue(), code


B_TOML = """layers = [2, 3, 2]
activation = ["tanh", "softmax"]
loss = "cross_entropy"
batch = 3
layout = "row"
[regularization]
l2 = 0.01
[values]
x = [[0.1, 0.2], [0.3, -0.1], [0.5, 0.5]]
y = [[1, 0], [0, 1], [1, 0]]
W1 = [[0.1, 0.2, 0.3], [-0.2, 0.4, 0.1]]
b1 = [0.0, 0.1, -0.1]
W2 = [[0.3, -0.2], [0.1, 0.5], [-0.4, 0.2]]
b2 = [0.05, -0.05]
"""


def central_differences_W2(h=1e-6):
    """dL/dW2 (row layout, 3x2) of B_TOML's loss, written here: mean cross-entropy + l2/2 |W|^2."""
    x = np.array([[0.1, 0.2], [0.3, -0.1], [0.5, 0.5]])
    y = np.array([[1, 0], [0, 1], [1, 0]], dtype=float)
    W1 = np.array([[0.1, 0.2, 0.3], [-0.2, 0.4, 0.1]])
    b1, b2 = np.array([0.0, 0.1, -0.1]), np.array([0.05, -0.05])
    W2 = np.array([[0.3, -0.2], [0.1, 0.5], [-0.4, 0.2]])

    def loss(W2):
        z = np.tanh(x @ W1 + b1) @ W2 + b2
        logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        return -np.mean(np.sum(y * logp, axis=1)) + 0.005 * (np.sum(W1 ** 2) + np.sum(W2 ** 2))

    grad = np.zeros_like(W2)
    for i in np.ndindex(W2.shape):
        e = np.zeros_like(W2)
        e[i] = h
        grad[i] = (loss(W2 + e) - loss(W2 - e)) / (2 * h)
    return grad


def test_text_of_verdicts(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text(B_TOML)
    out, _, code = cli("claim", str(path), "W2", "A1.T @ dZ2 / m + l2*W2")
    assert code == 0 and out.startswith("correct: dL/dW2 = A1.T @ dZ2 / m + l2*W2\n")
    assert "the network's values and 5 random points" in out and "3x2" in out
    out, _, code = cli("claim", str(path), "W2", "A1.T @ dZ2 / m")
    lines = out.splitlines()
    assert code == 1 and lines[0] == "incorrect: dL/dW2 = A1.T @ dZ2 / m"
    assert "missing the regularisation term l2*W2" in lines[1]
    assert lines[2].startswith("  counterexample: x = [[0.1, 0.2]")   # the user's values first
    assert lines[3].startswith("    claimed  [[") and lines[4].startswith("    true     [[")


def test_api_verdict_display():
    v = network(batch=4).claim("W2", "dZ2 @ A1.T / m")
    assert repr(v) == "MatrixVerdict(W2: correct)" and v._repr_markdown_().startswith("**correct**")
    assert check_matrix_claim(network(batch=4), "W2", "dZ2 @ A1.T").correct is False


BAD = [
    (["W2", "foo @ A1"], "unknown name 'foo'"),
    (["W2", "dZ3 @ A1.T"], "layer 3 of dZ3 is not in 1..2"),
    (["W2", "dZ2 @ A1.T[0]"], "names whole matrices"),
    (["W2", "dZ2.shape"], "only .T"),
    (["W2", "A1.__class__"], "only .T"),
    (["W2", "__import__('os')"], "function '__import__' is not allowed"),
    (["W2", "sum(dZ2, axis=2)"], "axis must be 0"),
    (["W2", "sum(dZ2, keepdims=1)"], "only the keyword axis"),
    (["W2", "dZ2 @"], "syntax error"),
    (["W2", "dZ2 % 2"], "operator '%' is not allowed"),
    (["W2", "0 < Z2 < 1"], "only one comparison"),
    (["W2", "Z2 == 0"], "only one comparison"),
    (["W2", "relu''(Z1)"], "only first derivatives"),
    (["W2", "softmax'(Z2)"], "not elementwise"),
    (["W2", "1e999 * W2"], "number too large"),
    (["Z2", "dZ2"], "PARAM: 'Z2' is not a parameter matrix"),
    (["W7", "dZ2"], "PARAM: layer 7 of W7 is not in 1..2"),
]


@pytest.mark.parametrize("args, words", BAD)
def test_bad_input_is_one_line(tmp_path, args, words):
    path = tmp_path / "n.toml"
    path.write_text('layers = [2, 3, 2]\nactivation = ["tanh", "sigmoid"]\nloss = "bce"\nbatch = 3\n')
    out, err, code = cli("claim", str(path), *args)
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("derive: "), err
    assert words in err, err


def test_no_bias_network():
    _, err, code = cli("claim", "--layers", "2,2,1", "--no-bias", "b1", "dZ1")
    assert code == 2 and "no biases" in err and err.count("\n") == 1
    _, err, code = cli("claim", "--layers", "2,2,1", "--no-bias", "W2", "dZ2 @ A1.T + b2")
    assert code == 2 and "no biases" in err


def test_zero_claim():
    wrong(network(batch=4), "W2", "0*W2", "is 0 at every point")


def random_formula(rng, depth=0):
    names = ["X", "Y", "W1", "W2", "b1", "b2", "Z1", "A1", "A2", "dZ1", "dZ2", "m", "l2", "2", "0.5"]
    r = rng.random()
    if depth > 3 or r < 0.3:
        return rng.choice(names)
    if r < 0.6:
        op = rng.choice(["@", "*", "+", "-", "/", "**", ">"])
        return f"{random_formula(rng, depth + 1)} {op} {random_formula(rng, depth + 1)}"
    if r < 0.7:
        return f"({random_formula(rng, depth + 1)}).T"
    if r < 0.8:
        axis = rng.choice(["", ", axis=0", ", axis=1"])
        return f"{rng.choice(['sum', 'mean'])}({random_formula(rng, depth + 1)}{axis})"
    if r < 0.9:
        f = rng.choice(["tanh", "sigmoid", "relu", "log", "sqrt", "exp", "sign", "tanh'", "softmax"])
        return f"{f}({random_formula(rng, depth + 1)})"
    return f"-{random_formula(rng, depth + 1)}"


@pytest.mark.parametrize("layout", ["column", "row"])
def test_random_formulas_give_a_verdict_or_one_line(layout):
    """Seeded random formulas: each is a verdict (text and JSON) or a one-line SpecError."""
    import random

    from derive.errors import SpecError

    rng = random.Random(7)
    net = network(batch=3, layout=layout, regularization={"l2": 0.1})
    for _ in range(150):
        expr = random_formula(rng)
        try:
            v = net.claim(rng.choice(["W1", "W2", "b1", "b2"]), expr)
        except SpecError as exc:
            assert "\n" not in str(exc), expr
            continue
        assert v.text().startswith(("correct: ", "incorrect: ")) and json.dumps(v.to_json())
