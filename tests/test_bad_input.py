"""Bad input: every kind gets one line on stderr starting `derive: `, its exit code,
no traceback and nothing on stdout.

`CASES` is the README's bad-input table, row by row: `test_readme_table_matches_cases`
parses the table and requires the same rows in the same order, and
`test_cli_bad_input` runs each row's example and requires exactly its message.  Rows
are (kind, example, message, exit code); the example is what the row shows, the files
and argv are what the test runs.  The remaining tests cover the Python API (make_spec,
make_values, load_spec) and the limits, where there is no command line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import derive.cli
from derive.spec import sizes as spec_module
from derive.cli import main
from derive.errors import SpecError
from derive.spec.sizes import limits
from derive.spec.loading import load_spec, load_values_table, make_spec
from derive.spec.values import make_values

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = re.compile(r"<!-- section: bad-input \(owner: hardening\) -->(.*?)<!-- /section -->", re.S)

NET = "layers = [2, 3, 1]\n"
# A valid spec with values (bce, sigmoid output); rows below vary one line of it.
VALID = """layers = [2, 3, 1]
loss = "bce"
[values]
x = [0.5, -0.5]
y = [1.0]
W1 = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]
b1 = [0.0, 0.0, 0.0]
W2 = [[0.1, 0.2, 0.3]]
b2 = [0.0]
"""


@dataclass
class Case:
    kind: str
    example: str
    message: str
    code: int = 2
    argv: list[str] = field(default_factory=lambda: ["grad", "net.toml"])
    files: dict[str, str | bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    patch: Callable | None = None


def spec_case(kind: str, text: str, message: str, example: str | None = None) -> Case:
    """A row whose spec file net.toml is `text`; the example defaults to its last line."""
    return Case(kind, example or text.strip().splitlines()[-1], message, files={"net.toml": text})


def values_case(kind: str, old: str, new: str, message: str, extra: str = "") -> Case:
    assert old in VALID
    text = VALID.replace(old, new, 1).replace("[values]\n", extra + "[values]\n")
    example = new.strip().splitlines()[-1] if new.strip() else f"(no {old.split()[0]} line)"
    return Case(kind, example, message, files={"net.toml": text})


def _interrupt(monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setitem(derive.cli.COMMANDS, "grad", interrupted)


CASES = [
    # -- the file itself
    Case("spec file missing", "derive grad nope.toml",
         "derive: spec file 'nope.toml' does not exist", argv=["grad", "nope.toml"]),
    Case("a folder given as the spec file", "derive grad adir",
         "derive: spec file 'adir' is a folder, not a file", argv=["grad", "adir"]),
    Case("spec file not UTF-8", "bytes ff fe ...",
         "derive: spec file 'net.toml' is not UTF-8 text (byte 0xff at offset 0)",
         files={"net.toml": b"\xff\xfelayers = [1, 1]\n"}),
    spec_case("not TOML", "layers = [2, 3",
              "derive: spec file 'net.toml' is not valid TOML: Unclosed array (at end of document)"),
    spec_case("TOML nested too deeply", "x = " + "[" * 3000 + "]" * 3000,
              "derive: spec file 'net.toml' is not usable TOML: arrays or tables nested too deeply",
              example="x = [[[[...]]]] (3000 levels)"),
    spec_case("TOML integer over 4300 digits", "layers = [" + "9" * 5000 + "]",
              "derive: spec file 'net.toml' is not usable TOML: an integer has more than 4300 digits",
              example="layers = [999...9] (5000 digits)"),
    Case("values file missing", "--values nov.toml",
         "derive: values file 'nov.toml' does not exist",
         argv=["grad", "net.toml", "--values", "nov.toml"], files={"net.toml": NET}),
    Case("values file with a [values] header", "[values] in a --values file",
         "derive: values file 'v.toml' has a [values] table; a values file holds x, y, W1, ... "
         "at the top level (drop the [values] line)",
         argv=["grad", "net.toml", "--values", "v.toml"],
         files={"net.toml": NET, "v.toml": "[values]\nx = [1, 2]\n"}),
    # -- the spec's fields
    spec_case("unknown top-level key", NET + 'activations = "tanh"\n',
              "derive: spec: unknown key 'activations'; did you mean 'activation'?"),
    spec_case("numbers outside [values]", NET + "x = [1, 2]\n",
              "derive: spec: unknown key 'x' (numbers go in a [values] table: put [values] above x = ...)"),
    spec_case("no layers", 'activation = "tanh"\n',
              "derive: spec file 'net.toml' has no 'layers' (e.g. layers = [2, 3, 1])"),
    spec_case("layers not a list", 'layers = "2,3,1"\n',
              "derive: layers must be a list of sizes like [2, 3, 1], got '2,3,1'"),
    spec_case("layers too short or empty", "layers = []\n",
              "derive: layers needs at least an input and an output size, got []"),
    spec_case("layer size zero or negative", "layers = [2, 0, 1]\n",
              "derive: layers[1] must be a positive integer, got 0"),
    spec_case("layer size not an integer", "layers = [2, 3.5, 1]\n",
              "derive: layers[1] must be a positive integer, got 3.5"),
    spec_case("bool where a number is expected", "layers = [2, true, 1]\n",
              "derive: layers[1] must be a positive integer, got True"),
    Case("too many parameters", "derive grad --layers 2,100000,2",
         "derive: layers [2, 100000, 2] give 500,002 parameters, above the limit 250,000; raise it "
         "with --max-params 500002 (or DERIVE_MAX_PARAMS=500002; in Python, "
         "derive.spec.sizes.MAX_PARAMETERS = 500002)", argv=["grad", "--layers", "2,100000,2"]),
    Case("too many layers", "derive grad --layers 1,1,...,1 (1002 sizes)",
         "derive: layers has depth 1001, above the limit 1000; raise it with --max-depth 1001 "
         "(or DERIVE_MAX_DEPTH=1001; in Python, derive.spec.sizes.MAX_DEPTH = 1001)",
         argv=["grad", "--layers", ",".join(["1"] * 1002)]),
    spec_case("unknown activation", NET + 'activation = "sigmoud"\n',
              "derive: unknown activation 'sigmoud'; did you mean 'sigmoid'?"),
    spec_case("wrong number of activations", NET + 'activation = ["tanh"]\n',
              "derive: activation lists 1 name but the network has 2 layers; give one name, or 2"),
    spec_case("activation of the wrong type", NET + "activation = 3\n",
              "derive: activation must be a name or a list of names, got 3"),
    spec_case("softmax on a hidden layer", NET + 'activation = ["softmax", "sigmoid"]\n',
              "derive: activation of layer 1 is 'softmax'; softmax is allowed only on the output layer"),
    spec_case("custom expression that is not math", NET + "activation = \"__import__('os')\"\n",
              "derive: activation: function '__import__' is not allowed at position 1 in "
              "\"__import__('os')\"; allowed functions: abs, atan, cos, cosh, elu, erf, exp, gelu, "
              "leaky_relu, ln, log, max, ..."),
    spec_case("unknown loss", NET + 'loss = "hinge"\n',
              "derive: unknown loss 'hinge'; expected one of mse, half_sse, sse, bce, cross_entropy"),
    Case("misspelt name with a hyphen (a name, not a - b)", "derive grad --loss cross-entrpy",
         "derive: unknown loss 'cross-entrpy'; did you mean 'cross_entropy'?",
         argv=["grad", "--layers", "2,1", "--loss", "cross-entrpy"]),
    Case("misspelt name in capitals", "derive grad --activation ReLUU",
         "derive: unknown activation 'ReLUU'; did you mean 'relu'?",
         argv=["grad", "--layers", "2,1", "--activation", "ReLUU"]),
    spec_case("bias not a bool", NET + 'bias = "yes"\n', "derive: bias must be true or false, got 'yes'"),
    spec_case("title not one line of text", NET + 'title = "a\\nb"\n',
              "derive: title must be one line of text without control characters, got 'a\\nb'"),
    spec_case("[values] not a table", NET + "values = 3\n", "derive: values must be a table, got 3"),
    # -- the values
    values_case("a missing value", "b2 = [0.0]\n", "", "derive: values: missing b2"),
    values_case("unknown key in [values]", "b2 = [0.0]\n", "b2 = [0.0]\nlearning_rte = 0.1\n",
                "derive: values: unknown key 'learning_rte'; did you mean 'learning_rate'?"),
    values_case("a key in the wrong case", "W2 = [[0.1, 0.2, 0.3]]", "w2 = [[0.1, 0.2, 0.3]]",
                "derive: values: unknown key 'w2'; did you mean 'W2'?"),
    values_case("a layer the network does not have", "b2 = [0.0]\n", "b2 = [0.0]\nW3 = [[1.0]]\n",
                "derive: values: unknown key 'W3' (the network has 2 layers: W1 to W2)"),
    values_case("a bias in a network without biases", "b2 = [0.0]\n", "b2 = [0.0]\n",
                "derive: values: unknown key 'b1' (this network has no biases: bias = false)",
                extra="bias = false\n"),
    values_case("matrix of the wrong shape", "W2 = [[0.1, 0.2, 0.3]]", "W2 = [[0.1], [0.2], [0.3]]",
                "derive: W2 must be 1x3, got 3x1 (transposed? W(l) has one row per neuron of layer l)"),
    values_case("matrix written flat", "W2 = [[0.1, 0.2, 0.3]]", "W2 = [0.1, 0.2, 0.3]",
                "derive: W2 must be 1x3, got a flat list of 3 items (write rows as [[...], [...]])"),
    values_case("ragged matrix", "W1 = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]",
                "W1 = [[0.1, 0.2], [0.3], [0.5, 0.6]]", "derive: W1 must be 3x2, got 3 rows of 1 and 2 entries"),
    values_case("empty matrix", "W1 = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]", "W1 = []",
                "derive: W1 must be 3x2, got an empty list"),
    values_case("vector of the wrong length or empty", "x = [0.5, -0.5]", "x = []",
                "derive: x must have 2 entries, got 0"),
    values_case("a number where a list is expected", "x = [0.5, -0.5]", "x = 0.5",
                "derive: x must be a list of 2 numbers, got 0.5"),
    values_case("a string where a number is expected", "x = [0.5, -0.5]", 'x = ["0.5", -0.5]',
                "derive: x[1] must be a number, got '0.5'"),
    values_case("a bool where a number is expected", "x = [0.5, -0.5]", "x = [true, -0.5]",
                "derive: x[1] must be a number, got True"),
    values_case("NaN", "x = [0.5, -0.5]", "x = [nan, -0.5]", "derive: x[1] must be finite, got nan"),
    values_case("infinity", "b1 = [0.0, 0.0, 0.0]", "b1 = [inf, 0.0, 0.0]",
                "derive: b1[1] must be finite, got inf"),
    values_case("a float beyond float64", "x = [0.5, -0.5]", "x = [1e400, -0.5]",
                "derive: x[1] must be finite, got inf"),
    values_case("an integer beyond float64", "x = [0.5, -0.5]", "x = [1" + "0" * 400 + ", -0.5]",
                "derive: x[1] must be finite, got " + "1" + "0" * 56 + "... (beyond float64)"),
    values_case("y outside [0, 1] for bce or cross_entropy", "y = [1.0]", "y = [1.5]",
                "derive: y[1] must lie in [0, 1] for loss 'bce', got 1.5"),
    values_case("learning rate not positive", "b2 = [0.0]\n", "b2 = [0.0]\nlearning_rate = -1\n",
                "derive: learning_rate must be positive, got -1.0"),
    # -- numbers that are undefined or beyond float64 at the given values
    Case("loss undefined at the values (ln 0)", "bce on an identity output equal to 1",
         "derive: values: the loss is infinite at these values: bce takes ln(1 - a) and output "
         "a2[1] = 1, where it is ln 0; bce needs every output strictly between 0 and 1 "
         "(a sigmoid output layer keeps it there)",
         files={"net.toml": VALID.replace('loss = "bce"', 'activation = ["tanh", "identity"]\nloss = "bce"')
                .replace("W2 = [[0.1, 0.2, 0.3]]", "W2 = [[0.0, 0.0, 0.0]]")
                .replace("b2 = [0.0]", "b2 = [1.0]").replace("y = [1.0]", "y = [0.0]")}),
    Case("pre-activation beyond float64", "W1 and x of 1e200",
         "derive: values: z1[1] = W1 a0 + b1 is beyond float64 (overflow) at these values; "
         "scale the weights or inputs down",
         files={"net.toml": VALID.replace("x = [0.5, -0.5]", "x = [1e200, 1e200]")
                .replace("[[0.1, 0.2], [0.3", "[[1e200, 1e200], [0.3")}),
    Case("activation beyond float64", 'activation "exp(x)" at z = 1000',
         "derive: values: a1[1], activation 'exp(x)' at z1[1] = 1000, is beyond float64 (overflow)",
         files={"net.toml": VALID.replace('loss = "bce"', 'activation = ["exp(x)", "sigmoid"]\nloss = "bce"')
                .replace("x = [0.5, -0.5]", "x = [1000.0, 0.0]")
                .replace("[[0.1, 0.2], [0.3", "[[1.0, 0.0], [0.3")}),
    # -- the command line
    Case("unknown option", "derive grad --bogus",
         "derive: grad: unrecognized arguments: --bogus (see derive grad --help)",
         argv=["grad", "--bogus", "--layers", "2,1"]),
    Case("--params separated by spaces", 'derive explain ... --params "W1[1,1] b2[1]"',
         "derive: --params 'W1[1,1] b2[1]': separate the names with commas, e.g. 'W1[1,1],b2[1]'",
         argv=["explain", "--layers", "2,2,1", "--params", "W1[1,1] b2[1]"]),
    Case("unknown command", "derive frob",
         "derive: argument command: invalid choice: 'frob' (choose from 'grad', 'check', 'explain', "
         "'which', 'claim', 'code', 'exercises') (see derive --help)", argv=["frob"]),
    Case("option value of the wrong type", "derive check --points x",
         "derive: check: argument --points: invalid int value: 'x' (see derive check --help)",
         argv=["check", "--points", "x", "--layers", "2,1"]),
    Case("no network given", "derive grad",
         "derive: no network: give a spec file or --layers, e.g. --layers 2,3,1", argv=["grad"]),
    Case("spec file and shorthand both", "derive grad net.toml --layers 2,1",
         "derive: give a spec file or --layers/--activation/--loss, not both",
         argv=["grad", "net.toml", "--layers", "2,1"], files={"net.toml": NET}),
    Case("bad --layers item", "derive grad --layers 2,x,1",
         "derive: --layers item 2 must be a positive integer, got 'x'", argv=["grad", "--layers", "2,x,1"]),
    Case("bad limit", "derive grad --max-params 0",
         "derive: grad: argument --max-params: expected a positive integer, got '0' "
         "(see derive grad --help)", argv=["grad", "--layers", "2,1", "--max-params", "0"]),
    Case("bad limit in the environment", "DERIVE_MAX_PARAMS=lots",
         "derive: DERIVE_MAX_PARAMS must be a positive integer, got 'lots'",
         argv=["grad", "--layers", "2,1"], env={"DERIVE_MAX_PARAMS": "lots"}),
    # -- output files
    Case("-o names a folder", "derive code ... -o adir",
         "derive: output 'adir' is a folder, not a file", argv=["code", "--layers", "2,1", "-o", "adir"]),
    Case("-o inside a file", "derive code ... -o net.toml/out.py",
         "derive: output 'net.toml' is a file, not a folder",
         argv=["code", "--layers", "2,1", "-o", "net.toml/out.py"], files={"net.toml": NET}),
    Case("Ctrl-C", "Ctrl-C during any command", "derive: interrupted", code=130,
         argv=["grad", "--layers", "2,1"], patch=_interrupt),
]


def _cell(text: str) -> str:
    assert "\n" not in text and "|" not in text and "`" not in text, text
    return f"`{text}`"


def readme_rows() -> list[tuple[str, ...]]:
    """(kind, example, message, exit) of every row in the README's bad-input table."""
    lines = SECTION.search(README.read_text(encoding="utf-8")).group(1).splitlines()
    start = lines.index("| Bad input | Example | What derive prints on stderr | Exit |") + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(tuple(c.strip() for c in line.strip().strip("|").split(" | ")))
    return rows


def expected_rows() -> list[tuple[str, ...]]:
    return [(c.kind, _cell(c.example if len(c.example) <= 50 else c.example[:47] + "..."),
             _cell(c.message), str(c.code)) for c in CASES]


def readme_table() -> str:
    """The table `test_readme_table_matches_cases` expects, to paste into the README."""
    lines = ["| Bad input | Example | What derive prints on stderr | Exit |", "|---|---|---|---|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in expected_rows()])


def test_readme_table_matches_cases():
    assert all("|" not in c.message and "`" not in c.message for c in CASES)
    assert readme_rows() == expected_rows(), "README table differs; expected:\n" + readme_table()


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_cli_bad_input(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    for name, content in case.files.items():
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            (tmp_path / name).write_text(content, encoding="utf-8")
    for key in ("DERIVE_MAX_PARAMS", "DERIVE_MAX_DEPTH"):
        monkeypatch.delenv(key, raising=False)
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    if case.patch:
        case.patch(monkeypatch)
    code = main(case.argv)
    out, err = capsys.readouterr()
    assert (code, err, out) == (case.code, case.message + "\n", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"adir", *case.files})


def test_cli_valid_spec_of_the_table_works(tmp_path, monkeypatch, capsys):
    # The rows above vary one line of VALID; VALID itself must pass.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.toml").write_text(VALID, encoding="utf-8")
    assert main(["grad", "net.toml"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "loss L = " in out


# -- the Python API ---------------------------------------------------------------

def test_make_spec_accepts_numpy_integers():
    spec = make_spec(list(np.array([2, 3, 1])))
    assert spec.layers == (2, 3, 1) and all(type(n) is int for n in spec.layers)


def test_make_spec_layers_not_a_list():
    with pytest.raises(SpecError, match=r"^layers must be a list of sizes like \[2, 3, 1\], got 3$"):
        make_spec(3)


def test_make_spec_huge_layer_size_is_refused_by_the_parameter_limit():
    with pytest.raises(SpecError, match=r"^layers \[2, 10000000000000000000000000000000000000000, 1\] "
                                        r"give about 10\^40 parameters, far above the limit 250,000$"):
        make_spec([2, 10**40, 1])


def test_make_spec_layer_of_5000_digits_stays_one_short_line():
    with pytest.raises(SpecError) as info:
        make_spec([1, 10**5000, 1])
    assert str(info.value) == ("layers <a list holding an integer of over 4300 digits> give about "
                               "10^5000 parameters, far above the limit 250,000")


def test_make_spec_title_too_long():
    with pytest.raises(SpecError, match="^title has 201 characters; the limit is 200$"):
        make_spec([1, 1], title="t" * 201)


def test_make_spec_title_with_escape_sequence():
    with pytest.raises(SpecError, match=r"^title must be one line of text without control characters, "
                                        r"got 'red \\x1b\[31m'$"):
        make_spec([1, 1], title="red \x1b[31m")


def test_make_spec_long_bad_value_is_cut():
    with pytest.raises(SpecError) as info:
        make_spec([1, 1], activation=["x" * 10_000])
    assert len(str(info.value)) < 200 and "..." in str(info.value)


def test_make_spec_values_not_a_mapping():
    with pytest.raises(SpecError, match=r"^values must be a table, got \[1, 2\]$"):
        make_spec([1, 1], values=[1, 2])


def test_make_values_not_a_mapping():
    with pytest.raises(SpecError, match="^values must be a table, got 'x'$"):
        make_values(make_spec([1, 1]), "x")


def test_make_values_key_that_is_not_a_string():
    with pytest.raises(SpecError, match=r"^values: unknown key 3; expected one of x, y, learning_rate, W1, b1$"):
        make_values(make_spec([1, 1]), {3: 1})


def test_make_values_huge_integer_beyond_str_limit():
    with pytest.raises(SpecError, match=r"^x\[1\] must be finite, got <an integer of about 5000 digits> "
                                        r"\(beyond float64\)$"):
        make_values(make_spec([1, 1]), {"x": [10**5000], "y": [0], "W1": [[1]], "b1": [0]})


def test_make_values_single_layer_names_its_only_layer():
    with pytest.raises(SpecError, match=r"^values: unknown key 'W2' \(the network has 1 layer: W1\)$"):
        make_values(make_spec([1, 1]), {"W2": 1})


def test_make_values_values_table_inside_values():
    with pytest.raises(SpecError, match=r"^values: unknown key 'values' \(this is already the values "
                                        r"table: put x, y, W1, ... directly in it\)$"):
        make_values(make_spec([1, 1]), {"values": {}})


def test_make_values_spec_key_inside_values():
    with pytest.raises(SpecError, match=r"^values: unknown key 'loss' \(loss belongs in the spec, "
                                        r"above the \[values\] table\)$"):
        make_values(make_spec([1, 1]), {"loss": "bce"})


def test_make_values_missing_many_lists_five():
    with pytest.raises(SpecError, match="^values: missing x, y, W1, W2, W3 and 3 more$"):
        make_values(make_spec([1, 1, 1, 1]), {})


def test_make_values_cross_entropy_after_softmax_needs_a_distribution():
    spec = make_spec([1, 2], activation="softmax", loss="cross_entropy")
    with pytest.raises(SpecError, match="^y must sum to 1 for cross_entropy after softmax, got sum 1.1$"):
        make_values(spec, {"x": [1], "y": [0.5, 0.6], "W1": [[1], [1]], "b1": [0, 0]})


def test_make_values_learning_rate_nan():
    with pytest.raises(SpecError, match="^learning_rate must be finite, got nan$"):
        make_values(make_spec([1, 1]), {"x": [1], "y": [0], "W1": [[1]], "b1": [0],
                                        "learning_rate": float("nan")})


def test_load_spec_path_of_the_wrong_type():
    with pytest.raises(SpecError, match="^spec file must be a path, got 3$"):
        load_spec(3)


def test_load_spec_nul_byte_in_path():
    with pytest.raises(SpecError, match=r"^spec file 'a\\x00b' cannot be read: embedded null byte$"):
        load_spec("a\x00b")


def test_load_spec_unreadable_file(tmp_path, monkeypatch):
    # root can read anything, so make open() refuse as it would for another user
    path = tmp_path / "net.toml"
    path.write_text(NET)
    real_open = open

    def refuse(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(SpecError, match=r"^spec file '.*net.toml' cannot be read: Permission denied$"):
        load_spec(path)


def test_load_spec_device_is_not_read_whole(monkeypatch):
    monkeypatch.setattr(spec_module, "MIN_FILE_BYTES", 1000)
    monkeypatch.setattr(spec_module, "FILE_BYTES_PER_PARAMETER", 0)
    with pytest.raises(SpecError, match=r"^spec file '/dev/zero' is larger than 1,000 bytes, the input "
                                        r"limit \(it rises with --max-params\)$"):
        load_spec("/dev/zero")


def test_load_spec_accepts_a_utf8_byte_order_mark(tmp_path):
    path = tmp_path / "net.toml"
    path.write_bytes(b"\xef\xbb\xbf" + NET.encode())
    assert load_spec(path).layers == (2, 3, 1)


def test_load_spec_values_file_overrides(tmp_path):
    (tmp_path / "net.toml").write_text(VALID)
    (tmp_path / "v.toml").write_text(VALID.split("[values]\n")[1].replace("x = [0.5, -0.5]", "x = [1, 2]"))
    assert load_spec(tmp_path / "net.toml", tmp_path / "v.toml").values.x == (1.0, 2.0)


def test_load_values_table_not_toml(tmp_path):
    (tmp_path / "v.toml").write_text("x = = 1")
    with pytest.raises(SpecError, match=r"^values file '.*v.toml' is not valid TOML: Invalid value "
                                        r"\(at line 1, column 5\)$"):
        load_values_table(tmp_path / "v.toml")


# -- limits -----------------------------------------------------------------------

def test_limits_context_raises_the_parameter_limit():
    with limits(max_parameters=600_000):
        assert make_spec([2, 100_000, 2]).parameter_count == 500_002
    with pytest.raises(SpecError, match="above the limit 250,000"):
        make_spec([2, 100_000, 2])


def test_limits_environment_raises_the_depth_limit(monkeypatch):
    monkeypatch.setenv("DERIVE_MAX_DEPTH", "2000")
    assert make_spec([1] * 1502).depth == 1501


def test_limits_flag_beats_environment(monkeypatch):
    monkeypatch.setenv("DERIVE_MAX_PARAMS", "1000000")
    with limits(max_parameters=10):
        with pytest.raises(SpecError, match=r"above the limit 10; raise it with --max-params 13 "):
            make_spec([2, 3, 1])


def test_limits_module_constant_for_python_users(monkeypatch):
    monkeypatch.delenv("DERIVE_MAX_PARAMS", raising=False)
    monkeypatch.setattr(spec_module, "MAX_PARAMETERS", 5)
    with pytest.raises(SpecError, match=r"above the limit 5; "):
        make_spec([2, 3, 1])


def test_limits_bad_value():
    with pytest.raises(SpecError, match="^--max-params must be a positive integer, got -3$"):
        with limits(max_parameters=-3):
            pass


def test_cli_max_params_before_or_after_the_command(capsys):
    for argv in (["--max-params", "600000", "grad", "--layers", "2,100000,2", "--json"],
                 ["grad", "--layers", "2,100000,2", "--json", "--max-params", "600000"]):
        # parsing and the limit pass; stop before 500,002 formulas are printed
        seen = {}

        def stop(args, seen=seen):
            from derive.cli import load_network

            seen["params"] = load_network(args).spec.parameter_count
            return 0

        derive.cli.COMMANDS["grad"], real = stop, derive.cli.COMMANDS["grad"]
        try:
            assert main(argv) == 0
        finally:
            derive.cli.COMMANDS["grad"] = real
        assert seen["params"] == 500_002
    assert capsys.readouterr() == ("", "")


def test_cli_limit_does_not_leak_after_main(capsys):
    assert main(["--max-params", "600000", "grad", "--layers", "1,1"]) == 0
    capsys.readouterr()
    with pytest.raises(SpecError, match="above the limit 250,000"):
        make_spec([2, 100_000, 2])


# -- the command line's own guarantees -----------------------------------------------

def test_cli_internal_error_is_one_line(monkeypatch, capsys):
    def broken(args):
        raise ZeroDivisionError("division by zero\nsecond line")
    monkeypatch.setitem(derive.cli.COMMANDS, "grad", broken)
    monkeypatch.delenv("DERIVE_DEBUG", raising=False)
    assert main(["grad", "--layers", "1,1"]) == derive.cli.EXIT_INTERNAL == 70
    assert capsys.readouterr() == ("", "derive: internal error, a bug in derive: ZeroDivisionError: "
                                       "division by zero (DERIVE_DEBUG=1 shows the traceback)\n")


def test_cli_internal_error_traceback_with_debug(monkeypatch):
    def broken(args):
        raise ZeroDivisionError("boom")
    monkeypatch.setitem(derive.cli.COMMANDS, "grad", broken)
    monkeypatch.setenv("DERIVE_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["grad", "--layers", "1,1"])


def test_cli_message_with_newline_and_escape_stays_one_line(monkeypatch, capsys):
    def bad(args):
        raise SpecError("line one\nline two \x1b[31m")
    monkeypatch.setitem(derive.cli.COMMANDS, "grad", bad)
    assert main(["grad", "--layers", "1,1"]) == 2
    assert capsys.readouterr() == ("", "derive: line one\\nline two \\x1b[31m\n")


def test_cli_help_lists_exit_codes_and_limits(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for line in ("  0    ok", "  1    a check or claim failed", "  2    bad input or usage",
                 "  3    an external tool", "  130  interrupted", "  70   internal error",
                 "--max-params N   or DERIVE_MAX_PARAMS=N", "--max-depth N    or DERIVE_MAX_DEPTH=N"):
        assert line in out, line


def test_cli_subcommand_help_lists_exit_codes(capsys):
    for command in ("grad", "check", "explain", "which", "claim", "code"):
        assert main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert "exit codes:" in out and "--max-params N" in out, command


def test_cli_broken_pipe_exits_quietly(monkeypatch, capsys):
    def pipe(args):
        raise BrokenPipeError
    monkeypatch.setitem(derive.cli.COMMANDS, "grad", pipe)
    assert main(["grad", "--layers", "1,1"]) == 0
    assert capsys.readouterr() == ("", "")


def test_cli_closed_pipe_is_quiet():
    # `derive grad ... | head -c 10`: the reader leaves early; no "Exception ignored" noise
    layers = ",".join(["2"] * 30)
    proc = subprocess.Popen([sys.executable, "-m", "derive.cli", "grad", "--layers", layers],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(README.parent)})
    assert proc.stdout.read(10) == b"2-2-2-2-2-"
    proc.stdout.close()
    err = proc.stderr.read()
    assert (proc.wait(timeout=120), err) == (0, b"")


def test_cli_out_of_memory_is_one_line(monkeypatch, capsys):
    def oom(args):
        raise MemoryError
    monkeypatch.setitem(derive.cli.COMMANDS, "grad", oom)
    assert main(["grad", "--layers", "1,1"]) == 70
    assert capsys.readouterr() == ("", "derive: out of memory; try a smaller network or lower "
                                       "--max-params\n")


@pytest.mark.parametrize("given, name", [("ReLU", "relu"), ("Leaky-ReLU", "leaky_relu"),
                                         ("SIGMOID", "sigmoid"), (" tanh ", "tanh")])
def test_activation_names_ignore_case_and_hyphens(given, name):
    assert make_spec([2, 1], given).activations[0].name == name


@pytest.mark.parametrize("given, name", [("MSE", "mse"), ("cross-entropy", "cross_entropy"),
                                         ("Half-SSE", "half_sse"), ("BCE", "bce")])
def test_loss_names_ignore_case_and_hyphens(given, name):
    assert make_spec([2, 1], loss=given).loss.name == name


def test_hyphen_in_a_formula_is_still_a_difference():
    # a-y is the custom loss a - y, not an unknown name "a-y"
    spec = make_spec([1, 1], "identity", "a-y")
    assert spec.loss.name == "a-y"
    with pytest.raises(SpecError, match=r"^unknown loss 'hinge-loss'; expected one of "):
        make_spec([1, 1], loss="hinge-loss")


def test_transposed_hint_only_for_the_swapped_shape():
    spec = make_spec([2, 3, 1])
    point = {"x": [1, 2], "y": [0.5], "W1": [[1, 2, 3], [4, 5, 6]], "b1": [0, 0, 0],
             "W2": [[1, 2, 3]], "b2": [0]}
    with pytest.raises(SpecError, match=r"^W1 must be 3x2, got 2x3 \(transposed\? "):
        make_values(spec, point)
    point["W1"] = [[1, 2], [3, 4]]  # 2x2 is wrong, but not the transpose
    with pytest.raises(SpecError, match=r"^W1 must be 3x2, got 2x2$"):
        make_values(spec, point)


def test_values_key_case_suggestion():
    spec = make_spec([2, 1])
    with pytest.raises(SpecError, match=r"^values: unknown key 'w1'; did you mean 'W1'\?$"):
        make_values(spec, {"x": [1, 2], "y": [0.5], "w1": [[1, 2]], "b1": [0]})
