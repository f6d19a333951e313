"""Extreme values: z = +-1000 gives the true float64 numbers, never nan where a value exists.

References are the textbook definitions evaluated in mpmath with enough digits that
50 significant digits survive (1 - sigmoid(1000) needs 435 digits before it is not 0),
and derivatives come from `mpmath.diff` of those definitions, independent of SymPy and
of check/stable.py.  Where the value really is undefined (ln 0) or beyond float64,
the tests require a one-line SpecError naming the quantity.
"""

from __future__ import annotations

import math

import mpmath
import pytest
import sympy

from derive import Network
from derive.errors import SpecError
from derive.check.stable import ERFC, SIGMOID, SOFTPLUS, stabilize
from derive.spec.registry import ACTIVATIONS, LOSSES, A, X, Y

ZS = [-1000.0, -100.0, -30.0, -1e-8, 0.5, 30.0, 100.0, 1000.0]
#: float64 results may be a few ulps off the correctly rounded value
RTOL = 1e-13
#: below this the float64 result may be subnormal or flushed to 0
ATOL = 1e-300
TARGET = 0.25

TEXTBOOK = {
    "identity": lambda z: z,
    "sigmoid": lambda z: 1 / (1 + mpmath.exp(-z)),
    "tanh": mpmath.tanh,
    "softplus": lambda z: mpmath.log(1 + mpmath.exp(z)),
    "elu": lambda z: z if z > 0 else mpmath.exp(z) - 1,
    "silu": lambda z: z / (1 + mpmath.exp(-z)),
    "gelu": lambda z: z * mpmath.ncdf(z),  # mpmath's own Phi; z (1 + erf(z/sqrt 2))/2 loses digits
    "relu": lambda z: z if z > 0 else mpmath.mpf(0),
    "leaky_relu": lambda z: z if z > 0 else z / 100,
}


def _dps(z: float) -> int:
    """Digits enough that 1 +- e^-|z| keeps 50 significant digits of its small part."""
    return 60 + int(abs(z) / 2.3)


def _close(got: float, ref, what: str) -> None:
    ref = float(ref)
    assert math.isfinite(got), f"{what}: got {got}"
    assert abs(got - ref) <= ATOL + RTOL * abs(ref), f"{what}: got {got!r}, reference {ref!r}"


def _point(z: float, y: float = TARGET, layers: int = 1) -> dict:
    """x = 1 and weights 1, so z(1) = W1 x = z (and z(2) = a(1) for a second layer)."""
    values = {"x": [1.0], "y": [y], "W1": [[z]], "b1": [0.0]}
    if layers == 2:
        values.update({"W2": [[1.0]], "b2": [0.0]})
    return values


def _reference_output(name: str, z: float, y: float = TARGET):
    """(loss, dL/dz) of a 1-1 network with activation `name` and half_sse, in mpmath."""
    f = TEXTBOOK[name]
    with mpmath.workdps(_dps(z)):
        zz = mpmath.mpf(z)
        loss = (f(zz) - y) ** 2 / 2
        grad = (f(zz) - y) * mpmath.diff(f, zz)  # no z in ZS is at a kink
        return +loss, +grad


@pytest.mark.parametrize("name", sorted(TEXTBOOK))
@pytest.mark.parametrize("z", ZS)
def test_output_activation_extreme_z_matches_mpmath(name, z):
    net = Network([1, 1], name, "half_sse")
    loss, grad = _reference_output(name, z)
    _close(net.loss(_point(z)), loss, f"{name} loss at z={z}")
    _close(net.gradients(_point(z))["b1[1]"], grad, f"{name} dL/db1 at z={z}")


@pytest.mark.parametrize("name", sorted(TEXTBOOK))
@pytest.mark.parametrize("z", ZS)
def test_hidden_activation_extreme_z_matches_mpmath(name, z):
    # identity output: dL/db1 = (a2 - y) * W2 * f'(z1) uses the hidden layer's derivative
    net = Network([1, 1, 1], [name, "identity"], "half_sse")
    f = TEXTBOOK[name]
    with mpmath.workdps(_dps(z)):
        zz = mpmath.mpf(z)
        ref = (f(zz) - TARGET) * mpmath.diff(f, zz)
    _close(net.gradients(_point(z, layers=2))["b1[1]"], ref, f"hidden {name} at z={z}")


@pytest.mark.parametrize("z", ZS)
@pytest.mark.parametrize("y", [0.0, 0.3, 1.0])
def test_sigmoid_bce_extreme_z_matches_mpmath(z, y):
    net = Network([1, 1], "sigmoid", "bce")
    with mpmath.workdps(_dps(z)):
        def loss(v):
            a = 1 / (1 + mpmath.exp(-v))
            return -(y * mpmath.log(a) + (1 - y) * mpmath.log(1 - a))
        ref_loss, ref_grad = loss(mpmath.mpf(z)), mpmath.diff(loss, mpmath.mpf(z))
    _close(net.loss(_point(z, y)), ref_loss, f"bce loss at z={z}, y={y}")
    _close(net.gradients(_point(z, y))["b1[1]"], ref_grad, f"bce dL/dz at z={z}, y={y}")


def test_sigmoid_bce_at_1000_is_1000_not_ln0():
    net = Network([1, 1], "sigmoid", "bce")
    assert net.loss(_point(1000.0, 0.0)) == 1000.0
    assert net.gradients(_point(1000.0, 0.0)) == {"W1[1,1]": 1.0, "b1[1]": 1.0}


@pytest.mark.parametrize("z", ZS)
@pytest.mark.parametrize("y", [0.0, 0.6])
def test_sigmoid_cross_entropy_extreme_z_matches_mpmath(z, y):
    net = Network([1, 1], "sigmoid", "cross_entropy")
    with mpmath.workdps(_dps(z)):
        def loss(v):
            return -y * mpmath.log(1 / (1 + mpmath.exp(-v)))
        ref_loss, ref_grad = loss(mpmath.mpf(z)), mpmath.diff(loss, mpmath.mpf(z))
    _close(net.loss(_point(z, y)), ref_loss, f"cross_entropy loss at z={z}")
    _close(net.gradients(_point(z, y))["b1[1]"], ref_grad, f"cross_entropy dL/dz at z={z}")


@pytest.mark.parametrize("loss", ["cross_entropy", "half_sse", "mse"])
@pytest.mark.parametrize("z", [1000.0, 30.0, -1000.0])
def test_softmax_extreme_z_matches_mpmath(loss, z):
    # z(1) = (z, -z, 0) from x = 1
    net = Network([1, 3], "softmax", loss)
    y = [0.2, 0.3, 0.5]
    values = {"x": [1.0], "y": y, "W1": [[z], [-z], [0.0]], "b1": [0.0, 0.0, 0.0]}
    term = sympy.lambdify((A, Y), LOSSES[loss].per_output(A, Y, 3), modules="mpmath")
    with mpmath.workdps(_dps(2 * z)):
        def total(*zs):
            e = [mpmath.exp(v) for v in zs]
            return mpmath.fsum(term(e_j / mpmath.fsum(e), y_j) for e_j, y_j in zip(e, y))
        zs = [mpmath.mpf(z), mpmath.mpf(-z), mpmath.mpf(0)]
        ref_loss = total(*zs)
        ref_grads = [mpmath.diff(lambda v, i=i: total(*[v if m == i else zs[m] for m in range(3)]), zs[i])
                     for i in range(3)]
    grads = net.gradients(values)
    _close(net.loss(values), ref_loss, f"softmax {loss} loss at z={z}")
    for i in range(3):
        _close(grads[f"b1[{i + 1}]"], ref_grads[i], f"softmax {loss} dL/dz{i + 1} at z={z}")


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softplus", "silu", "gelu", "elu"])
def test_check_agrees_at_large_pre_activations(name):
    # hidden z around +-30: the derived gradient and complex-step reference must still agree
    net = Network([2, 2, 1], [name, "sigmoid"], "bce")
    values = {"x": [1.0, -1.0], "y": [1.0], "W1": [[20.0, -10.0], [-15.0, 16.0]], "b1": [0.5, -0.5],
              "W2": [[3.0, -2.0]], "b2": [0.1]}
    report = net.check(values, points=0)
    assert report.passed, report.table()


# -- where a value really is undefined ----------------------------------------------

def test_undefined_bce_ln0_is_one_line():
    net = Network([1, 1], "identity", "bce")
    with pytest.raises(SpecError, match=r"^values: the loss is infinite at these values: bce takes "
                                        r"ln\(a\) and output a1\[1\] = 0, where it is ln 0; bce needs "
                                        r"every output strictly between 0 and 1 \(a sigmoid output "
                                        r"layer keeps it there\)$"):
        net.loss({"x": [1.0], "y": [1.0], "W1": [[0.0]], "b1": [0.0]})


def test_undefined_bce_output_above_one():
    net = Network([1, 1], "identity", "bce")
    with pytest.raises(SpecError, match=r"^values: the loss is undefined \(nan\) at these values: bce "
                                        r"takes ln\(1 - a\) and output a1\[1\] = 2, where it is the ln "
                                        r"of a negative number; "):
        net.gradients({"x": [1.0], "y": [0.5], "W1": [[2.0]], "b1": [0.0]})


def test_undefined_cross_entropy_negative_output():
    net = Network([1, 1], "tanh", "cross_entropy")
    with pytest.raises(SpecError, match=r"^values: the loss is undefined \(nan\) at these values: "
                                        r"cross_entropy takes ln\(a\) and output a1\[1\] = -1, where it "
                                        r"is the ln of a negative number; cross_entropy needs positive "
                                        r"outputs \(softmax or sigmoid keeps them there\)$"):
        net.loss({"x": [1.0], "y": [0.5], "W1": [[-1000.0]], "b1": [0.0]})


def test_undefined_loss_overflow_is_beyond_float64():
    net = Network([1, 1], "identity", "sse")
    with pytest.raises(SpecError, match=r"^values: the loss is beyond float64 \(overflow\) at these values$"):
        net.loss({"x": [1e200], "y": [0.0], "W1": [[1.0]], "b1": [0.0]})


def test_undefined_derivative_names_the_delta():
    # sqrt'(0) is infinite; the loss is finite, the hidden delta is not
    net = Network([1, 1, 1], ["sqrt(x)", "identity"], "half_sse")
    with pytest.raises(SpecError, match=r"^values: delta1\[1\] = dL/dz1\[1\] is beyond float64 "
                                        r"\(overflow\) at these values, and so are the gradients of "
                                        r"layer 1 and below$"):
        net.gradients({"x": [1.0], "y": [2.0], "W1": [[0.0]], "b1": [0.0], "W2": [[1.0]], "b2": [0.0]})


def test_undefined_weight_gradient_overflow():
    # z1 = a1 = 1e300 and delta2 = 1e10 are finite; their product is not
    net = Network([1, 1, 1], ["identity", "identity"], "half_sse")
    with pytest.raises(SpecError, match=r"^values: dL/dW2\[1,1\] = delta2\[1\] \* a1\[1\] is beyond "
                                        r"float64 \(overflow\) at these values$"):
        net.gradients({"x": [1e150], "y": [0.0], "W1": [[1e150]], "b1": [0.0], "W2": [[1e-290]],
                       "b2": [0.0]})


def test_undefined_check_at_such_values_is_the_same_line():
    net = Network([1, 1], "identity", "bce")
    with pytest.raises(SpecError, match=r"^values: the loss is infinite at these values: bce"):
        net.check({"x": [1.0], "y": [1.0], "W1": [[0.0]], "b1": [0.0]}, points=0)


# -- the rewrites themselves -----------------------------------------------------------

MP_PLACEHOLDERS = {"stable_sigmoid": lambda w: 1 / (1 + mpmath.exp(-w)),
                   "stable_softplus": lambda w: mpmath.log(1 + mpmath.exp(w)),
                   "stable_erfc": mpmath.erfc, "expm1": mpmath.expm1, "log1p": mpmath.log1p}


def _rows_to_check():
    """Every form numeric.py may be given; an undefined branch (relu with bce: ln 0 for
    z <= 0) is never given to it, so it is not a case (rather than a skipped one)."""
    for what, expr in _all_rows():
        if not expr.has(sympy.zoo, sympy.nan):
            yield what, expr


def _all_rows():
    rows = [row for row in ACTIVATIONS.values() if not row.vector]
    for row in rows:
        yield f"{row.name} f", row.definition
        yield f"{row.name} f'", row.derivative()
        if row.in_terms_of_a is not None:
            yield f"{row.name} f' in a", row.in_terms_of_a(row.definition)
        for loss in LOSSES.values():
            yield f"{row.name} {loss.name}", loss.per_output(row.definition, Y, 2)
            yield f"{row.name} {loss.name}'", sympy.diff(loss.per_output(row.definition, Y, 2), X)


@pytest.mark.parametrize("what,expr", list(_rows_to_check()), ids=lambda v: v if isinstance(v, str) else "")
def test_stabilize_is_an_exact_identity(what, expr):
    stable = stabilize(expr)
    original = sympy.lambdify((X, Y), expr, modules="mpmath")
    rewritten = sympy.lambdify((X, Y), stable, modules=[MP_PLACEHOLDERS, "mpmath"])
    with mpmath.workdps(100):  # the original forms lose up to ~30 digits to cancellation
        for z in ["-7.25", "-0.5", "0.125", "3.5"]:
            for y in ["0.25", "0.75"]:
                ref, got = original(mpmath.mpf(z), mpmath.mpf(y)), rewritten(mpmath.mpf(z), mpmath.mpf(y))
                if isinstance(ref, mpmath.mpc) or not mpmath.isfinite(ref):
                    continue  # outside the loss's domain (ln of a negative number)
                assert abs(got - ref) <= mpmath.mpf(10) ** -45 * max(1, abs(ref)), (what, z, y, got, ref)


@pytest.mark.parametrize("name,expected", [
    ("sigmoid", SIGMOID(-X) * SIGMOID(X)),
    ("tanh", sympy.cosh(X) ** -2),
    ("softplus", SIGMOID(X)),
    ("silu", X * SIGMOID(-X) * SIGMOID(X) + SIGMOID(X)),
])
def test_stabilize_derivative_forms(name, expected):
    assert stabilize(ACTIVATIONS[name].derivative()) == expected


def test_stabilize_sigmoid_bce_is_softplus_form():
    bce = LOSSES["bce"].per_output(ACTIVATIONS["sigmoid"].definition, Y, 1)
    assert stabilize(bce) == Y * SOFTPLUS(-X) + (1 - Y) * SOFTPLUS(X)


def test_stabilize_gelu_uses_erfc():
    assert stabilize(ACTIVATIONS["gelu"].definition) == X * ERFC(-sympy.sqrt(2) * X / 2) / 2


def test_stabilize_leaves_plain_expressions_alone():
    expr = (A - Y) ** 2 / 2
    assert stabilize(expr) is expr
