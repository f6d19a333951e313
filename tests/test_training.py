"""Minibatch, reduction, row layout and regularisation against a from-scratch mpmath reference.

Random networks (depth 1-4, widths 1-4, every activation and loss, with and
without bias), each with a batch of 1-4 examples, the mean or the sum, L2 and/or
L1 with or without the biases, in the column or the row layout.  The reference
is written here from the textbook definitions, in the layout as the user wrote
it: column z_j = sum_k W[j][k] a_k + b_j, row z_j = sum_k W[k][j] a_k + b_j (the
row of X W + b), the loss s sum_n loss_n + (l2/2) sum w^2 + l1 sum |w|, and
central differences at 40 digits for every parameter, named as the layout
names it.  It shares nothing with derive but the TOML files.
"""

from __future__ import annotations

import json
import random

import mpmath
import pytest

import test_gradients_hypothesis as base
from derive.cli import main

CASES = 48
CHECKED = 12
LOSSES = sorted(base.TERM)


def mp_forward(case: dict, params: dict, x: list) -> list:
    """One example's output a(L), W read in the case's layout."""
    a, row = [mpmath.mpf(v) for v in x], case["layout"] == "row"
    for l, act in enumerate(case["activations"], start=1):
        W, b = params[f"W{l}"], params.get(f"b{l}")
        n_out = len(W[0]) if row else len(W)
        weight = (lambda j, k: W[k][j]) if row else (lambda j, k: W[j][k])
        z = [mpmath.fsum(weight(j, k) * a[k] for k in range(len(a))) + (b[j] if b else 0)
             for j in range(n_out)]
        if act == "softmax":
            total = mpmath.fsum(mpmath.exp(v) for v in z)
            a = [mpmath.exp(v) / total for v in z]
        else:
            a = [base.ACT[act](v) for v in z]
    return a


def mp_batch_loss(case: dict, params: dict) -> mpmath.mpf:
    """s sum_n loss(x_n, y_n) + (l2/2) sum w^2 + l1 sum |w| (biases too if asked)."""
    xs, ys = case["xs"], case["ys"]
    total = mpmath.mpf(0)
    for x, y in zip(xs, ys):
        a = mp_forward(case, params, x)
        total += mpmath.fsum(base.TERM[case["loss"]](p, mpmath.mpf(t), len(a)) for p, t in zip(a, y))
    if case["reduction"] == "mean":
        total /= len(xs)
    reg = case["regularization"]
    for key, arr in params.items():
        if key[0] == "b" and not reg.get("biases"):
            continue
        flat = [w for r in arr for w in r] if key[0] == "W" else list(arr)
        total += mpmath.mpf(reg.get("l2", 0)) / 2 * mpmath.fsum(w * w for w in flat)
        total += mpmath.mpf(reg.get("l1", 0)) * mpmath.fsum(abs(w) for w in flat)
    return total


def reference(case: dict) -> tuple[mpmath.mpf, dict]:
    """The batch loss and every dL/dparam by central differences, in the layout's names."""
    return base.central_differences(case["params"], lambda params: mp_batch_loss(case, params))


def _nonzero(rng: random.Random, lo: int, hi: int, scale: int) -> float:
    """A value in [lo, hi]/scale at least 0.01 from 0: |w| is kinked at 0 for L1."""
    while True:
        v = rng.randint(lo, hi)
        if abs(v) >= scale // 100:
            return v / scale


def make_case(rng: random.Random, i: int) -> dict:
    depth = 1 + i % 4
    layers = [rng.randint(1, 4) for _ in range(depth + 1)]
    loss = LOSSES[i % len(LOSSES)]
    acts = [base.ELEMENTWISE[(i + l) % len(base.ELEMENTWISE)] for l in range(depth - 1)]
    outs = base.output_choices(loss, layers[-1])
    acts.append(outs[i % len(outs)])
    layout = ("column", "row")[i % 2]
    m = 1 + (i // 2) % 4
    reg = [{}, {"l2": 0.03}, {"l1": 0.02}, {"l2": 0.1, "l1": 0.05, "biases": True},
           {"l2": 0.2, "biases": True}][i % 5]
    bias = i % 7 != 3
    draw = rng.randint
    xs = [[draw(-1000, 1000) / 1000 for _ in range(layers[0])] for _ in range(m)]
    ys = [base._targets(draw, loss, acts[-1], layers[-1]) for _ in range(m)]
    params = {}
    for l in range(1, depth + 1):
        rows, cols = (layers[l - 1], layers[l]) if layout == "row" else (layers[l], layers[l - 1])
        params[f"W{l}"] = [[_nonzero(rng, -1000, 1000, 1000) for _ in range(cols)] for _ in range(rows)]
        if bias:
            params[f"b{l}"] = [_nonzero(rng, -500, 500, 1000) for _ in range(layers[l])]
    return {"layers": layers, "activations": acts, "loss": loss, "bias": bias, "layout": layout,
            "batch": m, "reduction": ("mean", "sum")[(i // 3) % 2], "regularization": reg,
            "xs": xs, "ys": ys, "params": params}


def away_from_kinks(case: dict) -> bool:
    """Every example's pre-activations of kinked layers at least KINK_MARGIN from 0."""
    for x, y in zip(case["xs"], case["ys"]):
        column = {**case, "values": {"x": x, "y": y, **_column_params(case)}}
        if not base.away_from_kinks(column):
            return False
    return True


def _column_params(case: dict) -> dict:
    """The parameters in the column layout (only to reuse the kink check's forward pass)."""
    if case["layout"] == "column":
        return case["params"]
    return {k: [list(r) for r in zip(*v)] if k[0] == "W" else v for k, v in case["params"].items()}


def write_case(case: dict, folder) -> str:
    lines = [f"layers = {base.toml_list(case['layers'])}",
             f"activation = [{', '.join(json.dumps(a) for a in case['activations'])}]",
             f"loss = {json.dumps(case['loss'])}", f"bias = {str(case['bias']).lower()}",
             f"batch = {case['batch']}", f"reduction = {json.dumps(case['reduction'])}",
             f"layout = {json.dumps(case['layout'])}", "[regularization]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in case["regularization"].items()]
    one = case["batch"] == 1
    lines += ["[values]", f"x = {base.toml_list(case['xs'][0] if one else case['xs'])}",
              f"y = {base.toml_list(case['ys'][0] if one else case['ys'])}"]
    lines += [f"{k} = {base.toml_list(v)}" for k, v in case["params"].items()]
    path = folder / "net.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _cases(count: int, seed: int) -> list[dict]:
    rng, out, i = random.Random(seed), [], 0
    while len(out) < count:
        case = make_case(rng, i)
        if away_from_kinks(case):
            out.append(case)
            i += 1
    return out


CASES_LIST = _cases(CASES, 12)


def test_cases_cover_every_option_activation_and_loss():
    cs = CASES_LIST
    assert {a for c in cs for a in c["activations"]} >= set(base.ELEMENTWISE) | {"softmax"}
    assert {c["loss"] for c in cs} == set(LOSSES)
    assert {c["layout"] for c in cs} == {"column", "row"}
    assert {c["batch"] for c in cs} == {1, 2, 3, 4} and {c["reduction"] for c in cs} == {"mean", "sum"}
    assert {len(c["layers"]) - 1 for c in cs} == {1, 2, 3, 4}
    regs = [c["regularization"] for c in cs]
    assert any("l1" in r for r in regs) and any("l2" in r for r in regs) and any(r.get("biases") for r in regs)
    assert {c["bias"] for c in cs} == {True, False}


@pytest.mark.parametrize("case", CASES_LIST, ids=lambda c: f"{c['layout']}-m{c['batch']}-{c['loss'][:12]}")
def test_grad_json_matches_mpmath_central_differences_of_the_batch_loss(case, tmp_path, capsys):
    spec = write_case(case, tmp_path)
    capsys.readouterr()
    code = main(["grad", spec, "--json", "--values-only"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    want_loss, want = reference(case)
    assert list(doc["gradients"]) == list(want)  # every parameter, named in the layout, in order
    base.assert_close(doc["loss"], want_loss, "loss")
    for name, ref in want.items():
        base.assert_close(doc["gradients"][name]["value"], ref, name)


@pytest.mark.parametrize("case", CASES_LIST[:CHECKED], ids=lambda c: f"{c['layout']}-m{c['batch']}")
def test_check_passes_on_batch_and_regularised_networks(case, tmp_path, capsys):
    spec = write_case(case, tmp_path)
    assert main(["check", spec, "--points", "2"]) == 0, capsys.readouterr().out


def test_check_fails_when_the_regulariser_is_left_out_of_the_gradient(monkeypatch):
    """The complex-step reference differentiates R itself: a gradient without l2 w is caught."""
    import derive
    from derive.check import evaluate

    net = derive.Network([2, 2, 1], "tanh", "half_sse", batch=2, regularization={"l2": 0.5})
    assert net.check(points=1).passed
    monkeypatch.setattr(evaluate, "regularizer_gradient", lambda spec, w, kind: 0.0)
    assert not derive.Network([2, 2, 1], "tanh", "half_sse", batch=2,
                              regularization={"l2": 0.5}).check(points=1).passed


def test_single_example_json_has_no_training_key(capsys):
    assert main(["grad", "--layers", "2,1", "--json"]) == 0
    assert "training" not in json.loads(capsys.readouterr().out)


def test_scalar_claim_on_a_minibatch_says_it_is_judged_per_example(capsys):
    """A scalar formula names one example's symbols: it is judged as dloss_n/dp, and says so,
    with the whole gradient's sum and regulariser term spelled out."""
    args = ["claim", "--layers", "2,1", "--activation", "identity", "--batch", "3", "--l2", "0.5",
            "W1[1,1]", "x[1]*(a1[1]-y[1])"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert ("judged as one example's gradient dloss/dW1[1,1] (x, y, a, z at example 1); the whole "
            "dL/dW1[1,1] is (1/m) sum_n of it over the m = 3 examples + l2*W1[1,1]") in out
    assert main(args[:-1] + ["x[1]*(a1[1]-y[1]) + l2*W1[1,1]"]) == 2  # l2 is a matrix-claim name
    capsys.readouterr()
