"""Documents and `which` for a minibatch, a regulariser and the row layout (issue #12).

The references are written here from the textbook definitions and share nothing
with derive: the batch loss L = (1/m) sum_n CE(softmax(W2 tanh(W1 x_n + b1) + b2), y_n)
+ (l2/2) sum w^2 in mpmath, differentiated by central differences at 40 digits, and
each example's deltas from a NumPy backward pass written out (a - y at the output,
W^T delta * (1 - a^2) below).  The printed numbers (9 significant digits in the
totals, 6 in the per-example tables) must agree with them to the digits printed.

    python tests/test_batch_documents.py --update    rewrites examples/bias-minibatch.md
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import mpmath
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mathjax_util import markdown_math, mathjax_errors  # noqa: E402

from derive import Network, load  # noqa: E402
from derive.cli import main  # noqa: E402
from derive.render.document import build, render_latex, render_markdown  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "examples" / "minibatch-l2.toml"
PAGE = REPO / "examples" / "bias-minibatch.md"
PAGE_COMMAND = ["which", str(SPEC), "b2[1]", "--question", "bias-batch", "--format", "md"]

#: The row-layout minibatch: W<l> written n_(l-1) x n_l, Z = X W + b.
ROW_VALUES = {"x": [[0.1, 0.2], [0.3, -0.1], [0.5, 0.5]], "y": [[1, 0], [0, 1], [1, 0]],
              "W1": [[0.1, 0.2, 0.3], [-0.2, 0.4, 0.1]], "b1": [0.0, 0.1, -0.1],
              "W2": [[0.3, -0.2], [0.1, 0.5], [-0.4, 0.2]], "b2": [0.05, -0.05]}


def row_net() -> Network:
    return Network([2, 3, 2], ["tanh", "softmax"], "cross_entropy", batch=3, layout="row",
                   regularization={"l2": 0.01}, values=ROW_VALUES)


def column_values() -> dict:
    return tomllib.loads(SPEC.read_text())["values"]


def cli(*args) -> tuple[str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return out.getvalue(), err.getvalue(), code


# -- the independent references -----------------------------------------------------
def column_form(v: dict, row: bool) -> dict:
    """W<l> as n_l x n_(l-1) (the row layout's W<l> transposed), as mpmath matrices."""
    out = {}
    for name in ("W1", "W2"):
        w = np.array(v[name], dtype=float)
        out[name] = (w.T if row else w).tolist()
    out["b1"], out["b2"] = list(v["b1"]), list(v["b2"])
    return out


def batch_loss(p: dict, xs, ys, l2: float) -> mpmath.mpf:
    """(1/m) sum_n -sum_j y_j ln softmax(z2)_j + (l2/2) sum w^2, from the definitions."""
    total = mpmath.mpf(0)
    for x, y in zip(xs, ys):
        a1 = [mpmath.tanh(sum(mpmath.mpf(p["W1"][j][k]) * x[k] for k in range(len(x))) + p["b1"][j])
              for j in range(len(p["b1"]))]
        z2 = [sum(mpmath.mpf(p["W2"][j][k]) * a1[k] for k in range(len(a1))) + p["b2"][j]
              for j in range(len(p["b2"]))]
        norm = mpmath.log(sum(mpmath.exp(z) for z in z2))
        total += -sum(y[j] * (z2[j] - norm) for j in range(len(z2)))
    weights = [w for name in ("W1", "W2") for row in p[name] for w in row]
    return total / len(xs) + mpmath.mpf(l2) / 2 * sum(mpmath.mpf(w) ** 2 for w in weights)


def reference_gradients(v: dict, row: bool, l2: float) -> dict[str, float]:
    """dL/dp for every parameter (named in the column form W<l>[j,k]) by central differences."""
    mpmath.mp.dps = 40
    p = column_form(v, row)
    h = mpmath.mpf("1e-15")
    out = {}
    for name in ("W1", "b1", "W2", "b2"):
        shape = np.array(p[name], dtype=object).shape
        for idx in np.ndindex(shape):
            def at(delta):
                q = json.loads(json.dumps(p))
                cell = q[name]
                for i in idx[:-1]:
                    cell = cell[i]
                cell[idx[-1]] = mpmath.mpf(cell[idx[-1]]) + delta
                return batch_loss(q, v["x"], v["y"], l2)
            key = f"{name}[{','.join(str(i + 1) for i in idx)}]"
            out[key] = float((at(h) - at(-h)) / (2 * h))
    return out


def reference_deltas(v: dict, row: bool) -> list[dict[int, np.ndarray]]:
    """Each example's delta(1), delta(2) by a NumPy backward pass written out."""
    p = {k: np.array(w, dtype=float) for k, w in column_form(v, row).items()}
    out = []
    for x, y in zip(np.array(v["x"], float), np.array(v["y"], float)):
        a1 = np.tanh(p["W1"] @ x + p["b1"])
        z2 = p["W2"] @ a1 + p["b2"]
        a2 = np.exp(z2 - z2.max()) / np.exp(z2 - z2.max()).sum()
        d2 = a2 - y
        out.append({2: d2, 1: (p["W2"].T @ d2) * (1 - a1 ** 2)})
    return out


# -- reading numbers back from the documents -----------------------------------------
def number(tex: str) -> float:
    r"""'0.0255' or '1.5 \times 10^{-5}' -> float."""
    tex = tex.strip().strip("$")
    m = re.fullmatch(r"(-?[\d.]+) \\times 10\^\{(-?\d+)\}", tex)
    return float(m.group(1)) * 10 ** int(m.group(2)) if m else float(tex)


def symbol_name(tex: str, row: bool) -> str:
    r"""'W^{(1)}_{21}' -> 'W1[2,1]' in the column form (the row layout's W^{(1)}_{kj} swapped)."""
    m = re.fullmatch(r"\$W\^\{\((\d)\)\}_\{(\d)(\d)\}\$", tex.strip())
    if m:
        l, a, b = m.groups()
        return f"W{l}[{b},{a}]" if row else f"W{l}[{a},{b}]"
    l, j = re.fullmatch(r"\$b\^\{\((\d)\)\}_\{(\d)\}\$", tex.strip()).groups()
    return f"b{l}[{j}]"


def table_after(text: str, heading: str) -> list[list[str]]:
    """The rows (cells) of the first Markdown table after the line starting `heading`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    rows, seen = [], False
    for line in lines[start + 1:]:
        if line.startswith("|"):
            seen = True
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif seen:
            break
    return [r for r in rows[2:]]  # without the header and the |---| line


# -- tests ---------------------------------------------------------------------------
@pytest.mark.parametrize("make,row", [(lambda: load(SPEC), False), (row_net, True)])
def test_worked_example_averaged_gradient_matches_central_differences(make, row):
    net = make()
    v = ROW_VALUES if row else column_values()
    md = render_markdown(net)
    reference = reference_gradients(v, row, 0.01)
    rows = table_after(md, "The gradient of the loss that is trained")
    assert len(rows) == net.spec.parameter_count
    for cells in rows:
        name = symbol_name(cells[0], row)
        value, scaled, reg, grad = (number(c) for c in cells[1:5])
        assert grad == pytest.approx(reference[name], rel=2e-8, abs=1e-12), name
        assert scaled + reg == pytest.approx(grad, rel=1e-8, abs=1e-12)
        assert reg == pytest.approx(0.01 * value if name.startswith("W") else 0.0, abs=1e-15)


@pytest.mark.parametrize("make,row", [(lambda: load(SPEC), False), (row_net, True)])
def test_worked_example_shows_every_example_delta(make, row):
    net = make()
    v = ROW_VALUES if row else column_values()
    md = render_markdown(net)
    deltas = reference_deltas(v, row)
    for n, reference in enumerate(deltas, start=1):
        rows = table_after(md, f"**Example {n}:**")
        layer = None
        for cells in rows:
            layer = int(cells[0].split()[0]) if cells[0] else layer
            j = int(cells[1])
            assert number(cells[4]) == pytest.approx(reference[layer][j - 1], rel=1e-5, abs=1e-9)
        assert len(rows) == 5
    # the loss line adds the examples' losses and R
    assert "The loss: $L = \\frac{1}{%d}\\bigl(" % len(deltas) in md and ", plus $R = " in md


def test_matrix_form_writes_the_shapes():
    column = render_markdown(load(SPEC))
    # dW2 (2 x 3) = (1/m) dZ2 (2 x 4) A1^T (4 x 3), and the general form
    assert (r"\underset{2 \times 3}{\frac{\partial L}{\partial W^{(2)}}} &= \frac{1}{m}\, "
            r"\underset{2 \times 4}{dZ^{(2)}}\, \underset{4 \times 3}{(A^{(1)})^{\top}} + \lambda_{2} W^{(2)}") in column
    assert (r"\underset{n_{l} \times n_{l-1}}{\frac{\partial L}{\partial W^{(l)}}} &= \frac{1}{m}\, "
            r"\underset{n_{l} \times m}{dZ^{(l)}}\, \underset{m \times n_{l-1}}{(A^{(l-1)})^{\top}}") in column
    assert r"\underset{3 \times 4}{dZ^{(1)}} &= \underset{3 \times 2}{(W^{(2)})^{\top}}\, \underset{2 \times 4}{dZ^{(2)}}" in column
    assert r"\underset{2 \times 1}{\frac{\partial L}{\partial \boldsymbol{b}^{(2)}}} &= \frac{1}{m}\, " \
           r"\underset{2 \times 4}{dZ^{(2)}}\, \underset{4 \times 1}{\mathbf{1}}" in column
    row = render_markdown(row_net())
    # the row layout: dW2 (3 x 2) = (1/m) A1^T (3 x 3) dZ2 (3 x 2); the delta goes back as dZ W^T
    assert (r"\underset{3 \times 2}{\frac{\partial L}{\partial W^{(2)}}} &= \frac{1}{m}\, "
            r"\underset{3 \times 3}{(A^{(1)})^{\top}}\, \underset{3 \times 2}{dZ^{(2)}}") in row
    assert r"\underset{3 \times 3}{dZ^{(1)}} &= \underset{3 \times 2}{dZ^{(2)}}\, \underset{2 \times 3}{(W^{(2)})^{\top}}" in row
    assert r"\underset{1 \times 2}{\frac{\partial L}{\partial \boldsymbol{b}^{(2)}}} &= \frac{1}{m}\, " \
           r"\underset{1 \times 3}{\mathbf{1}^{\top}}" in row
    # the per-example equations of the row layout read a W and delta W^T, with W^{(l)}_{kj}
    assert r"z^{(l)}_{j} = \sum_{k} a^{(l-1)}_{k}\, W^{(l)}_{kj} + b^{(l)}_{j}" in row
    assert r"\boldsymbol{\delta}^{(l)} = \boldsymbol{\delta}^{(l+1)} \bigl(W^{(l+1)}\bigr)^{\top}" in row
    assert r"\frac{\partial L}{\partial W^{(l)}} = \bigl(\boldsymbol{a}^{(l-1)}\bigr)^{\top} \boldsymbol{\delta}^{(l)}" in row


def test_batch_section_states_the_conventions():
    md = render_markdown(load(SPEC))
    assert "## 6. From one example to the minibatch" in md and "## 7. Every gradient" in md
    assert "## 8. A worked example with numbers" in md and "## 9. Verification" in md
    assert r"\frac{\partial L}{\partial b^{(l)}_{j}} = \frac{1}{m} \sum_{n=1}^{m} \left(\delta^{(l)}_{j}\right)_{[n]}" in md
    assert r"\lambda_{2} W^{(l)}_{jk}" in md and "is not divided by $m$" in md
    assert "**Where the $1/m$ sits.**" in md and r"$dZ^{[L]} = A^{[L]} - Y$" in md
    assert r"dW^{[l]} = \frac{1}{m}\, dZ^{[l]} A^{[l-1]\top}" in md
    # every gradient of section 7 is the batch form (as grad prints it)
    assert r"\frac{\partial L}{\partial W^{(2)}_{11}} &= \frac{1}{m} \sum_{n=1}^{m} \left(" in md
    # the chain rule's values are example 1's, and say so
    assert r"$\partial L_{[1]}/\partial W^{(2)}_{11} = " in md


def test_single_example_documents_have_no_batch_section():
    net = Network([2, 2, 1], "sigmoid", "bce", values={"x": [0.5, -1.0], "y": [1.0],
                                                       "W1": [[0.3, -0.2], [0.4, 0.1]], "b1": [0.1, -0.3],
                                                       "W2": [[0.6, -0.5]], "b2": [0.0]})
    md = render_markdown(net)
    assert "From one example to the minibatch" not in md and "## 6. Every gradient" in md
    assert "## 7. A worked example with numbers" in md and "## 8. Verification" in md
    assert r"\underset" not in md and "_{[n]}" not in md and "_{[1]}" not in md
    answer = net.which("b2[1]")
    assert "Over the minibatch" not in answer.markdown() and "batch" not in answer.to_json()


def test_markdown_parses_in_mathjax():
    column, row = load(SPEC), row_net()
    texts = [render_markdown(column), render_markdown(row),
             column.which("b2[1]", question="bias-batch").markdown(),
             column.which("W1[1,1]", question="l2").markdown(), column.which().markdown(),
             row.which("W2[1,2]").markdown(),
             Network([2, 2, 1], "sigmoid", "bce", batch=2, reduction="sum",
                     regularization={"l1": 0.1, "biases": True}).explain("md"),
             Network([2, 2, 1], "sigmoid", "bce", layout="row").explain("md")]
    formulas = [f for text in texts for f in markdown_math(text)]
    assert len(formulas) > 200
    errors = mathjax_errors(formulas)
    assert errors == [], errors[:5]


@pytest.fixture
def tex_tools():
    missing = [t for t in ("pdflatex", "pdftotext") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: run ./dev.sh setup")


@pytest.mark.parametrize("make", [lambda: load(SPEC), row_net])
def test_pdf_compiles(make, tmp_path, tex_tools):
    written = build(make(), formats="pdf", outdir=tmp_path, stem="batch")
    text = " ".join(subprocess.run(["pdftotext", str(written[0]), "-"], capture_output=True,
                                   text=True, check=True).stdout.split())
    assert "From one example to the minibatch" in text
    assert "Why the bias gradients are summed" in text and "Example 3:" in text


def test_latex_answers_compile(tmp_path, tex_tools):
    net = load(SPEC)
    body = "\n\n".join([net.which("b2[1]", question="bias-batch").latex(),
                        net.which("W1[1,1]", question="l2").latex(), render_latex(net, snippet=True)])
    (tmp_path / "a.tex").write_text("\\documentclass{article}\\usepackage{amsmath,amssymb,xcolor}\n"
                                    "\\begin{document}\n" + body + "\n\\end{document}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "a.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]


def test_which_bias_batch_names_each_example_and_the_mean():
    net = load(SPEC)
    v = column_values()
    md = net.which("b2[1]", question="bias-batch").markdown()
    assert md.startswith("**Summed over the examples: the bias enters every example's $z$ with coefficient 1.**")
    deltas = [d[2][0] for d in reference_deltas(v, False)]
    shown = [number(m) for m in re.findall(r"\\partial L_\{\[\d\]\}/\\partial b\^\{\(2\)\}_\{1\} = ([^$]+)\$", md)]
    assert shown == pytest.approx(deltas, rel=1e-8)
    total = re.search(r"\\bigr\) = ([^$]+)\$\.", md).group(1)
    assert number(total) == pytest.approx(reference_gradients(v, False, 0.01)["b2[1]"], rel=2e-8)
    assert number(total) == pytest.approx(np.mean(deltas), rel=1e-8)
    data = net.which("b2[1]").to_json()
    assert data["batch"]["per_example"] == pytest.approx(deltas, rel=1e-12)
    assert data["batch"]["regularizer"] == 0 and sum(data["path_values"]) == pytest.approx(data["value"])


def test_which_l2_names_the_regulariser_term():
    net = load(SPEC)
    v = column_values()
    md = net.which("W1[1,1]", question="l2").markdown()
    assert md.startswith("**The regulariser adds its own term to the gradient")
    assert r"\lambda_{2} W^{(1)}_{11}" in md and r"\lambda_{2} = 0.01" in md
    w = v["W1"][0][0]
    m = re.search(r"\\bigr\) = ([^$ ]+) ([+-]) ([^$ ]+) = ([^$]+)\$", md)
    scaled, sign, reg, total = number(m.group(1)), m.group(2), number(m.group(3)), number(m.group(4))
    assert (reg if sign == "+" else -reg) == pytest.approx(0.01 * w)
    assert total == pytest.approx(reference_gradients(v, False, 0.01)["W1[1,1]"], rel=2e-8)
    data = net.which("W1[1,1]").to_json()
    assert data["batch"]["regularizer"] == pytest.approx(0.01 * w)
    assert sum(data["path_values"]) + data["batch"]["regularizer"] == pytest.approx(data["value"], rel=1e-9)
    assert scaled == pytest.approx(data["batch"]["scaled_sum"], rel=1e-8)
    # auto mentions both the batch sum and the regulariser's term
    auto = net.which("W1[1,1]").markdown()
    assert "**Over the minibatch** ($m = 4$)" in auto and "adds the regulariser's term" in auto


@pytest.mark.parametrize("args,message", [
    (["--layers", "2,2,1", "b2[1]", "--question", "bias-batch"], "batch = 1"),
    (["--layers", "2,2,1", "--batch", "2", "W2[1,1]", "--question", "bias-batch"], "is not a bias"),
    (["--layers", "2,2,1", "W2[1,1]", "--question", "l2"], "no regulariser"),
])
def test_which_questions_that_do_not_fit(args, message):
    out, err, code = cli("which", *args)
    assert code == 2 and err.startswith("derive: --question") and message in err
    assert len(err.strip().splitlines()) == 1


def test_bias_minibatch_page_is_what_the_command_prints():
    out, err, code = cli(*PAGE_COMMAND)
    assert code == 0, err
    assert PAGE.read_text() == out, "run: python tests/test_batch_documents.py --update"
    assert 'derive which examples/minibatch-l2.toml "b2[1]" --question bias-batch' in \
        (REPO / "README.md").read_text()


if __name__ == "__main__" and "--update" in sys.argv:
    out, err, code = cli(*PAGE_COMMAND)
    assert code == 0, err
    PAGE.write_text(out)
    print(f"wrote {PAGE}")
