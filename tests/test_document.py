"""Derivation documents as text: Markdown and LaTeX source (no TeX needed here).

The worked example is checked against a forward pass and central differences
written in this file with mpmath (50 digits), from the textbook formulas
alone; the Markdown's numbers are parsed back out of its tables.  Every
formula of every Markdown written here goes through MathJax 3
(tests/mathjax_util.py; node is required, as in CI).  PDFs: test_pdf.py.
"""

from __future__ import annotations

import math
import re

import mpmath
import pytest

from derive import Network, SpecError
from derive.cli import main
from derive.render.document import build, default_stem, render_latex, render_markdown
from derive.errors import RenderError, ToolError
from derive.spec.registry import ACTIVATIONS, LOSSES

from mathjax_util import markdown_math, mathjax_errors

#: Markdown written by the tests of this file; test_markdown_all_math_parses checks it all.
WRITTEN_MARKDOWN: list[tuple[str, str]] = []


def markdown_of(net, tmp_path, **opts) -> str:
    """Build the Markdown into tmp_path and return its text (kept for the MathJax test)."""
    paths = build(net, formats=["md"], outdir=tmp_path, **opts)
    md = next(p for p in paths if p.suffix == ".md")
    text = md.read_text(encoding="utf-8")
    WRITTEN_MARKDOWN.append((str(md), text))
    return text


# -- an independent 2-2-2 sigmoid network with half the sum of squared errors -------------
VALUES = {"x": [0.3, -0.7], "y": [0.2, 0.9],
          "W1": [[0.5, -0.4], [0.1, 0.8]], "b1": [-0.2, 0.3],
          "W2": [[1.2, -0.6], [0.7, 0.25]], "b2": [0.05, -0.15],
          "learning_rate": 0.3}


def reference_forward(v):
    """Textbook forward pass in mpmath: z(l) = W(l) a(l-1) + b(l), a = sigma(z)."""
    sig = lambda t: 1 / (1 + mpmath.exp(-t))  # noqa: E731
    a, zs, acts = [mpmath.mpf(t) for t in v["x"]], {}, {}
    for l in (1, 2):
        W, b = v[f"W{l}"], v[f"b{l}"]
        z = [sum(mpmath.mpf(W[j][k]) * a[k] for k in range(len(a))) + mpmath.mpf(b[j])
             for j in range(len(b))]
        a = [sig(t) for t in z]
        zs[l], acts[l] = z, a
    loss = sum((a[j] - mpmath.mpf(v["y"][j])) ** 2 for j in range(len(a))) / 2
    return zs, acts, loss


def reference_gradient(v, name: str, h=mpmath.mpf("1e-20")):
    """dL/dparam by a central difference of the forward pass, in 50-digit arithmetic."""
    m = re.fullmatch(r"([Wb])(\d)\[(\d)(?:,(\d))?\]", name)
    kind, l, j, k = m.group(1), m.group(2), int(m.group(3)) - 1, m.group(4)

    def loss_at(shift):
        w = {key: [list(r) if isinstance(r, list) else r for r in val] if isinstance(val, list) else val
             for key, val in v.items()}
        if kind == "W":
            w[f"W{l}"][j][int(k) - 1] = mpmath.mpf(w[f"W{l}"][j][int(k) - 1]) + shift
        else:
            w[f"b{l}"][j] = mpmath.mpf(w[f"b{l}"][j]) + shift
        return reference_forward(w)[2]

    return (loss_at(h) - loss_at(-h)) / (2 * h)


def parse_number(tex: str) -> float:
    """0.123, -4.5 \\times 10^{-7} -> float."""
    m = re.fullmatch(r"\s*(-?[\d.]+)(?: \\times 10\^\{(-?\d+)\})?\s*", tex)
    assert m, tex
    return float(m.group(1)) * (10 ** int(m.group(2)) if m.group(2) else 1)


def assert_nine_digits(printed: float, reference) -> None:
    """`printed` is `reference` rounded to 9 significant digits (half a unit in the 9th)."""
    ref = float(reference)
    unit = 10 ** (math.floor(math.log10(abs(ref))) - 8)
    assert abs(printed - ref) <= 0.5 * unit * 1.001, (printed, ref)


def test_worked_example_matches_independent_computation(tmp_path):
    mpmath.mp.dps = 50
    net = Network([2, 2, 2], activation="sigmoid", loss="half_sse", values=VALUES,
                  title="2-2-2 check")
    md = markdown_of(net, tmp_path)
    zs, acts, loss = reference_forward(VALUES)
    assert_nine_digits(parse_number(re.search(r"The loss: \$L = ([^$]+)\$", md).group(1)), loss)
    # every z, a, delta: one table, the layer named on its first row
    rows = re.findall(r"^\| (?:(\d) \(\$.+?\$\))? \| (\d+) \| \$(.+?)\$ \| \$(.+?)\$ \| \$(.+?)\$ \|$",
                      md, re.M)
    layers = []
    for layer, j, z, a, delta in rows:
        if layer:
            layers.append(int(layer))
        l, j = layers[-1], int(j) - 1
        assert_nine_digits(parse_number(z), zs[l][j])
        assert_nine_digits(parse_number(a), acts[l][j])
        assert_nine_digits(parse_number(delta), reference_gradient(VALUES, f"b{l}[{j + 1}]"))
    assert layers == [1, 2] and len(rows) == 4
    # every gradient and every parameter after one step
    params = re.findall(r"^\| \$([Wb])\^\{\((\d)\)\}_\{(\d)(\d)?\}\$ \| \$(.+?)\$ \| \$(.+?)\$ \| \$(.+?)\$ \|$",
                        md, re.M)
    assert len(params) == 12
    eta = VALUES["learning_rate"]
    for kind, l, j, k, value, grad, updated in params:
        name = f"W{l}[{j},{k}]" if kind == "W" else f"b{l}[{j}]"
        true_value = VALUES[f"{kind}{l}"][int(j) - 1][int(k) - 1] if kind == "W" else VALUES[f"b{l}"][int(j) - 1]
        ref = reference_gradient(VALUES, name)
        assert parse_number(value) == true_value
        assert_nine_digits(parse_number(grad), ref)
        assert_nine_digits(parse_number(updated), mpmath.mpf(true_value) - mpmath.mpf(eta) * ref)
    # the loss after the step on every parameter: the mpmath forward pass at p - eta * dL/dp
    stepped = {key: [list(r) if isinstance(r, list) else r for r in val] if isinstance(val, list) else val
               for key, val in VALUES.items()}
    for l in (1, 2):
        for j in range(2):
            for k in range(2):
                stepped[f"W{l}"][j][k] -= mpmath.mpf(eta) * reference_gradient(VALUES, f"W{l}[{j + 1},{k + 1}]")
            stepped[f"b{l}"][j] -= mpmath.mpf(eta) * reference_gradient(VALUES, f"b{l}[{j + 1}]")
    after = reference_forward(stepped)[2]
    m = re.search(r"After this step on all 12 parameters, the loss is\n\$L = ([^$]+)\$ \(before it: \$([^$]+)\$\)", md)
    assert m, md
    assert_nine_digits(parse_number(m.group(1)), after)
    assert_nine_digits(parse_number(m.group(2)), loss)
    assert after < loss  # this step helps, as a learner hopes to see


def test_worked_example_paths_add_up_to_the_gradient(tmp_path):
    net = Network([2, 2, 2], activation="sigmoid", loss="half_sse", values=VALUES)
    md = markdown_of(net, tmp_path, params="W1[1,2]")
    m = re.search(r"the paths contribute\n\$(.+?)\$, \$(.+?)\$,\nwhich add up to\n"
                  r"\$\\partial L/\\partial W\^\{\(1\)\}_\{12\} = (.+?)\$", md)
    assert m, md
    first, second, total = (parse_number(g) for g in m.groups())
    mpmath.mp.dps = 50
    assert_nine_digits(total, reference_gradient(VALUES, "W1[1,2]"))
    assert abs(first + second - total) < 1e-10  # three roundings in the 9th digit


def test_markdown_key_equations_of_the_default_example(tmp_path):
    from derive.cli import DEFAULT_EXAMPLE
    from derive import load

    md = markdown_of(load(DEFAULT_EXAMPLE), tmp_path)
    assert md.startswith("# Backpropagation in a 2-2-2 sigmoid network\n")
    for line in [
        r"z^{(1)}_{1} &= W^{(1)}_{11} x_{1} + W^{(1)}_{12} x_{2} + b^{(1)}_{1}, & a^{(1)}_{1} &= \sigma\left(z^{(1)}_{1}\right) \\",
        r"{\color{#D55E00}{\frac{\partial L}{\partial a^{(2)}_{j}}}} = a^{(2)}_{j} - y_{j}",
        r"{\color{#332288}{\frac{\partial a^{(l)}_{j}}{\partial z^{(l)}_{j}}}} = a^{(l)}_{j} \left(1 - a^{(l)}_{j}\right)",
        r"\delta^{(1)}_{j} = \Bigl(\sum_{m} W^{(2)}_{mj}\, \delta^{(2)}_{m}\Bigr)\, a^{(1)}_{j} \left(1 - a^{(1)}_{j}\right).",
        r"\frac{\partial L}{\partial W^{(l)}_{jk}} = \delta^{(l)}_{j}\, a^{(l-1)}_{k}, \qquad \frac{\partial L}{\partial b^{(l)}_{j}} = \delta^{(l)}_{j}.",
        r"&\boldsymbol{\delta}^{(l)} = \bigl(W^{(l+1)}\bigr)^{\top} \boldsymbol{\delta}^{(l+1)} \odot f_l'\bigl(\boldsymbol{z}^{(l)}\bigr) && \text{(BP2)} \\",
        # the chain rule for W1[1,1]: two paths, each factor in its role's colour
        r"\frac{\partial L}{\partial W^{(1)}_{11}} &= {\color{#D55E00}{\left(a^{(2)}_{1} - y_{1}\right)}} \cdot "
        r"{\color{#332288}{a^{(2)}_{1} \left(1 - a^{(2)}_{1}\right)}} \cdot {\color{#4477AA}{W^{(2)}_{11}}} \cdot "
        r"{\color{#332288}{a^{(1)}_{1} \left(1 - a^{(1)}_{1}\right)}} \cdot {\color{#882255}{x_{1}}} \\",
        r"&\quad + {\color{#D55E00}{\left(a^{(2)}_{2} - y_{2}\right)}} \cdot",
        # Mazur's numbers for this network
        r"| $W^{(1)}_{11}$ | $0.15$ | $0.000438567734$ | $0.149780716$ |",
        r"The loss: $L = 0.298371109$.",
        "![The network; in colour, every path from the parameter W1\\[1,1\\] to the loss, by role]"
        "(backpropagation-in-a-2-2-2-sigmoid-network-network.svg)",
    ]:
        assert line in md, line
    assert (tmp_path / "backpropagation-in-a-2-2-2-sigmoid-network-network.svg").read_text().startswith("<svg")


def test_latex_key_equations(tmp_path):
    net = Network([2, 2, 2], activation="sigmoid", loss="half_sse", values=VALUES, title="Two by two")
    tex = render_latex(net)
    assert "lastpage" not in tex
    assert r"\usepackage{xcolor}" in tex and r"\usepackage{tikz}" in tex
    assert r"\definecolor{deriveLoss}{HTML}{D55E00}" in tex
    assert r"\begin{tikzpicture}" in tex
    assert r"{\LARGE\bfseries Two by two\par}" in tex
    assert (r"\frac{\partial L}{\partial W^{(1)}_{11}} &= \textcolor{deriveLoss}{\frac{\partial L}"
            r"{\partial a^{(2)}_{1}}}\,\textcolor{deriveActivation}{\frac{\partial a^{(2)}_{1}}{\partial z^{(2)}_{1}}}") in tex
    assert r"\subsection{\texorpdfstring{The gradient $\partial L/\partial W^{(1)}_{11}$}" in tex
    assert "-shell-escape" not in tex


def test_deep_network_uses_sums_not_thousands_of_paths(tmp_path):
    net = Network([3, 4, 4, 4, 4, 4, 4, 2], activation="tanh", loss="mse")
    md = markdown_of(net, tmp_path)
    assert "reaches the loss along $2{,}048$ paths" in md  # 4^5 * 2
    assert r"\sum_{m_{2}=1}^{4} \cdots \sum_{m_{7}=1}^{2}" in md
    assert r"\cdots" in md
    assert len(md) < 40_000


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_documented(name, tmp_path):
    layers = [2, 3, 3] if name == "softmax" else [2, 2, 1]
    loss = "cross_entropy" if name == "softmax" else "half_sse"
    acts = ["tanh", name] if name == "softmax" else name
    md = markdown_of(Network(layers, activation=acts, loss=loss), tmp_path)
    assert ACTIVATIONS[name].latex in md


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_documented(name, tmp_path):
    out = "softmax" if name == "cross_entropy" else "sigmoid"
    net = Network([2, 2, 2], activation=["relu", out], loss=name)
    md = markdown_of(net, tmp_path)
    assert LOSSES[name].latex in md


def test_custom_activation_and_loss(tmp_path):
    net = Network([2, 3, 1], activation=["x/(1+abs(x))", "sigmoid"], loss="(a-y)^4/4",
                  title="Custom_fns")
    md = markdown_of(net, tmp_path)
    assert r"| 1 | 3 | $f$ (x/(1\+abs(x))) | 9 |" in md
    assert r"is (a-y)\^4/4 (custom: $\ell(a, y) = \frac{\left(a - y\right)^{4}}{4}$):" in md
    assert r"f(z) = \frac{z}{\left|{z}\right| + 1}" in md


def test_softmax_with_mse_writes_the_jacobian(tmp_path):
    md = markdown_of(Network([2, 2, 3], activation=["sigmoid", "softmax"], loss="mse"), tmp_path)
    assert r"J^{\top}\, \nabla_{\boldsymbol{a}^{(2)}} L" in md
    assert r"[i = m]" in md


def test_notation_ij(tmp_path):
    md = markdown_of(Network([2, 2, 1], activation="sigmoid"), tmp_path, notation="ij",
                     params="W1[1,2]")
    assert r'(read "from $i$ to $j$")' in md
    assert r"z^{(l)}_{j} = \sum_{i} W^{(l)}_{ij}\, a^{(l-1)}_{i}" in md
    # W1[1,2] joins input 2 to neuron 1: sender first
    assert r"### The gradient $\partial L/\partial W^{(1)}_{21}$" in md
    # the entry is named with the letter the formulas use, not a lowercase w
    assert "its entry in row $j$,\ncolumn $i$ is $W^{(l)}_{ij}$." in md
    assert "w^{(l)}" not in md


def test_activation_list_says_each_thing_once(tmp_path):
    """tanh is defined by its exponentials, not as "tanh(z) = tanh(z)"; the table does not
    say "tanh (tanh)" but keeps the name where the symbol differs ("σ (sigmoid)")."""
    md = markdown_of(Network([2, 2, 2, 1], activation=["tanh", "softplus", "sigmoid"], loss="bce"),
                     tmp_path)
    assert r"\tanh(z) = \frac{e^{z} - e^{- z}}{e^{z} + e^{- z}}" in md
    assert r"| 1 | 2 | $\tanh$ | 6 |" in md
    assert r"| 3 | 1 | $\sigma$ (sigmoid) | 3 |" in md
    # one logarithm: ln, as in the loss table (softplus and the written-out bce loss too)
    assert r"\operatorname{softplus}(z) = \ln{\left(e^{z} + 1 \right)}" in md
    assert r"\log" not in md and md.count(r"\ln") >= 4
    assert "(binary cross-entropy, outputs in $(0, 1)$)" in md


def test_loss_notes_write_their_symbols_as_math(tmp_path):
    md = markdown_of(Network([2, 3], activation="softmax", loss="cross_entropy"), tmp_path)
    assert "(cross-entropy against a target distribution $y$):" in md
    tex = render_latex(Network([2, 3], activation="sigmoid", loss="mse"))
    assert "(mean squared error over the $n$ outputs):" in tex


def test_long_input_vector_is_elided(tmp_path):
    rng = __import__("numpy").random.default_rng(3)
    raw = {"x": [float(t) for t in rng.uniform(-1, 1, 40)], "y": [0.5, 0.25],
           "W1": [[float(t) for t in rng.uniform(-0.3, 0.3, 40)] for _ in range(2)],
           "b1": [0.1, -0.1]}
    md = markdown_of(Network([40, 2], activation="sigmoid", values=raw), tmp_path)
    x = re.search(r"^\\boldsymbol\{x\} = \\bigl\((.*?)\\bigr\)\^\{\\top\}(.*)$", md, re.M)
    entries = x.group(1).split(", ")
    assert entries[-2] == r"\dots" and 3 <= len(entries) <= 8
    head = [float(t) for t in entries[:-2]]
    assert head + [float(entries[-1])] == pytest.approx(raw["x"][:len(head)] + raw["x"][-1:], rel=1e-8)
    assert r"\in \mathbb{R}^{40}" in x.group(2)
    assert r"\boldsymbol{y} = \bigl(0.5, 0.25\bigr)^{\top}:" in md  # short: every entry


def test_loss_symbol_c(tmp_path):
    md = markdown_of(Network([2, 2, 1], activation="sigmoid"), tmp_path, loss_symbol="C")
    assert r"\frac{\partial C}{\partial W^{(1)}_{11}} &=" in md
    assert r"\frac{\partial L}" not in md


def test_snippet_is_only_equations(tmp_path):
    net = Network([2, 2, 1], activation="sigmoid")
    paths = build(net, outdir=tmp_path, snippet=True)
    assert sorted(p.name for p in paths) == ["net-2-2-1-snippet.md", "net-2-2-1-snippet.tex"]
    tex = (tmp_path / "net-2-2-1-snippet.tex").read_text()
    assert r"\documentclass" not in tex and r"\begin{document}" not in tex
    assert r"\definecolor{deriveLoss}{HTML}{D55E00}" in tex
    assert r"\begin{align*}" in tex and r"\boldsymbol{\delta}^{(2)}" in tex
    md = (tmp_path / "net-2-2-1-snippet.md").read_text()
    WRITTEN_MARKDOWN.append(("snippet", md))
    assert not re.search(r"^#", md, re.M) and md.lstrip().startswith("$$")
    with pytest.raises(SpecError, match="--snippet"):
        build(net, outdir=tmp_path, snippet=True, formats=["pdf"])


def test_templates_override_by_name(tmp_path):
    user = tmp_path / "mine"
    (user / "md").mkdir(parents=True)
    (user / "md" / "intro.md").write_text("My own introduction for \\VAR{network.sizes}.\n\n")
    md = markdown_of(Network([2, 3, 1]), tmp_path / "out", templates=user)
    assert "My own introduction for 2-3-1." in md
    assert "## 2. The forward pass and the loss" in md  # the other templates are still built in


def test_templates_errors(tmp_path):
    with pytest.raises(RenderError, match="is not a folder"):
        render_markdown(Network([1, 1]), templates=tmp_path / "missing")
    (tmp_path / "md").mkdir()
    (tmp_path / "md" / "intro.md").write_text("\\VAR{no_such_thing}\n")
    with pytest.raises(RenderError, match="no_such_thing"):
        render_markdown(Network([1, 1]), templates=tmp_path)
    (tmp_path / "md" / "intro.md").write_text("\\BLOCK{if}\n")
    with pytest.raises(RenderError, match="intro.md"):
        render_markdown(Network([1, 1]), templates=tmp_path)


def test_template_error_names_the_included_file_and_its_line(tmp_path):
    """tex/intro.tex is reached through tex/document.tex's include: the error names
    the user's file and the line in it, not the document template."""
    (tmp_path / "tex").mkdir()
    (tmp_path / "tex" / "intro.tex").write_text("My notes.\n\nSee \\VAR{network.no_such_key}.\n")
    with pytest.raises(RenderError) as err:
        render_latex(Network([1, 1]), templates=tmp_path)
    assert str(err.value) == (f"your template tex/intro.tex (in {tmp_path.resolve()}) line 3: "
                              "'dict object' has no attribute 'no_such_key'")
    (tmp_path / "tex" / "intro.tex").write_text("One\n\\BLOCK{for x in}\n")
    with pytest.raises(RenderError, match=r"^your template tex/intro.tex \(in .*\) line 2: "):
        render_latex(Network([1, 1]), templates=tmp_path)
    (tmp_path / "tex" / "intro.tex").write_text("\\VAR{1 + network}\n")
    with pytest.raises(RenderError, match=r"^your template tex/intro.tex \(in .*\) line 1: unsupported"):
        render_latex(Network([1, 1]), templates=tmp_path)


@pytest.mark.parametrize("params, message", [
    ("W1[1,1", "is not a parameter name"),
    ("W3[1,1]", "layer 3 is not in 1..2"),
    ("W1[4,1]", "row j=4 is not in 1..3"),
    ("b1[1,2]", "b takes one [j]"),
    ("W9[*]", "layer 9 is not in 1..2"),
    ("W1[*,x]", "is not a parameter name like"),
    ("", "is empty"),
    ("W1[*]", None),  # 6 parameters: fine
])
def test_params_parsing(params, message, tmp_path, capsys):
    code = main(["explain", "--layers", "2,3,1", "--params", params, "--format", "md",
                 "-o", str(tmp_path)])
    err = capsys.readouterr().err
    if message is None:
        assert code == 0 and err == ""
    else:
        assert code == 2
        assert err.count("\n") == 1 and message in err, err


def test_params_star_expands_and_caps(tmp_path):
    from derive.render.walkthrough import MAX_CHAINS, choose

    net = Network([2, 3, 2])
    assert [p.name for p in choose(net, "b2[*], W1[2,*]")] == ["b2[1]", "b2[2]", "W1[2,1]", "W1[2,2]"]
    assert [p.name for p in choose(net, None)] == ["W2[1,1]", "W1[1,1]"]
    with pytest.raises(SpecError, match=f"at most {MAX_CHAINS}"):
        choose(Network([8, 8, 1]), "W1[*]")


def test_one_parameter_name_parser_for_params_claim_and_which():
    """--params, claim and which read names with the model's one parser; wildcards only in lists."""
    from derive.qa.claim import parse_param

    net = Network([2, 3, 2])
    assert net.model.select("W2[1,*],b1[*],W2[1,2]") == [
        net.param("W2[1,1]"), net.param("W2[1,2]"), net.param("W2[1,3]"),
        net.param("b1[1]"), net.param("b1[2]"), net.param("b1[3]")]
    assert [p.name for p in net.model.select("W1[*]")] == [f"W1[{j},{k}]" for j in (1, 2, 3) for k in (1, 2)]
    assert parse_param(net, " W2 [ 2 , 3 ] ") == net.param("W2[2,3]")
    for bad, message in [("W2[*]", "is not a parameter name like 'W1[1,2]' or 'b2[1]' (at position 1)"),
                         ("W2[1,4]", "column k=4 is not in 1..3 (layer 1 has 3 neurons) (at position 6)"),
                         ("b3[1]", "layer 3 is not in 1..2 (at position 2)")]:
        with pytest.raises(SpecError) as err:
            parse_param(net, bad)
        assert str(err.value) == f"PARAM {bad!r}: {message}" or str(err.value).endswith(message)
    with pytest.raises(SpecError, match=r"--params item 'W1\[\*,4\]': column k=4 is not in 1..2"):
        net.model.select("W1[*,4]")


def test_bad_format_and_stem(tmp_path):
    net = Network([1, 1])
    with pytest.raises(SpecError, match="expected a comma list of pdf, tex, md"):
        build(net, formats="docx", outdir=tmp_path)
    with pytest.raises(SpecError, match="stem"):
        build(net, formats="md", outdir=tmp_path, stem="../evil")
    with pytest.raises(SpecError, match="^paper 'legal'; expected one of a4, letter$"):
        build(net, formats="md", outdir=tmp_path, paper="legal")
    assert default_stem(Network([2, 1], title="Ünïcode & σ net!")) == "unicode-net"
    assert default_stem(Network([2, 1], title="σ")) == "net-2-1"
    assert default_stem(Network([2, 1])) == "net-2-1"


def test_missing_tex_writes_md_and_tex_and_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("derive.render.document.find_engine", lambda: None)
    paths = build(Network([2, 1]), outdir=tmp_path)
    assert sorted(p.suffix for p in paths) == [".md", ".svg", ".tex"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get install texlive-latex-base" in err
    with pytest.raises(ToolError, match="apt-get install"):
        build(Network([2, 1]), outdir=tmp_path, formats="pdf")


def test_check_that_cannot_run_is_reported(tmp_path, monkeypatch):
    def refuse(self, values=None, **kwargs):
        raise SpecError("values: the loss is undefined (nan) at these values")

    monkeypatch.setattr(Network, "check", refuse)
    md = markdown_of(Network([2, 2], activation="identity", loss="bce"), tmp_path)
    assert "**The numeric check could not run:** values: the loss is undefined (nan) at these values" in md


def test_hostile_title_in_markdown_is_text(tmp_path):
    title = r"%$&#_{}\~^ σ \input{/etc/passwd} \VAR{network} *x* <b>"
    md = markdown_of(Network([2, 1], title=title), tmp_path)
    assert md.splitlines()[0] == r"# %\$\&\#\_\{\}\\\~\^ σ \\input\{/etc/passwd\} \\VAR\{network\} \*x\* \<b\>"


def test_markdown_all_math_parses(tmp_path):
    """Every formula of every Markdown written in this file, and of networks covering
    every activation, every loss and every option, parses in MathJax 3 (one node run)."""
    nets = [
        (Network([16] * 31, activation="tanh"), {}),
        (Network([2, 3, 3], activation=["elu", "softmax"], loss="cross_entropy", bias=False), {}),
        (Network([2, 3, 3], activation=["softplus", "softmax"], loss="mse", values=None), {}),
        (Network([2, 2, 2, 2], activation=["gelu", "silu", "sigmoid"], loss="bce"),
         {"notation": "ij", "loss_symbol": "E"}),
        (Network([3, 2, 2], activation=["leaky_relu", "identity"], loss="sse"), {"params": "b1[*],W2[2,1]"}),
        (Network([2, 2, 2, 1], activation=["relu", "sigmoid", "identity"], loss="half_sse",
                 values=VALUES_221), {"params": "W1[2,1]"}),
        (Network([2, 2, 1], activation="sigmoid"), {"snippet": True}),
        (Network([2, 2, 2, 1], activation=["tanh", "sigmoid", "identity"], loss="half_sse",
                 values=VALUES_221), {"part": "local,chain,recursion,matrix,example", "params": "W1[2,1]"}),
        (Network([2, 3, 1], activation=["x/(1+abs(x))", "sigmoid"], loss="(a-y)^4/4"), {}),
    ]
    texts = list(WRITTEN_MARKDOWN)
    for i, (net, opts) in enumerate(nets):
        texts.append((str(i), render_markdown(net, **opts)))
    covered = "".join(text for _, text in texts)
    assert all(ACTIVATIONS[a].latex in covered for a in ACTIVATIONS)
    formulas = [f for _, text in texts for f in markdown_math(text)]
    assert len(formulas) > 300
    errors = mathjax_errors(formulas)
    assert errors == [], errors[:5]


VALUES_221 = {"x": [0.5, -1.0], "y": [0.25], "W1": [[0.3, -0.2], [0.4, 0.1]], "b1": [0.1, -0.3],
              "W2": [[0.6, -0.5], [0.2, 0.9]], "b2": [0.0, 0.1], "W3": [[1.5, -0.7]], "b3": [0.2],
              "learning_rate": 0.1}


def test_templates_doc_names_every_variable():
    """docs/templates.md lists every variable a template gets and every key of each
    section, so a new key without documentation fails here."""
    from pathlib import Path

    from derive import load
    from derive.render.document import context, plan

    doc = (Path(__file__).resolve().parent.parent / "docs" / "templates.md").read_text()
    net = load(Path(__file__).resolve().parent.parent / "examples" / "tiny.toml",
               Path(__file__).resolve().parent.parent / "examples" / "tiny-values.toml")
    ctx = context(plan(net), "tex")
    missing = [k for k in list(ctx) + ["tikz"] if f"`{k}`" not in doc]
    for key, value in ctx.items():
        first = value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else value
        if isinstance(first, dict):
            missing += [f"{key}.{k}" for k in first if f"`{k}`" not in doc]
    assert missing == []
