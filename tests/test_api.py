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
