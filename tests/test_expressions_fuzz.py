"""Fuzzing derive.spec.expressions: any text gives a sympy.Expr or a one-line SpecError.

Three seeded (derandomized) Hypothesis strategies, 2,100 cases in all: random
characters, grammar-shaped formulas (valid and nearly valid), and hostile
fragments.  The parser's own budget is cut to 0.25 s for the file, so a slow case
ends as a refusal; no wall-clock assertion here (speed lives in benchmarks/), the
last test checks that all the cases ran.
"""

import random

import pytest
import sympy
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from derive.spec import expressions
from derive.errors import SpecError
from derive.spec.expressions import DEFAULT_FUNCTIONS, format_error, parse_expression

FIELD = "fuzz"
NAMES = {name: sympy.Symbol(name, real=True) for name in ("x", "y", "a")}
FUNCTIONS = {**DEFAULT_FUNCTIONS, "sigmoid": lambda z: 1 / (1 + sympy.exp(-z))}
EXAMPLES = {"random_text": 800, "grammar": 800, "hostile": 500}
CASES = {}  # strategy -> cases checked
SETTINGS = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.fixture(autouse=True, scope="module")
def short_time_budget():
    """A slow case should hit the parser's budget well inside the Hypothesis deadline."""
    saved = expressions.MAX_SECONDS
    expressions.MAX_SECONDS = 0.25
    yield
    expressions.MAX_SECONDS = saved


def resolve(text, name, indices, position):
    """The `indexed` callback: a1, a2, W1 and x with indices 1..9 are known."""
    if name not in ("a1", "a2", "W1", "x") or any(i < 1 or i > 9 for i in indices):
        raise SpecError(format_error(FIELD, text, position, f"unknown quantity {name!r}"))
    return sympy.Symbol(f"{name}_{'_'.join(map(str, indices))}", real=True)


def check(text, strategy):
    CASES[strategy] = CASES.get(strategy, 0) + 1
    note(f"text: {text!r}")
    try:
        value = parse_expression(text, field=FIELD, names=NAMES, functions=FUNCTIONS,
                                 indexed=lambda *args: resolve(text, *args))
    except SpecError as exc:
        message = str(exc)
        assert message.startswith(f"{FIELD}: ") and "\n" not in message, message
        assert len(message) < 400, message
        return
    assert isinstance(value, sympy.Expr)
    assert not value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)


ALPHABET = "xyae019 ._+-*/^()[],'\"_=<>!&|%@~:;{}\\\t\nlogexpsqrtmaxjbfLW"

# Grammar and hostile cases are built by a Random seeded from one Hypothesis draw:
# one draw per case instead of dozens keeps generation cheap (the parser, not
# Hypothesis, should get the time), and runs stay derandomized and replayable.
VALID_LEAVES = ["x", "y", "a", "pi", "e", "a2[1]", "W1[1,2]", "0", "7", "0.5", "1e3", "2.5e-3",
                "1_000", ".25", "3.", "123456789", "0x1F"]
ODD_LEAVES = ["q", "x[0]", "a1[1.5]", "exp", "True", "None", "__x__", "1e-400", "1e999",
              "9" * 301, "1j", "10**299", "'s'"]
VALID_OPERATORS = ["+", "-", "*", "/", "**", "^"]
ODD_OPERATORS = ["//", "%", " ", "<", "."]
ODD_CALLEES = ["eval", "open", "x", "exp_", "__import__"]
MUTATIONS = ["", "(", ")", "[", ".", ",", "*", "'", "_"]
SEEDS = st.integers(0, 2**32 - 1).map(random.Random)


def pick(rng, valid, odd, odd_share=0.1):
    return rng.choice(odd if rng.random() < odd_share else valid)


def formula(rng, depth=0):
    """A random grammar-shaped formula, mostly valid: leaves, operators, calls."""
    kind = rng.random() if depth < 6 else 0.0
    if kind < 0.35:
        return pick(rng, VALID_LEAVES, ODD_LEAVES)
    if kind < 0.7:
        operator = pick(rng, VALID_OPERATORS, ODD_OPERATORS)
        return f"{formula(rng, depth + 1)}{operator}{formula(rng, depth + 1)}"
    if kind < 0.85:
        prefix = rng.choice(["-", "+", "(", "--"])
        return f"({formula(rng, depth + 1)})" if prefix == "(" else prefix + formula(rng, depth + 1)
    name = pick(rng, [*DEFAULT_FUNCTIONS, "sigmoid"], ODD_CALLEES)
    count = 2 if name in ("min", "max") else 1
    if rng.random() < 0.1:
        count = rng.randint(0, 3)
    return f"{name}({', '.join(formula(rng, depth + 1) for _ in range(count))})"


def nearly_valid(rng):
    """A formula, a third of the time with one character replaced, dropped or added."""
    text = formula(rng)
    if rng.random() < 0.3:
        index = rng.randrange(len(text))
        text = text[:index] + rng.choice(MUTATIONS) + text[index + rng.randint(0, 1):]
    return text


HOSTILE = [
    "__import__('os').system('echo hi')", "x.__class__.__mro__", "().__class__.__bases__",
    "__builtins__", "getattr(x, '__class__')", "lambda: 1", "[i for i in x]", "x.real",
    "10**10**10", "2**100000", "9" * 300, "1e99999999", "x**x**x**x**x**x", "x**100000",
    "exp(exp(exp(100)))", "max(exp(exp(exp(100))), 1)", "exp(10**299*log(10**299))",
    "sqrt(-1)", "log(0)", "1/0", "0**-1", "(-8)**(1/3)", "min(x, sqrt(-1))",
    "2**(x+996)*2**(x+996)*2**(-2*x)", "exp(1000*(log(2)+log(3)))", "sigmoid(10**299)",
    "x" + ".y" * 50, "(" * 64 + "x" + ")" * 64, "-" * 70 + "x", "max(x, 1-x)",
]
WRAPPERS = ["(", "exp(", "sigmoid(", "max(x, ", "abs(", "x[", "-"]


def hostile(rng):
    """Hostile fragments joined with operators and wrapped up to 70 levels deep."""
    parts = [rng.choice(HOSTILE) for _ in range(rng.randint(1, 4))]
    text = rng.choice(["+", "*", "^", ", ", "**", ""]).join(parts)
    wrapper, depth = rng.choice(WRAPPERS), rng.randint(0, 70)
    closer = {"x[": "]", "-": ""}.get(wrapper, ")")
    return wrapper * depth + text + closer * depth


@settings(max_examples=EXAMPLES["random_text"], **SETTINGS)
@given(st.text(alphabet=ALPHABET, max_size=80))
def test_parse_expression_fuzz_random_text(text):
    check(text, "random_text")


@settings(max_examples=EXAMPLES["grammar"], **SETTINGS)
@given(SEEDS)
def test_parse_expression_fuzz_grammar(rng):
    check(nearly_valid(rng), "grammar")


@settings(max_examples=EXAMPLES["hostile"], **SETTINGS)
@given(SEEDS)
def test_parse_expression_fuzz_hostile(rng):
    check(hostile(rng), "hostile")


def test_parse_expression_fuzz_total_cases():
    if set(CASES) != set(EXAMPLES):
        pytest.skip("runs only after all three fuzz tests")
    assert sum(CASES.values()) >= 2000, CASES
