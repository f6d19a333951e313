"""One chain-rule printer: `which` and `explain` print the same factors and sums.

The matrix: every activation x every loss of the registry tables, in both
notations (with a different loss symbol in the second).  For each, the
painted factors of a parameter's listed paths are extracted from the
`which` Markdown and from the `explain` document and compared as strings,
and so are the \\sum-over-paths lines; then every factor the answer prints
is evaluated at a point and compared with an independent reference: the
`sympy.diff` of the registry row's definition (activation), of the loss
row's term (loss), or the weight and input values themselves.

Also the `which` behaviours of issue 11: the opening by question, the
p - y step, the transpose explanation, the relu'(0) convention, Iverson
brackets, and no "+ -" in a sum of paths.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re

import pytest
import sympy

import derive
from derive.cli import main
from derive.qa.answer import which
from derive.render import chain
from derive.render.answer_words import QUESTIONS
from derive.render.formulas import Style
from derive.spec.registry import ACTIVATIONS, LOSSES, A, X, Y

#: Factor values against the reference (both exact up to float rounding of the point).
FACTOR_RTOL = 1e-12
#: Later layers 3, 3 and 3 outputs: W1[1,1] has 9 or more paths (a \sum), W3[1,1] and b3[2] one
#: to three (listed); over 40 parameters, so the document's results stay one weight per layer.
LAYERS = [5, 3, 3, 3]
PARAMS = ("W1[1,1]", "W3[1,1]", "b3[2]")
STYLES = [("nielsen", "L"), ("ij", "C")]
MATRIX = [(act, loss) for act in ACTIVATIONS for loss in LOSSES]


def network(act: str, loss: str) -> derive.Network:
    acts = ["tanh", "tanh", "softmax"] if ACTIVATIONS[act].vector else act
    return derive.Network(LAYERS, acts, loss)


def painted(text: str) -> list[str]:
    r"""Every {\color{#hex}{...}} in `text`, in order (braces balanced), colour keys left out."""
    out, i = [], text.find(r"{\color{#")
    while i != -1:
        depth, j = 0, i
        for j in range(i, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                break
        if r"\blacksquare" not in text[i:j + 1]:
            out.append(text[i:j + 1])
        i = text.find(r"{\color{#", j + 1)
    return out


def which_chain(md: str) -> str:
    return md.split("### The chain rule")[1].split("In backprop's notation")[0]


def document_chain(doc: str, symbol: str) -> str:
    section = doc.split(f"### The gradient $\\partial ")[1:]
    part = next(s for s in section if s.split("$", 1)[0].endswith(symbol))
    return part.split("Read the colours")[0].split("\n## ")[0].split("\n### ")[0]


def sum_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if r"= \sum_{m_" in line]


@pytest.mark.parametrize("act,loss", MATRIX)
def test_which_and_explain_print_the_same_factors_and_sums(act, loss):
    net = network(act, loss)
    compared = {"paths": 0, "sums": 0}
    for notation, symbol in STYLES:
        doc = net.explain("md", params=",".join(PARAMS), notation=notation, loss_symbol=symbol)
        for name in PARAMS:
            answer = which(net, name, notation=notation, loss_symbol=symbol)
            mine = which_chain(answer.markdown())
            p = net.param(name)
            theirs = document_chain(doc, Style(notation, symbol, "md").latex(net.model.symbol(p)))
            if answer.parts[0].complete:
                assert painted(mine) == painted(theirs) != []
                compared["paths"] += 1
            else:
                assert sum_lines(mine) == sum_lines(theirs) != []
                assert set(painted(mine)) <= set(painted(theirs))
                compared["sums"] += 1
            assert not re.search(r"\+\s*(\{\\color\{#[0-9A-F]{6}\}\{)?-", mine), "a '+ -' in a sum of paths"
    assert compared["paths"] >= 2 and compared["sums"] >= 2


def _point(net: derive.Network, rng: random.Random) -> dict:
    """Values for every symbol a local derivative may mention, a = f(z) from the registry."""
    m, spec, vals = net.model, net.spec, {}
    for k in range(1, spec.layers[0] + 1):
        vals[m.x(k)] = rng.uniform(-1, 1)
    for l in range(1, spec.depth + 1):
        n, row = spec.layers[l], spec.activations[l - 1]
        # away from kinks; outputs in (0, 1) where the row allows, so every loss is finite
        zs = [rng.uniform(0.2, 0.9) if l == spec.depth else rng.choice((-1, 1)) * rng.uniform(0.2, 1.5)
              for _ in range(n)]
        for j in range(1, n + 1):
            vals[m.z(l, j)] = zs[j - 1]
            for k in range(1, spec.layers[l - 1] + 1):
                vals[m.W(l, j, k)] = rng.uniform(-1, 1)
            vals[m.a(l, j)] = (sympy.exp(zs[j - 1]) / sum(sympy.exp(z) for z in zs) if row.vector
                               else row.definition.subs(X, zs[j - 1]))
    for j in range(1, spec.layers[-1] + 1):
        vals[m.y(j)] = rng.uniform(0.1, 0.9)
    return vals


def _reference(net: derive.Network, f, vals: dict) -> float:
    """The factor's value from the registry's own definitions, differentiated by sympy.diff."""
    m, spec = net.model, net.spec
    if f.role == "loss":
        out = f.denominator.idx[0]
        d = sympy.diff(spec.loss.per_output(A, Y, spec.layers[-1]), A)
        return float(d.subs({A: vals[m.a(spec.depth, out)], Y: vals[m.y(out)]}))
    if f.role == "activation":
        l, i, k = f.layer, f.numerator.idx[0], f.denominator.idx[0]
        row = spec.activations[l - 1]
        if not row.vector:
            return float(sympy.diff(row.definition, X).subs(X, vals[m.z(l, k)])) if i == k else 0.0
        zs = sympy.symbols(f"q1:{spec.layers[l] + 1}", real=True)
        soft = sympy.exp(zs[i - 1]) / sum(sympy.exp(z) for z in zs)
        return float(sympy.diff(soft, zs[k - 1]).subs({z: vals[m.z(l, j)] for j, z in enumerate(zs, 1)}))
    if f.role == "weight":
        return float(vals[m.W(f.layer, f.numerator.idx[0], f.denominator.idx[0])])
    return float(vals[m.a(f.layer - 1, f.denominator.idx[1])])


@pytest.mark.parametrize("act,loss", MATRIX)
def test_every_printed_factor_equals_the_registry_derivative(act, loss):
    net, rng = network(act, loss), random.Random(f"{act}-{loss}")
    vals = _point(net, rng)
    for notation, symbol in STYLES:
        style = Style(notation, symbol, "md")
        answer = which(net, "W2[1,1]", notation=notation, loss_symbol=symbol)
        md, part = answer.markdown(), answer.parts[0]
        for path in part.listed if part.complete else part.listed[:1]:  # the paths written out
            for f in path:
                assert chain.factor_latex(style, f) in md
                got = float(chain.factor_expr(f).subs(vals))
                assert got == pytest.approx(_reference(net, f, vals), rel=FACTOR_RTOL, abs=1e-15), f


# -- the which behaviours --------------------------------------------------------------
def cli(*args) -> tuple[str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return out.getvalue(), err.getvalue(), code


def spec_file(tmp_path, layers, activation, loss) -> str:
    path = tmp_path / "net.toml"
    path.write_text(f"layers = {layers}\nactivation = {json.dumps(activation)}\nloss = {json.dumps(loss)}\n")
    return str(path)


@pytest.mark.parametrize("layers,acts,loss,param,opening", [
    ([2, 2, 1], "sigmoid", "bce", "W1[1,2]", "**Both, chained.**"),
    ([2, 2, 1], "sigmoid", "bce", "W2[1,1]", "**Both, chained: one of each at the output layer.**"),
    ([2, 2, 1], "sigmoid", "bce", "b1[2]", "**Both, chained; a bias adds no input factor.**"),
    ([2, 2, 2], ["tanh", "softmax"], "cross_entropy", "W2[1,2]",
     "**Both, and at the output they cancel to $a_j - y_j$ (p − y).**"),
    ([2, 2, 2], ["tanh", "softmax"], "cross_entropy", "W1[1,2]", "**Both, chained.**"),
])
def test_which_opening_fits_the_parameter(layers, acts, loss, param, opening):
    md = which(derive.Network(layers, acts, loss), param).markdown()
    assert md.startswith(opening + " Backpropagation uses")


def test_which_question_p_minus_y_shows_the_sum_of_y_step():
    md = which(derive.Network([2, 2, 3], ["tanh", "softmax"], "cross_entropy"), "W2[1,1]").markdown()
    step = (r"= a^{(2)}_{j} \sum_{i} y_{i} - y_{j} = a^{(2)}_{j} - y_{j}")
    why = md.split("Why $a_j - y_j$")[1].split("###")[0]
    assert step in why and r"$\sum_i y_i = 1$ because the targets are a distribution" in why
    assert r"\Bigl(-\frac{y_{i}}{a^{(2)}_{i}}\Bigr)\, a^{(2)}_{i}\bigl([i = j] - a^{(2)}_{j}\bigr)" in why
    # the same step in the delta recursion of which and of the document
    net = derive.Network([2, 2, 3], ["tanh", "softmax"], "cross_entropy")
    assert step in net.explain("md")


def test_which_question_transpose_shows_the_matrix_form(tmp_path):
    spec = spec_file(tmp_path, [2, 3, 2], "sigmoid", "half_sse")
    md, _, code = cli("which", spec, "W1[1,1]", "--question", "transpose")
    assert code == 0 and md.startswith("**Because each neuron feeds every neuron of the next layer.**")
    assert r"\sum_{i} W^{(l+1)}_{ij}\, \delta^{(l+1)}_{i}" in md
    assert r"column $j$ of $W^{(l+1)}$, which is row $j$ of its transpose" in md
    assert (r"\boldsymbol{\delta}^{(l)} = \bigl(W^{(l+1)}\bigr)^{\top} \boldsymbol{\delta}^{(l+1)}"
            r" \odot f_l'\bigl(\boldsymbol{z}^{(l)}\bigr)") in md
    ij, _, _ = cli("which", spec, "W1[1,1]", "--question", "transpose", "--notation", "ij")
    assert r"\sum_{i} W^{(l+1)}_{ji}\, \delta^{(l+1)}_{i}" in ij


def test_which_bad_question_is_one_line_exit_2(tmp_path):
    spec = spec_file(tmp_path, [2, 2, 1], "sigmoid", "bce")
    out, err, code = cli("which", spec, "W1[1,1]", "--question", "why")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "--question 'why'; expected one of auto, which, output, hidden, bias, p-y, transpose" in err


@pytest.mark.parametrize("layers,param,question,message", [
    ([2, 2, 1], "W1[1,1]", "p-y", "the output is sigmoid with bce; p - y is the delta of softmax"),
    ([2, 2, 1], "W1[1,1]", "output", "W1[1,1] is in layer 1, not the output layer 2"),
    ([2, 2, 1], "W2[1,1]", "hidden", "W2[1,1] is in the output layer"),
    ([2, 2, 1], "W2[1,1]", "bias", "W2[1,1] is not a bias"),
])
def test_which_question_must_fit_the_parameter(tmp_path, layers, param, question, message):
    spec = spec_file(tmp_path, layers, "sigmoid", "bce")
    out, err, code = cli("which", spec, param, "--question", question)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"--question {question!r}: {message}" in err


def test_which_help_lists_every_question(capsys):
    try:
        assert main(["which", "--help"]) == 0
    except SystemExit as exit:  # argparse's own exit, if main lets it through
        assert exit.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in QUESTIONS:
        assert name in text


def test_which_notation_and_loss_symbol(tmp_path):
    spec = spec_file(tmp_path, [3, 2, 1], "sigmoid", "bce")
    md, _, code = cli("which", spec, "W1[2,3]", "--notation", "ij", "--loss-symbol", "E")
    assert code == 0
    assert r"\frac{\partial E}{\partial W^{(1)}_{32}}" in md and r"W^{(1)}_{23}" not in md
    assert r"\frac{\partial L}" not in md
    api = derive.Network([3, 2, 1], "sigmoid", "bce").which("W1[2,3]", notation="ij", loss_symbol="E")
    assert api.markdown() == md.rstrip("\n") + "\n" or api.markdown().strip() == md.strip()
    _, err, code = cli("which", spec, "W1[2,3]", "--notation", "kj")
    assert code == 2 and "notation 'kj'; expected one of nielsen, ij" in err


@pytest.mark.parametrize("act,value", [("relu", "0"), ("leaky_relu", r"\frac{1}{100}")])
def test_which_states_the_derivative_at_the_kink(act, value):
    md = which(derive.Network([2, 2, 1], [act, "sigmoid"], "bce"), "W1[1,1]").markdown()
    latex = ACTIVATIONS[act].latex
    assert f"${latex}'(0) = {value}$, as PyTorch does" in md
    assert "Iverson" in md
    smooth = which(derive.Network([2, 2, 1], "tanh", "bce"), "W1[1,1]").markdown()
    assert "kink" not in smooth and "Iverson" not in smooth


def test_which_relu_derivative_is_an_iverson_bracket():
    md = which(derive.Network([2, 2, 2], "relu", "half_sse"), "W1[1,1]").markdown()
    assert r"\begin{cases}" not in md
    assert r"{\color{#332288}{\left[z^{(1)}_{1} > 0\right]}}" in md
    leaky = which(derive.Network([2, 2, 2], "leaky_relu", "half_sse"), "W1[1,1]").markdown()
    assert r"\left[z^{(1)}_{1} > 0\right] + \frac{1}{100}\, \left[z^{(1)}_{1} \leq 0\right]" in leaky
    assert r"\begin{cases}" not in leaky


def test_which_negative_factor_after_plus_is_parenthesised():
    md = which(derive.Network([2, 2, 2], ["tanh", "softmax"], "cross_entropy"), "W2[1,1]").markdown()
    assert r"&\quad + {\color{#D55E00}{\left(- \frac{y_{2}}{a^{(2)}_{2}}\right)}}" in md
    assert "+ -" not in md


def test_which_markdown_with_questions_parses_in_mathjax():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from mathjax_util import markdown_math, mathjax_errors

    formulas = []
    for question in ("transpose", "p-y", "auto"):
        for notation in ("nielsen", "ij"):
            net = derive.Network([2, 3, 3], ["leaky_relu", "softmax"], "cross_entropy")
            formulas += markdown_math(which(net, "W1[1,2]", notation=notation, question=question).markdown())
            formulas += markdown_math(which(net, None, question=question).markdown())
    assert len(formulas) > 60
    assert mathjax_errors(formulas) == []


def test_which_json_prints_factors_as_the_answer_does(tmp_path):
    spec = spec_file(tmp_path, [2, 2, 1], "sigmoid", "bce")
    out, _, code = cli("which", spec, "W1[2,1]", "--json", "--notation", "ij", "--loss-symbol", "C")
    answer = json.loads(out)
    assert code == 0
    loss, _, weight, _, inp = answer["paths"][0]
    assert loss["latex"] == r"\frac{1 - y_{1}}{1 - a^{(2)}_{1}} - \frac{y_{1}}{a^{(2)}_{1}}"
    assert weight["latex"] == "W^{(2)}_{21}" and inp["latex"] == "x_{1}"  # W2[1,2] from 2 to 1, in ij
    md, _, _ = cli("which", spec, "W1[2,1]", "--notation", "ij", "--loss-symbol", "C")
    for factor in (loss, weight, inp):
        assert factor["latex"] in md
