"""derive grad's printed forms: each delta printed once must still mean each gradient.

Two references.  The SymPy printers themselves, called per parameter on the
engine's symbolic gradient (`Gradient.latex`, `.expression`, `to_text` of
`.simplified`): the composed strings must be exactly theirs, for every
parameter of small networks of every activation and loss.  And the meaning:
the printed text is parsed back with the whitelist parser and compared at
random points with the gradient, which other tests check against sympy.diff
of the flat loss, so a mis-parenthesised composition fails either way.
"""

import random

import sympy

from derive import Network
from derive.spec.expressions import DEFAULT_FUNCTIONS, parse_expression
from derive.calculus.model import NetSymbol
import json

import pytest

from derive.render.compose import Composer
from derive.render.printing import to_text
from derive.render.report import grad_json_chunks, grad_table
from derive.spec.registry import ACTIVATIONS, LOSSES

POINTS = 3
REL_TOL = 1e-12  # float evaluation of two arrangements of the same formula


def _parse(text: str) -> sympy.Expr:
    def indexed(name, indices, position):
        for kind in ("delta", "x", "y", "W", "b", "z", "a"):
            if name.startswith(kind) and (name[len(kind):].isdigit() or kind in "xy"):
                layer = int(name[len(kind):]) if name[len(kind):] else None
                return NetSymbol.make(kind, layer, *indices)
        raise AssertionError(f"unexpected name {name!r}")

    return parse_expression(text, field="text", names={}, functions=DEFAULT_FUNCTIONS,
                            indexed=indexed)


def _equal_at_points(left: sympy.Expr, right: sympy.Expr, rng: random.Random) -> bool:
    symbols = sorted(left.free_symbols | right.free_symbols, key=str)
    for _ in range(POINTS):
        point = {s: sympy.Float(rng.uniform(-1, 1), 30) for s in symbols}
        l, r = complex(left.xreplace(point).evalf(30)), complex(right.xreplace(point).evalf(30))
        if abs(l - r) > REL_TOL * max(1.0, abs(r)):
            return False
    return True


def test_printed_forms_shared_delta_equal_each_gradient():
    net = Network([4, 8, 8, 8, 3], ["tanh", "sigmoid", "tanh", "identity"], "mse")
    assert net.derivation.expansion_stop(1) < net.derivation.L  # the shared-delta path runs
    printed, rng = Composer(net), random.Random(5)
    for name in ["W1[1,1]", "W1[8,4]", "b1[3]", "W2[2,5]", "b3[7]", "W4[3,8]", "b4[1]"]:
        p = net.param(name)
        latex, expression, text = printed.forms(p)
        assert _equal_at_points(_parse(text), net.gradient(p).simplified, rng), name
        assert "\n" not in latex and latex.count(r"\left(") == latex.count(r"\right)")
        assert (latex, expression, text) == _printed_per_parameter(net, p), name


def test_printed_forms_negative_output_delta_is_parenthesised():
    """identity + half_sse: delta = a - y, so the weight's text must be a*(a - y)."""
    net = Network([2, 3], "identity", "half_sse")
    latex, expression, text = Composer(net).forms(net.param("W1[2,1]"))
    assert _equal_at_points(_parse(text), net.gradient("W1[2,1]").simplified, random.Random(1))


def _printed_per_parameter(net, p):
    g = net.gradient(p)
    return g.latex, g.expression, to_text(g.simplified)


#: Small networks whose every composed string is compared with the printer's: every
#: activation (hidden and output) and loss, indices past 9 (x_{11}, W_{10,1}), layers past 9.
COMPOSED_NETS = (
    [([2, 3, 2], [act, "sigmoid"], "half_sse") for act in ACTIVATIONS if act != "softmax"]
    + [([2, 2, 3], ["tanh", act], loss) for act in ("identity", "sigmoid", "softplus")
       for loss in LOSSES if loss != "cross_entropy"]
    + [([3, 2, 3], ["relu", "softmax"], "cross_entropy"), ([2, 3], "softmax", "mse"),
       ([11, 10, 2], "sigmoid", "bce"), ([2] * 12, "tanh", "half_sse"),
       ([3, 4, 4, 4, 2], ["elu", "gelu", "silu", "leaky_relu"], "sse")]
)


@pytest.mark.parametrize("layers, activation, loss", COMPOSED_NETS)
def test_composed_forms_equal_the_printers_for_every_parameter(layers, activation, loss):
    net = Network(layers, activation, loss)
    composer = Composer(net)
    for p in net.params():
        assert composer.forms(p) == _printed_per_parameter(net, p), p.name


def test_composed_forms_without_bias_and_on_a_deep_layer():
    net = Network([3, 4, 4, 4, 4, 2], "tanh", "mse", bias=False)
    assert net.derivation.expansion_stop(1) < net.derivation.L  # deltas of layer 3+ stay symbols
    composer = Composer(net)
    for p in net.params():
        assert composer.forms(p) == _printed_per_parameter(net, p), p.name


def test_composer_prints_per_parameter_when_a_template_fails(monkeypatch):
    """A slot text found twice (here: forced) means no template; the printer is used."""
    net = Network([2, 2, 1], "sigmoid", "half_sse")
    composer = Composer(net)
    monkeypatch.setattr(composer, "_symbols", lambda layer, k, kind: "")  # found everywhere
    p = net.param("W1[2,2]")
    assert composer._template(1, 2, "latex") is None
    assert composer.form(p, "latex") == net.gradient(p).latex


def test_composer_prints_per_parameter_when_a_layer_check_fails(monkeypatch):
    """A slot that fills wrongly at the last k (here: forced) turns the layer's templates off."""
    net = Network([3, 2, 1], "tanh", "half_sse")
    composer = Composer(net)
    printed = composer._symbols
    monkeypatch.setattr(composer, "_symbols", lambda layer, k, kind: printed(layer, k, kind) if k == 1 else "?")
    assert composer._template(1, 1, "text") is None and composer._template(1, 2, "text") is None
    for name in ("W1[1,3]", "W1[2,2]"):
        assert composer.form(net.param(name), "text") == to_text(net.gradient(name).simplified)


def test_grad_json_values_only_has_the_loss_and_numbers_alone():
    """One identity neuron by hand: a = W x + b = 6.5, L = 15.125, dL/dW = (a - y) x = 11."""
    net = Network([1, 1], "identity", "half_sse")
    point = {"x": [2.0], "y": [1.0], "W1": [[3.0]], "b1": [0.5]}
    data = json.loads("".join(grad_json_chunks(net, point, values_only=True)))
    assert data == {"loss": 15.125, "gradients": {"W1[1,1]": {"value": 11.0}, "b1[1]": {"value": 5.5}}}
    lines = list(grad_table(net, point, values_only=True))
    assert lines[-3].split() == ["parameter", "dL/dparam"]  # no formula column
    assert [line.split() for line in lines[-2:]] == [["W1[1,1]", "11"], ["b1[1]", "5.5"]]


def test_grad_values_only_without_values_is_an_error():
    from derive.errors import SpecError

    with pytest.raises(SpecError, match="--values-only: no values"):
        list(grad_json_chunks(Network([1, 1], "identity", "half_sse"), values_only=True))
