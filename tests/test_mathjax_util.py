"""Tests for the MathJax validator the Markdown tests rely on."""

import pytest

import mathjax_util
from mathjax_util import markdown_math, mathjax_errors


def test_mathjax_errors_valid_formulas_pass():
    formulas = [
        (r"\frac{\partial \mathcal{L}}{\partial W^{(1)}_{ij}} = \delta^{(1)}_i a^{(0)}_j", False),
        (r"\boldsymbol{\delta} = \sigma(z)\,(1 - \sigma(z)) \odot \color{red}{x}", False),
        (r"\begin{aligned} a &= b \\ c &= \tanh(d) \end{aligned}", True),
        (r"\operatorname{softmax}(z)_i = \dfrac{e^{z_i}}{\sum_k e^{z_k}}", True),
    ]
    assert mathjax_errors(formulas) == []


def test_mathjax_errors_empty_batch():
    assert mathjax_errors([]) == []


def test_mathjax_errors_bm_undefined():
    assert mathjax_errors([(r"\bm{x}", False)]) == [(r"\bm{x}", r"Undefined control sequence \bm")]


def test_mathjax_errors_frac_missing_argument():
    assert mathjax_errors([(r"\frac{a}", True)]) == [(r"\frac{a}", r"Missing argument for \frac")]


def test_mathjax_errors_undefined_macro():
    assert mathjax_errors([(r"x + \undefinedmacro", False)]) == [
        (r"x + \undefinedmacro", r"Undefined control sequence \undefinedmacro")
    ]


def test_mathjax_errors_unbalanced_braces():
    assert mathjax_errors([("{a", False), ("a}", False), (r"\left( x", True)]) == [
        ("{a", "Extra open brace or missing close brace"),
        ("a}", "Extra close brace or missing open brace"),
        (r"\left( x", r"Extra \left or missing \right"),
    ]


def test_mathjax_errors_batch_reports_only_bad_formulas_in_order():
    formulas = [("a", False), (r"\bm{b}", False), ("c", True), (r"\nope", True), ("e", False)]
    assert [tex for tex, _ in mathjax_errors(formulas)] == [r"\bm{b}", r"\nope"]


def test_mathjax_errors_batch_shares_one_page():
    formulas = [(r"\newcommand{\W}{\mathbf{W}} \W", True), (r"\W^{(2)}", False)]
    assert mathjax_errors(formulas) == []


def test_mathjax_errors_missing_node_modules_raises(monkeypatch, tmp_path):
    monkeypatch.setattr(mathjax_util, "NODE_MODULES", tmp_path)
    with pytest.raises(RuntimeError, match=r"mathjax-full is not installed .*\./dev\.sh setup"):
        mathjax_errors([("a", False)])


def test_mathjax_errors_missing_node_raises(monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RuntimeError, match=r"node is not on PATH"):
        mathjax_errors([("a", False)])


def test_markdown_math_inline_and_display():
    text = "The loss $L = \\frac{1}{2}(a - y)^2$ has\n\n$$\n\\frac{\\partial L}{\\partial a} = a - y\n$$\n"
    assert markdown_math(text) == [
        (r"L = \frac{1}{2}(a - y)^2", False),
        (r"\frac{\partial L}{\partial a} = a - y", True),
    ]


def test_markdown_math_display_on_one_line_and_multiline():
    text = "$$a$$ then\n$$\nb \\\\\nc\n$$"
    assert markdown_math(text) == [("a", True), ("b \\\\\nc", True)]


def test_markdown_math_ignores_fenced_code_blocks():
    text = (
        "before $x$\n"
        "```python\n"
        "cost = '$y$'  # not math\n"
        "$$z$$\n"
        "```\n"
        "~~~~\n"
        "$w$\n"
        "```\n"
        "still code $v$\n"
        "~~~~\n"
        "after $u$\n"
    )
    assert markdown_math(text) == [("x", False), ("u", False)]


def test_markdown_math_unclosed_fence_hides_the_rest():
    assert markdown_math("$a$\n```\n$b$\n") == [("a", False)]


def test_markdown_math_ignores_inline_code_spans():
    text = "run `echo $HOME $PATH` and ``a ` $b$ ` c`` then $c$"
    assert markdown_math(text) == [("c", False)]


def test_markdown_math_escaped_dollar_is_literal():
    assert markdown_math(r"it costs \$5 and \$6, while $x = \$3$ is math") == [(r"x = \$3", False)]


def test_markdown_math_lone_and_spaced_dollars_are_text():
    assert markdown_math("pay $5 now") == []
    assert markdown_math("from $ 5 to $ 6") == []
    assert markdown_math("$a\n\nb$") == []


def test_markdown_math_inline_next_to_display():
    assert markdown_math("$a$ and $$b$$ and $c$") == [("a", False), ("b", True), ("c", False)]


def test_markdown_math_then_mathjax_finds_bad_formula():
    text = "Good $\\boldsymbol{W}$, bad $\\bm{W}$.\n\n```\n$\\bm{in code}$\n```\n"
    assert mathjax_errors(markdown_math(text)) == [(r"\bm{W}", r"Undefined control sequence \bm")]
