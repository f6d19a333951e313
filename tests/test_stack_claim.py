"""`derive claim` on [[layer]] networks: formulas over the stack's entries, judged by numbers.

The true gradient is computed here by hand in numpy for a 1x3x3 conv-flatten-dense
network (the claim checker's truth must match it), and claims right and wrong
are judged at the spec's values and random points.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from derive.api import load
from derive.cli import main

SPEC = """input = [1, 3, 3]
loss = "half_sse"
[[layer]]
kind = "conv2d"
channels = 1
kernel = 2
[[layer]]
kind = "flatten"
[[layer]]
kind = "dense"
units = 1
[values]
x = [[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]]]
y = [0.5]
K1 = [[[[0.1, -0.2], [0.3, 0.4]]]]
b1 = [0.1]
W3 = [[0.5, -0.5, 0.25, 1.0]]
b3 = [0.0]
"""
RIGHT = " + ".join(f"delta1[1,1,{p},{q}]*x[1,1,{p},{q}]" for p in (1, 2) for q in (1, 2))


def by_hand():
    """dL/dK1[1,1,1,1] written out: z1 = K * x (2x2), a3 = W3 vec(z1) + b3, L = (a3 - y)^2 / 2."""
    x = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]])
    K, W = np.array([[0.1, -0.2], [0.3, 0.4]]), np.array([0.5, -0.5, 0.25, 1.0])
    z = np.array([[np.sum(K * x[p:p + 2, q:q + 2]) + 0.1 for q in range(2)] for p in range(2)])
    a3 = W @ z.ravel()
    delta1 = (a3 - 0.5) * W.reshape(2, 2)
    return float(np.sum(delta1 * x[:2, :2]))


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "cnn.toml"
    path.write_text(SPEC)
    return str(path)


def test_right_formula_is_correct_and_the_truth_is_the_hand_computed_gradient(spec, capsys):
    assert main(["claim", spec, "K1[1,1,1,1]", RIGHT]) == 0
    assert capsys.readouterr().out.startswith("correct: ")
    wrong = load(spec).claim("K1[1,1,1,1]", RIGHT.replace("x[1,1,2,2]", "x[1,1,3,3]"))
    assert not wrong.correct and wrong.counterexample["point"] == "the spec's values"
    assert abs(wrong.counterexample["true"] - by_hand()) < 1e-15


def test_a_factor_is_named(spec, capsys):
    assert main(["claim", spec, "K1[1,1,1,1]", f"2*({RIGHT})", "--json"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert not verdict["correct"] and verdict["diagnosis"].startswith("the claim is 2 times the gradient")


@pytest.mark.parametrize("param,expr,message", [
    ("K1[1,1,1,1]", "x[1,1,1]", "x takes 4 indices (the example n first)"),
    ("K1[1,1,1,1]", "delta7[1,1]", "layer 7 of 'delta7' is not in 1..3"),
    ("K1[1,1,1,1]", "q[1]", "unknown name 'q'"),
    ("K1[1,1,1,1]", "K1[1,1,3,1]", "index 3 of K1 is not in 1..2"),
    ("K2[1,1]", "x[1,1,1,1]", "PARAM 'K2[1,1]' is not a parameter entry of this network"),
    ("K1[1,1]", "x[1,1,1,1]", "PARAM 'K1[1,1]': K1 is 1x1x2x2; give 4 indices"),
])
def test_bad_claims_get_one_line(spec, capsys, param, expr, message):
    assert main(["claim", spec, param, expr]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_an_rnn_delta_is_refused_with_the_reason(tmp_path, capsys):
    path = tmp_path / "rnn.toml"
    path.write_text('input = [2]\nsteps = 3\nloss = "half_sse"\n[[layer]]\nkind = "rnn"\nunits = 2\n'
                    '[[layer]]\nkind = "dense"\nunits = 1\n')
    assert main(["claim", str(path), "W1[1,1]", "delta1[1,1,1]"]) == 2
    assert "inside its recurrence" in capsys.readouterr().err
    assert main(["claim", str(path), "R1[1,2]", "a1[1,1,2]"]) == 1  # a real claim, and wrong
    capsys.readouterr()
