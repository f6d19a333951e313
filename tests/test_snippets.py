"""Snippets and parts: LaTeX fragments that course notes, slides and exams \\input.

Every example in examples/ and the default example is turned into a snippet
by the command a user types (`derive explain SPEC --snippet`), and the
snippets are compiled by pdflatex inside three documents a teacher writes:
an article, a beamer frame per snippet and an `exam`-class question per
snippet, each with nothing but amsmath and xcolor added (the snippet says it
needs those).  Outside CI a machine without pdflatex or without a class
skips; with CI=true it fails, since ./dev.sh setup installs them.

Parts (`--part`) are checked for what they hold and leave out, and the
worked numbers of the `example` part against a forward pass and central
differences written here in mpmath.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import mpmath
import pytest

from derive.cli import DEFAULT_EXAMPLE, main
from derive.render.document import PARTS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: The example specs (files with layers; tiny-values.toml holds values only), and the default.
SPECS = sorted(p for p in EXAMPLES.glob("*.toml") if "layers" in tomllib.loads(p.read_text())) \
    + [DEFAULT_EXAMPLE]
#: How a teacher's document takes a snippet: preamble, and the text around one \input.
HOSTS = {
    "article": (r"\documentclass{article}" "\n" r"\usepackage{amsmath,xcolor}",
                "\\section{%s}\n\\input{%s}\n"),
    "beamer": (r"\documentclass{beamer}" "\n" r"\usepackage{amsmath,xcolor}",
               "\\begin{frame}{%s}\n\\input{%s}\n\\end{frame}\n"),
    "exam": (r"\documentclass{exam}" "\n" r"\usepackage{amsmath,xcolor}",
             "\\begin{questions}\n\\question Derive the gradients of %s.\n\\begin{solution}\n"
             "\\input{%s}\n\\end{solution}\n\\end{questions}\n"),
}


def require(tool: str | None = None, cls: str | None = None) -> None:
    """Skip (fail under CI) when pdflatex or a LaTeX class is missing."""
    missing = tool if tool and shutil.which(tool) is None else None
    if cls and not missing:
        found = subprocess.run(["kpsewhich", cls], capture_output=True, text=True).stdout.strip()
        missing = None if found else f"{cls} (Debian: texlive-latex-extra)"
    if missing:
        message = f"missing {missing}: run ./dev.sh setup"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def snippet(spec: Path, out: Path, *extra: str) -> Path:
    """`derive explain SPEC --snippet ...` as a user runs it; the .tex it wrote."""
    args = ["explain", str(spec), "-o", str(out)] + (list(extra) or ["--snippet"])
    assert main(args) == 0
    written = sorted(out.glob(f"{spec.stem}-*.tex"))
    assert len(written) == 1, written
    return written[0]


def compile_host(host: str, snippets: list[Path], folder: Path) -> str:
    """Compile a `host` document that \\inputs every snippet; return the log."""
    preamble, around = HOSTS[host]
    body = "".join(around % (p.stem, p.name) for p in snippets)
    (folder / f"{host}.tex").write_text(f"{preamble}\n\\begin{{document}}\n{body}\\end{{document}}\n")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                           "-no-shell-escape", "-file-line-error", f"{host}.tex"],
                          cwd=folder, capture_output=True, text=True, timeout=300)
    log = (folder / f"{host}.log").read_text(errors="replace")
    errors = [line for line in log.splitlines() if re.match(r"^(\./)?[\w.-]+\.tex:\d+: |^! ", line)]
    assert proc.returncode == 0 and not errors, (host, errors[:5])
    assert (folder / f"{host}.pdf").stat().st_size > 1000
    return log


@pytest.fixture(scope="module")
def every_snippet(tmp_path_factory) -> list[Path]:
    """The snippet of every example, and each part of the tiny example with values."""
    out = tmp_path_factory.mktemp("snippets")
    paths = [snippet(spec, out) for spec in SPECS]
    tiny = EXAMPLES / "tiny.toml"
    for part in PARTS:
        part_out = out / part
        paths.append(snippet(tiny, part_out, "--values", str(EXAMPLES / "tiny-values.toml"),
                             "--part", part, "--params", "W1[2,1]"))
        shutil.move(paths[-1], out / f"tiny-{part}.tex")
        paths[-1] = out / f"tiny-{part}.tex"
    return paths


def test_snippet_starts_with_a_tex_comment_not_a_stray_brace(every_snippet):
    for path in every_snippet:
        text = path.read_text()
        first = text.splitlines()[0]
        assert first.startswith("% ") and first.endswith("backpropagation equations written by derive."), \
            (path.name, first)
        assert "}" not in first and r"\documentclass" not in text and r"\begin{document}" not in text


def test_no_builtin_template_comment_holds_a_brace():
    """A \\#{ ... } comment ends at its first closing brace: a brace inside would leak
    the rest of the comment into the output (the '. }' of a broken snippet)."""
    from derive.render.templating import TEMPLATES

    for path in sorted(TEMPLATES.glob("*/*")) + sorted(TEMPLATES.glob("*.*")):
        for comment in re.findall(r"\\#\{(.*?)\}", path.read_text(), re.S):
            assert "{" not in comment, (path.name, comment)


@pytest.mark.parametrize("host", HOSTS)
def test_every_snippet_compiles_inside(host, every_snippet, tmp_path):
    require("pdflatex", {"beamer": "beamer.cls", "exam": "exam.cls"}.get(host))
    for path in every_snippet:
        shutil.copy(path, tmp_path / path.name)
    log = compile_host(host, [tmp_path / p.name for p in every_snippet], tmp_path)
    for path in every_snippet:  # every snippet was read, not skipped
        assert f"{path.name}" in log


def test_snippet_does_not_overwrite_the_document(tmp_path):
    tiny = EXAMPLES / "tiny.toml"
    assert main(["explain", str(tiny), "--format", "tex,md", "-o", str(tmp_path)]) == 0
    document = (tmp_path / "tiny.tex").read_text()
    assert main(["explain", str(tiny), "--snippet", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "tiny.tex").read_text() == document
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".svg")) == \
        ["tiny-snippet.md", "tiny-snippet.tex", "tiny.md", "tiny.tex"]
    assert main(["explain", str(tiny), "--part", "recursion,matrix", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "tiny-recursion-matrix.tex").is_file()
    assert (tmp_path / "tiny-recursion-matrix.md").is_file()


def test_part_chain_is_one_chain_rule_alone(tmp_path):
    tex = snippet(EXAMPLES / "tiny.toml", tmp_path, "--part", "chain", "--params", "W2[1,1]").read_text()
    assert tex.count(r"\begin{align*}") == 1
    assert r"\frac{\partial L}{\partial W^{(2)}_{11}} &= \textcolor{deriveLoss}" in tex
    assert r"W^{(1)}" not in tex and "BP1" not in tex and r"\delta^{(1)}_{j}" not in tex
    md = (tmp_path / "tiny-chain.md").read_text()
    assert md.startswith("$$\n\\begin{aligned}\n\\frac{\\partial L}{\\partial W^{(2)}_{11}} &=")
    assert md.count("$$") == 2


def test_part_recursion_and_matrix(tmp_path):
    rec = snippet(EXAMPLES / "tiny.toml", tmp_path, "--part", "recursion").read_text()
    assert r"&\delta^{(2)}_{j} = \frac{\partial L}{\partial a^{(2)}_{j}}\, \sigma'\bigl(z^{(2)}_{j}\bigr)" in rec
    assert "BP1" not in rec and r"\partial W^{(2)}_{11}}" not in rec
    mat = snippet(EXAMPLES / "tiny.toml", tmp_path / "m", "--part", "matrix").read_text()
    assert all(f"(BP{i})" in mat for i in (1, 2, 3, 4))
    # BP2 for the one hidden layer with its number, not "for l = 1: delta^(l)"
    assert (r"\text{for } l = 1:\ \boldsymbol{\delta}^{(1)} = \bigl(W^{(2)}\bigr)^{\top} "
            r"\boldsymbol{\delta}^{(2)} \odot") in mat
    assert r"\delta}^{(l)} = \bigl(W^{(l+1)}\bigr)^{\top} \boldsymbol{\delta}^{(l+1)} \odot \boldsymbol" not in mat


# -- the example part's numbers, against mpmath ------------------------------------------
def _tiny_values() -> dict:
    return tomllib.loads((EXAMPLES / "tiny-values.toml").read_text())


def _loss(v: dict) -> mpmath.mpf:
    """2-3-1 sigmoid, half the sum of squared errors: the textbook forward pass."""
    sig = lambda t: 1 / (1 + mpmath.exp(-t))  # noqa: E731
    a = [mpmath.mpf(t) for t in v["x"]]
    for l in (1, 2):
        a = [sig(sum(mpmath.mpf(w) * t for w, t in zip(row, a)) + mpmath.mpf(b))
             for row, b in zip(v[f"W{l}"], v[f"b{l}"])]
    return sum((t - mpmath.mpf(y)) ** 2 for t, y in zip(a, v["y"])) / 2


def _shifted(v: dict, key: str, j: int, k: int | None, h) -> dict:
    w = {n: [list(r) if isinstance(r, list) else r for r in val] if isinstance(val, list) else val
         for n, val in v.items()}
    if k is None:
        w[key][j] = mpmath.mpf(w[key][j]) + h
    else:
        w[key][j][k] = mpmath.mpf(w[key][j][k]) + h
    return w


def _number(tex: str) -> float:
    m = re.fullmatch(r"\s*(-?[\d.]+)(?: \\times 10\^\{(-?\d+)\})?\s*", tex)
    assert m, tex
    return float(m.group(1)) * (10 ** int(m.group(2)) if m.group(2) else 1)


def test_part_example_numbers_match_mpmath(tmp_path):
    mpmath.mp.dps = 40
    tex = snippet(EXAMPLES / "tiny.toml", tmp_path, "--values", str(EXAMPLES / "tiny-values.toml"),
                  "--part", "example", "--params", "W1[2,1]").read_text()
    v, h = _tiny_values(), mpmath.mpf("1e-15")
    grad = (_loss(_shifted(v, "W1", 1, 0, h)) - _loss(_shifted(v, "W1", 1, 0, -h))) / (2 * h)
    m = re.search(r"^W\^\{\(1\)\}_\{21\} & (\S+) & (.+?) & (.+?) \\\\$", tex, re.M)
    assert m, tex
    assert _number(m.group(1)) == -0.3
    assert abs(_number(m.group(2)) - float(grad)) <= 1e-9 * abs(float(grad))
    assert abs(_number(m.group(3)) - float(-0.3 - v["learning_rate"] * grad)) < 1e-9
    losses = re.search(r"\\\[ L = (\S+)\\quad\\text\{and after one step with \} \\eta = 0\.5\\text\{: \} "
                       r"L = (\S+) \\\]", tex)
    assert losses, tex
    # after: every parameter stepped by its own central difference
    stepped = dict(v)
    for key in ("W1", "b1", "W2", "b2"):
        rows = v[key]
        for j in range(len(rows)):
            for k in (range(len(rows[j])) if isinstance(rows[j], list) else [None]):
                d = (_loss(_shifted(v, key, j, k, h)) - _loss(_shifted(v, key, j, k, -h))) / (2 * h)
                stepped = _shifted(stepped, key, j, k, -v["learning_rate"] * d)
    before, after = _loss(v), _loss(stepped)
    assert abs(_number(losses.group(1)) - float(before)) <= 1e-9 * float(before)
    assert abs(_number(losses.group(2)) - float(after)) <= 1e-9 * float(after)
    assert after < before


@pytest.mark.parametrize("args, message", [
    (["--part", "slides"], "part 'slides'; expected a comma list of local, chain, recursion, matrix, example"),
    (["--part", "example"], "part 'example' needs values"),
    (["--part", ","], "part '(none)'"),
    (["--part", "chain", "--format", "pdf"], "a PDF needs the whole document"),
])
def test_part_errors_are_one_line(args, message, tmp_path, capsys):
    code = main(["explain", str(EXAMPLES / "tiny.toml"), "-o", str(tmp_path)] + args)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("derive: ") and message in err, err
