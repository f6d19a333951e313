"""`derive grad --json` on random networks against a from-scratch mpmath reference.

Hypothesis draws networks (depth 1-6, widths 1-4, an activation per layer with
softmax only last, every loss, with and without bias, custom expressions
included) and a point.  The reference is written here from the textbook
formulas: a forward pass at 40 digits and central differences with h = 1e-15
for every weight and bias.  It shares nothing with derive but the TOML files.

Seeded (`derandomize=True`) and bounded: the explicit @examples below cover
every activation and loss on every run, the drawn ones add random shapes.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta

import mpmath
import textbook
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from derive.cli import main
from derive.spec.registry import ACTIVATIONS, LOSSES

DPS = 40
#: Central-difference step: the truncation error h^2 |L'''| / 6 ~ 1e-30 and the rounding
#: error 10^-DPS / h ~ 1e-25 are both far below the tolerance.
STEP = mpmath.mpf("1e-15")
#: derive works in float64, the reference is exact to ~1e-25: the issue's tolerance.
REL_TOL = 1e-8
#: Gradients that cancel to (nearly) zero: float64 backprop leaves an absolute error of
#: about 1e-16 times the size of the terms that cancelled (here O(1) to O(1e3)), so a
#: relative test is meaningless below ~1e-12 and this floor replaces it.
ABS_TOL = 1e-12
#: ReLU-family (and |x|) pre-activations are kept this far from their kink, where the
#: one-sided derivatives differ; far above float64 error and the step h.
KINK_MARGIN = 1e-3
MAX_EXAMPLES = 20
CHECK_EXAMPLES = 6

SOFTSIGN, WAVE = textbook.SOFTSIGN, textbook.WAVE
LOG_COSH, QUARTIC = "log(cosh(a - y))", "(a - y)^4/4"

# Textbook definitions in mpmath, from the formulas (tests/textbook.py).
ACT = textbook.ACTIVATIONS
KINKED = {"relu", "leaky_relu", "elu", SOFTSIGN}
TERM = {  # one output's loss term; n is the number of outputs
    "mse": lambda a, y, n: (a - y) ** 2 / n,
    "half_sse": lambda a, y, n: (a - y) ** 2 / 2,
    "sse": lambda a, y, n: (a - y) ** 2,
    "bce": lambda a, y, n: -(y * mpmath.log(a) + (1 - y) * mpmath.log(1 - a)),
    "cross_entropy": lambda a, y, n: -y * mpmath.log(a),
    LOG_COSH: lambda a, y, n: mpmath.log(mpmath.cosh(a - y)),
    QUARTIC: lambda a, y, n: (a - y) ** 4 / 4,
}
ELEMENTWISE = sorted(ACT)
PROBABILISTIC = {"bce", "cross_entropy"}


def output_choices(loss: str, n_out: int) -> list[str]:
    """Output activations that keep the loss defined: bce needs a in (0, 1),
    cross_entropy a > 0 (softmax with one output is the constant 1: not for bce)."""
    if loss == "bce":
        return ["sigmoid"] + (["softmax"] if n_out >= 2 else [])
    if loss == "cross_entropy":
        return ["sigmoid", "softmax", "softplus"]
    return ELEMENTWISE + ["softmax"]


# -- the reference ---------------------------------------------------------------

def mp_loss(case: dict, params: dict) -> mpmath.mpf:
    """The loss at `params` (W[l], b[l] as nested lists of mpf), with the kinks checked."""
    a = [mpmath.mpf(v) for v in case["values"]["x"]]
    for l, act in enumerate(case["activations"], start=1):
        W, b = params[f"W{l}"], params.get(f"b{l}")
        z = [mpmath.fsum(w * v for w, v in zip(row, a)) + (b[j] if b else 0) for j, row in enumerate(W)]
        if act == "softmax":
            total = mpmath.fsum(mpmath.exp(v) for v in z)
            a = [mpmath.exp(v) / total for v in z]
        else:
            a = [ACT[act](v) for v in z]
    y = [mpmath.mpf(v) for v in case["values"]["y"]]
    return mpmath.fsum(TERM[case["loss"]](p, t, len(a)) for p, t in zip(a, y))


def pre_activations(case: dict) -> list[tuple[str, list[mpmath.mpf]]]:
    """(activation, z(l)) per layer at the case's values, for the kink check."""
    out, a = [], [mpmath.mpf(v) for v in case["values"]["x"]]
    vals = case["values"]
    for l, act in enumerate(case["activations"], start=1):
        b = vals.get(f"b{l}")
        z = [mpmath.fsum(mpmath.mpf(w) * v for w, v in zip(row, a)) + (b[j] if b else 0)
             for j, row in enumerate(vals[f"W{l}"])]
        out.append((act, z))
        if act == "softmax":
            total = mpmath.fsum(mpmath.exp(v) for v in z)
            a = [mpmath.exp(v) / total for v in z]
        else:
            a = [ACT[act](v) for v in z]
    return out


def central_differences(values: dict, loss) -> tuple[mpmath.mpf, dict[str, mpmath.mpf]]:
    """loss(params) and every dloss/dparam by central differences at DPS digits, for the
    W<l> (nested lists) and b<l> entries of `values`, named W1[1,2], b1[1] in file order."""
    with mpmath.workdps(DPS):
        params = {k: [[mpmath.mpf(v) for v in r] for r in m] if k[0] == "W" else [mpmath.mpf(v) for v in m]
                  for k, m in values.items() if k[0] in "Wb"}
        grads = {}
        for key in sorted(params, key=lambda k: (int(k[1:]), k[0] != "W")):
            arr = params[key]
            cells = ([(j, k) for j in range(len(arr)) for k in range(len(arr[0]))] if key[0] == "W"
                     else [(j,) for j in range(len(arr))])
            for cell in cells:
                shifted = []
                for sign in (1, -1):
                    copy = {**params, key: [list(r) for r in arr] if key[0] == "W" else list(arr)}
                    if key[0] == "W":
                        copy[key][cell[0]][cell[1]] += sign * STEP
                    else:
                        copy[key][cell[0]] += sign * STEP
                    shifted.append(loss(copy))
                grads[f"{key}[{','.join(str(i + 1) for i in cell)}]"] = (shifted[0] - shifted[1]) / (2 * STEP)
        return loss(params), grads


def reference(case: dict) -> tuple[mpmath.mpf, dict[str, mpmath.mpf]]:
    """The loss and every dL/dparam by central differences, at DPS digits."""
    return central_differences(case["values"], lambda params: mp_loss(case, params))


def away_from_kinks(case: dict) -> bool:
    with mpmath.workdps(DPS):
        return all(abs(v) >= KINK_MARGIN for act, z in pre_activations(case) if act in KINKED for v in z)


# -- cases -------------------------------------------------------------------------

def toml_list(v) -> str:
    return "[" + ", ".join(toml_list(u) if isinstance(u, list) else repr(u) for u in v) + "]"


def write_case(case: dict, folder) -> tuple[str, str]:
    spec = folder / "net.toml"
    spec.write_text(f"layers = {toml_list(case['layers'])}\n"
                    f"activation = [{', '.join(json.dumps(a) for a in case['activations'])}]\n"
                    f"loss = {json.dumps(case['loss'])}\nbias = {str(case['bias']).lower()}\n")
    values = folder / "values.toml"
    values.write_text("".join(f"{k} = {toml_list(v)}\n" for k, v in case["values"].items()))
    return str(spec), str(values)


def _targets(draw_int, loss: str, out_act: str, n: int) -> list[float]:
    if loss not in PROBABILISTIC:
        return [draw_int(-1000, 1000) / 1000 for _ in range(n)]
    ks = [draw_int(0, 1000) for _ in range(n)]
    if loss == "cross_entropy" and out_act == "softmax":
        ks[0] += 1 if sum(ks) == 0 else 0
        return [k / sum(ks) for k in ks]  # a distribution, as the spec requires
    return [k / 1000 for k in ks]


def make_case(layers, activations, loss, bias, draw_int) -> dict:
    """A case with values from `draw_int(lo, hi)`: x, W in [-1, 1], b in [-0.5, 0.5]."""
    values = {"x": [draw_int(-1000, 1000) / 1000 for _ in range(layers[0])],
              "y": _targets(draw_int, loss, activations[-1], layers[-1])}
    for l in range(1, len(layers)):
        values[f"W{l}"] = [[draw_int(-1000, 1000) / 1000 for _ in range(layers[l - 1])]
                           for _ in range(layers[l])]
        if bias:
            values[f"b{l}"] = [draw_int(-500, 500) / 1000 for _ in range(layers[l])]
    return {"layers": list(layers), "activations": list(activations), "loss": loss,
            "bias": bias, "values": values}


@st.composite
def cases(draw) -> dict:
    depth = draw(st.integers(1, 6))
    layers = draw(st.lists(st.integers(1, 4), min_size=depth + 1, max_size=depth + 1))
    loss = draw(st.sampled_from(sorted(TERM)))
    acts = [draw(st.sampled_from(ELEMENTWISE)) for _ in range(depth - 1)]
    acts.append(draw(st.sampled_from(output_choices(loss, layers[-1]))))
    bias = draw(st.booleans())
    return make_case(layers, acts, loss, bias, lambda lo, hi: draw(st.integers(lo, hi)))


def fixed(layers, activations, loss, bias, seed) -> dict:
    """A reproducible case away from the kinks, for an explicit @example."""
    rng = random.Random(seed)
    while True:
        case = make_case(layers, activations, loss, bias, rng.randint)
        if away_from_kinks(case):
            return case


#: Together these use every activation (softmax last) and every loss, deep and shallow.
FIXED = [
    fixed([3, 4, 2, 3, 4, 2, 3], ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"],
          "cross_entropy", True, 1),
    fixed([2, 3, 4, 2, 3, 2], ["softplus", "elu", "silu", "gelu", SOFTSIGN], "mse", False, 2),
    fixed([1, 2, 3], [WAVE, "sigmoid"], "bce", True, 3),
    fixed([2, 4, 2], ["tanh", "softmax"], "bce", False, 4),
    fixed([4, 1, 3], ["relu", "identity"], "half_sse", True, 5),
    fixed([2, 3, 1], ["gelu", "softplus"], "cross_entropy", False, 6),
    fixed([3, 2, 2, 2], ["leaky_relu", WAVE, "tanh"], "sse", True, 7),
    fixed([2, 2, 2], ["silu", "elu"], LOG_COSH, True, 8),
    fixed([1, 3, 2], ["elu", SOFTSIGN], QUARTIC, False, 9),
    fixed([4, 3], ["softmax"], "mse", True, 10),
]


def test_fixed_examples_cover_every_activation_and_loss():
    used_acts = {a for case in FIXED for a in case["activations"]}
    used_losses = {case["loss"] for case in FIXED}
    assert used_acts == set(ACTIVATIONS) | {SOFTSIGN, WAVE}
    assert used_losses == set(LOSSES) | {LOG_COSH, QUARTIC}
    assert {len(c["layers"]) - 1 for c in FIXED} >= {1, 2, 3, 5, 6}
    assert {c["bias"] for c in FIXED} == {True, False}


# -- the tests ----------------------------------------------------------------------

def assert_close(got, want, what: str) -> None:
    assert isinstance(got, float), f"{what}: got {got!r}, expected a float"
    err = abs(mpmath.mpf(got) - want)
    assert err <= ABS_TOL + REL_TOL * abs(want), \
        f"{what}: derive {got!r}, reference {mpmath.nstr(want, 20)}, error {mpmath.nstr(err, 3)}"


def apply_examples(fn):
    for case in reversed(FIXED):
        fn = example(case=case)(fn)
    return fn


HYPOTHESIS = dict(derandomize=True, database=None, deadline=timedelta(seconds=30),
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@settings(max_examples=MAX_EXAMPLES, **HYPOTHESIS)
@apply_examples
@given(case=cases())
def test_grad_json_matches_mpmath_central_differences(case, tmp_path, capsys):
    assume(away_from_kinks(case))
    spec, values = write_case(case, tmp_path)
    capsys.readouterr()
    code = main(["grad", spec, "--values", values, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    want_loss, want = reference(case)
    assert list(doc["gradients"]) == list(want)  # every parameter, in order, nothing else
    assert_close(doc["loss"], want_loss, "loss")
    for name, ref in want.items():
        assert_close(doc["gradients"][name]["value"], ref, name)


@settings(max_examples=CHECK_EXAMPLES, **HYPOTHESIS)
@given(case=cases())
def test_check_passes_on_random_networks(case, tmp_path, capsys):
    assume(away_from_kinks(case))
    spec, values = write_case(case, tmp_path)
    capsys.readouterr()
    code = main(["check", spec, "--values", values, "--points", "2"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert out.splitlines()[-1] == "all gradients agree"


@pytest.mark.parametrize("case", FIXED[:2], ids=["deep-every-builtin", "custom-softsign"])
def test_check_passes_on_fixed_networks(case, tmp_path, capsys):
    spec, values = write_case(case, tmp_path)
    code = main(["check", spec, "--values", values])
    out, _ = capsys.readouterr()
    assert code == 0, out
