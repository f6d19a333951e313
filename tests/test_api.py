"""The Python API: Network and Gradient, their Jupyter display and the renderer hooks."""

from __future__ import annotations

import numpy as np
import pytest

import derive
from derive.export import codegen
from derive.errors import RenderError, SpecError

#: central differences of the loss (h = 1e-6, float64) agree with exact gradients to ~1e-10
CD_STEP = 1e-6
CD_TOL = 1e-8


def central_difference(net, point, key, j, k=None):
    """dL/dp by (L(p + h) - L(p - h)) / 2h on the engine's forward pass and loss only."""
    def loss_at(delta):
        moved = {name: (np.array(v, dtype=float) if name not in ("x", "y") else v)
                 for name, v in point.items()}
        idx = (j - 1, k - 1) if k is not None else (j - 1,)
        moved[key][idx] += delta
        return net.loss({name: (v.tolist() if isinstance(v, np.ndarray) else v)
                         for name, v in moved.items()})

    return (loss_at(CD_STEP) - loss_at(-CD_STEP)) / (2 * CD_STEP)


def tiny():
    net = derive.Network([2, 3, 2], ["tanh", "sigmoid"], "bce")
    rng = np.random.default_rng(3)
    point = {"x": [0.3, -0.7], "y": [0.2, 0.9],
             "W1": rng.normal(size=(3, 2)).tolist(), "b1": rng.normal(size=3).tolist(),
             "W2": rng.normal(size=(2, 3)).tolist(), "b2": rng.normal(size=2).tolist()}
    return net, point


def test_api_gradients_match_central_differences():
    net, point = tiny()
    grads = net.gradients(point)
    assert list(grads) == [p.name for p in net.params()]
    for p in net.params():
        ref = central_difference(net, point, f"{p.kind}{p.layer}", p.j, p.k)
        assert grads[p.name] == pytest.approx(ref, rel=CD_TOL, abs=CD_TOL)


def test_api_gradient_paths_sum_to_the_gradient():
    """Summing the numeric products of the paths gives the central difference."""
    from derive.check.evaluate import evaluate_expr
    from derive.calculus.paths import path_product

    net, point = tiny()
    values = net.values(point)
    trace, _, _ = net.evaluator.run(values)
    for name, count in [("W1[2,1]", 2), ("b1[3]", 2), ("W2[1,3]", 1)]:
        g = net.gradient(name)
        paths = list(g.paths)
        assert g.path_count == count == len(paths)
        total = sum(evaluate_expr(path_product(q), net.model, trace, values) for q in paths)
        p = g.param
        assert total == pytest.approx(central_difference(net, point, f"{p.kind}{p.layer}", p.j, p.k),
                                      rel=CD_TOL, abs=CD_TOL)
        assert [f.role for f in paths[0]][:2] == ["loss", "activation"]


def test_api_gradient_display():
    g = derive.Network([1, 1], "identity", "half_sse").gradient("W1[1,1]")
    expected = r"$$ \frac{\partial L}{\partial W^{(1)}_{11}} = x_{1} \left(a^{(1)}_{1} - y_{1}\right) $$"
    assert g._repr_latex_() == expected
    assert g._repr_markdown_() == expected
    assert repr(g) == "Gradient(W1[1,1] = x_1*(a1_1 - y_1))"


def test_api_network_markdown():
    net = derive.Network([2, 3, 1], ["tanh", "sigmoid"], "bce")
    assert net._repr_markdown_() == "\n".join([
        "**2-3-1 network (tanh, sigmoid; loss bce)**, 13 parameters",
        "",
        "| layer | neurons | activation |",
        "|---|---|---|",
        "| 0 (input x) | 2 | |",
        r"| 1 | 3 | $\tanh$ |",
        r"| 2 | 1 | $\sigma$ |",
        "",
        r"loss: $-\sum_j \left[y_j \ln a_j + (1-y_j)\ln(1-a_j)\right]$",
    ])
    no_bias = derive.Network([1, 1], "identity", "sse", bias=False, title="One weight")
    assert no_bias._repr_markdown_().splitlines()[0] == "**One weight**, 1 parameters (no biases)"


def test_api_code_is_codegen():
    net = derive.Network([2, 2, 1], "sigmoid", "bce")
    assert net.code() == codegen.generate(net, "numpy")
    assert net.code("torch") == codegen.generate(net, "torch")
    with pytest.raises(RenderError, match="code target 'cuda'; expected one of numpy, torch"):
        net.code("cuda")


def test_api_code_runs_and_agrees_with_the_engine():
    net, point = tiny()
    module = {}
    exec(net.code(), module)
    params = {k: np.array(v) for k, v in point.items() if k not in ("x", "y")}
    got = module["gradients"](params, point["x"], point["y"])
    want = net.gradients(point)
    for p in net.params():
        idx = (p.j - 1, p.k - 1) if p.kind == "W" else (p.j - 1,)
        assert got[f"{p.kind}{p.layer}"][idx] == pytest.approx(want[p.name], rel=1e-12, abs=1e-14)
    assert module["loss"](params, point["x"], point["y"]) == pytest.approx(net.loss(point), rel=1e-12)


def test_api_explain_delegates_to_document():
    from derive.render import document
    net = derive.Network([2, 2, 1], "sigmoid", "half_sse")
    assert net.explain() == document.render_markdown(net)
    assert net.explain("tex", snippet=True) == document.render_latex(net, snippet=True)
    with pytest.raises(SpecError, match="format 'pdf'; expected md or tex"):
        net.explain("pdf")


def test_api_which_delegates_to_answer():
    from derive.qa import answer
    net, point = tiny()
    assert net.which("W1[1,1]", point).to_json() == answer.which(net, "W1[1,1]", point).to_json()
    assert net.which().markdown() == answer.which(net).markdown()


def test_api_claim_delegates_to_claim():
    from derive.qa import claim
    net = derive.Network([1, 1], "identity", "half_sse")
    # by hand: dL/dW = (a - y) x; dropping the x is the classic mistake
    assert net.claim("W1[1,1]", "(a1[1] - y[1])*x[1]").correct
    verdict = net.claim("W1[1,1]", "a1[1] - y[1]")
    assert not verdict.correct
    assert verdict.to_json() == claim.check_claim(net, "W1[1,1]", "a1[1] - y[1]").to_json()


def test_api_load_and_bad_values():
    net = derive.load("examples/tiny.toml", "examples/tiny-values.toml")
    assert set(net.gradients()) == {p.name for p in net.params()}
    with pytest.raises(SpecError, match="values must be a table"):
        net.gradients([1, 2])


def test_api_readme_example_prints_what_it_says():
    """The README's Python example, run, prints the output shown under it."""
    import contextlib
    import io
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("<!-- section: python (owner: api/codegen) -->"):]
    code, shown = re.search(r"```python\n(.*?)```\n\nprints\n\n```\n(.*?)```", section, re.S).groups()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {})
    assert out.getvalue() == shown


# -- notebook ergonomics: arrays as points, sequences, names ----------------------

def torch_reference(point):
    """dL/dW and dL/db of the tanh-sigmoid bce net of `tiny`, by torch autograd written here."""
    torch = pytest.importorskip("torch")
    leaves = {k: torch.tensor(point[k], dtype=torch.float64, requires_grad=True)
              for k in ("W1", "b1", "W2", "b2")}
    x, y = torch.tensor(point["x"], dtype=torch.float64), torch.tensor(point["y"], dtype=torch.float64)
    a2 = torch.sigmoid(leaves["W2"] @ torch.tanh(leaves["W1"] @ x + leaves["b1"]) + leaves["b2"])
    (-(y * torch.log(a2) + (1 - y) * torch.log(1 - a2)).sum()).backward()
    return {k: v.grad.numpy() for k, v in leaves.items()}


def test_api_points_as_numpy_arrays_and_torch_tensors():
    torch = pytest.importorskip("torch")
    net, point = tiny()
    want = torch_reference(point)
    as_numpy = {k: np.array(v) for k, v in point.items()}
    as_torch = {k: torch.tensor(v, dtype=torch.float64, requires_grad=k == "W1") for k, v in point.items()}
    as_float32 = {k: torch.tensor(v) for k, v in point.items()}
    for given in (as_numpy, as_torch):
        got = net.gradients(given, shaped=True)
        assert list(got) == ["W1", "b1", "W2", "b2"]
        for k in want:
            assert got[k].shape == want[k].shape
            np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-14)
    # float32 tensors are read as the float32 numbers they hold
    got = net.gradients(as_float32, shaped=True)
    np.testing.assert_allclose(got["W1"], want["W1"], rtol=1e-5, atol=1e-7)
    assert net.loss(as_numpy) == pytest.approx(net.loss(point), rel=1e-15)


def test_api_shaped_gradients_without_biases():
    net = derive.Network([2, 2, 1], "identity", "half_sse", bias=False)
    point = {"x": [1.0, 2.0], "y": [0.5], "W1": [[1.0, 0.0], [0.0, 1.0]], "W2": [[3.0, 4.0]]}
    # by hand: a2 = 3*1 + 4*2 = 11, dL/da2 = 10.5, dL/dW2 = 10.5 * a1 = [10.5, 21], dL/dW1 = 10.5 W2^T x^T
    got = net.gradients(point, shaped=True)
    assert list(got) == ["W1", "W2"]
    np.testing.assert_allclose(got["W2"], [[10.5, 21.0]])
    np.testing.assert_allclose(got["W1"], 10.5 * np.outer([3.0, 4.0], [1.0, 2.0]))


def test_api_bad_array_point_names_the_entry():
    net, point = tiny()
    point = {**point, "W1": np.zeros((2, 3))}
    with pytest.raises(SpecError, match=r"^W1 must be 3x2, got 2x3 \(transposed\?"):
        net.gradients(point)


def test_api_sequences_can_be_iterated_twice():
    net = derive.Network([2, 3, 3, 2], "tanh", "half_sse")
    params = net.params()
    assert list(params) == list(params) and len(params) == net.spec.parameter_count
    g = net.gradient("W1[2,1]")
    first, again = list(g.paths), list(g.paths)
    assert first == again and len(g.paths) == len(first) == g.path_count == 6
    assert g.paths[5] == first[5]  # 3 x 2 routes through the later layers
    with pytest.raises(IndexError, match=r"only 6 paths"):
        g.paths[6]


def test_api_names_the_api_prints_are_accepted():
    net, point = tiny()
    assert net.gradient("W1_2_1").param == net.gradient("W1[2,1]").param
    assert net.gradient("b2_1").name == "b2[1]"
    with pytest.raises(SpecError, match=r"row j=4 is not in 1..3"):
        net.gradient("W1_4_1")


def test_api_symbol_accessor_substitutes_where_a_plain_symbol_does_not():
    import sympy

    net = derive.Network([1, 1], "identity", "half_sse")
    g = net.gradient("W1[1,1]")  # x (a - y), by hand
    plain = g.simplified.subs(sympy.Symbol("x_1"), 2)
    assert plain == g.simplified  # the trap: real=True symbols do not match
    at = {net.symbol("x[1]"): 2, net.symbol("a1_1"): 5, net.symbol("y[1]"): 1}
    assert g.simplified.subs(at) == 8
    assert net.symbol("W1[1,1]") in g.explicit.free_symbols
    assert net.symbol("a0[1]") == net.symbol("x_1")
    assert str(net.symbol("delta1[1]")) == "delta1_1"


@pytest.mark.parametrize("name, message", [
    ("x[2]", r"index 2 is not in 1..1 \(1 inputs\)"),
    ("W2[1,1]", r"W needs a layer in 1..1"),
    ("x1[1]", r"x has no layer number"),
    ("b1[1,1]", r"W takes two indices \[j,k\], b takes one"),
    ("sympy.Symbol('x')", r"is not a name like 'x\[1\]'"),
])
def test_api_symbol_bad_names(name, message):
    with pytest.raises(SpecError, match=message):
        derive.Network([1, 1]).symbol(name)


def test_api_renderings_read_as_properties_and_calls():
    g = derive.Network([1, 1], "identity", "half_sse").gradient("b1[1]")
    assert g.latex == g.latex() == r"a^{(1)}_{1} - y_{1}" and isinstance(g.latex(), str)


def test_api_which_and_claim_display_in_jupyter():
    net, point = tiny()
    answer = net.which("W2[1,1]", point)
    assert answer._repr_markdown_() == answer.markdown() == str(answer)
    value = net.gradients(point)["W2[1,1]"]
    assert repr(answer) == (f"Answer(W2[1,1]: both derivatives, chained over 1 path(s), value {value:.9g}; "
                            f".markdown() or .latex() reads it)")
    right = net.claim("W2[1,1]", "(a2[1] - y[1])*a1[1]")  # sigmoid + bce: delta = a - y
    assert right.correct and right._repr_markdown_().startswith("**correct**: `dL/dW2[1,1] = ")
    wrong = net.claim("W2[1,1]", "(a2[1] - y[1])*a1[2]")
    shown = wrong._repr_markdown_()
    assert not wrong.correct and shown.startswith("**incorrect**: ") and "counterexample: " in shown
    assert str(wrong) == wrong.text()


def test_api_batch_shaped_x_says_one_example_is_a_flat_vector():
    net = derive.Network([2, 2, 1])
    point = {"x": np.zeros((1, 2)), "y": [0.5], "W1": np.ones((2, 2)), "b1": [0, 0],
             "W2": [[1, 1]], "b2": [0]}
    with pytest.raises(SpecError, match=r"^x must be a flat list of 2 numbers \(one example\), got 1x2; a minibatch of m "
                       r"examples needs batch = m in the spec$"):
        net.gradients(point)
