"""derive grad's printed forms: each delta printed once must still mean each gradient.

The reference is the engine's own symbolic gradient (`Gradient.simplified`,
`Gradient.factored`), which other tests check against sympy.diff of the flat
loss; here the printed text is parsed back with the whitelist parser and the
two are compared at random points, so a mis-parenthesised composition fails.
"""

import random

import sympy

from derive import Network
from derive.spec.expressions import DEFAULT_FUNCTIONS, parse_expression
from derive.calculus.model import NetSymbol
from derive.render.printing import to_latex
from derive.render.report import Printed

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
    printed, rng = Printed(net), random.Random(5)
    for name in ["W1[1,1]", "W1[8,4]", "b1[3]", "W2[2,5]", "b3[7]", "W4[3,8]", "b4[1]"]:
        p = net.param(name)
        latex, expression, text = printed.forms(p)
        assert _equal_at_points(_parse(text), net.gradient(p).simplified, rng), name
        assert "\n" not in latex and latex.count(r"\left(") == latex.count(r"\right)")
        if p.kind == "W" and net.derivation.expansion_stop(p.layer) < net.derivation.L:
            assert latex.startswith(to_latex(net.model.a(p.layer - 1, p.k)) + " ")


def test_printed_forms_negative_output_delta_is_parenthesised():
    """identity + half_sse: delta = a - y, so the weight's text must be a*(a - y)."""
    net = Network([2, 3], "identity", "half_sse")
    latex, expression, text = Printed(net).forms(net.param("W1[2,1]"))
    assert _equal_at_points(_parse(text), net.gradient("W1[2,1]").simplified, random.Random(1))
