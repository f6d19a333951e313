"""The one sampler and the one comparison of the checks (check/points.py, check/compare.py).

Properties are checked against numbers computed here: a forward pass written with
NumPy for the kink margin, decimal strings for "two significant digits", exact
integer percentages for targets that sum to 1, hand-picked arrays for the tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from derive import Network
from derive.check.compare import CheckReport, LayerResult, Reference, Tolerance, layer_arrays
from derive.check.points import KINK_MARGIN, MAX_DRAWS, Sampler, as_table


def _numbers(values):
    yield from values.x
    yield from values.y
    for l in values.W:
        yield from (w for row in values.W[l] for w in row)
        yield from values.b.get(l, ())


def _relu_pre_activations(values):
    """z(l) of an all-relu network, by NumPy here (not the evaluator)."""
    a, zs = np.array(values.x), []
    for l in sorted(values.W):
        z = np.array(values.W[l]) @ a + np.array(values.b[l])
        zs.append(z)
        a = np.maximum(z, 0)
    return zs


def test_sampler_numbers_are_short_decimals_never_zero():
    net = Network([5, 30, 4], ["tanh", "identity"], "mse")
    for values in Sampler(net.evaluator, seed=1).values(5):
        for v in _numbers(values):
            assert v != 0
            assert float(f"{v:.2g}") == v and len(repr(abs(v))) <= 6, v  # e.g. 0.035, 1.2


def test_sampler_weights_shrink_with_fan_in():
    net = Network([100, 4, 1], ["tanh", "identity"], "mse")
    W1 = np.array(Sampler(net.evaluator).fresh().W[1])
    assert W1.shape == (4, 100)
    assert np.abs(W1).max() <= 1.7 / math.sqrt(100) * 1.05 and np.abs(W1).min() >= 0.1 / 10 * 0.95


def test_sampler_same_seed_same_points_for_both_checks():
    net = Network([2, 3, 1], ["relu", "sigmoid"], "bce")
    first = Sampler(net.evaluator, seed=7).values(3)
    again = Sampler(Network([2, 3, 1], ["relu", "sigmoid"], "bce").evaluator, seed=7).values(3)
    other = Sampler(net.evaluator, seed=8).values(3)
    assert first == again and first != other


def test_sampler_avoids_relu_kinks():
    net = Network([3, 6, 6, 2], "relu", "half_sse")
    for values in Sampler(net.evaluator, seed=2).values(20):
        for z in _relu_pre_activations(values):
            assert np.abs(z).min() >= KINK_MARGIN


def test_sampler_takes_a_point_near_a_kink_after_max_draws(monkeypatch):
    net = Network([2, 2, 1], ["relu", "identity"], "half_sse")
    sampler = Sampler(net.evaluator)
    calls = []
    monkeypatch.setattr(Sampler, "near_kink", lambda self, v: calls.append(v) or True)
    assert sampler.fresh() is calls[-1] and len(calls) == MAX_DRAWS


def test_sampler_first_point_is_the_users():
    net = Network([1, 1], "relu", "half_sse")
    user = net.values({"x": [1.0], "y": [0.5], "W1": [[0.0]], "b1": [0.0]})  # z = 0: at the kink
    points = Sampler(net.evaluator).values(2, first=user)
    assert points[0] is user and len(points) == 3
    stream = Sampler(net.evaluator).stream(first=user)
    assert next(stream)[0] is not user  # the claim check skips a kinked first point


@pytest.mark.parametrize("layers,acts,loss", [([2, 4], "softmax", "cross_entropy"),
                                              ([2, 3], "sigmoid", "bce")])
def test_sampler_targets_fit_the_loss(layers, acts, loss):
    net = Network(layers, acts, loss)
    for values in Sampler(net.evaluator, seed=3).values(10):
        assert all(0 <= y <= 1 for y in values.y)
        if acts == "softmax":
            assert sum(round(y * 100) for y in values.y) == 100
            assert all(float(f"{y:.2f}") == y for y in values.y)  # whole percentages
        else:
            assert all(0.05 <= y <= 0.95 for y in values.y)


def test_as_table_round_trips_through_values():
    net = Network([2, 2, 1], ["tanh", "identity"], "mse")
    point = Sampler(net.evaluator).fresh()
    assert net.values(as_table(point)) == point


# -- the comparison and its table ---------------------------------------------------------

def test_tolerance_close_and_never_for_nan_or_inf():
    tol = Tolerance(rtol=1e-7, atol=1e-9)
    got = tol.close(np.array([1.0 + 5e-8, 1.0 + 2e-7, 5e-10, np.nan, np.inf]),
                    np.array([1.0, 1.0, 0.0, 1.0, np.inf]))
    assert got.tolist() == [True, False, True, False, False]
    assert str(tol) == "|err| <= 1e-09 + 1e-07*|ref|"


def test_layer_result_keeps_the_worst_mismatch_over_points():
    row, tol = LayerResult(2, 6), Tolerance(1e-7, 1e-9)
    ref = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    row.add("W", ref + np.array([[0, 1e-3, 0], [0, 0, 0]]), ref, tol)
    row.add("W", ref + np.array([[0, 0, 0], [0.5, 0, 0]]), ref, tol)
    row.add("W", ref + np.array([[0, 0, 1e-4], [0, 0, 0]]), ref, tol)
    assert row.failures == 3 and row.max_abs == 0.5 and row.max_rel == pytest.approx(0.125)
    assert row.worst == "W2[2,1]: derived 4.5, reference 4.0"


def test_report_table_words_come_from_the_reference():
    ref = Reference("my reference", Tolerance(1e-8, 1e-10), agree="fine", disagree="NOT FINE")
    report = CheckReport.empty((2, 3, 1), True, 1, ref)
    assert [(r.layer, r.parameters) for r in report.layers] == [(1, 9), (2, 4)]
    good = ({1: np.ones((3, 2)), 2: np.ones((1, 3))}, {1: np.ones(3), 2: np.ones(1)})
    report.compare_gradients(good, good)
    lines = report.table().splitlines()
    assert lines[-2] == "1 point(s); reference: my reference; tolerance |err| <= 1e-10 + 1e-08*|ref|"
    assert lines[-1] == "fine" and report.passed
    report.compare_loss(1, 1.0, 1.1)
    assert not report.passed
    assert report.table().splitlines()[-2:] == [
        "loss MISMATCH: point 1: derived 1.0, reference 1.1", "NOT FINE"]


def test_layer_arrays_places_each_name():
    net = Network([2, 3, 1], ["tanh", "identity"], "mse")
    by_name = {p.name: float(i) for i, p in enumerate(net.params())}
    gW, gb = layer_arrays(net.params(), by_name, net.spec.layers, True)
    assert gW[1][2, 1] == by_name["W1[3,2]"] and gb[2][0] == by_name["b2[1]"]
    assert not any(np.isnan(a).any() for a in [*gW.values(), *gb.values()])
