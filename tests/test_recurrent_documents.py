"""The RNN and LSTM documents and answers: current, compiling, parsing, and their numbers.

    python tests/test_recurrent_documents.py --update    rewrites examples/recurrent/*.md
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from derive.api import load
from derive.render.stack_document import build_stack, stack_markdown

sys.path.insert(0, str(Path(__file__).parent))
from mathjax_util import markdown_math, mathjax_errors  # noqa: E402
from test_stack_documents import BLOCK, run, table  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FOLDER = REPO / "examples" / "recurrent"
DOCS = {"rnn-long": REPO / "examples" / "rnn-long.toml", "lstm": REPO / "examples" / "lstm.toml"}


def update() -> None:
    page = FOLDER / "bptt.md"
    page.write_text(BLOCK.sub(lambda m: m.group(1) + run(m.group(2)) + m.group(4), page.read_text()))
    for stem, spec in DOCS.items():
        build_stack(load(spec), formats="md", outdir=FOLDER, stem=stem)


def test_pages_are_what_derive_prints_now():
    for _, args, shown, _ in BLOCK.findall((FOLDER / "bptt.md").read_text()):
        assert shown == run(args), f"bptt.md: {args} (run with --update)"
    for stem, spec in DOCS.items():
        assert (FOLDER / f"{stem}.md").read_text() == stack_markdown(load(spec), figure=f"{stem}-network.svg"), stem


def test_pages_parse_in_mathjax_and_say_what_the_questions_ask():
    pages = {p.stem: p.read_text() for p in FOLDER.glob("*.md") if p.stem != "README"}
    formulas = [f for text in pages.values() for f in markdown_math(text)]
    assert len(formulas) > 30 and mathjax_errors(formulas) == []
    assert "it vanishes through time" in pages["rnn-long"].split("## 6. Worked example")[1]
    assert r"\frac{\partial c_t}{\partial c_{t-1}} = \operatorname{diag}(f_t)" in pages["lstm"]
    assert "| step t | term | share |" in pages["bptt"]


@pytest.mark.parametrize("stem", sorted(DOCS))
def test_documents_compile_to_pdf(tmp_path, stem):
    assert shutil.which("pdflatex") and shutil.which("pdftotext"), "TeX is installed by ./dev.sh setup"
    written = build_stack(load(DOCS[stem]), formats="pdf", outdir=tmp_path, stem=stem)
    text = subprocess.run(["pdftotext", str(written[0]), "-"], capture_output=True, text=True).stdout
    worked = text[text.index("Worked example"):]
    assert "Through time" in text and "Gradient norms through time" in worked  # the per-step norms


def test_bptt_page_steps_sum_to_torch_gradient():
    """The step terms printed for R1[1,1] add up to torch.nn.RNN's autograd gradient."""
    spec, values = table(REPO / "examples" / "rnn.toml")
    P = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in values.items() if k not in "xy"}
    module = torch.nn.RNN(3, 4, batch_first=True, dtype=torch.float64)
    weights = {"weight_ih_l0": P["W1"], "weight_hh_l0": P["R1"], "bias_ih_l0": P["b1"],
               "bias_hh_l0": torch.zeros(4, dtype=torch.float64)}
    out, _ = torch.func.functional_call(module, weights, (torch.tensor(values["x"], dtype=torch.float64),))
    z = out[:, -1] @ P["W2"].T + P["b2"]
    (-(torch.tensor(values["y"], dtype=torch.float64) * torch.log_softmax(z, 1)).sum(1).mean()).backward()
    import json

    answer = json.loads(run("which examples/rnn.toml R1[1,1] --json"))
    steps = answer["steps"]
    assert abs(sum(steps) - float(P["R1"].grad[0, 0])) < 1e-12


if __name__ == "__main__":
    if "--update" in sys.argv:
        update()
