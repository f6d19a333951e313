"""Tests for derive/diagram.py: the roles agree with paths.py, the SVG says what
it should (colours on the right edges, bounded size), the TikZ compiles."""

import dataclasses
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from derive.render import diagram
from derive.calculus.backprop import Derivation
from derive.render.diagram import layout, svg, tikz
from derive.render import roles
from derive.render.roles import ROLE_COLOURS, XCOLOR_DEFINITIONS
from derive.calculus.model import Param, SymbolicModel
from derive.calculus.paths import ROLES, paths
from derive.spec.registry import X, Activation
from derive.spec.loading import make_spec

PDFLATEX_TIMEOUT = 60  # seconds; one picture takes about half a second
MAX_ELEMENTS_DEEP = 400
SVG = "{http://www.w3.org/2000/svg}"
GREY = "#B3B3B3"

S222 = make_spec([2, 2, 2], "sigmoid")
WIDE = make_spec([2, 50, 3], "tanh")
DEEP = make_spec([16] * 31, "tanh")
SOFTMAX = make_spec([3, 4, 3], ["relu", "softmax"], "cross_entropy")
BIAS = make_spec([2, 3, 2], "sigmoid")


# -- helpers ---------------------------------------------------------------------
def _tree(spec, p=None, **settings):
    return ET.fromstring(svg(spec, p, **settings))


def _edges(root) -> dict[tuple[str, str], str]:
    """(from, to) -> stroke colour of every network edge (legend swatches left out)."""
    return {(e.get("data-from"), e.get("data-to")): e.get("stroke")
            for e in root.iter(SVG + "line") if e.get("data-from") != "legend"}


def _nodes(root) -> dict[str, str]:
    return {c.get("data-node"): c.get("stroke") for c in root.iter(SVG + "circle")}


def _coloured(mapping, role):
    return {k for k, v in mapping.items() if v == ROLE_COLOURS[role]}


def _texts(root) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(SVG + "text")]


def _key(s) -> str:
    """The diagram's key for a network symbol from paths.py."""
    return f"x{s.idx[0]}" if s.kind == "x" else f"a{s.layer}.{s.idx[0]}"


# -- layout ----------------------------------------------------------------------
def test_layout_small_network_keeps_every_neuron():
    lay = layout(S222)
    assert [c.layer for c in lay.columns] == [0, 1, 2]
    assert [[j for j, _ in c.rows] for c in lay.columns] == [[1, 2]] * 3
    assert repr(lay) == "Layout(0:2, 1:2, 2:2, loss)"


def test_layout_wide_layer_elided_with_a_gap_row():
    rows = [j for j, _ in layout(WIDE).columns[1].rows]
    assert rows == [1, 2, 3, 4, 5, 6, None, 50]


def test_layout_wide_layer_keeps_the_highlighted_neuron():
    lay = layout(WIDE, highlight=Param(1, "W", 37, 2))
    assert [j for j, _ in lay.columns[1].rows] == [1, 2, 3, 4, 5, None, 37, None, 50]


def test_layout_deep_network_elides_middle_layers():
    assert [c.layer for c in layout(DEEP).columns] == [0, 1, None, 29, 30]
    lay = layout(DEEP, highlight=Param(15, "W", 3, 16))
    assert [c.layer for c in lay.columns] == [0, 1, None, 14, 15, None, 29, 30]
    assert [c.skipped for c in lay.columns if c.layer is None] == [(2, 13), (16, 28)]
    assert 16 in [j for j, _ in lay.columns[3].rows]


def test_layout_rejects_too_small_limits():
    with pytest.raises(ValueError, match="max_neurons"):
        layout(S222, max_neurons=2)


# -- roles agree with the chain rule as paths.py writes it --------------------------
@pytest.mark.parametrize("spec, p", [
    (S222, Param(1, "W", 1, 1)), (S222, Param(2, "W", 1, 2)), (BIAS, Param(1, "b", 2)),
    (SOFTMAX, Param(2, "W", 2, 1)), (SOFTMAX, Param(1, "W", 3, 2)),
])
def test_roles_match_paths(spec, p):
    activation, weight = set(), set()
    for path in paths(Derivation(SymbolicModel(spec)), p):
        for f in path:
            if f.role == "activation":
                activation.add(_key(f.numerator))
            if f.role == "weight":
                weight.add((_key(f.denominator), _key(f.numerator).replace("z", "a")))
    root = _tree(spec, p)
    assert _coloured(_nodes(root), "activation") == activation
    drawn = {(a, b) for a, b in _coloured(_edges(root), "weight")}
    assert drawn == weight


# -- SVG -------------------------------------------------------------------------
def test_svg_222_highlight_colours_exactly_the_paths():
    root = _tree(S222, Param(1, "W", 1, 1))
    edges = _edges(root)
    assert _coloured(edges, "input") == {("x1", "a1.1")}
    assert _coloured(edges, "weight") == {("a1.1", "a2.1"), ("a1.1", "a2.2")}
    assert _coloured(edges, "loss") == {("a2.1", "L"), ("a2.2", "L")}
    assert {k for k, v in edges.items() if v == GREY} == {
        ("x1", "a1.2"), ("x2", "a1.1"), ("x2", "a1.2"), ("a1.2", "a2.1"), ("a1.2", "a2.2")}
    nodes = _nodes(root)
    assert _coloured(nodes, "activation") == {"a1.1", "a2.1", "a2.2"}
    assert _coloured(nodes, "input") == {"x1"}
    assert _coloured(nodes, "loss") == {"L"}


def test_svg_222_neuron_count_and_labels():
    root = _tree(S222)
    assert sorted(_nodes(root)) == ["L", "a1.1", "a1.2", "a2.1", "a2.2", "x1", "x2"]
    texts = _texts(root)
    assert {"x1", "a(1)2", "L", "σ", "half_sse"} <= set(texts)


def test_svg_no_highlight_has_only_grey_edges_and_no_legend():
    root = _tree(make_spec([2, 3, 1], "sigmoid"))
    assert len(_nodes(root)) == 2 + 3 + 1 + 1
    assert set(_edges(root).values()) == {GREY}
    assert not any("∂" in t for t in _texts(root))


def test_svg_output_weight_elementwise_reaches_loss_through_its_own_output():
    edges = _edges(_tree(S222, Param(2, "W", 1, 2)))
    assert _coloured(edges, "input") == {("a1.2", "a2.1")}
    assert _coloured(edges, "loss") == {("a2.1", "L")}
    assert _coloured(edges, "weight") == set()


def test_svg_softmax_output_weight_reaches_loss_through_every_output():
    root = _tree(SOFTMAX, Param(2, "W", 2, 1))
    assert _coloured(_edges(root), "loss") == {("a2.1", "L"), ("a2.2", "L"), ("a2.3", "L")}
    assert _coloured(_nodes(root), "activation") == {"a2.1", "a2.2", "a2.3"}
    box = root.find(SVG + "rect[@stroke-dasharray]")
    assert box.get("stroke") == ROLE_COLOURS["activation"]


def test_svg_bias_highlight_has_a_stub_and_no_input_edge():
    root = _tree(BIAS, Param(1, "b", 2))
    edges = _edges(root)
    assert _coloured(edges, "input") == {("b1.2", "a1.2")}
    assert _coloured(edges, "weight") == {("a1.2", "a2.1"), ("a1.2", "a2.2")}
    assert "b(1)2" in _texts(root)
    assert "bias ∂z/∂b = 1" in _texts(root)


def test_svg_legend_lists_the_roles_in_the_picture():
    texts = _texts(_tree(S222, Param(1, "W", 1, 1)))
    assert [t for t in texts if "∂" in t] == [
        "loss ∂L/∂a", "activation ∂a/∂z", "weight ∂z/∂a = W", "input ∂z/∂W = a"]
    texts = _texts(_tree(S222, Param(2, "W", 1, 2)))  # an output weight: no weight factor
    assert [t for t in texts if "∂" in t] == ["loss ∂L/∂a", "activation ∂a/∂z", "input ∂z/∂W = a"]
    assert not any("∂" in t for t in _texts(_tree(S222, Param(1, "W", 1, 1), legend=False)))


def test_svg_wide_layer_elided():
    root = _tree(WIDE, Param(1, "W", 37, 2))
    assert sorted(k for k in _nodes(root) if k.startswith("a1.")) == [
        "a1.1", "a1.2", "a1.3", "a1.37", "a1.4", "a1.5", "a1.50"]
    texts = _texts(root)
    assert texts.count("⋮") == 2 and "n = 50" in texts and "W(1)37,2" in texts


def test_svg_deep_network_stays_small():
    for p in (None, Param(15, "W", 3, 16), Param(30, "b", 16)):
        root = _tree(DEEP, p)
        assert len(list(root.iter())) < MAX_ELEMENTS_DEEP
        assert len(_nodes(root)) <= 6 * 7 + 1
    texts = _texts(_tree(DEEP, Param(15, "W", 3, 16)))
    assert "layers 2–13" in texts and "layers 16–28" in texts


def test_svg_escapes_generated_text():
    odd = Activation("x<&>", "f", X, "a name no parser allows")
    spec = dataclasses.replace(S222, activations=(odd, odd))
    text = svg(spec, Param(1, "W", 1, 1))
    assert "x&lt;&amp;&gt;" in text
    ET.fromstring(text)


def test_svg_is_standalone():
    text = svg(S222, Param(1, "W", 1, 1))
    assert text.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert "<script" not in text and "@font-face" not in text and "href" not in text


def test_settings_errors():
    with pytest.raises(TypeError, match="colour"):
        tikz(S222, colour="red")
    with pytest.raises(ValueError, match="max_neurons"):
        svg(S222, max_neurons=1)
    with pytest.raises(ValueError, match="legend"):
        tikz(S222, legend="yes")
    with pytest.raises(ValueError, match="notation"):
        tikz(S222, notation="ji")


def test_settings_reach_the_printer():
    text = tikz(S222, Param(1, "W", 1, 2), notation="ij", loss_symbol="C")
    assert r"{$W^{(1)}_{21}$}" in text and r"{$C$}" in text
    texts = _texts(_tree(S222, Param(1, "W", 1, 2), notation="ij", loss_symbol="E", weight_letter="w"))
    assert "w(1)21" in texts and "loss ∂E/∂a" in texts and "input ∂z/∂w = a" in texts


# -- TikZ ------------------------------------------------------------------------
def test_tikz_222_text():
    text = tikz(S222, Param(1, "W", 1, 1))
    assert text.startswith("\\begin{tikzpicture}") and text.endswith("\\end{tikzpicture}\n")
    for line in XCOLOR_DEFINITIONS.values():
        assert line in text
    assert XCOLOR_DEFINITIONS["loss"] == r"\definecolor{deriveLoss}{HTML}{D55E00}"
    assert text.count("deriveInput, line width=2pt") == 1 + 1  # the edge and its legend swatch
    assert (r"\node[circle, draw=deriveActivation, fill=deriveActivation!12, line width=1.1pt, "
            r"minimum size=0.72cm, inner sep=0pt, font=\footnotesize] at (2.2,0.47) "
            r"{$a^{(1)}_{1}$};") in text
    assert r"{$\sigma$}" in text and r"{$W^{(1)}_{11}$}" in text


def test_tikz_golden_1_1():
    spec = make_spec([1, 1], "identity", "sse", bias=False)
    assert tikz(spec, Param(1, "W", 1, 1), legend=False) == r"""\begin{tikzpicture}[x=1cm, y=1cm, font=\small]
\definecolor{deriveLoss}{HTML}{D55E00}
\definecolor{deriveActivation}{HTML}{332288}
\definecolor{deriveWeight}{HTML}{4477AA}
\definecolor{deriveInput}{HTML}{882255}
\draw[deriveInput, line width=2pt, line cap=round] (0.36,0) -- (1.84,0);
\draw[deriveLoss, line width=1.1pt, line cap=round] (2.56,0) -- (4.04,0);
\node[circle, draw=deriveInput, fill=deriveInput!12, line width=1.1pt, minimum size=0.72cm, inner sep=0pt, font=\footnotesize] at (0,0) {$x_{1}$};
\node[circle, draw=deriveActivation, fill=deriveActivation!12, line width=1.1pt, minimum size=0.72cm, inner sep=0pt, font=\footnotesize] at (2.2,0) {$a^{(1)}_{1}$};
\node[circle, draw=deriveLoss, fill=deriveLoss!12, line width=1.1pt, minimum size=0.72cm, inner sep=0pt, font=\footnotesize] at (4.4,0) {$L$};
\node[anchor=north, font=\scriptsize] at (4.4,-0.56) {$\sum_j (a_j - y_j)^2$};
\node[anchor=north] at (2.2,-0.56) {$\mathrm{id}$};
\node[anchor=center, font=\scriptsize, text=deriveInput, fill=white, inner sep=1pt] at (0.92,0) {$W^{(1)}_{11}$};
\end{tikzpicture}
"""


def test_role_colours_cover_the_roles():
    assert tuple(ROLE_COLOURS) == ROLES
    assert all(len(h) == 7 and h.startswith("#") for h in ROLE_COLOURS.values())


def test_one_role_table_feeds_diagram_documents_and_which():
    """The diagram's legend, the documents' legend and which's colour key read one table."""
    from derive.render.formulas import Style

    assert tuple(roles.ROLES) == ROLES
    assert [r.xcolor for r in roles.ROLES.values()] == ["deriveLoss", "deriveActivation",
                                                         "deriveWeight", "deriveInput"]
    legend = Style(target="md").legend()
    assert [(e["role"], e["name"], e["colour"]) for e in legend] == [
        (r.name, r.words, r.colour) for r in roles.ROLES.values()]
    assert Style(target="tex").legend()[0]["square"] == r"\textcolor{deriveLoss}{\blacksquare}"
    from derive.api import Network

    picture = svg(Network([2, 2, 1]).spec, Param(1, "W", 1, 1))
    for r in roles.ROLES.values():
        assert r.colour in picture
    assert "weight ∂z/∂a = W" in picture and "loss ∂L/∂a" in picture and "input ∂z/∂W = a" in picture


def test_tikz_needs_no_amsmath():
    text = tikz(SOFTMAX, Param(2, "W", 2, 1))
    assert r"{$\mathrm{softmax}$}" in text and r"\operatorname" not in text


def _pdflatex_or_skip():
    exe = shutil.which("pdflatex")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pdflatex is missing, and CI must run the TikZ tests")
        pytest.skip("pdflatex not installed")
    return exe


@pytest.mark.parametrize("spec, p", [
    (S222, Param(1, "W", 1, 1)), (WIDE, Param(1, "W", 37, 2)), (DEEP, Param(15, "W", 3, 16)),
    (SOFTMAX, Param(2, "W", 2, 1)), (S222, None), (BIAS, Param(1, "b", 2)),
], ids=["222", "wide", "deep", "softmax", "plain", "bias"])
def test_tikz_compiles(tmp_path, spec, p):
    exe = _pdflatex_or_skip()
    (tmp_path / "pic.tex").write_text(
        "\\documentclass{article}\n\\usepackage{tikz,xcolor,amsmath}\n\\begin{document}\n"
        + tikz(spec, p) + "\\end{document}\n", encoding="utf-8")
    run = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
                          "pic.tex"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=PDFLATEX_TIMEOUT)
    errors = [line for line in run.stdout.splitlines() if line.startswith(("!", "l."))]
    assert run.returncode == 0, errors
    assert (tmp_path / "pic.pdf").stat().st_size > 1000
