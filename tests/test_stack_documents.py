"""Documents and `which` for [[layer]] networks (issue #13), against torch autograd.

The CNN (conv-relu-pool-flatten-dense-softmax) and the residual MLP (dense,
batchnorm, dropout, a residual over one layer) of examples/ compile to PDF,
their Markdown parses in MathJax 3, and each holds a card per kind used.
Every number the documents and `which` print is compared with torch
autograd of the network built here in torch.nn.functional: the loss and
gradients, dL/dz of the conv layer (each term of a kernel weight's sum),
the arg-max positions of max_pool2d(return_indices=True), batchnorm's
gradient through x-hat alone (mean and variance detached), the gradient a
dropout input receives, and a weight's share through the identity path
(the skipped block detached) and through the block (the identity detached).

    python tests/test_stack_documents.py --update    rewrites examples/layers/*.md
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from derive.api import load
from derive.cli import main
from derive.render.stack_content import context
from derive.render.stack_document import build_stack, stack_markdown

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mathjax_util import markdown_math, mathjax_errors  # noqa: E402
from test_stack import torch_loss  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CNN, MLP = REPO / "examples" / "cnn.toml", REPO / "examples" / "residual-mlp.toml"
PAGES = sorted((REPO / "examples" / "layers").glob("*.md"))
BLOCK = re.compile(r"(<!-- output: (.*?) -->\n)(.*?)(<!-- /output -->)", re.S)


def run(args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([str(REPO / a) if a.startswith("examples/") else a for a in shlex.split(args)]) == 0
    return out.getvalue()


def update() -> None:
    for page in PAGES:
        page.write_text(BLOCK.sub(lambda m: m.group(1) + run(m.group(2)) + m.group(4), page.read_text()))


def table(path: Path) -> tuple[dict, dict]:
    raw = tomllib.loads(path.read_text())
    return raw, raw.pop("values")


def torch_grads(path: Path) -> tuple[float, dict]:
    spec, values = table(path)
    loss, leaves = torch_loss(spec, values)
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in leaves.items()}


# -- the example pages -------------------------------------------------------------
def test_example_pages_are_what_which_prints_now():
    assert len(PAGES) == 5
    for page in PAGES:
        blocks = BLOCK.findall(page.read_text())
        assert blocks, page
        for _, args, shown, _ in blocks:
            assert shown == run(args), f"{page.name}: {args} (run with --update)"


def test_example_pages_parse_in_mathjax():
    formulas = [f for page in PAGES for f in markdown_math(page.read_text())]
    assert len(formulas) > 40
    assert mathjax_errors(formulas) == []


# -- documents ---------------------------------------------------------------------
@pytest.mark.parametrize("path", [CNN, MLP], ids=["cnn", "residual-mlp"])
def test_document_compiles_parses_and_has_a_card_per_kind(tmp_path, path):
    if shutil.which("pdflatex") is None or shutil.which("pdftotext") is None:
        pytest.skip("no TeX: run ./dev.sh setup")
    net = load(path)
    written = build_stack(net, formats="pdf,tex,md", outdir=tmp_path, stem=path.stem)
    pdf = tmp_path / f"{path.stem}.pdf"
    assert pdf in written and pdf.read_bytes().startswith(b"%PDF")
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout.split())
    md = (tmp_path / f"{path.stem}.md").read_text()
    kinds = list(dict.fromkeys(layer.kind.name for layer in net.spec.layers))
    for kind in kinds:
        assert f"### {kind}\n" in md and f"{kind} How the gradient flows" in text.replace("\n", " ")
    assert [c["kind"] for c in context(net, "md")["cards"]] == kinds
    assert (tmp_path / f"{path.stem}-network.svg").read_text().startswith("<svg")
    errors = mathjax_errors(markdown_math(md))
    assert errors == [], errors[:3]


@pytest.mark.parametrize("path", [CNN, MLP], ids=["cnn", "residual-mlp"])
def test_worked_numbers_equal_torch_autograd(path):
    net = load(path)
    loss, grads = torch_grads(path)
    trace = net.evaluator.trace(net.values())
    worked = context(net, "md", trace)["worked"]
    md = stack_markdown(net)
    assert worked["loss"] == pytest.approx(loss, abs=1e-12)
    for entry in worked["entries"]:
        name, idx = entry["name"].split("[")
        at = tuple(int(i) - 1 for i in idx.rstrip("]").split(","))
        assert entry["value"] == pytest.approx(float(grads[name][at]), abs=1e-12), entry["name"]
        assert f"${entry['printed']}$" in md


def test_maxpool_routes_are_torch_arg_maxes():
    spec, values = table(CNN)
    x = torch.tensor(values["x"], dtype=torch.float64)
    a1 = torch.relu(F.conv2d(x, torch.tensor(values["K1"], dtype=torch.float64),
                             torch.tensor(values["b1"], dtype=torch.float64)))
    _, indices = F.max_pool2d(a1, 2, return_indices=True)
    net = load(CNN)
    pool = context(net, "md", net.evaluator.trace(net.values()))["worked"]["pools"][0]
    width = a1.shape[-1]
    for ch in pool["channels"]:
        expected = sorted((int(i) // width + 1, int(i) % width + 1) for i in indices[0, ch["channel"] - 1].flatten())
        assert sorted(ch["positions"]) == expected


# -- which, number by number ---------------------------------------------------------
def which_json(path: Path, name: str) -> dict:
    return json.loads(run(f"which examples/{path.name} {shlex.quote(name)} --json"))


def _cnn_torch():
    spec, values = table(CNN)
    T = lambda k: torch.tensor(values[k], dtype=torch.float64, requires_grad=k not in ("x", "y"))  # noqa: E731
    P = {k: T(k) for k in ("x", "y", "K1", "b1", "W4", "b4")}
    z1 = F.conv2d(P["x"], P["K1"], P["b1"])
    z1.retain_grad()
    a1 = torch.relu(z1)
    a1.retain_grad()
    a3 = torch.flatten(F.max_pool2d(a1, 2), 1)
    logp = torch.log_softmax(F.linear(a3, P["W4"], P["b4"]), dim=1)
    (-(P["y"] * logp).sum(1).mean()).backward()
    return z1, a1, P


def test_which_conv_weight_terms_and_maxpool_input_match_torch():
    z1, a1, P = _cnn_torch()
    answer = which_json(CNN, "K1[1,1,2,2]")
    assert answer["value"] == pytest.approx(float(P["K1"].grad[0, 0, 1, 1]), abs=1e-12)
    assert len(answer["terms"]) == 2 * 4 * 4
    for t in answer["terms"]:
        n, (p, q) = t["example"] - 1, t["position"]
        assert t["delta"] == pytest.approx(float(z1.grad[n, 0, p - 1, q - 1]), abs=1e-12)
        assert t["a"] == pytest.approx(float(P["x"][n, 0, p, q]), abs=1e-15)
    windows = which_json(CNN, "a1[1,2,1]")["windows"]
    assert [w["example"] for w in windows] == [1, 2]
    for w in windows:
        assert w["gradient"] == pytest.approx(float(a1.grad[w["example"] - 1, 0, 1, 0]), abs=1e-12)
        assert w["argmax_here"] == (float(a1.grad[w["example"] - 1, 0, 1, 0]) != 0)


def _mlp_torch(cut: str | None = None):
    """The residual MLP in torch; cut='block' or 'identity' detaches that path into layer 7,
    cut='bn' keeps batchnorm's mean and variance out of the gradient (x-hat alone)."""
    spec, values = table(MLP)
    P = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in values.items()
         if k not in ("x", "y", "mask3")}
    x, y = (torch.tensor(values[k], dtype=torch.float64) for k in ("x", "y"))
    a1 = torch.tanh(F.linear(x, P["W1"], P["b1"]))
    a1.retain_grad()
    mu, var = a1.mean(0), a1.var(0, unbiased=False)
    if cut == "bn":
        mu, var = mu.detach(), var.detach()
    a2 = P["gamma2"] * (a1 - mu) / torch.sqrt(var + 1e-5) + P["beta2"]
    a2.retain_grad()
    a3 = a2 * torch.tensor(values["mask3"], dtype=torch.float64) / 0.5
    a5 = torch.tanh(F.linear(torch.tanh(F.linear(a3, P["W4"], P["b4"])), P["W5"], P["b5"]))
    a6 = torch.tanh(F.linear(a5.detach() if cut == "block" else a5, P["W6"], P["b6"]))
    a7 = a6 + (a5.detach() if cut == "identity" else a5)
    logp = torch.log_softmax(F.linear(a7, P["W8"], P["b8"]), dim=1)
    (-(y * logp).sum(1).mean()).backward()
    return a1, a2, P


def test_which_residual_split_batchnorm_paths_and_dropout_match_torch():
    answer = which_json(MLP, "W5[1,1]")
    whole, identity, block = (_mlp_torch(cut)[2]["W5"].grad[0, 0].item() for cut in (None, "block", "identity"))
    assert answer["value"] == pytest.approx(whole, abs=1e-12)
    assert answer["paths"]["identity"] == pytest.approx(identity, abs=1e-12)
    assert answer["paths"]["block"] == pytest.approx(block, abs=1e-12)
    a1, a2, P = _mlp_torch()
    hat_only = _mlp_torch("bn")[0]
    for path in which_json(MLP, "a1[2]")["paths"]:
        n = path["example"] - 1
        assert path["total"] == pytest.approx(float(a1.grad[n, 1]), abs=1e-12)
        assert path["x_hat"] == pytest.approx(float(hat_only.grad[n, 1]), abs=1e-12)
    assert which_json(MLP, "gamma2[1]")["value"] == pytest.approx(float(P["gamma2"].grad[0]), abs=1e-12)
    received = which_json(MLP, "a2[1]")["gradients"]
    assert received == pytest.approx([float(v) for v in a2.grad[:, 0]], abs=1e-12)
    assert received[1] == 0  # the mask dropped example 2's input: the same mask again


@pytest.mark.parametrize("name, message", [
    ("K9[1,1,1,1]", "is not a parameter entry"), ("a1[9,9,9]", "1-based inside 2x4x4"),
    ("a7[1]", "must be 0..3"), ("K1(1)", "expected an entry like"), (None, "needs PARAM"),
])
def test_which_bad_names_are_one_line(capsys, name, message):
    assert main(["which", str(CNN)] + ([name] if name else [])) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1




def test_explain_options_a_stack_does_not_take_are_one_line(tmp_path, capsys):
    for extra in (["--snippet"], ["--part", "chain"], ["--params", "K1[1,1,1,1]"]):
        assert main(["explain", str(CNN), "-o", str(tmp_path), "--format", "md"] + extra) == 2
        err = capsys.readouterr().err
        assert "not for [[layer]] networks yet" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_templates_doc_names_every_stack_variable():
    """docs/templates.md lists every key of the stack document's context, nested ones too."""
    doc = (REPO / "docs" / "templates.md").read_text()
    net = load(CNN)
    ctx = {**context(net, "tex", net.evaluator.trace(net.values())), "tikz": "", "figure": None}
    missing, todo = [], list(ctx.items())
    while todo:
        key, value = todo.pop()
        missing += [] if f"`{key}`" in doc else [key]
        first = value[0] if isinstance(value, list) and value else value
        if isinstance(first, dict):
            todo += [(k, v) for k, v in first.items()]
    assert missing == []


if __name__ == "__main__" and "--update" in sys.argv:
    update()
