"""Fuzzing specs and values: the only outcomes are a result or a one-line DeriveError.

Seeded (derandomized) Hypothesis strategies build spec tables (random structures,
hostile strings, numbers including nan, inf, huge integers and subnormals), write them
as TOML and read them with `load_spec`; mutate valid TOML text byte by byte; build
values tables of right and wrong shapes for `make_values` and evaluate the ones that
pass; and run `derive.cli.main` in-process on spec files and on random argument
lists.  No other exception may escape, no message may span two lines, the CLI may not
report an internal error (exit 70), and a watchdog turns any case slower than
`CASE_SECONDS` into a failure.  The last test checks the case count and the time.
"""

from __future__ import annotations

import _thread
import contextlib
import json
import math
import threading
import time

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from derive import Network
from derive.spec import expressions
from derive.cli import main
from derive.errors import DeriveError
from derive.spec.registry import ACTIVATIONS, LOSSES
from derive.spec.loading import load_spec, make_spec
from derive.spec.values import make_values

EXAMPLES = {"tables": 450, "text": 300, "values": 350, "cli_spec": 150, "cli_argv": 100}
CASE_SECONDS = 20.0  # a case slower than this is a hang
CASES: dict[str, int] = {}
STARTED: list[float] = []  # when this module's first test began (not when it was imported)
SETTINGS = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
# The expression parser's time budget may fire inside a gc callback Hypothesis installed.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

HOSTILE = [
    "", " ", "x", "a", "y", "sigmoid", "sigmoud", "Sigmoid", "tanh,sigmoid", "softmax", "relu ",
    "__import__('os').system('echo pwned')", "lambda: 0", "().__class__.__bases__", "exec('1')",
    "x" * 5000, "\x00", "\u202e", "σ(x)", "x\nimport os", "exp(exp(exp(exp(x))))", "x**x**x**x**x",
    "10**10**10", "9" * 400, "1e308*x", "max(x, 0)", "abs(x)/(1+abs(x))", "(a-y)**2", "-y*log(a)",
    "log(a)", "sqrt(x)", "1/x", "x/0", "${HOME}", "\\input{/etc/passwd}", "'; DROP TABLE", "{{x}}",
    "W1[1,1]", "delta", "nan", "inf", "half_sse", "cross_entropy", "bce", "mse ", "hinge",
]
NUMBERS = st.one_of(
    st.integers(-3, 3), st.integers(-(10**30), 10**30), st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.floats(-5, 5), st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, 2**63, 2**64, 1e-300]))
STRINGS = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=20))
SCALARS = st.one_of(NUMBERS, STRINGS, st.booleans())
JUNK = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(STRINGS, inner, max_size=3)), max_leaves=12)
SIZES = st.lists(st.integers(1, 3), min_size=2, max_size=4)
NAMES = st.sampled_from(sorted(ACTIVATIONS))
LOSS_NAMES = st.sampled_from(sorted(LOSSES))


@pytest.fixture(autouse=True, scope="module")
def short_expression_budget():
    """A slow custom expression should hit the parser's budget quickly."""
    saved = expressions.MAX_SECONDS
    expressions.MAX_SECONDS = 0.25
    STARTED.append(time.perf_counter())
    yield
    expressions.MAX_SECONDS = saved


@contextlib.contextmanager
def watchdog(what: str):
    """KeyboardInterrupt in this thread if the block outlives CASE_SECONDS."""
    timer = threading.Timer(CASE_SECONDS, _thread.interrupt_main)
    timer.start()
    start = time.perf_counter()
    try:
        yield
    except KeyboardInterrupt:
        raise AssertionError(f"{what} ran for {time.perf_counter() - start:.1f} s: a hang") from None
    finally:
        timer.cancel()


def count(kind: str) -> None:
    CASES[kind] = CASES.get(kind, 0) + 1


def assert_one_line(exc: DeriveError) -> None:
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message and len(message) < 1000, message


# -- TOML writing ------------------------------------------------------------------

def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):  # a TOML basic string: JSON's escapes, but no surrogate pairs
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{toml_value(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


def toml_text(table: dict) -> str:
    lines = [f"{toml_value(k)} = {toml_value(v)}" for k, v in table.items()
             if not (k == "values" and isinstance(v, dict))]
    if isinstance(table.get("values"), dict):
        lines.append("[values]")
        lines += [f"{toml_value(k)} = {toml_value(v)}" for k, v in table["values"].items()]
    return "\n".join(lines) + "\n"


# -- strategies ----------------------------------------------------------------------

@st.composite
def values_for(draw, layers, bias=True):
    """A values table shaped for `layers`, then perhaps corrupted."""
    n, L = layers, len(layers) - 1
    cell = st.one_of(st.floats(-3, 3), NUMBERS) if draw(st.booleans()) else st.floats(-3, 3)
    table = {"x": draw(st.lists(cell, min_size=n[0], max_size=n[0])),
             "y": draw(st.lists(st.floats(0, 1), min_size=n[-1], max_size=n[-1]))}
    for l in range(1, L + 1):
        table[f"W{l}"] = draw(st.lists(st.lists(cell, min_size=n[l - 1], max_size=n[l - 1]),
                                       min_size=n[l], max_size=n[l]))
        if bias:
            table[f"b{l}"] = draw(st.lists(cell, min_size=n[l], max_size=n[l]))
    if draw(st.booleans()):
        table["learning_rate"] = draw(st.one_of(st.floats(0.01, 1), NUMBERS))
    for _ in range(draw(st.integers(0, 2))):  # corruptions
        key = draw(st.sampled_from(sorted(table) + ["W9", "b0", "lr", "values"]))
        action = draw(st.sampled_from(["delete", "junk", "transpose", "empty"]))
        if action == "delete":
            table.pop(key, None)
        elif action == "junk":
            table[key] = draw(JUNK)
        elif action == "transpose" and isinstance(table.get(key), list) and table[key] \
                and all(isinstance(r, list) for r in table[key]):
            table[key] = [list(col) for col in zip(*table[key])]
        else:
            table[key] = []
    return table


@st.composite
def spec_tables(draw):
    """A spec table: mostly well-formed fields, some junk, sometimes extra keys."""
    table = {}
    layers = draw(st.one_of(SIZES, SIZES, JUNK))
    if draw(st.integers(0, 9)) != 5:  # not `if draw(...)`: Hypothesis favours 0
        table["layers"] = layers
    if draw(st.booleans()):
        depth = len(layers) - 1 if isinstance(layers, list) and len(layers) > 1 else 2
        table["activation"] = draw(st.one_of(NAMES, STRINGS, st.lists(st.one_of(NAMES, STRINGS),
                                                                      min_size=depth, max_size=depth), JUNK))
    if draw(st.booleans()):
        table["loss"] = draw(st.one_of(LOSS_NAMES, STRINGS, JUNK))
    if draw(st.booleans()):
        table["bias"] = draw(st.one_of(st.booleans(), JUNK))
    if draw(st.booleans()):
        table["title"] = draw(st.one_of(STRINGS, JUNK))
    if draw(st.booleans()):
        valid_layers = isinstance(layers, list) and len(layers) > 1 and all(
            isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 3 for n in layers)
        table["values"] = draw(values_for(layers, table.get("bias", True) is not False)
                               if valid_layers else st.one_of(JUNK, st.dictionaries(STRINGS, JUNK)))
    if draw(st.integers(0, 7)) == 5:
        table[draw(STRINGS)] = draw(JUNK)
    return table


# -- the properties ------------------------------------------------------------------

def load(path, kind: str) -> None:
    count(kind)
    with watchdog(f"load_spec({path})"):
        try:
            spec = load_spec(path)
        except DeriveError as exc:
            assert_one_line(exc)
            return
    if spec.values is not None:
        evaluate(spec)


def evaluate(spec) -> None:
    """Numbers at a spec's own values: a result or one line, never nan silently."""
    with watchdog(f"gradients of {spec!r}"):
        try:
            net = Network.from_spec(spec)
            grads, loss = net.gradients(), net.loss()
        except DeriveError as exc:
            assert_one_line(exc)
            return
    assert math.isfinite(loss) and all(math.isfinite(g) for g in grads.values())


@settings(max_examples=EXAMPLES["tables"], **SETTINGS)
@given(table=spec_tables())
def test_fuzz_load_spec_random_tables(table, tmp_path_factory):
    path = tmp_path_factory.mktemp("t") / "net.toml"
    text = toml_text(table)
    note(text)
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    load(path, "tables")


VALID_TEXT = """title = "fuzz"
layers = [2, 2, 1]
activation = ["tanh", "sigmoid"]
loss = "bce"
bias = true
[values]
x = [0.5, -0.25]
y = [1.0]
W1 = [[0.1, -0.2], [0.3, 0.4]]
b1 = [0.0, 0.1]
W2 = [[0.5, -0.6]]
b2 = [0.2]
learning_rate = 0.5
"""


@settings(max_examples=EXAMPLES["text"], **SETTINGS)
@given(edits=st.lists(st.tuples(st.integers(0, len(VALID_TEXT)), st.integers(0, 6),
                                st.one_of(st.binary(max_size=4), st.sampled_from(
                                    [b"[", b"]", b"=", b'"', b"\n", b"nan", b"1e999", b",", b"#",
                                     b"\xff", b"\x00", b"[values]\n", b"9" * 40]))), max_size=4))
def test_fuzz_load_spec_mutated_text(edits, tmp_path_factory):
    data = VALID_TEXT.encode()
    for at, cut, insert in edits:
        data = data[:at] + insert + data[at + cut:]
    note(repr(data))
    path = tmp_path_factory.mktemp("m") / "net.toml"
    path.write_bytes(data)
    load(path, "text")


SPECS = [make_spec([2, 2, 1], ["tanh", "sigmoid"], "bce"), make_spec([1, 3], "softmax", "cross_entropy"),
         make_spec([2, 1], "relu", "half_sse", bias=False), make_spec([1, 2, 2], ["gelu", "softmax"], "mse"),
         make_spec([2, 1], "x/(1+abs(x))", "(a-y)**2")]


@settings(max_examples=EXAMPLES["values"], **SETTINGS)
@given(data=st.data())
def test_fuzz_make_values(data):
    spec = data.draw(st.sampled_from(SPECS))
    raw = data.draw(st.one_of(values_for(spec.layers, spec.bias), JUNK))
    count("values")
    with watchdog("make_values"):
        try:
            values = make_values(spec, raw)
        except DeriveError as exc:
            assert_one_line(exc)
            return
    evaluate(spec.__class__(spec.layers, spec.activations, spec.loss, spec.bias, spec.title, values))


@settings(max_examples=EXAMPLES["cli_spec"], **SETTINGS)
@given(table=spec_tables(), command=st.sampled_from(["grad", "grad --json", "check --points 0", "which"]))
def test_fuzz_cli_spec_files(table, command, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("c")
    (folder / "net.toml").write_text(toml_text(table), encoding="utf-8", errors="surrogatepass")
    argv = command.split()[:1] + [str(folder / "net.toml")] + command.split()[1:]
    run_main(argv, allowed={0, 1, 2} if command.startswith("check") else {0, 2}, capsys=capsys)
    assert [p.name for p in folder.iterdir()] == ["net.toml"]


ARG_WORDS = ["grad", "check", "which", "claim", "code", "--layers", "2,1", "1,2,1", "2,x",
             "0,1", "--activation", "tanh", "sigmoud", "softmax,tanh", "--loss", "bce", "hinge",
             "--no-bias", "--json", "--points", "0", "1", "-1", "x", "--seed", "--values",
             "nope.toml", "--max-params", "--max-depth", "3", "W1[1,1]", "b9[1]", "W1[0,0]",
             "delta2[1]*a1[1]", "__import__('os')", "--target", "numpy", "torch", "--format", "tex",
             "--", "-", "", "--bogus"]


@settings(max_examples=EXAMPLES["cli_argv"], **SETTINGS)
@given(argv=st.lists(st.one_of(st.sampled_from(ARG_WORDS), st.text(max_size=8)), min_size=1, max_size=8))
def test_fuzz_cli_argv(argv, tmp_path_factory, monkeypatch, capsys):
    if argv[0] not in ("grad", "check", "which", "claim", "code"):
        argv = ["grad"] + argv  # no argument builds the default documents: not fuzzed here
    if "--points" in argv:  # a random point count could ask for hours of work
        i = argv.index("--points")
        argv[i + 1:i + 2] = ["1"]
    monkeypatch.chdir(tmp_path_factory.mktemp("a"))
    run_main(argv, allowed={0, 1, 2}, capsys=capsys)


def run_main(argv, allowed, capsys) -> None:
    note(f"argv: {argv!r}")
    count("cli")
    capsys.readouterr()
    with watchdog(f"derive {' '.join(argv)}"):
        code = main(argv)
    out, err = capsys.readouterr()
    assert code in allowed, (code, err)
    if code == 2:
        assert out == "" and err.startswith("derive: ") and err.count("\n") == 1, err
    else:
        assert "Traceback" not in err and "derive: internal error" not in err, err


def test_fuzz_inputs_total_cases_and_time():
    if len(CASES) < 4:
        pytest.skip("only some fuzz tests ran")
    total, seconds = sum(CASES.values()), time.perf_counter() - STARTED[0]
    assert total >= 1000, CASES
    # No wall-clock assertion here: a hang is caught per case (CASE_SECONDS), and
    # the file's total time depends on what else shares the machine.
    print(f"{total} fuzz cases ({CASES}) in {seconds:.1f} s")
