"""`derive grad` and `derive check` through the CLI entry point, in-process.

The JSON contract (issue #2) is checked field by field against names and
values built here: parameter names from the layer sizes, gradient values from
float64 central differences of a forward pass written in this file.  `check`
is shown to pass on good derivations and, with a local derivative patched to a
wrong function, to fail with exit code 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sympy

from derive.cli import main
from derive.check.evaluate import Evaluator

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TINY = str(EXAMPLES / "tiny.toml")
TINY_VALUES = str(EXAMPLES / "tiny-values.toml")
DEEP = str(EXAMPLES / "deep.toml")

#: Float64 central differences with h = 1e-6 agree with exact gradients to about 1e-10
#: (truncation h^2 f''' ~ 1e-12, rounding eps/h ~ 1e-10); 1e-8 leaves a margin.
FD_STEP = 1e-6
FD_ATOL = 1e-8


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def expected_names(layers: list[int], bias: bool = True) -> list[str]:
    """W<l>[j,k] row-major then b<l>[j], layer by layer, 1-based."""
    names = []
    for l in range(1, len(layers)):
        names += [f"W{l}[{j},{k}]" for j in range(1, layers[l] + 1) for k in range(1, layers[l - 1] + 1)]
        if bias:
            names += [f"b{l}[{j}]" for j in range(1, layers[l] + 1)]
    return names


# -- an independent reference for the tiny network (2-3-1 sigmoid, half_sse) -----

TINY_POINT = {"x": [0.5, -0.2], "y": [1.0], "W1": [[0.1, 0.4], [-0.3, 0.2], [0.6, -0.5]],
              "b1": [0.0, 0.1, -0.1], "W2": [[0.7, -0.4, 0.3]], "b2": [0.05]}


def tiny_loss(p: dict) -> float:
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    a1 = sig(np.array(p["W1"]) @ np.array(p["x"]) + np.array(p["b1"]))
    a2 = sig(np.array(p["W2"]) @ a1 + np.array(p["b2"]))
    return float(0.5 * np.sum((a2 - np.array(p["y"])) ** 2))


def tiny_fd_gradients() -> dict[str, float]:
    out = {}
    for key in ("W1", "b1", "W2", "b2"):
        arr = np.array(TINY_POINT[key], dtype=float)
        for idx in np.ndindex(arr.shape):
            grads = []
            for sign in (1, -1):
                shifted = arr.copy()
                shifted[idx] += sign * FD_STEP
                grads.append(tiny_loss({**TINY_POINT, key: shifted.tolist()}))
            name = f"{key}[{','.join(str(i + 1) for i in idx)}]"
            out[name] = (grads[0] - grads[1]) / (2 * FD_STEP)
    return out


def test_tiny_values_file_is_the_reference_point():
    import tomllib

    table = tomllib.loads(Path(TINY_VALUES).read_text())
    assert {k: table[k] for k in TINY_POINT} == TINY_POINT


# -- derive grad --json ----------------------------------------------------------

def test_grad_json_without_values_has_every_parameter(capsys):
    code, out, err = run(capsys, "grad", TINY, "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert set(doc) == {"loss", "gradients"}
    assert doc["loss"] is None
    assert list(doc["gradients"]) == expected_names([2, 3, 1])
    for name, entry in doc["gradients"].items():
        assert set(entry) == {"value", "latex", "expression"}, name
        assert entry["value"] is None
        assert isinstance(entry["latex"], str) and entry["latex"], name
        assert isinstance(entry["expression"], str) and entry["expression"], name


def test_grad_json_expression_is_explicit_for_small_network(capsys):
    _, out, _ = run(capsys, "grad", TINY, "--json")
    for name, entry in json.loads(out)["gradients"].items():
        expr = sympy.parse_expr(entry["expression"])
        kinds = {s.name.split("_")[0].rstrip("0123456789") for s in expr.free_symbols}
        assert kinds <= {"x", "y", "W", "b"}, (name, kinds)


def test_grad_json_expression_falls_back_to_factored_when_large(capsys):
    code, out, _ = run(capsys, "grad", "--layers", "1,4,4,4,4,1", "--activation", "tanh", "--json")
    assert code == 0
    grads = json.loads(out)["gradients"]
    assert len(grads) == len(expected_names([1, 4, 4, 4, 4, 1]))
    assert "delta" in grads["W1[1,1]"]["expression"]  # later deltas stay symbols
    assert "delta" not in grads["W5[1,1]"]["expression"]


def test_grad_json_with_values_matches_finite_differences(capsys):
    code, out, _ = run(capsys, "grad", TINY, "--values", TINY_VALUES, "--json")
    assert code == 0
    doc = json.loads(out)
    assert isinstance(doc["loss"], float)
    assert doc["loss"] == pytest.approx(tiny_loss(TINY_POINT), rel=1e-14)
    reference = tiny_fd_gradients()
    assert list(doc["gradients"]) == list(reference)
    for name, want in reference.items():
        got = doc["gradients"][name]["value"]
        assert isinstance(got, float), name
        assert abs(got - want) <= FD_ATOL, (name, got, want)


def test_grad_json_values_only_matches_finite_differences(capsys):
    code, out, err = run(capsys, "grad", TINY, "--values", TINY_VALUES, "--json", "--values-only")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["loss"] == pytest.approx(tiny_loss(TINY_POINT), rel=1e-14)
    reference = tiny_fd_gradients()
    assert list(doc["gradients"]) == list(reference)
    for name, want in reference.items():
        assert list(doc["gradients"][name]) == ["value"], name
        assert abs(doc["gradients"][name]["value"] - want) <= FD_ATOL, name


def test_grad_values_only_table_and_without_values(capsys):
    code, out, _ = run(capsys, "grad", TINY, "--values", TINY_VALUES, "--values-only")
    reference = tiny_fd_gradients()
    rows = [line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0] in reference]
    assert code == 0 and [r[0] for r in rows] == list(reference)
    assert all(len(r) == 2 and abs(float(r[1]) - reference[r[0]]) <= 1e-8 for r in rows)
    code, out, err = run(capsys, "grad", TINY, "--json", "--values-only")
    assert (code, out) == (2, "") and err.startswith("derive: --values-only: no values")


def test_grad_json_values_from_spec_table(tmp_path, capsys):
    spec = Path(TINY).read_text() + "\n[values]\n" + Path(TINY_VALUES).read_text()
    path = tmp_path / "inline.toml"
    path.write_text(spec)
    _, inline, _ = run(capsys, "grad", str(path), "--json")
    _, separate, _ = run(capsys, "grad", TINY, "--values", TINY_VALUES, "--json")
    assert json.loads(inline) == json.loads(separate)
    assert json.loads(inline)["loss"] is not None


def test_grad_json_values_file_overrides_spec_values(tmp_path, capsys):
    spec = Path(TINY).read_text() + "\n[values]\n" + Path(TINY_VALUES).read_text().replace(
        "x = [0.5, -0.2]", "x = [9.0, 9.0]")
    path = tmp_path / "inline.toml"
    path.write_text(spec)
    _, out, _ = run(capsys, "grad", str(path), "--values", TINY_VALUES, "--json")
    assert json.loads(out)["loss"] == pytest.approx(tiny_loss(TINY_POINT), rel=1e-14)


# -- derive grad (table) ------------------------------------------------------------

def test_grad_table_lists_every_parameter_with_its_value(capsys):
    code, out, _ = run(capsys, "grad", TINY, "--values", TINY_VALUES)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "A 2-3-1 sigmoid network"
    assert lines[1].startswith("loss L = ")
    assert float(lines[1].split("=")[1]) == pytest.approx(tiny_loss(TINY_POINT), rel=1e-8)
    assert lines[2].split()[:2] == ["parameter", "dL/dparam"]
    rows = lines[3:]
    reference = tiny_fd_gradients()
    assert [r.split()[0] for r in rows] == list(reference)
    for row in rows:
        name, value = row.split()[:2]
        assert abs(float(value) - reference[name]) <= FD_ATOL, row


def test_grad_table_without_values_shows_dashes(capsys):
    code, out, _ = run(capsys, "grad", TINY)
    assert code == 0
    lines = out.splitlines()
    assert not any(line.startswith("loss") for line in lines)
    rows = lines[2:]
    assert [r.split()[0] for r in rows] == expected_names([2, 3, 1])
    assert all(r.split()[1] == "-" for r in rows)


# -- the shorthand -----------------------------------------------------------------------

def test_grad_shorthand_layers_activation_loss(capsys):
    code, out, _ = run(capsys, "grad", "--layers", "2,3,1", "--activation", "tanh,sigmoid",
                       "--loss", "bce", "--json")
    assert code == 0
    grads = json.loads(out)["gradients"]
    assert list(grads) == expected_names([2, 3, 1])
    # sigmoid + bce cancels at the output: dL/db2 = a - y
    assert grads["b2[1]"]["latex"] == "a^{(2)}_{1} - y_{1}"
    # the hidden layer is tanh: tanh' = 1 - a^2 in the display form, tanh in the explicit one
    assert r"1 - \left(a^{(1)}_{1}\right)^{2}" in grads["W1[1,1]"]["latex"]
    assert "tanh(" in grads["W1[1,1]"]["expression"]


def test_grad_shorthand_no_bias(capsys):
    code, out, _ = run(capsys, "grad", "--layers", "2,3,1", "--activation", "tanh,sigmoid",
                       "--loss", "bce", "--no-bias", "--json")
    assert code == 0
    assert list(json.loads(out)["gradients"]) == expected_names([2, 3, 1], bias=False)


def test_grad_shorthand_equals_spec_file(tmp_path, capsys):
    path = tmp_path / "net.toml"
    path.write_text('layers = [2, 3, 1]\nactivation = ["tanh", "sigmoid"]\nloss = "bce"\n')
    values = tmp_path / "v.toml"
    values.write_text('x = [0.3, -0.7]\ny = [0.25]\nW1 = [[0.1, 0.2], [0.3, -0.4], [-0.5, 0.6]]\n'
                      'b1 = [0.1, 0.0, -0.1]\nW2 = [[0.7, -0.8, 0.9]]\nb2 = [0.2]\n')
    _, from_file, _ = run(capsys, "grad", str(path), "--values", str(values), "--json")
    _, shorthand, _ = run(capsys, "grad", "--layers", "2,3,1", "--activation", "tanh,sigmoid",
                          "--loss", "bce", "--values", str(values), "--json")
    assert json.loads(from_file) == json.loads(shorthand)
    assert json.loads(from_file)["loss"] is not None


# -- derive check --------------------------------------------------------------------------

def check_rows(out: str) -> dict[int, list[str]]:
    """The per-layer rows of the check table: layer -> its columns."""
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0].isdigit() and parts[1].isdigit():
            rows[int(parts[0])] = parts[1:]
    return rows


def test_check_passes_with_per_layer_table(capsys):
    code, out, _ = run(capsys, "check", TINY, "--values", TINY_VALUES)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["layer", "params", "max", "abs", "err", "max", "rel", "err", "result"]
    rows = check_rows(out)
    assert sorted(rows) == [1, 2]
    assert rows[1][0] == "9" and rows[2][0] == "4"  # 3x2 + 3 and 1x3 + 1 parameters
    for layer, cols in rows.items():
        assert cols[-1] == "ok", layer
        assert float(cols[1]) <= 1e-9 and float(cols[2]) <= 1e-7, layer
    assert "4 point(s)" in out  # the values and 3 random points
    assert lines[-1] == "all gradients agree"


def test_check_points_option(capsys):
    code, out, _ = run(capsys, "check", TINY, "--points", "2")
    assert code == 0 and "2 point(s)" in out
    code, out, _ = run(capsys, "check", TINY, "--values", TINY_VALUES, "--points", "0")
    assert code == 0 and "1 point(s)" in out


def test_check_shorthand_every_activation(capsys):
    acts = "identity,sigmoid,tanh,relu,leaky_relu,softplus,elu,silu,gelu,softmax"
    code, out, _ = run(capsys, "check", "--layers", "3,3,3,3,3,3,3,3,3,3,3", "--activation", acts,
                       "--loss", "cross_entropy")
    assert code == 0, out
    assert sorted(check_rows(out)) == list(range(1, 11))


def test_check_deep_example(capsys):
    code, out, _ = run(capsys, "check", DEEP)
    assert code == 0, out
    rows = check_rows(out)
    assert sorted(rows) == list(range(1, 33))
    assert all(cols[0] == "272" and cols[-1] == "ok" for cols in rows.values())


def test_check_fails_when_hidden_derivative_is_wrong(monkeypatch, capsys):
    # sigma'(z) replaced by sigma(z): every hidden-layer gradient is wrong, the output layer's not
    def wrong_local(self, l, trace):
        return trace.a[l]

    monkeypatch.setattr(Evaluator, "_local", wrong_local)
    code, out, _ = run(capsys, "check", TINY, "--values", TINY_VALUES)
    assert code == 1
    rows = check_rows(out)
    assert rows[1][0] == "9" and rows[1][3:5] == ["36", "MISMATCH"]  # 9 parameters x 4 points
    assert rows[2][-1] == "ok"
    assert out.splitlines()[-1] == "GRADIENTS DISAGREE"


def test_check_fails_on_a_small_relative_error(monkeypatch, capsys):
    # one part in a million is far below any visible error and still above the tolerance
    original = Evaluator._local

    def slightly_wrong(self, l, trace):
        return original(self, l, trace) * (1 + 1e-6)

    monkeypatch.setattr(Evaluator, "_local", slightly_wrong)
    code, out, _ = run(capsys, "check", TINY, "--values", TINY_VALUES)
    assert code == 1
    assert check_rows(out)[1][4] == "MISMATCH"
    assert out.splitlines()[-1] == "GRADIENTS DISAGREE"


def test_check_fails_when_output_delta_is_wrong(monkeypatch, capsys):
    # the output term dL/da * f'(z) with the wrong sign: both layers disagree
    original = Evaluator._output_delta

    def wrong_output(self, trace, y):
        return -original(self, trace, y)

    monkeypatch.setattr(Evaluator, "_output_delta", wrong_output)
    code, out, _ = run(capsys, "check", "--layers", "2,2,2", "--activation", "tanh,softmax",
                       "--loss", "cross_entropy")
    assert code == 1
    rows = check_rows(out)
    assert all("MISMATCH" in cols for cols in rows.values())


def test_cli_check_points_above_the_limit_is_refused(capsys):
    from derive.api import MAX_POINTS

    assert main(["check", "--layers", "2,2", "--points", str(MAX_POINTS + 1)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"above the limit {MAX_POINTS}" in err


def test_cli_check_without_values_or_points_checks_nothing_and_says_so(capsys):
    from derive.cli import main

    assert main(["check", "--layers", "2,2,1", "--points", "0"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == ("derive: points is 0 and there are no values: nothing would be "
                                 "checked (give --values FILE or at least one random point)\n")


def test_cli_explain_html_with_part_names_part(tmp_path, capsys):
    from derive.cli import main

    assert main(["explain", TINY, "--part", "chain", "--format", "html",
                 "-o", str(tmp_path)]) == 2
    assert "--part writes LaTeX and Markdown fragments" in capsys.readouterr().err
