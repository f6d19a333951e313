"""PDFs: compiled by pdflatex, read back with pdftotext, rendered with pdftoppm.

Outside CI a machine without TeX skips these; with CI=true they fail instead,
since ./dev.sh setup installs TeX and a skipped PDF test proves nothing.
The matrix compiles one document per network, and the networks together
cover every activation and every loss of the registry (built from the
tables, so a new row is covered without editing this file).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from derive import Network, load
from derive.cli import DEFAULT_EXAMPLE, main
from derive.render.document import build
from derive.errors import ToolError
from derive.spec.registry import ACTIVATIONS, LOSSES
from derive.check.points import Sampler

TOOLS = ("pdflatex", "pdftotext", "pdftoppm", "pdfinfo")
DEFAULT_STEM = "backpropagation-in-a-2-2-2-sigmoid-network"


@pytest.fixture(autouse=True)
def tex_tools():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        message = f"missing {', '.join(missing)}: run ./dev.sh setup"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def pdf_text(pdf: Path) -> str:
    """The PDF's text with every run of white space made one space."""
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True,
                          text=True, check=True, timeout=60).stdout
    return " ".join(text.split())


def pdf_pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def render_page(pdf: Path, page: int, out: Path) -> np.ndarray:
    """Page `page` as an RGB array (height, width, 3), read from pdftoppm's PPM."""
    prefix = out / f"page{page}"
    subprocess.run(["pdftoppm", "-r", "40", "-f", str(page), "-l", str(page), str(pdf), str(prefix)],
                   check=True, timeout=60)
    ppm = next(out.glob(f"page{page}*.ppm")).read_bytes()
    m = re.match(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s", ppm)
    width, height = int(m.group(1)), int(m.group(2))
    return np.frombuffer(ppm[m.end():], dtype=np.uint8).reshape(height, width, 3)


def test_default_command_writes_pdf_tex_md(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 0
    out = tmp_path / "output"
    pdf, tex, md = (out / f"{DEFAULT_STEM}{s}" for s in (".pdf", ".tex", ".md"))
    assert pdf.is_file() and tex.is_file() and md.is_file()
    assert (out / f"{DEFAULT_STEM}-network.svg").is_file()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temporaries
    source = tex.read_text()
    assert r"\documentclass[11pt,a4paper]{article}" in source
    assert r"\frac{\partial L}{\partial W^{(1)}_{11}} &= \textcolor{deriveLoss}" in source
    assert r"\delta^{(2)}_{j} = \frac{\partial L}{\partial a^{(2)}_{j}}\, \sigma'\bigl(z^{(2)}_{j}\bigr)" in source
    assert "$0.000438567734$" in source
    assert "The loss: $L = 0.298371109$." in md.read_text()
    text = pdf_text(pdf)
    for words in ["Backpropagation in a 2-2-2 sigmoid network", "1 The network",
                  "4 The chain rule, step by step", "5 The delta recursion and the matrix form",
                  "A worked example with numbers", "Verification",
                  "0.000438567734", "0.149780716", "0.298371109", "Both, chained."]:
        assert words in text, words
    page = render_page(pdf, 1, tmp_path)
    assert page.std() > 20  # not blank
    assert (page.min(axis=2) < 128).mean() > 0.01  # there is ink


def test_default_pdf_has_the_colour_coded_chain_rule(tmp_path):
    build(load(DEFAULT_EXAMPLE), outdir=tmp_path, formats="pdf")
    pdf = tmp_path / f"{DEFAULT_STEM}.pdf"
    pages = pdf_pages(pdf)
    assert 4 <= pages <= 8
    found = set()
    for n in range(1, pages + 1):
        rgb = render_page(pdf, n, tmp_path).astype(int)
        for role, hexcode in {"loss": "D55E00", "activation": "332288", "input": "882255"}.items():
            target = np.array([int(hexcode[i:i + 2], 16) for i in (0, 2, 4)])
            if (np.abs(rgb - target).sum(axis=2) < 60).sum() > 20:
                found.add(role)
    assert found == {"loss", "activation", "input"}


def _matrix_networks() -> list[Network]:
    """Few networks that together use every activation and every loss once at least."""
    elementwise = [a for a, row in ACTIVATIONS.items() if not row.vector]
    nets, hidden = [], list(elementwise)
    for loss, row in LOSSES.items():
        out = ("softmax" if loss == "cross_entropy" and any(r.vector for r in ACTIVATIONS.values())
               else "sigmoid" if row.probabilistic else hidden.pop() if hidden else "identity")
        acts = [hidden.pop() if hidden else "tanh" for _ in range(2)] + [out]
        nets.append(Network([2, 3, 3, 2 if out != "softmax" else 3], activation=acts, loss=loss,
                            title=f"Matrix: {', '.join(acts)}; {loss}"))
    while hidden:
        nets.append(Network([2, 2, 2], activation=[hidden.pop(), "identity"], loss="half_sse"))
    used = {r.name for n in nets for r in n.spec.activations} | {n.spec.loss.name for n in nets}
    assert used >= set(ACTIVATIONS) | set(LOSSES)
    with_values = []
    for net in nets:
        v = Sampler(net.evaluator, seed=5).fresh()
        raw = {"x": list(v.x), "y": list(v.y), "learning_rate": 0.1,
               **{f"W{l}": [list(r) for r in w] for l, w in v.W.items()},
               **{f"b{l}": list(b) for l, b in v.b.items()}}
        with_values.append(Network(list(net.spec.layers), [r.name for r in net.spec.activations],
                                   net.spec.loss.name, title=net.spec.title, values=raw))
    return with_values


def test_pdf_matrix_every_activation_and_loss(tmp_path):
    start = time.perf_counter()
    nets = _matrix_networks()
    for i, net in enumerate(nets):
        build(net, outdir=tmp_path, formats="pdf", stem=f"m{i}")
        text = pdf_text(tmp_path / f"m{i}.pdf")
        assert net.spec.loss.name in text
        assert "They agree" in text
        for row in net.spec.activations:
            assert f"({row.name})" in text or row.name in text
    elapsed = time.perf_counter() - start
    print(f"{len(nets)} PDFs in {elapsed:.1f} s")


def test_hostile_title_prints_literally_and_runs_nothing(tmp_path):
    title = r"%$&#_{}\~^ σ \input{/etc/passwd} \VAR{network}"
    build(Network([2, 1], title=title), outdir=tmp_path, formats="pdf,tex", stem="hostile")
    text = pdf_text(tmp_path / "hostile.pdf")
    assert r"%$&#_{}\~^ σ \input{/etc/passwd} \VAR{network}" in text
    assert "root:" not in text
    assert r"\textbackslash{}input\{/etc/passwd\}" in (tmp_path / "hostile.tex").read_text()


def test_template_reading_a_file_outside_is_refused(tmp_path):
    user = tmp_path / "tpl" / "tex"
    user.mkdir(parents=True)
    (user / "intro.tex").write_text("\\input{/etc/passwd}\n")
    with pytest.raises(ToolError, match="not found"):
        build(Network([2, 1]), outdir=tmp_path / "out", formats="pdf", templates=tmp_path / "tpl")
    assert not (tmp_path / "out" / "net-2-1.pdf").exists()


def test_compile_error_names_the_log_and_keeps_the_tex(tmp_path, capsys):
    user = tmp_path / "tpl" / "tex"
    user.mkdir(parents=True)
    (user / "intro.tex").write_text("My own words for \\VAR{network.sizes}.\n\\thiscommanddoesnotexist{} here\n")
    out = tmp_path / "out"
    code = main(["explain", "--layers", "2,1", "--format", "pdf", "-o", str(out),
                 "--templates", str(tmp_path / "tpl")])
    err = capsys.readouterr().err
    assert code == 3
    assert err.count("\n") == 1
    assert "Undefined control sequence" in err and f"{out / 'net-2-1.log'}" in err
    # the line of the .tex is traced back to the user's template that wrote it
    assert "of the .tex), written by your template tex/intro.tex line 2;" in err
    assert (out / "net-2-1.log").is_file() and "thiscommanddoesnotexist" in (out / "net-2-1.tex").read_text()
    assert not (out / "net-2-1.pdf").exists()


def test_explain_30_layers_width_16(tmp_path):
    # how long it takes is measured in benchmarks/, not asserted here
    code = main(["explain", "--layers", ",".join(["16"] * 31), "--activation", "tanh",
                 "-o", str(tmp_path)])
    assert code == 0
    pdf = tmp_path / "net-16-to-16-30-layers.pdf"
    md = (tmp_path / "net-16-to-16-30-layers.md").read_text()
    assert 3 <= pdf_pages(pdf) <= 15
    assert 5_000 < len(md) < 80_000
    text = pdf_text(pdf)
    assert "8160 parameters" in text  # 30 * (16 * 16 + 16)


def pdf_info(pdf: Path) -> str:
    return subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout


def test_title_metadata_and_letter_paper(tmp_path):
    title = "Backprop: σ ∂L & 50% $x_1$"
    net = Network([2, 2, 1], title=title)
    build(net, outdir=tmp_path, formats="pdf", stem="letter", paper="letter")
    info = pdf_info(tmp_path / "letter.pdf")
    assert re.search(r"^Title:\s+(.*)$", info, re.M).group(1) == title
    assert re.search(r"^Page size:\s+612 x 792 pts \(letter\)", info, re.M)
    build(net, outdir=tmp_path, formats="pdf", stem="a4")
    assert re.search(r"^Page size:\s+595\.\d* x 841\.\d* pts \(A4\)", pdf_info(tmp_path / "a4.pdf"), re.M)
    # without a title, the default title is the metadata too
    assert main(["explain", "--layers", "2,1", "--format", "pdf", "--paper", "letter",
                 "-o", str(tmp_path)]) == 0
    info = pdf_info(tmp_path / "net-2-1.pdf")
    assert "Title:           Backpropagation in a 2-1 sigmoid network" in info and "(letter)" in info


def test_mnist_sized_document_has_no_half_empty_first_page(tmp_path):
    """784-30-10 with values: the tall diagram floats to a later page and the text fills
    page 1; the 784 inputs are shortened, so no line runs off the page."""
    net = Network([784, 30, 10], activation="sigmoid")
    v = Sampler(net.evaluator, seed=0).fresh()
    raw = {"x": list(v.x), "y": list(v.y), "learning_rate": 0.5,
           **{f"W{l}": [list(r) for r in w] for l, w in v.W.items()},
           **{f"b{l}": list(b) for l, b in v.b.items()}}
    build(Network([784, 30, 10], activation="sigmoid", values=raw, title="MNIST"),
          outdir=tmp_path, formats="pdf,tex", stem="mnist")
    page = render_page(tmp_path / "mnist.pdf", 1, tmp_path)
    inked = (page.min(axis=2) < 128).any(axis=1)
    height = page.shape[0]
    # the lower third of the text area (above the page number) holds text, not white
    assert inked[int(0.6 * height):int(0.88 * height)].mean() > 0.2  # 0.05 when half empty
    text = pdf_text(tmp_path / "mnist.pdf")
    assert "2 The forward pass and the loss" in text.split("The network. In colour")[0]
    assert "R784" in text
    for n in range(1, pdf_pages(tmp_path / "mnist.pdf") + 1):  # no ink in the right margin
        page = render_page(tmp_path / "mnist.pdf", n, tmp_path)
        ink_columns = np.nonzero((page.min(axis=2) < 128).any(axis=0))[0]
        assert ink_columns[-1] < 0.92 * page.shape[1], n  # the text ends at 89.5% of A4's width


def test_long_where_clauses_go_on_their_own_line(tmp_path):
    """An ELU layer's two-branch derivative after a sum of three terms made "where delta =
    ..." run 370 pt off the page; on its own line it fits (no overfull box over 5 pt)."""
    net = Network([3, 4, 3], activation=["elu", "softmax"], loss="cross_entropy")
    build(net, outdir=tmp_path, formats="tex", stem="elu")
    tex = (tmp_path / "elu.tex").read_text()
    assert r", \\ &\qquad \text{where } \delta^{(1)}_{1} = " in tex
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
                          "elu.tex"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    widths = [float(w) for w in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)",
                                           (tmp_path / "elu.log").read_text())]
    assert max(widths, default=0) < 5, widths
