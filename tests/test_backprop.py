"""The derivation against references that share no code with it.

References: `sympy.diff` of the whole flattened loss, written out in this file
from textbook formulas (the ReLU family as Max/Min, so nothing is shared with
the registry's Piecewise rows; `SymbolicModel.flat_loss` is checked against
the same formulas), `sympy.diff` of registry definitions and of
exp(z_i)/sum_m exp(z_m), and an mpmath forward pass written here.

Derived forms contain z and a symbols; they are evaluated by substituting the
values of this file's own forward pass.  Comparisons are at 20 random
rational points in 50-digit arithmetic: full `evalf(50)` of a flattened
gradient costs about 0.1 s, so the points run through `lambdify(..., "mpmath")`
at mp.dps = 50, and `evalf(50)` (SymPy's own arbitrary-precision evaluator)
cross-checks the first point.  Identity networks are also compared
symbolically.  Custom expressions (x/(1+abs(x)), sin(x) + x/2 and two custom
losses) go through the same comparisons as the registry rows.
"""

from __future__ import annotations

import random
import zlib

import mpmath
import textbook
import pytest
import sympy

from derive import Network
from derive.calculus.backprop import softmax_jacobian
from derive.calculus.model import NetSymbol
from derive.spec.registry import ACTIVATIONS, LOSSES, X
from derive.calculus.simplify import CANCELLATIONS

DPS = 50
POINTS = 20
#: Both sides are exact formulas evaluated with 50 significant digits, so they agree to
#: about 1e-45 relative; a wrong derivative misses by many orders of magnitude more.
REL_TOL = mpmath.mpf("1e-35")
#: Floor for gradients that are exactly 0 (e.g. a ReLU that is off).
ABS_TOL = mpmath.mpf("1e-40")
#: Pre-activations of ReLU-family layers are kept at least this far from the kink.
KINK_MARGIN = mpmath.mpf(1) / 50

# Textbook definitions, written from the formulas (tests/textbook.py).
TEXTBOOK = textbook.ACTIVATIONS
TEXTBOOK_LOSS = {
    "mse": lambda a, y: mpmath.fsum((p - t) ** 2 for p, t in zip(a, y)) / len(a),
    "half_sse": lambda a, y: mpmath.fsum((p - t) ** 2 for p, t in zip(a, y)) / 2,
    "sse": lambda a, y: mpmath.fsum((p - t) ** 2 for p, t in zip(a, y)),
    "bce": lambda a, y: -mpmath.fsum(t * mpmath.log(p) + (1 - t) * mpmath.log(1 - p)
                                     for p, t in zip(a, y)),
    "cross_entropy": lambda a, y: -mpmath.fsum(t * mpmath.log(p) for p, t in zip(a, y)),
    "(a - y)^4/4": lambda a, y: mpmath.fsum((p - t) ** 4 for p, t in zip(a, y)) / 4,
    "log(cosh(a - y))": lambda a, y: mpmath.fsum(mpmath.log(mpmath.cosh(p - t)) for p, t in zip(a, y)),
}
#: The same formulas in SymPy, for the flattened reference loss.  The ReLU family is written
#: with Max/Min (derivatives: Heaviside steps), sharing nothing with the registry's Piecewise.
SYMPY_TEXTBOOK = {
    "identity": lambda v: v,
    "sigmoid": lambda v: 1 / (1 + sympy.exp(-v)),
    "tanh": sympy.tanh,
    "relu": lambda v: sympy.Max(v, 0),
    "leaky_relu": lambda v: sympy.Max(v, v / 100),
    "softplus": lambda v: sympy.log(1 + sympy.exp(v)),
    "elu": lambda v: sympy.Max(v, 0) + sympy.Min(sympy.exp(v) - 1, 0),
    "silu": lambda v: v / (1 + sympy.exp(-v)),
    "gelu": lambda v: v * (1 + sympy.erf(v / sympy.sqrt(2))) / 2,
    "x/(1+abs(x))": lambda v: v / (1 + sympy.Abs(v)),
    "sin(x) + x/2": lambda v: sympy.sin(v) + v / 2,
}
SYMPY_TEXTBOOK_LOSS = {
    "mse": lambda a, y: sympy.Add(*[(p - t) ** 2 for p, t in zip(a, y)]) / len(a),
    "half_sse": lambda a, y: sympy.Add(*[(p - t) ** 2 for p, t in zip(a, y)]) / 2,
    "sse": lambda a, y: sympy.Add(*[(p - t) ** 2 for p, t in zip(a, y)]),
    "bce": lambda a, y: -sympy.Add(*[t * sympy.log(p) + (1 - t) * sympy.log(1 - p) for p, t in zip(a, y)]),
    "cross_entropy": lambda a, y: -sympy.Add(*[t * sympy.log(p) for p, t in zip(a, y)]),
    "(a - y)^4/4": lambda a, y: sympy.Add(*[(p - t) ** 4 for p, t in zip(a, y)]) / 4,
    "log(cosh(a - y))": lambda a, y: sympy.Add(*[sympy.log(sympy.cosh(p - t)) for p, t in zip(a, y)]),
}
KINKED = {"relu", "leaky_relu", "elu", "x/(1+abs(x))"}
REGRESSION = ("mse", "half_sse", "sse")
SHAPES = ([2, 2, 2], [1, 2, 1, 2], [2, 3, 2])

#: Every (output activation, loss) pair that means something: bce needs outputs in (0, 1),
#: cross_entropy needs positive outputs.
PAIRS = ([(act, loss) for act in ACTIVATIONS for loss in REGRESSION]
         + [("sigmoid", "bce"), ("softmax", "bce"), ("sigmoid", "cross_entropy"),
            ("softmax", "cross_entropy"), ("softplus", "cross_entropy")])
#: Networks with a different activation in each layer.
MIXED = [([2, 2, 2], ["relu", "softmax"], "cross_entropy", True),
         ([1, 2, 1, 2], ["gelu", "leaky_relu", "sigmoid"], "bce", False),
         ([2, 3, 2], ["elu", "softplus"], "mse", True),
         ([1, 2, 1, 2], ["silu", "tanh", "softmax"], "sse", True),
         ([2, 3, 2], ["sigmoid", "identity"], "half_sse", False),
         ([2, 2, 1], ["x/(1+abs(x))", "sin(x) + x/2"], "(a - y)^4/4", True),
         ([1, 2, 2], ["sin(x) + x/2", "sigmoid"], "log(cosh(a - y))", False),
         ([1, 1, 1, 1, 1], ["relu", "leaky_relu", "elu", "relu"], "half_sse", True)]


def _case(pair: tuple[str, str], i: int) -> tuple[list[int], list[str], str, bool]:
    """Layers, per-layer activations, loss and bias for the i-th pair (shapes and bias vary)."""
    act, loss = pair
    layers = SHAPES[i % len(SHAPES)]
    hidden = "tanh" if act == "softmax" else act
    return layers, [hidden] * (len(layers) - 2) + [act], loss, i % 2 == 0


CASES = [_case(p, i) for i, p in enumerate(PAIRS)] + MIXED
CASE_IDS = [f"{'-'.join(map(str, c[0]))}:{','.join(c[1])}:{c[2]}:{'bias' if c[3] else 'nobias'}"
            for c in CASES]


# -- the independent forward pass ---------------------------------------------

def _rational(rng: random.Random, lo: int, hi: int, den: int = 100) -> sympy.Rational:
    return sympy.Rational(rng.randint(lo, hi), den)


def _targets(rng: random.Random, net: Network) -> list[sympy.Rational]:
    n, spec = net.spec.layers[-1], net.spec
    if not spec.loss.probabilistic:
        return [_rational(rng, -100, 100) for _ in range(n)]
    y = [_rational(rng, 5, 95) for _ in range(n)]
    if spec.activations[-1].vector and spec.loss.name == "cross_entropy":
        y = [v / sum(y) for v in y]  # a distribution, as cross_entropy after softmax requires
    return y


def forward(net: Network, params: dict) -> tuple[dict, list]:
    """Textbook forward pass at 60 digits: values of every z and a symbol, and the outputs."""
    m, n, names = net.model, net.spec.layers, [a.name for a in net.spec.activations]
    out = {}
    with mpmath.workdps(DPS + 10):
        prev = [_mp(params[m.x(k)]) for k in range(1, n[0] + 1)]
        for l in range(1, len(n)):
            zs = [mpmath.fsum(_mp(params[m.W(l, j, k)]) * prev[k - 1] for k in range(1, n[l - 1] + 1))
                  + (_mp(params[m.b(l, j)]) if net.spec.bias else 0) for j in range(1, n[l] + 1)]
            if names[l - 1] == "softmax":
                total = mpmath.fsum(mpmath.exp(v) for v in zs)
                prev = [mpmath.exp(v) / total for v in zs]
            else:
                prev = [TEXTBOOK[names[l - 1]](v) for v in zs]
            out.update({m.z(l, j): zs[j - 1] for j in range(1, n[l] + 1)})
            out.update({m.a(l, j): prev[j - 1] for j in range(1, n[l] + 1)})
    return out, prev


def textbook_flat_loss(net: Network) -> sympy.Expr:
    """The loss written out in x, y, W, b from the textbook formulas above."""
    m, n = net.model, net.spec.layers
    prev = [m.x(k) for k in range(1, n[0] + 1)]
    for l, row in enumerate(net.spec.activations, start=1):
        zs = [sympy.Add(*[m.W(l, j, k) * prev[k - 1] for k in range(1, n[l - 1] + 1)])
              + (m.b(l, j) if net.spec.bias else 0) for j in range(1, n[l] + 1)]
        if row.name == "softmax":
            prev = [sympy.exp(v) / sympy.Add(*[sympy.exp(u) for u in zs]) for v in zs]
        else:
            prev = [SYMPY_TEXTBOOK[row.name](v) for v in zs]
    return SYMPY_TEXTBOOK_LOSS[net.spec.loss.name](prev, [m.y(j) for j in range(1, n[-1] + 1)])


def random_point(net: Network, rng: random.Random) -> dict:
    """Rational x, y, W, b (away from ReLU kinks) and the z, a values they give."""
    m, n = net.model, net.spec.layers
    kinked = [l for l, row in enumerate(net.spec.activations, start=1) if row.name in KINKED]
    for _ in range(1000):
        point = {m.x(k): _rational(rng, -100, 100) for k in range(1, n[0] + 1)}
        point.update({m.y(j): v for j, v in enumerate(_targets(rng, net), start=1)})
        for l in range(1, len(n)):
            point.update({m.W(l, j, k): _rational(rng, -150, 150) for j in range(1, n[l] + 1)
                          for k in range(1, n[l - 1] + 1)})
            if net.spec.bias:
                point.update({m.b(l, j): _rational(rng, -50, 50) for j in range(1, n[l] + 1)})
        values, _ = forward(net, point)
        if all(abs(values[m.z(l, j)]) >= KINK_MARGIN for l in kinked for j in range(1, n[l] + 1)):
            return {**point, **values}
    raise AssertionError("no point away from the ReLU kinks")


def points(net: Network, seed: int, count: int = POINTS) -> list[dict]:
    rng = random.Random(seed)
    return [random_point(net, rng) for _ in range(count)]


def _mp(v) -> mpmath.mpf:
    """A point's value (a SymPy Rational or an mpf) as an mpf, rounded to 60 digits."""
    with mpmath.workdps(DPS + 10):
        return mpmath.mpf(v.p) / v.q if isinstance(v, sympy.Rational) else +mpmath.mpf(v)


def _heaviside(v, h0=mpmath.mpf(1) / 2):
    return mpmath.mpf(1) if v > 0 else mpmath.mpf(0) if v < 0 else h0


#: Functions lambdify has no mpmath name for: steps from the ReLU family's Max/Min and the
#: explicit form; DiracDelta (derivative of a step) is 0 away from the kinks the points avoid.
MPMATH_EXTRA = {"Heaviside": _heaviside, "DiracDelta": lambda v, k=0: mpmath.mpf(0) if v != 0 else mpmath.inf}


def evaluate(exprs: list[sympy.Expr], pts: list[dict]) -> list[list[mpmath.mpf]]:
    """Each expression at each point, in 50-digit mpmath arithmetic."""
    syms = sorted(set().union(*(e.free_symbols for e in exprs)), key=lambda s: s.name)
    fn = sympy.lambdify(syms, exprs, modules=[MPMATH_EXTRA, "mpmath"], cse=True)
    with mpmath.workdps(DPS):
        return [[mpmath.mpf(v) for v in fn(*[_mp(p[s]) for s in syms])] for p in pts]


def evalf_at(expr: sympy.Expr, point: dict) -> mpmath.mpf:
    """SymPy's own 50-digit evaluation of `expr` at a point (no lambdify)."""
    subs = {s: (v if isinstance(v, sympy.Rational) else sympy.Float(mpmath.nstr(v, DPS + 10), DPS + 10))
            for s, v in point.items() if s in expr.free_symbols}
    value = sympy.Float(expr.xreplace(subs).evalf(DPS), DPS)
    with mpmath.workdps(DPS + 10):
        return +mpmath.mpf(value)


def assert_close(derived, reference, what: str) -> None:
    with mpmath.workdps(DPS):
        err = abs(derived - reference)
        assert err <= ABS_TOL + REL_TOL * abs(reference), \
            f"{what}: derived {derived}, reference {reference}, error {err}"


def _deltas_remaining(expr: sympy.Expr) -> list:
    return [s for s in expr.free_symbols if isinstance(s, NetSymbol) and s.kind == "delta"]


# -- the registry and the model -------------------------------------------------

def test_registry_every_row_has_a_textbook_reference():
    # A new activation or loss row must be added here too, or these tests would skip it.
    assert set(ACTIVATIONS) - {"softmax"} <= set(TEXTBOOK)
    assert set(LOSSES) <= set(TEXTBOOK_LOSS)


@pytest.mark.parametrize("name", sorted(set(ACTIVATIONS) - {"softmax"}))
def test_registry_definition_matches_textbook(name):
    rng = random.Random(name)
    zs = [_rational(rng, -400, 400) for _ in range(POINTS)] + [sympy.Rational(7, 3), -sympy.Rational(7, 3)]
    for z in zs:
        with mpmath.workdps(DPS):
            assert_close(evalf_at(ACTIVATIONS[name].definition, {X: z}), TEXTBOOK[name](_mp(z)),
                         f"{name}({z})")


IDENTITY_ROWS = sorted(name for name, row in ACTIVATIONS.items() if row.in_terms_of_a is not None)


def test_registry_identity_rows_include_the_documented_ones():
    assert {"identity", "sigmoid", "tanh", "softplus"} <= set(IDENTITY_ROWS)


@pytest.mark.parametrize("name", IDENTITY_ROWS)
def test_registry_in_terms_of_a_equals_diff_of_definition(name):
    row = ACTIVATIONS[name]
    derivative = sympy.diff(row.definition, X)  # SymPy's calculus on the definition
    via_a = row.in_terms_of_a(row.definition)   # the identity with a = f(x) substituted
    rng = random.Random(name)
    zs = [_rational(rng, -500, 500) for _ in range(POINTS)] + [sympy.Integer(12), sympy.Integer(-12)]
    for z in zs:
        assert_close(evalf_at(via_a, {X: z}), evalf_at(derivative, {X: z}), f"{name}'({z})")


@pytest.mark.parametrize("name", IDENTITY_ROWS)
def test_registry_in_terms_of_a_symbolically(name):
    row = ACTIVATIONS[name]
    diff = sympy.diff(row.definition, X) - row.in_terms_of_a(row.definition)
    assert sympy.simplify(diff.rewrite(sympy.exp)) == 0


# Not the last MIXED network: model.flat_loss nests Piecewise conditions there, which SymPy
# folds for about 30 s (the textbook reference uses Max/Min instead).
@pytest.mark.parametrize("layers,acts,loss,bias", CASES[:6] + MIXED[:-1],
                         ids=CASE_IDS[:6] + CASE_IDS[-len(MIXED):-1])
def test_model_flat_loss_matches_textbook_forward(layers, acts, loss, bias):
    net = Network(layers, acts, loss, bias=bias)
    m, flat = net.model, net.model.flat_loss()
    for point in points(net, seed=1, count=5):
        _, outputs = forward(net, point)
        ys = [_mp(point[m.y(j)]) for j in range(1, layers[-1] + 1)]
        with mpmath.workdps(DPS):
            assert_close(evalf_at(flat, point), TEXTBOOK_LOSS[loss](outputs, ys), "flat loss")


# -- (a) factored gradient == sympy.diff of the flattened loss -------------------

@pytest.mark.parametrize("layers,acts,loss,bias", CASES, ids=CASE_IDS)
def test_factored_and_explicit_equal_diff_of_flat_loss(layers, acts, loss, bias):
    net = Network(layers, acts, loss, bias=bias)
    m, flat = net.model, textbook_flat_loss(net)
    params = list(net.params())
    factored = [net.gradient(p).factored for p in params]
    explicit = [net.gradient(p).explicit for p in params]
    assert not any(_deltas_remaining(e) for e in factored), "small nets expand every delta"
    assert all(e is not None for e in explicit), "small nets have an explicit form"
    assert all(s.kind in ("x", "y", "W", "b") for e in explicit for s in e.free_symbols)
    reference = [sympy.diff(flat, m.symbol(p)) for p in params]
    pts = points(net, seed=zlib.crc32(repr((layers, acts, loss, bias)).encode()))
    values = [evaluate(forms, pts) for forms in (factored, explicit, reference)]
    for f_row, e_row, r_row in zip(*values):
        for p, f, e, r in zip(params, f_row, e_row, r_row):
            assert_close(f, r, f"factored d{loss}/d{p.name}")
            assert_close(e, r, f"explicit d{loss}/d{p.name}")
    # SymPy's own evaluator agrees with the lambdified one (first weight, first point)
    assert_close(evalf_at(factored[0], pts[0]), values[2][0][0], f"evalf factored {params[0].name}")
    assert_close(evalf_at(reference[0], pts[0]), values[2][0][0], f"evalf reference {params[0].name}")


def _symbolic_forward(net: Network) -> dict:
    """z and a symbols -> their written-out identity-network expressions."""
    m, n, out = net.model, net.spec.layers, {}
    prev = [m.x(k) for k in range(1, n[0] + 1)]
    for l in range(1, len(n)):
        zs = [sympy.Add(*[m.W(l, j, k) * prev[k - 1] for k in range(1, n[l - 1] + 1)])
              + (m.b(l, j) if net.spec.bias else 0) for j in range(1, n[l] + 1)]
        out.update({m.z(l, j): zs[j - 1] for j in range(1, n[l] + 1)})
        out.update({m.a(l, j): zs[j - 1] for j in range(1, n[l] + 1)})
        prev = zs
    return out


@pytest.mark.parametrize("layers", SHAPES)
@pytest.mark.parametrize("loss", REGRESSION)
@pytest.mark.parametrize("bias", [True, False])
def test_factored_equals_diff_of_flat_loss_symbolically_identity(layers, loss, bias):
    net = Network(layers, "identity", loss, bias=bias)
    m, flat, fwd = net.model, textbook_flat_loss(net), _symbolic_forward(net)
    for p in net.params():
        derived = net.gradient(p).factored.xreplace(fwd)
        assert sympy.expand(derived - sympy.diff(flat, m.symbol(p))) == 0, p.name


def test_factored_deep_network_keeps_deltas_and_stays_exact():
    # Deep enough that later deltas stay symbols; substituting their own equations
    # must still give sympy.diff of the flattened loss.
    net = Network([1, 4, 4, 4, 4, 1], "tanh", "half_sse")
    m, d = net.model, net.derivation
    p = net.param("W1[1,1]")
    factored = net.gradient(p).factored
    assert _deltas_remaining(factored), "this network is past the expansion budget"
    while _deltas_remaining(factored):
        factored = factored.xreplace({s: d.delta_definition(s.layer, s.idx[0])
                                      for s in _deltas_remaining(factored)})
    reference = sympy.diff(textbook_flat_loss(net), m.symbol(p))
    pts = points(net, seed=3)
    for (got,), (want,) in zip(evaluate([factored], pts), evaluate([reference], pts)):
        assert_close(got, want, "dL/dW1[1,1]")


# -- (c) the softmax Jacobian ----------------------------------------------------

@pytest.mark.parametrize("n", [2, 3])
def test_softmax_jacobian_equals_diff(n):
    z = sympy.symbols(f"z1:{n + 1}", real=True)
    s = [sympy.exp(z[i]) / sympy.Add(*[sympy.exp(v) for v in z]) for i in range(n)]
    rng = random.Random(n)
    zs = [[_rational(rng, -300, 300) for _ in range(n)] for _ in range(POINTS)]
    for i in range(n):
        for m in range(n):
            derived = softmax_jacobian(s[i], s[m], i == m)
            reference = sympy.diff(s[i], z[m])
            assert sympy.simplify(derived - reference) == 0, (i, m)
            for point in zs:
                at = dict(zip(z, point))
                assert_close(evalf_at(derived, at), evalf_at(reference, at), f"da{i + 1}/dz{m + 1}")


def test_softmax_jacobian_off_diagonal_is_not_diagonal():
    # the engine must not treat softmax as elementwise: off-diagonal entries are nonzero
    net = Network([2, 3], "softmax", "sse")
    assert net.derivation.activation_derivative(1, 1, 2) != 0


# -- (d) simplified == factored == explicit ---------------------------------------

@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("layers,acts,loss,_", CASES, ids=CASE_IDS)
def test_simplified_equals_factored_equals_explicit(layers, acts, loss, _, bias):
    net = Network(layers, acts, loss, bias=bias)
    params = list(net.params())
    grads = [net.gradient(p) for p in params]
    simplified = [g.simplified for g in grads]
    factored = [g.factored for g in grads]
    explicit = [g.explicit for g in grads]
    assert all(e is not None for e in explicit)
    pts = points(net, seed=11, count=POINTS)
    for s_row, f_row, e_row in zip(*(evaluate(forms, pts) for forms in (simplified, factored, explicit))):
        for p, s, f, e in zip(params, s_row, f_row, e_row):
            assert_close(s, f, f"simplified vs factored {p.name}")
            assert_close(e, f, f"explicit vs factored {p.name}")


# -- (e) the cancellations at the output ---------------------------------------------

@pytest.mark.parametrize("act,loss", sorted(CANCELLATIONS))
def test_simplifier_output_delta_is_a_minus_y(act, loss):
    net = Network([2, 3, 3], ["tanh", act], loss)
    m = net.model
    for j in range(1, 4):
        assert net.simplifier.output_delta(j) == m.a(2, j) - m.y(j)


def test_simplifier_output_delta_not_a_minus_y_without_cancellation():
    net = Network([2, 2], "sigmoid", "half_sse")
    m = net.model
    assert sympy.expand(net.simplifier.output_delta(1) - (m.a(1, 1) - m.y(1))) != 0


@pytest.mark.parametrize("act,loss", [("sigmoid", "bce"), ("identity", "half_sse")])
def test_cancellation_elementwise_holds_in_z(act, loss):
    # The factored delta(L), with a = f(z) written out, is exactly f(z) - y.
    net = Network([2, 2], act, loss)
    m, row = net.model, ACTIVATIONS[act]
    for j in (1, 2):
        a_of_z = row.definition.xreplace({X: m.z(1, j)})
        delta = net.derivation.delta_definition(1, j).xreplace({m.a(1, j): a_of_z})
        assert sympy.simplify(delta - (a_of_z - m.y(j))) == 0


@pytest.mark.parametrize("n", [2, 3])
def test_cancellation_softmax_cross_entropy_needs_y_to_sum_to_one(n):
    net = Network([1, n], "softmax", "cross_entropy")
    m = net.model
    zs = [m.z(1, j) for j in range(1, n + 1)]
    total = sympy.Add(*[sympy.exp(v) for v in zs])
    softmax = {m.a(1, j): sympy.exp(zs[j - 1]) / total for j in range(1, n + 1)}
    last_y = {m.y(n): 1 - sympy.Add(*[m.y(j) for j in range(1, n)])}
    for j in range(1, n + 1):
        delta = net.derivation.delta_definition(1, j).xreplace(softmax)
        target = softmax[m.a(1, j)] - m.y(j)
        assert sympy.simplify((delta - target).xreplace(last_y)) == 0
        assert sympy.simplify(delta - target) != 0  # without sum y = 1 it is not a - y


def test_relu_derivative_at_kink_is_zero():
    # The documented convention (PyTorch's): relu'(0) = 0, leaky_relu'(0) = 0.01.
    values = {"x": [1.0], "y": [0.0], "W1": [[1.0]], "b1": [-1.0], "W2": [[2.0]], "b2": [0.5]}
    relu = Network([1, 1, 1], ["relu", "identity"], "half_sse").gradients(values)
    leaky = Network([1, 1, 1], ["leaky_relu", "identity"], "half_sse").gradients(values)
    # z1 = 0, a1 = 0, a2 = 0.5: delta2 = 0.5, delta1 = 2 * 0.5 * f'(0)
    assert relu["W1[1,1]"] == 0.0 and relu["b1[1]"] == 0.0
    assert leaky["b1[1]"] == pytest.approx(0.01, rel=1e-15)
    # the explicit form keeps the convention at the kink, exactly
    for act, expected in (("relu", 0), ("leaky_relu", sympy.Rational(1, 100))):
        net = Network([1, 1, 1], [act, "identity"], "half_sse")
        m = net.model
        exact = {m.x(1): 1, m.y(1): 0, m.W(1, 1, 1): 1, m.b(1, 1): -1, m.W(2, 1, 1): 2,
                 m.b(2, 1): sympy.Rational(1, 2)}
        assert net.gradient("b1[1]").explicit.xreplace(exact) == expected, act


@pytest.mark.parametrize("layers,acts", [([2, 3, 2], "sigmoid"), ([3, 4, 3, 2], ["elu", "leaky_relu", "tanh"]),
                                         ([2, 3, 3, 1], ["silu", "gelu", "softplus"]),
                                         ([2, 2, 2, 2], ["relu", "relu", "softmax"])])
def test_explicit_size_estimate_tracks_written_out_size(layers, acts, monkeypatch):
    # The estimate decides whether the explicit form is built at all: an activation that
    # uses x twice (silu, gelu) or a ReLU step must count its copies, or "small" forms
    # turn out 100x larger (a 3-4-3-4-2 net once took 100 s to print).
    import derive.calculus.explicit

    monkeypatch.setattr(derive.calculus.explicit, "EXPLICIT_MAX_NODES", 10**9)
    net = Network(layers, acts, "sse")
    for p in net.params():
        expr, estimate = net.explicit_form.explicit(p)
        actual = sum(1 for _ in sympy.preorder_traversal(expr))
        assert actual / 2 <= estimate <= actual * 2, (p.name, estimate, actual)
