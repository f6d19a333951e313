"""`derive claim`: verdicts on correct and subtly wrong formulas across activations and
losses, the diagnosis for the clear cases, counterexamples that hold up, bad input.

The formulas are written here by hand from textbook derivatives (sigma' = a(1-a),
tanh' = 1-a^2, relu' = max(0,z)/z, ...), not taken from derive: a verdict of
"correct" means derive agrees with the textbook.  A counterexample's "true" value is
checked against central differences of a loss written here in mpmath, and its
"claimed" value by evaluating the claim at that point with a forward pass written here.
"""

import contextlib
import io
import json

import mpmath
import pytest

import derive
from derive.qa.claim import check_claim, parse_claim
from derive.cli import main
from derive.errors import SpecError

#: Central differences at 50 digits with step 1e-20: error ~1e-30, far below these.
CD_DIGITS, CD_STEP, RTOL = 50, mpmath.mpf("1e-20"), 1e-10

# -- textbook derivatives in the claim syntax -------------------------------------------
ACT_PRIME = {
    "sigmoid": "a{l}[{j}]*(1-a{l}[{j}])",
    "tanh": "(1-a{l}[{j}]**2)",
    "identity": "1",
    "relu": "(max(0,z{l}[{j}])/z{l}[{j}])",
    "leaky_relu": "(max(0,z{l}[{j}])/z{l}[{j}] + (1-max(0,z{l}[{j}])/z{l}[{j}])/100)",
    "softplus": "sigmoid(z{l}[{j}])",
    "elu": "(max(0,z{l}[{j}])/z{l}[{j}] + (1-max(0,z{l}[{j}])/z{l}[{j}])*exp(z{l}[{j}]))",
    "softmax": "a{l}[{j}]*(1-a{l}[{j}])",  # the diagonal of its Jacobian, for wrong formulas
}
LOSS_PRIME = {  # dL/da for output i of n
    "half_sse": "(a2[{i}]-y[{i}])",
    "sse": "2*(a2[{i}]-y[{i}])",
    "mse": "2*(a2[{i}]-y[{i}])/{n}",
    "bce": "(a2[{i}]-y[{i}])/(a2[{i}]*(1-a2[{i}]))",
    "cross_entropy": "(-y[{i}]/a2[{i}])",
}
N = 2  # every network here is 2-2-2: two inputs, two hidden, two outputs
NETWORKS = [
    ("sigmoid", "sigmoid", "half_sse"),
    ("tanh", "tanh", "mse"),
    ("tanh", "sigmoid", "bce"),
    ("relu", "identity", "sse"),
    ("softplus", "sigmoid", "cross_entropy"),
    ("sigmoid", "softmax", "cross_entropy"),
    ("elu", "tanh", "half_sse"),
    ("leaky_relu", "identity", "half_sse"),
]
SYMBOLIC = {("sigmoid", "sigmoid", "half_sse"), ("tanh", "tanh", "mse"), ("tanh", "sigmoid", "bce"),
            ("sigmoid", "softmax", "cross_entropy")}


def prime(act, l, j):
    return ACT_PRIME[act].format(l=l, j=j)


def output_delta(out, loss, i, skip_prime=False):
    """delta(2)_i: dL/da2[i] * g'(z2[i]); softmax with cross-entropy gives a2[i]-y[i]."""
    if out == "softmax":
        return f"(a2[{i}]-y[{i}])"
    d = LOSS_PRIME[loss].format(i=i, n=N)
    return d if skip_prime else f"{d}*{prime(out, 2, i)}"


def w2(out, loss, j, k, **kw):
    return f"{output_delta(out, loss, j, **kw)}*a1[{k}]"


def w1(hidden, out, loss, j, k, terms=(1, 2), transpose=False, skip_hidden_prime=False, extra=""):
    back = " + ".join(f"{output_delta(out, loss, i)}*W2[{j if transpose else i},{i if transpose else j}]"
                      for i in terms)
    h = "" if skip_hidden_prime else f"*{prime(hidden, 1, j)}"
    return f"({back}){h}*x[{k}]{extra}"


def b1(hidden, out, loss, j):
    back = " + ".join(f"{output_delta(out, loss, i)}*W2[{i},{j}]" for i in (1, 2))
    return f"({back})*{prime(hidden, 1, j)}"


def network(hidden, out, loss):
    return derive.Network([2, 2, 2], [hidden, out], loss)


# -- correct formulas -----------------------------------------------------------------------
@pytest.mark.parametrize("acts", NETWORKS, ids="-".join)
def test_claim_textbook_formulas_are_correct(acts):
    hidden, out, loss = acts
    net = network(*acts)
    for param, expr in [("W1[1,2]", w1(hidden, out, loss, 1, 2)), ("W1[2,1]", w1(hidden, out, loss, 2, 1)),
                        ("b1[2]", b1(hidden, out, loss, 2)), ("W2[2,1]", w2(out, loss, 2, 1)),
                        ("b2[1]", output_delta(out, loss, 1))]:
        verdict = check_claim(net, param, expr)
        assert verdict.correct, (param, expr, verdict.text())
        if acts in SYMBOLIC:
            assert verdict.method == "symbolic", (param, expr)
        assert verdict.counterexample is None and verdict.diagnosis is None


def test_claim_correct_by_numbers_says_so():
    verdict = check_claim(network("relu", "identity", "sse"), "W1[1,2]", w1("relu", "identity", "sse", 1, 2))
    assert verdict.correct and verdict.method == "numeric"
    assert "equal to the derived gradient at 50 random points to 25 digits" in verdict.text()


# -- subtly wrong formulas ----------------------------------------------------------------------
def wrong_cases(hidden, out, loss):
    """(name, param, expr, expected diagnosis or None)."""
    cases = [
        ("missing hidden sigma'", "W1[1,2]", w1(hidden, out, loss, 1, 2, skip_hidden_prime=True),
         "is missing the activation derivative of layer 1"),
        ("transposed parameter", "W1[1,2]", w1(hidden, out, loss, 2, 1),
         "is the derivative for W1[2,1], not W1[1,2]: the indices are transposed"),
        ("transposed W2", "W1[1,2]", w1(hidden, out, loss, 1, 2, transpose=True),
         "uses the weights of layer 2 with their indices transposed (W2[k,j] where W2[j,k] belongs)"),
        ("extra factor", "W1[1,2]", w1(hidden, out, loss, 1, 2, extra="*x[1]"),
         "has an extra factor: x[1]"),
        ("wrong sign", "W2[2,1]", "-" + w2(out, loss, 2, 1), "has the wrong sign"),
        ("cost over derivatives", "W1[1,1]",
         f"L/(W2[1,1]*W2[2,1]*{prime(out, 2, 1)}*{prime(out, 2, 2)}*{prime(hidden, 1, 1)})",
         "uses the loss L itself, which never appears in a gradient: the chain rule multiplies "
         "the loss derivative dL/da by the other local derivatives"),
    ]
    if out != "softmax":
        cases.append(("one path only", "W1[1,2]", w1(hidden, out, loss, 1, 2, terms=(1,)),
                      "has only one of the 2 paths from W1[1,2] to the loss (the one through a2[1]); "
                      "the chain rule sums over all of them"))
    if out not in ("softmax", "identity"):
        cases.append(("loss derivative only at the output", "W2[2,1]", w2(out, loss, 2, 1, skip_prime=True),
                      "is missing the activation derivative of layer 2"))
    return cases


ALL_WRONG = [(acts, *case) for acts in NETWORKS for case in wrong_cases(*acts)]


@pytest.mark.parametrize("acts,name,param,expr,diagnosis", ALL_WRONG,
                         ids=[f"{'-'.join(c[0])}:{c[1]}" for c in ALL_WRONG])
def test_claim_wrong_formulas_are_incorrect_with_diagnosis(acts, name, param, expr, diagnosis):
    verdict = check_claim(network(*acts), param, expr)
    assert not verdict.correct, verdict.text()
    assert verdict.method == "numeric"
    assert verdict.diagnosis == diagnosis


# -- counterexamples hold up independently ---------------------------------------------------
def _forward(acts, point):
    """z and a by layer, in mpmath, from the textbook definitions."""
    f = {"sigmoid": lambda v: 1 / (1 + mpmath.exp(-v)), "tanh": mpmath.tanh, "identity": lambda v: v,
         "relu": lambda v: max(v, 0), "softplus": lambda v: mpmath.log(1 + mpmath.exp(v))}
    a, out = [mpmath.mpf(v) for v in point["x"]], {}
    for l, act in enumerate(acts, start=1):
        z = [mpmath.fsum(mpmath.mpf(w) * v for w, v in zip(row, a)) + mpmath.mpf(b)
             for row, b in zip(point[f"W{l}"], point[f"b{l}"])]
        if act == "softmax":
            e = [mpmath.exp(v) for v in z]
            a = [v / mpmath.fsum(e) for v in e]
        else:
            a = [f[act](v) for v in z]
        out[l] = (z, a)
    return out


def _loss(acts, loss, point):
    a = _forward(acts, point)[len(acts)][1]
    y = [mpmath.mpf(v) for v in point["y"]]
    terms = {"half_sse": lambda p, t: (p - t) ** 2 / 2, "sse": lambda p, t: (p - t) ** 2,
             "mse": lambda p, t: (p - t) ** 2 / len(a),
             "bce": lambda p, t: -(t * mpmath.log(p) + (1 - t) * mpmath.log(1 - p)),
             "cross_entropy": lambda p, t: -t * mpmath.log(p)}[loss]
    return mpmath.fsum(terms(p, t) for p, t in zip(a, y))


def _true_gradient(acts, loss, point, param):
    kind, l, idx = param[0], int(param[1]), [int(i) for i in param[3:-1].split(",")]
    with mpmath.workdps(CD_DIGITS):
        def at(delta):
            moved = json.loads(json.dumps(point))
            if kind == "W":
                moved[f"W{l}"][idx[0] - 1][idx[1] - 1] += delta
            else:
                moved[f"b{l}"][idx[0] - 1] += delta
            return _loss(acts, loss, moved)
        return float((at(CD_STEP) - at(-CD_STEP)) / (2 * CD_STEP))


def _claimed(net, acts, expr, point):
    """The claim at the point: parsed by derive (no evaluation), valued from our forward pass."""
    claim = parse_claim(net, expr)
    layers = _forward(acts, point)
    values = {}
    for s in claim.free_symbols:
        if s.name.startswith("dLdz"):  # delta<l>[j] = dL/dz<l>[j] = dL/db<l>[j], by differences here
            values[s] = _true_gradient(acts, net.spec.loss.name, point, f"b{s.layer}[{s.j}]")
        elif s.name == "L":
            values[s] = _loss(acts, net.spec.loss.name, point)
        elif s.kind in "xy":
            values[s] = point[s.kind][s.idx[0] - 1]
        elif s.kind == "W":
            values[s] = point[f"W{s.layer}"][s.idx[0] - 1][s.idx[1] - 1]
        else:
            values[s] = layers[s.layer][0 if s.kind == "z" else 1][s.idx[0] - 1]
    return float(claim.xreplace({k: mpmath.mpf(v) for k, v in values.items()}).evalf(30))


@pytest.mark.parametrize("acts", [NETWORKS[0], NETWORKS[2], NETWORKS[4], NETWORKS[5]], ids="-".join)
def test_claim_counterexample_is_real(acts):
    net = network(*acts)
    hidden, out, loss = acts
    for name, param, expr, _ in wrong_cases(*acts)[:5]:
        ce = check_claim(net, param, expr).counterexample
        assert set(ce) == {"point", "claimed", "true"}
        point = ce["point"]
        assert set(point) == {"x", "y", "W1", "b1", "W2", "b2"}
        assert ce["true"] == pytest.approx(_true_gradient([hidden, out], loss, point, param), rel=RTOL)
        assert ce["claimed"] == pytest.approx(_claimed(net, [hidden, out], expr, point), rel=RTOL)
        assert abs(ce["claimed"] - ce["true"]) > 1e-12 * max(1, abs(ce["true"])), name


def test_claim_counterexample_starts_at_the_spec_values():
    values = {"x": [0.5, -0.2], "y": [1.0, 0.0], "W1": [[0.1, 0.4], [-0.3, 0.2]], "b1": [0.0, 0.1],
              "W2": [[0.7, -0.4], [0.3, 0.2]], "b2": [0.05, -0.05]}
    net = derive.Network([2, 2, 2], values=values)
    verdict = check_claim(net, "W2[1,1]", "(a2[1]-y[1])*a1[1]")
    assert verdict.counterexample["point"] == values


def test_claim_undefined_claim_is_incorrect():
    verdict = check_claim(network("sigmoid", "sigmoid", "half_sse"), "W2[1,1]", "log(-a2[1])")
    assert not verdict.correct
    assert verdict.counterexample["claimed"] is None
    assert verdict.diagnosis == "the claim is undefined (or not a real number) at this point"
    assert "claimed  undefined (not a real number)" in verdict.text()


# -- JSON and text ------------------------------------------------------------------------------
def cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return out.getvalue(), err.getvalue(), code


def spec(tmp_path, extra=""):
    path = tmp_path / "net.toml"
    path.write_text(f'layers = [2, 2, 1]\nactivation = "sigmoid"\nloss = "half_sse"\n{extra}')
    return str(path)


def test_claim_json_correct(tmp_path):
    expr = "(a2[1]-y[1])*a2[1]*(1-a2[1])*W2[1,1]*a1[1]*(1-a1[1])*x[1]"
    out, _, code = cli("claim", spec(tmp_path), "W1[1,1]", expr, "--json")
    assert code == 0
    assert json.loads(out) == {"parameter": "W1[1,1]", "claim": expr, "correct": True,
                               "method": "symbolic", "counterexample": None, "diagnosis": None,
                               "assumption": None, "at_values": None}


def test_claim_json_incorrect(tmp_path):
    out, _, code = cli("claim", spec(tmp_path), "W2[1,1]", "(a2[1]-y[1])*a1[1]", "--json")
    assert code == 1
    verdict = json.loads(out)
    assert list(verdict) == ["parameter", "claim", "correct", "method", "counterexample", "diagnosis",
                             "assumption", "at_values"]
    assert verdict["correct"] is False and verdict["method"] == "numeric"
    assert verdict["diagnosis"] == "is missing the activation derivative of layer 2"
    assert list(verdict["counterexample"]) == ["point", "claimed", "true"]


def test_claim_text_incorrect(tmp_path):
    out, _, code = cli("claim", spec(tmp_path), "W2[1,1]", "(a2[1]-y[1])*a1[1]")
    lines = out.splitlines()
    assert code == 1
    assert lines[0] == "incorrect: dL/dW2[1,1] = (a2[1]-y[1])*a1[1]"
    assert lines[1] == "  is missing the activation derivative of layer 2"
    assert lines[2].startswith("  counterexample: x = [")
    assert lines[3].startswith("    claimed  ") and lines[4].startswith("    true     ")


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("param,expr,message", [
    ("W1[1,1]", "x[3]", "EXPR: index 3 of x[3] is not in 1..2 at position 1"),
    ("W1[1,1]", "x[1] * W1[1]", "EXPR: W1 takes 2 indices, got 1 at position 8"),
    ("W1[1,1]", "a9[1]", "EXPR: layer 9 of 'a9' is not in 0..2 at position 1"),
    ("W1[1,1]", "2*d1[1]", "EXPR: unknown name 'd1' at position 3"),
    ("W1[1,1]", "2*delta0[1]", "EXPR: layer 0 of 'delta0' is not in 1..2 at position 3"),
    ("W1[1,1]", "2*delta[1]", "EXPR: unknown name 'delta' at position 3"),
    ("W1[1,1]", "x_1*W1_1_3", "EXPR: index 3 of W1[1, 3] is not in 1..2 at position 5"),
    ("W1[1,1]", "a1[1]'", "EXPR: a prime (') must follow an activation name at position 6"),
    ("W1[1,1]", "sigmoid''(z1[1])", "EXPR: only first derivatives f'(z) can be written with a prime, "
                                    "not sigmoid'' at position 9"),
    ("W1[1,1]", "exp'(z1[1])", "EXPR: exp is not an activation, so exp' is not defined at position 1"),
    ("W1[1,1]", "sigmoid'(z1[1], 2)", "EXPR: function \"sigmoid'\" takes 1 argument, got 2 at position 1"),
    ("W1[1,1]", "x[1] +* 2", "EXPR: syntax error at position 7"),
    ("W1[1,1]", "sigma(z1[1])", "EXPR: function 'sigma' is not allowed at position 1"),
    ("W1[1,1]", "y", "EXPR: unknown name 'y' at position 1"),
    ("W1[1,1]", "W2[1,1]**x[1]**x[1]**10**10**10", "EXPR: number too large"),
    ("W3[1,1]", "x[1]", "PARAM 'W3[1,1]': layer 3 is not in 1..2 (at position 2)"),
    ("b1[3]", "x[1]", "PARAM 'b1[3]': row j=3 is not in 1..2 (layer 1 has 2 neurons) (at position 4)"),
])
def test_claim_bad_input_exits_2_with_position(tmp_path, param, expr, message):
    out, err, code = cli("claim", spec(tmp_path), param, expr)
    assert (out, code) == ("", 2)
    assert message in err and err.startswith("derive: ") and err.count("\n") == 1


def test_claim_bias_in_a_network_without_biases(tmp_path):
    _, err, code = cli("claim", spec(tmp_path, "bias = false\n"), "W1[1,1]", "b1[1]")
    assert code == 2 and "this network has no biases (bias = false) at position 1" in err


def test_claim_never_runs_python(tmp_path):
    target = tmp_path / "pwned"
    for expr in [f"__import__('os').system('touch {target}')", f"open('{target}', 'w')",
                 "(lambda: 1)()", "x[1].__class__", "[c for c in ()]"]:
        _, err, code = cli("claim", spec(tmp_path), "W1[1,1]", expr)
        assert code == 2 and "EXPR:" in err and "position" in err
    assert not target.exists()


def test_claim_parse_errors_are_spec_errors():
    net = network("sigmoid", "sigmoid", "half_sse")
    with pytest.raises(SpecError, match="position 1"):
        check_claim(net, "W1[1,1]", "z0[1]")


def test_claim_deep_network():
    net = derive.Network([3] + [8] * 6 + [2], "tanh", "mse")
    right = check_claim(net, "W7[2,3]", "(a7[2]-y[2])*(1-a7[2]**2)*a6[3]")
    wrong = check_claim(net, "W1[1,1]", "x[1]*(1-a1[1]**2)")
    assert right.correct and not wrong.correct
    assert wrong.diagnosis == ("matches no simple variant of the chain, but it never mentions the values "
                               "that the loss derivative and the activation derivatives of layers 7 to 2 "
                               "depend on")


# -- the command line: a formula starting with '-', options anywhere, --values -----------------
NEG_W2 = "-(y[1]-a2[1])*a2[1]*(1-a2[1])*a1[1]"  # textbook dL/dW2[1,1] of the 2-2-1 sigmoid spec


@pytest.mark.parametrize("args", [
    ["claim", "{spec}", "W2[1,1]", NEG_W2],
    ["claim", "{spec}", "W2[1,1]", NEG_W2, "--json"],
    ["claim", "{spec}", "--json", "W2[1,1]", NEG_W2],
    ["claim", "--json", "{spec}", "W2[1,1]", NEG_W2],
    ["claim", "{spec}", "W2[1,1]", "--json", NEG_W2],
    ["claim", "{spec}", "W2[1,1]", "--", NEG_W2],
    ["claim", "--layers", "2,2,1", "W2[1,1]", NEG_W2],
    ["claim", "--layers", "2,2,1", "W2[1,1]", "--json", NEG_W2],
    ["claim", "W2[1,1]", "--layers", "2,2,1", NEG_W2, "--json"],
])
def test_claim_minus_first_and_options_anywhere(tmp_path, args):
    out, err, code = cli(*[a.format(spec=spec(tmp_path)) for a in args])
    assert (err, code) == ("", 0)
    if "--json" in args:
        verdict = json.loads(out)
        assert (verdict["parameter"], verdict["claim"], verdict["correct"]) == ("W2[1,1]", NEG_W2, True)
    else:
        assert out.splitlines()[0] == f"correct: dL/dW2[1,1] = {NEG_W2}"


def test_claim_formula_like_an_option_goes_after_double_dash(tmp_path):
    _, err, code = cli("claim", spec(tmp_path), "W2[1,1]", "-L")
    assert code == 2 and err.count("\n") == 1
    assert "unrecognized arguments: -L; a formula that looks like an option follows '--'" in err
    out, _, code = cli("claim", spec(tmp_path), "W2[1,1]", "--", "-L")
    assert code == 1 and out.startswith("incorrect: dL/dW2[1,1] = -L\n  uses the loss L itself")


@pytest.mark.parametrize("args,missing", [(["W2[1,1]"], "EXPR"), ([], "PARAM and EXPR")])
def test_claim_missing_arguments(tmp_path, args, missing):
    out, err, code = cli("claim", spec(tmp_path), *args)
    assert (out, code) == ("", 2)
    assert err.startswith(f"derive: claim: missing {missing}: usage derive claim SPEC PARAM EXPR")


VALUES = {"x": [0.5, -0.2], "y": [0.3], "W1": [[0.1, 0.4], [-0.3, 0.2]], "b1": [0.0, 0.1],
          "W2": [[0.7, -0.4]], "b2": [0.05]}


def _values_file(tmp_path):
    path = tmp_path / "values.toml"
    path.write_text("\n".join(f"{k} = {v}" for k, v in VALUES.items()) + "\n")
    return str(path)


def test_claim_values_file_shows_claimed_and_true(tmp_path):
    acts, loss = ["sigmoid", "sigmoid"], "half_sse"
    true = _true_gradient(acts, loss, VALUES, "W1[1,2]")
    right = "(a2[1]-y[1])*a2[1]*(1-a2[1])*W2[1,1]*a1[1]*(1-a1[1])*x[2]"
    out, _, code = cli("claim", spec(tmp_path), "W1[1,2]", right, "--values", _values_file(tmp_path))
    assert code == 0
    assert out.splitlines()[-1] == f"  at the network's values: {true:.12g} (claimed and true)"
    wrong = "(a2[1]-y[1])*W2[1,1]*a1[1]*(1-a1[1])*x[2]"
    out, _, code = cli("claim", spec(tmp_path), "--values", _values_file(tmp_path), "W1[1,2]", wrong, "--json")
    verdict = json.loads(out)
    assert code == 1 and verdict["counterexample"]["point"] == VALUES
    net = derive.Network([2, 2, 1], values=VALUES)
    assert verdict["at_values"]["true"] == pytest.approx(true, rel=RTOL)
    assert verdict["at_values"]["claimed"] == pytest.approx(_claimed(net, acts, wrong, VALUES), rel=RTOL)


def test_claim_values_differing_from_the_counterexample_are_shown(tmp_path):
    # relu's kink: a z of exactly 0 at the values is skipped by the check, but still shown
    values = {**VALUES, "W1": [[0.0, 0.0], [-0.3, 0.2]], "b1": [0.0, 0.1]}
    net = derive.Network([2, 2, 1], ["relu", "identity"], "half_sse", values=values)
    verdict = check_claim(net, "b1[1]", "(a2[1]-y[1])*W2[1,1]*2")
    lines = verdict.text().splitlines()
    assert lines[-3:-1] == ["  at the network's values:", f"    claimed  {verdict.at_values['claimed']:.12g}"]
    assert verdict.counterexample["point"] != values
    assert verdict.at_values["true"] == 0  # relu'(0) = 0, as PyTorch


# -- names: delta<l>[j], the API's x_1, prime notation ----------------------------------------
def delta_cases(hidden, out, loss):
    back = lambda j: f"(delta2[1]*W2[1,{j}] + delta2[2]*W2[2,{j}])"
    return [("W2[2,1]", "delta2[2]*a1[1]"), ("b2[1]", "delta2[1]"), ("W1[1,2]", "delta1[1]*x[2]"),
            ("W1[2,1]", f"{back(2)}*{prime(hidden, 1, 2)}*x[1]"), ("b1[1]", f"{back(1)}*{prime(hidden, 1, 1)}"),
            ("W1[1,1]", f"delta2_1*W2_1_1*{prime(hidden, 1, 1)}*x_1 + delta2_2*W2_2_1*{prime(hidden, 1, 1)}*x_1")]


@pytest.mark.parametrize("acts", NETWORKS, ids="-".join)
def test_claim_backprop_in_deltas_is_correct(acts):
    net = network(*acts)
    for param, expr in delta_cases(*acts):
        verdict = check_claim(net, param, expr)
        assert verdict.correct, (param, expr, verdict.text())
        assert verdict.deltas and "delta<l>[j] is dL/dz<l>[j]" in verdict.text()


@pytest.mark.parametrize("acts", [NETWORKS[0], NETWORKS[2], NETWORKS[5]], ids="-".join)
def test_claim_wrong_delta_formula_counterexample_is_real(acts):
    net = network(*acts)
    expr = f"(delta2[1]*W2[1,2] + delta2[2]*W2[1,2])*{prime(acts[0], 1, 1)}*x[2]"
    verdict = check_claim(net, "W1[1,2]", expr)
    ce = verdict.counterexample
    assert not verdict.correct
    assert ce["true"] == pytest.approx(_true_gradient(acts[:2], acts[2], ce["point"], "W1[1,2]"), rel=RTOL)
    assert ce["claimed"] == pytest.approx(_claimed(net, acts[:2], expr, ce["point"]), rel=RTOL)


def test_claim_deltas_do_not_come_from_the_derivation(monkeypatch):
    """A claim in deltas is checked against the derivation, not by it: break the
    derivation's output delta and the textbook claim in deltas must fail."""
    net = network("sigmoid", "sigmoid", "half_sse")
    right = net.derivation.delta_definition
    monkeypatch.setattr(net.derivation, "delta_definition", lambda l, j: 2 * right(l, j))
    assert not check_claim(net, "W2[1,1]", "delta2[1]*a1[1]").correct
    assert check_claim(net, "W2[1,1]", "2*delta2[1]*a1[1]").correct  # agrees with the broken one


@pytest.mark.parametrize("acts", NETWORKS, ids="-".join)
def test_claim_prime_notation_is_correct(acts):
    hidden, out, loss = acts
    net = network(*acts)
    h = lambda j: f"{hidden}'(z1[{j}])"
    d = lambda i: output_delta(out, loss, i) if out == "softmax" else \
        f"{LOSS_PRIME[loss].format(i=i, n=N)}*{out}'(z2[{i}])"
    for param, expr in [("W1[2,1]", f"({d(1)}*W2[1,2] + {d(2)}*W2[2,2])*{h(2)}*x[1]"),
                        ("b2[2]", d(2))]:
        verdict = check_claim(net, param, expr)
        assert verdict.correct, (param, expr, verdict.text())


def test_claim_api_names_are_the_bracket_names():
    net = network("tanh", "sigmoid", "bce")
    assert parse_claim(net, "x_1*a1_2 + W2_1_2*b1_1 - z2_1/y_2 + a0_2") == \
        parse_claim(net, "x[1]*a1[2] + W2[1,2]*b1[1] - z2[1]/y[2] + x[2]")
    assert parse_claim(net, "delta1_2") == parse_claim(net, "delta1[2]")


# -- diagnoses of one misplaced symbol, and what a proof relies on ----------------------------------
def misplaced_cases(hidden, out, loss):
    d = lambda i: output_delta(out, loss, i)
    h = lambda j: prime(hidden, 1, j)
    return [
        ("W1[2,1]", f"({d(1)}*W1[2,1] + {d(2)}*W2[2,2])*{h(2)}*x[1]", "uses W1[2,1] where W2[1,2] belongs"),
        ("W1[2,1]", f"({d(1)}*W2[1,2] + {d(2)}*W2[2,2])*{h(1)}*x[1]", "uses a1[1] where a1[2] belongs"),
    ]


@pytest.mark.parametrize("acts", [NETWORKS[0], NETWORKS[1], NETWORKS[5]], ids="-".join)
def test_claim_misplaced_symbol_is_named(acts):
    net = network(*acts)
    for param, expr, words in misplaced_cases(*acts):
        verdict = check_claim(net, param, expr)
        assert not verdict.correct and verdict.diagnosis == words, expr


def test_claim_activation_of_a_instead_of_z():
    net = network("sigmoid", "sigmoid", "half_sse")
    d = lambda i: output_delta("sigmoid", "half_sse", i)
    for hidden, words in [("sigmoid(a1[2])*(1-sigmoid(a1[2]))", "uses sigmoid(a1[2]) where sigmoid(z1[2]) belongs"),
                          ("sigmoid'(a1_2)", "uses sigmoid'(a1[2]) where sigmoid'(z1[2]) belongs")]:
        verdict = check_claim(net, "W1[2,1]", f"({d(1)}*W2[1,2] + {d(2)}*W2[2,2])*{hidden}*x[1]")
        assert verdict.diagnosis == words


def test_claim_wrong_neuron_with_another_mistake_is_hinted():
    net = network("sigmoid", "sigmoid", "half_sse")
    d = lambda i: output_delta("sigmoid", "half_sse", i)
    verdict = check_claim(net, "W1[2,1]", f"({d(1)}*W2[1,2] + {d(2)}*W2[2,2])*a1[1]*(1-a1[1])*x[2]*2")
    assert verdict.diagnosis == ("matches no simple variant of the chain, but it uses a1[1] where the "
                                 "activation derivative of layer 1 is at neuron 2 (a1[2] or z1[2])")


def test_claim_softmax_cross_entropy_says_it_uses_sum_of_targets():
    acts, loss = ["sigmoid", "softmax"], "cross_entropy"
    net = network(*acts, loss)
    short, long = "(a2[1]-y[1])*a1[2]", "(a2[1]*(y[1]+y[2])-y[1])*a1[2]"
    verdict = check_claim(net, "W2[1,2]", short)
    assert verdict.correct and verdict.assumption.startswith("sum(y) = 1: the targets of a cross-entropy")
    assert "  uses sum(y) = 1: " in verdict.text() and verdict.to_json()["assumption"] == verdict.assumption
    assert check_claim(net, "W2[1,2]", long).assumption is None
    assert check_claim(network("sigmoid", "sigmoid", "bce"), "W2[1,2]", "(a2[1]-y[1])*a1[2]").assumption is None
    # independently: at targets summing to 2 the short form is wrong and the long one right
    point = {"x": [0.5, -0.2], "y": [0.6, 1.4], "W1": [[0.1, 0.4], [-0.3, 0.2]], "b1": [0.0, 0.1],
             "W2": [[0.7, -0.4], [0.3, 0.2]], "b2": [0.05, -0.05]}
    true = _true_gradient(acts, loss, point, "W2[1,2]")
    assert _claimed(net, acts, long, point) == pytest.approx(true, rel=RTOL)
    assert _claimed(net, acts, short, point) != pytest.approx(true, rel=1e-3)


def test_claim_prime_messages_are_one_line(tmp_path):
    for expr, words in [("softmax'(z2[1])", "softmax' is not elementwise"),
                        ("sigmoid'z1[1]", "a prime (') must follow an activation name")]:
        _, err, code = cli("claim", spec(tmp_path), "W2[1,1]", expr)
        assert code == 2 and err.count("\n") == 1 and words in err and "string" not in err


def test_claim_spec_file_and_shorthand_together_is_refused(tmp_path):
    for args in [[spec(tmp_path), "W2[1,1]", "a2[1]", "--layers", "2,2,1"],
                 [spec(tmp_path), "W2[1,1]", "--layers", "2,2,1", "a2[1]"]]:
        out, err, code = cli("claim", *args)
        assert (out, code) == ("", 2) and "give a spec file or --layers/--activation/--loss, not both" in err


def test_claim_of_a_tower_of_exponentials_ends_with_a_verdict():
    """exp(exp(exp(100 w))) has no value any point can hold (e**(e**(e**16))): it is
    undefined at a point, a counterexample, instead of an endless evaluation."""
    net = derive.Network([2, 3, 1], "sigmoid", "half_sse")
    verdict = net.claim("W1[1,1]", "exp(exp(exp(W1[1,1]*100)))")
    assert not verdict.correct and verdict.counterexample is not None
    assert "undefined" in verdict.text()
