"""`derive which`: the JSON path structure, softmax's off-diagonal terms, the paths'
sum against an independent gradient, the Markdown and LaTeX answers.

The independent reference is written here: the network's loss as one SymPy
expression in plain symbols (from the registry's definitions of f and the loss,
nothing derived), differentiated by `sympy.diff` and evaluated at 30 digits.
"""

import contextlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import derive
from derive.qa.answer import JSON_MAX_PATHS, LISTED_PATHS, which
from derive.cli import main
from derive.errors import SpecError
from derive.calculus.paths import paths
from derive.spec.registry import ACTIVATIONS, LOSSES, X

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mathjax_util import markdown_math, mathjax_errors  # noqa: E402

DIGITS = 30
#: Path sums vs sympy.diff at 30 digits; the engine's float64 gradient vs the same.
EXACT_RTOL, FLOAT_RTOL = 1e-20, 1e-9
ELEMENTWISE = [n for n, row in ACTIVATIONS.items() if not row.vector]


def cli(*args) -> tuple[str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return out.getvalue(), err.getvalue(), code


def spec_file(tmp_path, layers, activation="sigmoid", loss="half_sse") -> str:
    path = tmp_path / "net.toml"
    acts = json.dumps(activation)
    path.write_text(f"layers = {list(layers)}\nactivation = {acts}\nloss = {json.dumps(loss)}\n")
    return str(path)


def roles(path):
    return [f["role"] for f in path], [f["layer"] for f in path]


# -- the JSON of the issue -------------------------------------------------------------
def test_which_json_222_first_layer_weight_has_two_paths(tmp_path):
    out, _, code = cli("which", spec_file(tmp_path, [2, 2, 2]), "W1[1,1]", "--json")
    assert code == 0
    answer = json.loads(out)
    assert list(answer) == ["parameter", "paths", "edges", "latex", "value", "path_values"]
    assert answer["parameter"] == "W1[1,1]" and answer["value"] is None and answer["path_values"] is None
    assert answer["edges"] == [[["x[1]", "a1[1]"], ["a1[1]", "a2[1]"], ["a2[1]", "L"]],
                               [["x[1]", "a1[1]"], ["a1[1]", "a2[2]"], ["a2[2]", "L"]]]
    assert len(answer["paths"]) == 2
    for path in answer["paths"]:
        assert roles(path) == (["loss", "activation", "weight", "activation", "input"], [2, 2, 2, 1, 1])
        assert all(list(f) == ["role", "layer", "latex"] for f in path)
    assert [[f["latex"] for f in p] for p in answer["paths"]] == [
        ["a^{(2)}_{1} - y_{1}", r"a^{(2)}_{1} \left(1 - a^{(2)}_{1}\right)", "W^{(2)}_{11}",
         r"a^{(1)}_{1} \left(1 - a^{(1)}_{1}\right)", "x_{1}"],
        ["a^{(2)}_{2} - y_{2}", r"a^{(2)}_{2} \left(1 - a^{(2)}_{2}\right)", "W^{(2)}_{21}",
         r"a^{(1)}_{1} \left(1 - a^{(1)}_{1}\right)", "x_{1}"]]


def test_which_json_222_output_weight_has_one_path(tmp_path):
    out, _, _ = cli("which", spec_file(tmp_path, [2, 2, 2]), "W2[1,1]", "--json")
    answer = json.loads(out)
    assert [roles(p) for p in answer["paths"]] == [(["loss", "activation", "input"], [2, 2, 2])]
    assert answer["latex"] == (r"a^{(1)}_{1} a^{(2)}_{1} \left(1 - a^{(2)}_{1}\right) "
                               r"\left(a^{(2)}_{1} - y_{1}\right)")


def test_which_json_bias_has_no_input_factor():
    answer = which(derive.Network([2, 2, 2]), "b1[2]").to_json()
    assert [roles(p) for p in answer["paths"]] == [(["loss", "activation", "weight", "activation"],
                                                    [2, 2, 2, 1])] * 2


def test_which_json_softmax_output_has_off_diagonal_terms():
    net = derive.Network([2, 2, 3], ["sigmoid", "softmax"], "cross_entropy")
    answer = which(net, "W1[1,1]").to_json()
    assert len(answer["paths"]) == 9  # 3 neurons of layer 2 x 3 outputs
    jacobian = [p[1]["latex"] for p in answer["paths"]]
    assert r"- a^{(2)}_{1} a^{(2)}_{2}" in jacobian
    assert jacobian.count(r"a^{(2)}_{1} \left(1 - a^{(2)}_{1}\right)") == 1
    off_diagonal = [p for p in paths(net.derivation, net.param("W1[1,1]"))
                    if p[1].numerator.idx != p[1].denominator.idx]
    assert len(off_diagonal) == 6
    out = which(net, "W2[1,1]").to_json()
    assert [p[0]["latex"] for p in out["paths"]] == [
        r"- \frac{y_{1}}{a^{(2)}_{1}}", r"- \frac{y_{2}}{a^{(2)}_{2}}", r"- \frac{y_{3}}{a^{(2)}_{3}}"]
    assert [p[1]["latex"] for p in out["paths"]] == [
        r"a^{(2)}_{1} \left(1 - a^{(2)}_{1}\right)", r"- a^{(2)}_{1} a^{(2)}_{2}", r"- a^{(2)}_{1} a^{(2)}_{3}"]


def test_which_json_value_with_values():
    net = derive.Network([2, 2, 2], values={"x": [0.5, -0.2], "y": [1.0, 0.0],
                                            "W1": [[0.1, 0.4], [-0.3, 0.2]], "b1": [0.0, 0.1],
                                            "W2": [[0.7, -0.4], [0.3, 0.2]], "b2": [0.05, -0.05]})
    answer = which(net, "W1[1,2]").to_json()
    assert answer["value"] == pytest.approx(net.gradients()["W1[1,2]"], rel=1e-15)


def test_which_json_general_answer_one_entry_per_layer():
    answer = which(derive.Network([3, 4, 2, 1], "tanh", "mse")).to_json()
    assert answer["parameter"] is None
    assert [e["parameter"] for e in answer["layers"]] == ["W3[1,1]", "W2[1,1]", "W1[1,1]"]
    assert [e["path_count"] for e in answer["layers"]] == [1, 1, 2]
    assert answer["layers"][2]["roles"] == [["loss", 3], ["activation", 3], ["weight", 3],
                                            ["activation", 2], ["weight", 2], ["activation", 1],
                                            ["input", 1]]


def test_which_json_refuses_more_paths_than_the_limit():
    net = derive.Network([2] + [16] * 4 + [2], "tanh")
    with pytest.raises(SpecError, match=r"W1\[1,1\] has 8192 paths .*JSON_MAX_PATHS"):
        which(net, "W1[1,1]").to_json()
    assert 8192 > JSON_MAX_PATHS


# -- the paths' sum is the gradient ------------------------------------------------------
def _flat_loss(layers, acts, loss):
    """The loss in plain symbols x_k, y_j, W{l}_{j}_{k}, b{l}_{j}: no derive code but the rows."""
    xs = sympy.symbols(f"x_1:{layers[0] + 1}", real=True)
    a, params = list(xs), {}
    for l in range(1, len(layers)):
        zs = []
        for j in range(1, layers[l] + 1):
            b = params[f"b{l}_{j}"] = sympy.Symbol(f"b{l}_{j}", real=True)
            Ws = [sympy.Symbol(f"W{l}_{j}_{k}", real=True) for k in range(1, layers[l - 1] + 1)]
            params.update({w.name: w for w in Ws})
            zs.append(sum(w * v for w, v in zip(Ws, a)) + b)
        row = ACTIVATIONS[acts[l - 1]]
        if row.vector:
            total = sum(sympy.exp(z) for z in zs)
            a = [sympy.exp(z) / total for z in zs]
        else:
            a = [row.definition.subs(X, z) for z in zs]
    ys = sympy.symbols(f"y_1:{layers[-1] + 1}", real=True)
    return sum(LOSSES[loss].per_output(v, y, layers[-1]) for v, y in zip(a, ys)), xs, ys, params


def _forward_values(layers, acts, vals):
    """z and a of every layer at 30 digits, by name (z2_1, a2_1), from the definitions."""
    out, a = {}, [sympy.Float(v, DIGITS) for v in vals["x"]]
    for l in range(1, len(layers)):
        zs = [sum(sympy.Float(w, DIGITS) * v for w, v in zip(vals[f"W{l}"][j], a))
              + sympy.Float(vals[f"b{l}"][j], DIGITS) for j in range(layers[l])]
        row = ACTIVATIONS[acts[l - 1]]
        if row.vector:
            e = [sympy.exp(z).evalf(DIGITS) for z in zs]
            a = [v / sum(e) for v in e]
        else:
            a = [row.definition.subs(X, z).evalf(DIGITS) for z in zs]
        out.update({f"z{l}_{j + 1}": zs[j] for j in range(layers[l])})
        out.update({f"a{l}_{j + 1}": a[j] for j in range(layers[l])})
    return out


@st.composite
def networks(draw):
    depth = draw(st.integers(1, 3))
    layers = [draw(st.integers(1, 3)) for _ in range(depth + 1)]
    acts = [draw(st.sampled_from(ELEMENTWISE)) for _ in range(depth)]
    kind = draw(st.sampled_from(["plain", "probability", "softmax"]))
    if kind == "softmax" and layers[-1] > 1:
        acts[-1], loss = "softmax", draw(st.sampled_from(["cross_entropy", "mse"]))
    elif kind == "probability":
        acts[-1], loss = "sigmoid", draw(st.sampled_from(["bce", "cross_entropy"]))
    else:
        loss = draw(st.sampled_from(["half_sse", "mse", "sse"]))
    l = draw(st.integers(1, depth))
    j, k = draw(st.integers(1, layers[l])), draw(st.integers(1, layers[l - 1]))
    param = f"W{l}[{j},{k}]" if draw(st.booleans()) else f"b{l}[{j}]"
    return layers, acts, loss, param, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_which_paths_sum_to_the_gradient_of_random_networks(case):
    layers, acts, loss, param, seed = case
    rng = random.Random(seed)
    u = lambda: round(rng.uniform(-1.5, 1.5), 3)  # noqa: E731
    vals = {"x": [u() for _ in range(layers[0])],
            "y": [round(rng.uniform(0.05, 0.95), 3) for _ in range(layers[-1])]}
    if acts[-1] == "softmax" and loss == "cross_entropy":
        vals["y"] = [1.0 / layers[-1]] * layers[-1]
    for l in range(1, len(layers)):
        vals[f"W{l}"] = [[u() for _ in range(layers[l - 1])] for _ in range(layers[l])]
        vals[f"b{l}"] = [u() for _ in range(layers[l])]
    net = derive.Network(layers, acts, loss, values=vals)
    p = net.param(param)

    flat, xs, ys, params = _flat_loss(layers, acts, loss)
    at = {s: sympy.Float(v, DIGITS) for s, v in zip(xs, vals["x"])}
    at.update({s: sympy.Float(v, DIGITS) for s, v in zip(ys, vals["y"])})
    for name, s in params.items():
        l, *idx = (int(i) for i in re.findall(r"\d+", name))
        raw = vals[name[0] + str(l)]
        at[s] = sympy.Float(raw[idx[0] - 1][idx[1] - 1] if name[0] == "W" else raw[idx[0] - 1], DIGITS)
    wrt = params[f"W{p.layer}_{p.j}_{p.k}" if p.kind == "W" else f"b{p.layer}_{p.j}"]
    reference = sympy.diff(flat, wrt).xreplace(at).evalf(DIGITS)

    by_name = {**{n: v for n, v in _forward_values(layers, acts, vals).items()},
               **{s.name: v for s, v in at.items()}}
    for simplified in (False, True):
        total = sum(sympy.Mul(*[(f.simplified if simplified else f.expr) for f in q])
                    for q in paths(net.derivation, p))
        total = sympy.sympify(total)
        value = total.xreplace({s: by_name[s.name] for s in total.free_symbols}).evalf(DIGITS)
        assert abs(value - reference) <= EXACT_RTOL * max(1, abs(reference)), (simplified, value, reference)
    assert net.gradients()[param] == pytest.approx(float(reference), rel=FLOAT_RTOL, abs=1e-12)


# -- Markdown and LaTeX --------------------------------------------------------------------
MARKDOWN_CASES = [
    ([2, 2, 2], "sigmoid", "half_sse", "W1[1,1]"),
    ([2, 2, 2], "sigmoid", "half_sse", None),
    ([2, 2, 3], ["tanh", "softmax"], "cross_entropy", "W1[2,1]"),
    ([2, 3, 3], ["relu", "softmax"], "mse", "b1[3]"),
    ([3, 4, 2], ["leaky_relu", "identity"], "sse", None),
    ([2, 2, 1], "x*sigmoid(x)", "(a-y)**4", "W1[1,2]"),
    ([2, 3, 3, 3, 3, 3, 3, 3, 1], ["gelu"] * 7 + ["sigmoid"], "bce", None),
    ([4, 16, 16, 16, 2], "tanh", "mse", "W1[1,1]"),
    ([3, 16, 10], ["relu", "softmax"], "cross_entropy", "W1[2,3]"),
]


def test_which_markdown_math_parses_in_mathjax():
    formulas = []
    for layers, act, loss, param in MARKDOWN_CASES:
        formulas += markdown_math(which(derive.Network(layers, act, loss), param).markdown())
    assert len(formulas) > 120
    assert mathjax_errors(formulas) == []


def test_which_markdown_uses_mathjax_safe_macros_only():
    for layers, act, loss, param in MARKDOWN_CASES[:4]:
        md = which(derive.Network(layers, act, loss), param).markdown()
        for macro in (r"\bm{", r"\label", r"\eqref", r"\begin{align}", r"\begin{align*}",
                      r"\DeclareMathOperator"):
            assert macro not in md


def test_which_markdown_opening_paragraph():
    md = which(derive.Network([2, 2, 2]), "W2[1,1]").markdown()
    first = md.split("\n\n")[0]
    assert first.startswith("**Both, chained: one of each at the output layer.** Backpropagation "
                            "uses the derivative of the loss *and* the derivatives of the activation functions")
    assert "the loss derivative $\\frac{\\partial L}{\\partial a^{(2)}_{i}}$ enters once, at the output" in first
    assert "(layer 2: $\\sigma'$)" in first
    assert "no weights lie downstream, since the parameter is in the output layer" in first
    assert "the parameter's own input $a^{(1)}_{1}$ multiplies at the end" in first


def test_which_markdown_colours_each_factor_by_role():
    md = which(derive.Network([2, 2, 2]), "W2[1,1]").markdown()
    assert (r"\frac{\partial L}{\partial W^{(2)}_{11}} &= {\color{#D55E00}{\left(a^{(2)}_{1} - y_{1}\right)}} \cdot "
            r"{\color{#332288}{a^{(2)}_{1} \left(1 - a^{(2)}_{1}\right)}} \cdot "
            r"{\color{#882255}{a^{(1)}_{1}}} \\") in md.splitlines()


def test_which_markdown_with_values_gives_the_number_and_path_sum():
    net = derive.Network([2, 2, 2], values={"x": [0.5, -0.2], "y": [1.0, 0.0],
                                            "W1": [[0.1, 0.4], [-0.3, 0.2]], "b1": [0.0, 0.1],
                                            "W2": [[0.7, -0.4], [0.3, 0.2]], "b2": [0.05, -0.05]})
    md = which(net, "W1[1,1]").markdown()
    value = net.gradients()["W1[1,1]"]
    line = next(l for l in md.splitlines() if l.startswith("With the given values"))
    assert f"= {value:.9g}$" in line
    sum_text = line.split("path by path: $")[1].split("$")[0]
    terms = [float(t.replace(" ", "")) for t in re.findall(r"[-+]? ?[\d.]+", sum_text)]
    assert len(terms) == 2
    assert sum(terms) == pytest.approx(value, rel=1e-8)


def test_which_markdown_large_network_shows_the_sum_form():
    md = which(derive.Network([4, 16, 16, 16, 2], "tanh", "mse"), "W1[1,1]").markdown()
    assert "There are 512 paths, too many to list one by one" in md
    assert r"= \sum_{m_{2}=1}^{16} \sum_{m_{3}=1}^{16} \sum_{m_{4}=1}^{2} " in md
    assert md.count(r"&\quad + ") == 0
    assert 512 > LISTED_PATHS
    softmax = which(derive.Network([3, 16, 10], ["relu", "softmax"], "cross_entropy"), "W1[2,3]").markdown()
    assert r"= \sum_{m_{2}=1}^{10} \sum_{o=1}^{10} {\color" in softmax
    assert r"\frac{\partial a^{(2)}_{o}}{\partial z^{(2)}_{m_{2}}}" in softmax


def test_which_markdown_deep_network_is_short():
    net = derive.Network([4] + [16] * 30 + [2], "tanh", "mse")
    md = which(net).markdown()
    assert "Layers 2 to 28 follow the same pattern" in md
    assert r"(l = 1, \dots, 30)" in md
    assert len(md) < 20_000


def test_which_tex_fragment_compiles(tmp_path):
    if shutil.which("pdflatex") is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex missing: run ./dev.sh setup")
        pytest.skip("pdflatex missing")
    net = derive.Network([2, 2, 3], ["sigmoid", "softmax"], "cross_entropy")
    relu = derive.Network([2, 2, 2], ["leaky_relu", "sigmoid"], "bce")
    fragment = "\n".join([which(net, "W1[1,1]").latex(), which(net).latex(), which(net, "W2[1,2]").latex(),
                          which(net, "W1[1,1]", question="transpose", notation="ij").latex(),
                          which(relu, "b1[1]", loss_symbol="C").latex()])
    assert "p - y" in fragment and r"^{\top}" in fragment and "as PyTorch does" in fragment
    assert r"\definecolor{deriveLoss}{HTML}{D55E00}" in fragment
    assert "$$" not in fragment
    (tmp_path / "answer.tex").write_text(fragment)
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\n\\usepackage{amsmath,amssymb,xcolor}\n"
                                      "\\begin{document}\n\\input{answer.tex}\n\\end{document}\n")
    run = subprocess.run(["pdflatex", "-halt-on-error", "-interaction=nonstopmode", "-no-shell-escape",
                          "doc.tex"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]


# -- the command line -----------------------------------------------------------------------
def test_which_cli_formats(tmp_path):
    spec = spec_file(tmp_path, [2, 2, 1])
    md, _, code = cli("which", spec, "W1[1,1]")
    assert code == 0 and md.startswith("**Both, chained.**")
    tex, _, code = cli("which", spec, "W1[1,1]", "--format", "tex")
    assert code == 0 and r"\textbf{Both, chained.}" in tex
    page, _, code = cli("which", spec, "W1[1,1]", "--format", "html")
    assert code == 0 and page.startswith("<!DOCTYPE html>") and 'data-param="W1[1,1]"' in page
    _, err, code = cli("which", spec, "W1[1,1]", "--format", "docx")
    assert code == 2 and "--format 'docx'; expected md, tex or html" in err


@pytest.mark.parametrize("param,message", [
    ("W3[1,1]", "PARAM 'W3[1,1]': layer 3 is not in 1..2 (at position 2)"),
    ("W1[1,3]", "column k=3 is not in 1..2 (layer 0 has 2 neurons) (at position 6)"),
    ("W1[1]", "W takes two indices [j,k], b takes one [j] (at position 1)"),
    ("w1[1,1]", "is not a parameter name like 'W1[1,2]' or 'b2[1]' (at position 1)"),
])
def test_which_bad_param_exits_2_with_position(tmp_path, param, message):
    out, err, code = cli("which", spec_file(tmp_path, [2, 2, 1]), param)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_which_cli_param_after_flags_and_with_shorthand(capsys):
    """PARAM may follow --json, and the shorthand takes PARAM as its only positional."""
    from derive.cli import main

    spec = str(Path(__file__).resolve().parent.parent / "examples" / "seed-question.toml")
    assert main(["which", spec, "--json", "W1[1,1]"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["which", "--layers", "2,2,2", "W1[1,1]", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert first["parameter"] == second["parameter"] == "W1[1,1]"
    assert len(first["paths"]) == len(second["paths"]) == 2


def test_which_softmax_cross_entropy_names_the_sum_to_one_assumption():
    """a - y after softmax holds because the targets sum to 1; the answer must say so."""
    soft = which(derive.Network([2, 2, 2], ["tanh", "softmax"], "cross_entropy"), "W1[1,1]")
    sigm = which(derive.Network([2, 2, 2], "sigmoid", "bce"), "W1[1,1]")
    assert r"this uses $\sum_j y_j = 1$" in soft.markdown()
    assert r"\sum_j y_j = 1" not in sigm.markdown() and "cancel" in sigm.markdown()
