"""The seed question as a runnable case: examples/seed-question.toml and .md.

Pins the verdicts the page states: the two posted answers and the one-path slip
are incorrect (with the diagnosis), delta(1)_1 a(0)_1 written out is correct; and
every output block of the page (and of the README's which/claim section) is what
the command prints now.  The gradient is
checked against an independent reference: a forward pass and loss written here in
mpmath from the textbook definitions, differentiated by central differences.

    python tests/test_seed_question.py --update    rewrites the page's output blocks
"""

import contextlib
import io
import json
import re
import shlex
import sys
from pathlib import Path

import mpmath
import pytest

from derive.api import load
from derive.qa.claim import check_claim
from derive.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mathjax_util import markdown_math, mathjax_errors  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "examples" / "seed-question.toml"
PAGE = REPO / "examples" / "seed-question.md"
BLOCK = re.compile(r"(<!-- output: (.*?) -->\n)(.*?)(<!-- /output -->)", re.S)

#: Central differences at 50 digits with this step agree with the exact derivative to ~1e-30.
CD_DIGITS, CD_STEP, CD_TOLERANCE = 50, mpmath.mpf("1e-20"), 1e-12

CORRECT = ("((a2[1]-y[1])*a2[1]*(1-a2[1])*W2[1,1] + (a2[2]-y[2])*a2[2]*(1-a2[2])*W2[2,1])"
           "*a1[1]*(1-a1[1])*x[1]")
WRONG = {
    # "the loss derivative between the last hidden layer and the output" (no sigma')
    ("W2[1,1]", "(a2[1]-y[1])*a1[1]"): "is missing the activation derivative of layer 2",
    # "the activation derivative for every layer but the output" (no loss derivative)
    ("W1[1,1]", "(W2[1,1] + W2[2,1])*a1[1]*(1-a1[1])*x[1]"):
        "is missing the loss derivative and the activation derivative of layer 2",
    # "the cost divided by the product of the derivatives"
    ("W1[1,1]", "L/(W2[1,1]*W2[2,1]*a2[1]*(1-a2[1])*a2[2]*(1-a2[2])*a1[1]*(1-a1[1])"
                "*(a2[1]-y[1])*(a2[2]-y[2]))"):
        "uses the loss L itself, which never appears in a gradient: the chain rule "
        "multiplies the loss derivative dL/da by the other local derivatives",
    ("W1[1,1]", "(a2[1]-y[1])*a2[1]*(1-a2[1])*W2[1,1]*a1[1]*(1-a1[1])*x[1]"):
        "has only one of the 2 paths from W1[1,1] to the loss (the one through a2[1]); "
        "the chain rule sums over all of them",
}


def run(args: str) -> tuple[str, int]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(shlex.split(args))
    return out.getvalue(), code


def _block_text(args: str, output: str) -> str:
    """The page shows `which` as rendered Markdown and claims as fenced text."""
    return output if args.startswith("which") else f"```text\n{output}```\n"


def update() -> None:
    page = PAGE.read_text()
    PAGE.write_text(BLOCK.sub(lambda m: m.group(1) + _block_text(m.group(2), run(m.group(2))[0])
                              + m.group(4), page))


# -- an independent reference: the network written out in mpmath ---------------------
def _loss(values: dict) -> mpmath.mpf:
    sig = lambda v: 1 / (1 + mpmath.exp(-v))  # noqa: E731
    a = [mpmath.mpf(v) for v in values["x"]]
    for l in (1, 2):
        W, b = values[f"W{l}"], values[f"b{l}"]
        a = [sig(mpmath.fsum(mpmath.mpf(W[j][k]) * a[k] for k in range(len(a))) + b[j])
             for j in range(len(W))]
    return mpmath.fsum((aj - yj) ** 2 for aj, yj in zip(a, values["y"])) / 2


def _central_difference(values: dict, layer: int, j: int, k: int) -> float:
    with mpmath.workdps(CD_DIGITS):
        def at(delta):
            moved = json.loads(json.dumps(values))
            moved[f"W{layer}"][j - 1][k - 1] = mpmath.mpf(values[f"W{layer}"][j - 1][k - 1]) + delta
            return _loss(moved)
        return float((at(CD_STEP) - at(-CD_STEP)) / (2 * CD_STEP))


def _values() -> dict:
    import tomllib

    return tomllib.loads(SPEC.read_text())["values"]


# -- tests ------------------------------------------------------------------------------
def test_seed_question_spec_is_the_two_layer_sigmoid_network():
    net = load(SPEC)
    assert net.spec.layers == (2, 2, 2)
    assert [a.name for a in net.spec.activations] == ["sigmoid", "sigmoid"]
    assert net.spec.loss.name == "half_sse"


def test_seed_question_which_json_paths_and_value():
    out, code = run(f'which {SPEC} "W1[1,1]" --json')
    assert code == 0
    answer = json.loads(out)
    assert answer["parameter"] == "W1[1,1]"
    assert len(answer["paths"]) == 2
    for path in answer["paths"]:
        assert [f["role"] for f in path] == ["loss", "activation", "weight", "activation", "input"]
        assert [f["layer"] for f in path] == [2, 2, 2, 1, 1]
    assert [p[2]["latex"] for p in answer["paths"]] == ["W^{(2)}_{11}", "W^{(2)}_{21}"]
    assert answer["value"] == pytest.approx(_central_difference(_values(), 1, 1, 1),
                                            rel=CD_TOLERANCE)


def test_seed_question_which_markdown_opens_with_both_chained():
    out, _ = run(f'which {SPEC} "W1[1,1]"')
    first = out.split("\n\n")[0]
    assert first.startswith("**Both, chained.**")
    assert "enters once, at the output" in first
    assert "(layers 2 and 1: $\\sigma'$)" in first
    assert "the weights of the downstream layer 2 carry the signal back" in first
    assert "the parameter's own input $x_{1}$ multiplies at the end" in first


@pytest.mark.parametrize("param,expr", list(WRONG))
def test_seed_question_posted_answers_are_incorrect(param, expr):
    verdict = check_claim(load(SPEC), param, expr)
    assert not verdict.correct
    assert verdict.diagnosis == WRONG[(param, expr)]
    # the counterexample is the spec's own values, and its "true" is the real gradient
    point = verdict.counterexample["point"]
    assert point == _values()
    layer, j, k = int(param[1]), int(param[3]), int(param[5])
    assert verdict.counterexample["true"] == pytest.approx(
        _central_difference(point, layer, j, k), rel=CD_TOLERANCE)
    assert run(f'claim {SPEC} "{param}" "{expr}"')[1] == 1


def test_seed_question_delta_rule_written_out_is_correct():
    verdict = check_claim(load(SPEC), "W1[1,1]", CORRECT)
    assert verdict.correct and verdict.method == "symbolic"
    assert verdict.counterexample is None and verdict.diagnosis is None
    assert run(f'claim {SPEC} "W1[1,1]" "{CORRECT}"')[1] == 0


def test_seed_question_page_shows_current_output():
    page = PAGE.read_text()
    blocks = BLOCK.findall(page)
    assert len(blocks) == 7
    for _, args, shown, _ in blocks:
        output, _ = run(args)
        assert shown == _block_text(args, output), f"stale block for `derive {args}`; " \
            "run python tests/test_seed_question.py --update"


def test_seed_question_readme_excerpts_are_real_output():
    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- section: which (owner: which/claim) -->")[1].split("<!-- /section -->")[0]
    shown = re.findall(r"^\$ derive (claim .*)\n((?:(?!\$ |```).*\n)*)", section, re.M)
    assert len(shown) == 5  # three scalar claims, two matrix claims
    for args, text in shown:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(shlex.split(args))
        assert text == out.getvalue() + err.getvalue(), args
    which_md = re.search(r"^\$ derive (which \S+ \S+)\n(.*?)```", section, re.M | re.S)
    actual = run(which_md.group(1))[0].splitlines()
    for line in which_md.group(2).splitlines():
        if "..." not in line:  # an excerpt line is (part of) an output line
            assert any(line in a for a in actual), line
    json_line = re.search(r"^\$ derive (which .* --json)\n(.*)\n", section, re.M)
    assert json.loads(json_line.group(2)) == json.loads(run(json_line.group(1))[0])


def test_seed_question_page_math_parses_in_mathjax():
    formulas = markdown_math(PAGE.read_text())
    assert len(formulas) > 20
    assert mathjax_errors(formulas) == []


if __name__ == "__main__":
    if sys.argv[1:] == ["--update"]:
        update()
