"""Tests for derive.spec.expressions: exact results, one test per refusal, no execution."""

import ast
import inspect
import re
import threading

import pytest
import sympy

from derive.spec import expressions
from derive.errors import SpecError
from derive.spec.deadline import Deadline
from derive.spec.expressions import DEFAULT_FUNCTIONS, format_error, parse_expression

X = sympy.Symbol("x", real=True)
A = sympy.Symbol("a", real=True)
Y = sympy.Symbol("y", real=True)


def activation(text, **kwargs):
    return parse_expression(text, field="activation", names={"x": X}, **kwargs)


def claim(text, calls=None):
    """Parse a claimed gradient; subscripts become symbols like a2_1 (or W1_1_2)."""
    def indexed(name, indices, position):
        if calls is not None:
            calls.append((name, indices, position))
        if name not in ("a1", "a2", "y", "W1"):
            raise SpecError(format_error("claim", text, position, f"unknown quantity {name!r}"))
        return sympy.Symbol("_".join([name, *map(str, indices)]), real=True)
    return parse_expression(text, field="claim", names={}, indexed=indexed)


def refused(text, match, **kwargs):
    with pytest.raises(SpecError, match=match) as info:
        activation(text, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


# --- what is accepted, exactly -------------------------------------------------

def test_parse_expression_softsign():
    assert activation("x/(1+abs(x))") == X / (1 + sympy.Abs(X))


def test_parse_expression_caret_is_power_with_math_precedence():
    assert activation("2^3*x") == 8 * X
    assert activation("2^3^2") == 512
    assert activation("x^2 + 1") == X**2 + 1


def test_parse_expression_decimals_are_exact_rationals():
    assert activation("0.1") == sympy.Rational(1, 10)
    assert activation("1.5e-3*x") == sympy.Rational(3, 2000) * X
    assert activation("1_000.5") == sympy.Rational(2001, 2)
    assert activation(".5") == sympy.Rational(1, 2)
    assert activation("1e3") == sympy.Integer(1000)
    assert not activation("0.1*x").atoms(sympy.Float)


def test_parse_expression_integer_literals():
    assert activation("42") == 42
    assert activation("0x10") == 16
    assert activation("9" * 300) == sympy.Integer("9" * 300)


def test_parse_expression_constants_pi_and_e():
    assert activation("pi*e*x") == sympy.pi * sympy.E * X
    assert activation("e^x") == sympy.exp(X)


def test_parse_expression_names_override_constants():
    e = sympy.Symbol("e")
    assert parse_expression("e + 1", field="f", names={"e": e}) == e + 1


def test_parse_expression_loss_in_a_and_y():
    loss = parse_expression("(a - y)^2/2", field="loss", names={"a": A, "y": Y})
    assert loss == (A - Y) ** 2 / 2


def test_parse_expression_every_default_function():
    expected = {"exp": sympy.exp(X), "log": sympy.log(X), "ln": sympy.log(X),
                "sqrt": sympy.sqrt(X), "abs": sympy.Abs(X), "tanh": sympy.tanh(X),
                "sinh": sympy.sinh(X), "cosh": sympy.cosh(X), "sin": sympy.sin(X),
                "cos": sympy.cos(X), "atan": sympy.atan(X), "erf": sympy.erf(X)}
    for name, value in expected.items():
        assert activation(f"{name}(x)") == value, name
    assert activation("min(x, 1)") == sympy.Min(X, 1)
    assert activation("max(0, x)") == sympy.Max(0, X)
    assert set(DEFAULT_FUNCTIONS) == {*expected, "min", "max"}


def test_parse_expression_extra_function_merged_with_defaults():
    functions = {**DEFAULT_FUNCTIONS, "sigmoid": lambda z: 1 / (1 + sympy.exp(-z))}
    value = activation("x*sigmoid(x) + exp(x)", functions=functions)
    assert value == X / (1 + sympy.exp(-X)) + sympy.exp(X)


def test_parse_expression_unary_signs():
    assert activation("-x") == -X
    assert activation("+x") == X
    assert activation("--x") == X
    assert activation("-2^2") == -4


def test_parse_expression_whitespace_and_newlines():
    assert activation("  x +\n 1\t") == X + 1


def test_parse_expression_returns_sympy_expr():
    assert isinstance(activation("1"), sympy.Expr)
    assert isinstance(activation("x"), sympy.Expr)


def test_parse_expression_claim_with_indexed_names():
    value = claim("(a2[1]-y[1])*a2[1]*(1-a2[1])*a1[1]")
    a2, y, a1 = sympy.symbols("a2_1 y_1 a1_1", real=True)
    assert value == (a2 - y) * a2 * (1 - a2) * a1


def test_parse_expression_indexed_callback_receives_name_indices_position():
    calls = []
    claim("2*W1[1, 2] + a2[3]", calls)
    assert calls == [("W1", (1, 2), 2), ("a2", (3,), 13)]


def test_parse_expression_indexed_callback_error_propagates():
    with pytest.raises(SpecError, match=r"^claim: unknown quantity 'b7' at position 3 in "
                                        r"'2\*b7\[1\]'$"):
        claim("2*b7[1]")


def test_parse_expression_symbolic_tower_builds():
    value = activation("x**x**x**x**x**x")
    assert value == X ** (X ** (X ** (X ** (X**X))))


def test_parse_expression_largest_allowed_numbers():
    assert activation("x**1000") == X**1000
    assert activation("2**996") == 2**996
    assert activation("exp(690)") == sympy.exp(690)


# --- one test per refusal -------------------------------------------------------

def test_parse_expression_unknown_name_message():
    message = refused("x*q", "unknown name")
    assert message == "activation: unknown name 'q' at position 3 in 'x*q'; allowed names: e, pi, x"


def test_parse_expression_unknown_name_did_you_mean():
    refused("xx + 1", r"unknown name 'xx' at position 1 .*did you mean 'x'\?")


def test_parse_expression_function_not_allowed():
    with pytest.raises(SpecError, match=r"^claim: function 'eval' is not allowed at position 1 "
                                        r"in 'eval\(1\)'; allowed functions: abs, atan, cos"):
        parse_expression("eval(1)", field="claim", names={})


def test_parse_expression_function_did_you_mean():
    refused("expp(x)", r"function 'expp' is not allowed .*did you mean 'exp'\?")


def test_parse_expression_name_called_as_function():
    refused("x(2)", "'x' is a name, not a function at position 1")


def test_parse_expression_function_without_arguments():
    refused("exp + 1", r"function 'exp' needs arguments, e.g. exp\(x\) at position 1")


def test_parse_expression_wrong_number_of_arguments():
    refused("max(1, 2, 3)", "function 'max' takes 2 arguments, got 3 at position 1")
    refused("exp()", "function 'exp' takes 1 argument, got 0 at position 1")
    sigmoid = {**DEFAULT_FUNCTIONS, "sigmoid": lambda z: 1 / (1 + sympy.exp(-z))}
    refused("sigmoid(x, 2)", "function 'sigmoid' takes 1 argument, got 2",
            functions=sigmoid)


def test_parse_expression_import_call_refused():
    refused("__import__('os').system('echo hi')", "attribute access is not allowed")
    refused("__import__('os')", "function '__import__' is not allowed at position 1")


def test_parse_expression_dunder_name_refused():
    refused("__builtins__", "name '__builtins__' is not allowed at position 1")


def test_parse_expression_attribute_refused():
    refused("x.__class__", "attribute access is not allowed at position 1 in 'x.__class__'")


def test_parse_expression_lambda_refused():
    refused("lambda: 1", "lambda is not allowed at position 1")


def test_parse_expression_comprehension_refused():
    refused("[i for i in x]", "comprehension is not allowed at position 1")
    refused("sum(i for i in x)", "function 'sum' is not allowed")


def test_parse_expression_string_refused():
    refused('"a"', "string is not allowed at position 1")


def test_parse_expression_bytes_refused():
    refused("b'a'", "bytes is not allowed at position 1")


def test_parse_expression_fstring_refused():
    refused('f"{x}"', "f-string is not allowed at position 1")


def test_parse_expression_comparison_refused():
    refused("x < 1", "comparison is not allowed at position 1")


def test_parse_expression_boolean_operators_refused():
    refused("x and 1", "'and'/'or' is not allowed at position 1")
    refused("not x", "operator 'not' is not allowed at position 1")


def test_parse_expression_keyword_argument_refused():
    refused("exp(x=1)", "keyword arguments are not allowed at position 5")


def test_parse_expression_starred_argument_refused():
    refused("max(*x)", "starred argument is not allowed at position 5")


def test_parse_expression_walrus_refused():
    refused("(y := 1)", "assignment ':=' is not allowed at position 2")


def test_parse_expression_conditional_refused():
    refused("x if x else 1", r"'if \.\.\. else' is not allowed at position 1")


def test_parse_expression_containers_refused():
    refused("1, 2", "tuple is not allowed")
    refused("[1]", "list is not allowed")
    refused("{1: 2}", "dict is not allowed")
    refused("{1}", "set is not allowed")


@pytest.mark.parametrize("operator", ["//", "%", "@", "|", "&", "<<", ">>"])
def test_parse_expression_operator_refused(operator):
    refused(f"x {operator} 2", f"operator {operator!r} is not allowed at position 1")


def test_parse_expression_invert_refused():
    refused("~x", "operator '~' is not allowed at position 1")


def test_parse_expression_true_false_none_refused():
    refused("True", "constant True is not allowed")
    refused("x*False", "constant False is not allowed at position 3")
    refused("None", "constant None is not allowed")


def test_parse_expression_complex_literal_refused():
    refused("1j", "complex number is not allowed at position 1")


def test_parse_expression_subscript_without_callback_refused():
    refused("x[1]", "subscripts are not allowed here at position 1")


def test_parse_expression_subscript_index_must_be_integer_literal():
    for text in ("a2[x]", "a2[1.5]", "a2[-1]", "a2[1:2]", "a2[True]", "a2[1, y[1]]"):
        with pytest.raises(SpecError, match="index must be a whole-number literal"):
            claim(text)


def test_parse_expression_subscript_of_non_name_refused():
    with pytest.raises(SpecError, match="only a plain name can be subscripted at position 1"):
        claim("exp(1)[1]")


def test_parse_expression_syntax_error():
    refused("x y", r"^activation: syntax error at position 3 in 'x y'; invalid syntax")
    refused("(x", "syntax error at position 1 in '\\(x'; '\\(' was never closed")


def test_parse_expression_empty_text():
    refused("", "^activation: empty expression at position 1 in ''$")
    refused("  \n ", "empty expression")


def test_parse_expression_text_must_be_str():
    with pytest.raises(SpecError, match="^activation: expected a formula as text, got NoneType$"):
        activation(None)


def test_parse_expression_text_too_long():
    message = refused("x+" * 2500,
                      r"text too long \(5000 characters; limit 2000\) at position 2001")
    assert len(message) < 200


def test_parse_expression_deep_brackets_refused_before_parsing():
    refused("(" * 10000 + "x" + ")" * 10000, "text too long")
    refused("(" * 100 + "x" + ")" * 100, "brackets nested deeper than 64 levels at position 65")
    refused("[" * 65 + "x", "brackets nested deeper than 64 levels")


def test_parse_expression_deep_tree_refused():
    refused("-" * 100 + "x", "expression nested deeper than 64 levels at position 65")
    refused("x+" * 70 + "x", "expression nested deeper than 64 levels")


def test_parse_expression_too_many_nodes_refused():
    refused("x+" * 600 + "x", r"expression too large \(1201 parts; limit 1000\) at position 1")


def test_parse_expression_non_ascii_and_control_characters_refused():
    refused("σ(x)", "non-ASCII character 'σ' is not allowed at position 1")
    refused("x\x00", r"control character '\\x00' is not allowed at position 2")


def test_parse_expression_comment_refused():
    refused("x # note", r"comments \('#'\) are not allowed at position 3")


def test_parse_expression_huge_power_refused():
    refused("10**10**10", r"number too large \(more than 300 digits\) at position 1")
    refused("2**100000", "number too large")
    refused("(1/2)**-1000", "number too large")
    refused("2**(x+1001)*2**-x", "number too large")


def test_parse_expression_huge_literal_refused():
    refused("1" + "0" * 300, "number too large at position 1|number too large")
    refused("1e400", "number too large")
    refused("1e-400", "number too large")
    refused("1e999999999", "number too large")


def test_parse_expression_huge_product_refused():
    refused("10**299*10**2", "number too large at position 1|number too large")


def test_parse_expression_large_exponent_refused():
    refused("x**100000", r"exponent too large \(numbers in exponents are limited to 1000\)")
    refused("x**1001", "exponent too large")
    refused("x**(y+2000)", "exponent too large|unknown name")


def test_parse_expression_division_by_zero_refused():
    refused("1/0", "^activation: division by zero at position 3 in '1/0'$")
    refused("x/(x-x)", "division by zero at position 4")
    refused("0**-1", "division by zero at position 1")


def test_parse_expression_undefined_value_refused():
    refused("log(0)", r"expression is undefined here \(zoo")


def test_parse_expression_complex_value_refused():
    refused("sqrt(-1)", "value 'sqrt\\(-1\\)' is not a real number at position 1")
    refused("log(-1)*x", "is not a real number")


def test_parse_expression_huge_constant_refused():
    refused("exp(1000)", "number too large at position 1|number too large")
    refused("exp(exp(exp(100)))", "number too large at position 5|number too large")


def test_parse_expression_exp_of_log_product_refused():
    refused("exp(10**299*log(10**299))", "number too large")
    refused("exp(1000*(log(2)+log(3)+log(5)))", "number too large")


def test_parse_expression_max_of_huge_constant_refused_before_evalf():
    refused("max(exp(exp(exp(100))), 1)", "number too large")


def test_parse_expression_tree_too_large_refused():
    doubling = {**DEFAULT_FUNCTIONS, "dup": lambda z: z * sympy.sin(z)}
    refused("dup(" * 15 + "x" + ")" * 15, "expression too large once written out",
            functions=doubling)


class FakeClock:
    """Time that moves only when a fake slow step says so: no wall-clock race."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def slow_functions(clock, seconds):
    """DEFAULT_FUNCTIONS plus slow(z) = z, which costs ``seconds`` on ``clock``."""
    def slow(z):
        clock.now += seconds
        return z
    return {**DEFAULT_FUNCTIONS, "slow": slow}


def test_parse_expression_deadline_refuses_a_slow_step():
    clock = FakeClock()
    refused("slow(x) + 1", r"^activation: expression too slow to build \(over 1 s\) at position 1 "
            r"in 'slow\(x\) \+ 1'$",
            functions=slow_functions(clock, 1.5), deadline=Deadline(1.0, clock=clock))


def test_parse_expression_deadline_counts_the_steps_together():
    """Three steps of 0.4 s fit a 1 s budget one at a time, not together."""
    clock = FakeClock()
    functions = slow_functions(clock, 0.4)
    assert activation("slow(x)", functions=functions, deadline=Deadline(1.0, clock=clock)) == X
    refused("slow(slow(slow(x)))", r"too slow to build \(over 1 s\)",
            functions=functions, deadline=Deadline(1.0, clock=clock))


def test_parse_expression_deadline_not_reached_builds():
    clock = FakeClock()
    functions = slow_functions(clock, 0.25)
    value = activation("slow(x) * slow(x) + slow(1)", functions=functions,
                       deadline=Deadline(1.0, clock=clock))
    assert value == X**2 + 1
    assert clock.now == 100.75  # each call ran once, and nothing else moved the clock


def test_parse_expression_zero_budget_refuses_on_the_real_clock(monkeypatch):
    """MAX_SECONDS = 0 is out before the first node: deterministic on a real clock."""
    monkeypatch.setattr(expressions, "MAX_SECONDS", 0.0)
    refused("x + 1", r"too slow to build \(over 0 s\) at position 1")
    monkeypatch.undo()
    assert activation("x + 1") == X + 1


def test_parse_expression_deadline_honoured_in_a_thread():
    clock, outcome = FakeClock(), []

    def work():
        try:
            activation("slow(x)", functions=slow_functions(clock, 3.0),
                       deadline=Deadline(2.0, clock=clock))
            outcome.append("built")
        except SpecError as exc:
            outcome.append(str(exc))
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert outcome == ["activation: expression too slow to build (over 2 s) at position 1 "
                       "in 'slow(x)'"]


def test_parse_expression_default_budget_in_a_thread(monkeypatch):
    monkeypatch.setattr(expressions, "MAX_SECONDS", 0.0)
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(
        pytest.raises(SpecError, activation, "2*x").value.args[0]))
    thread.start()
    thread.join()
    assert outcome == ["activation: expression too slow to build (over 0 s) at position 1 "
                       "in '2*x'"]


def test_parse_expression_works_off_the_main_thread():
    results = []
    thread = threading.Thread(target=lambda: results.append(activation("2*x")))
    thread.start()
    thread.join()
    assert results == [2 * X]


def test_parse_expression_long_text_message_shows_excerpt():
    message = refused("x +" + " " * 1500 + "q", "unknown name 'q' at position 1504")
    assert "..." in message and len(message) < 200


def test_parse_expression_position_counts_original_carets():
    refused("x^2 + q", "unknown name 'q' at position 7 in 'x\\^2 \\+ q'")


def test_parse_expression_multiline_text_gives_one_line_message():
    message = refused("x +\n q", "unknown name 'q' at position 6")
    assert "\n" not in message


# --- nothing executes -----------------------------------------------------------

def test_parse_expression_never_executes_code(tmp_path):
    sentinel = tmp_path / "derive_pwned"
    path = str(sentinel)
    attacks = [
        f"__import__('builtins').exec(\"open('{path}','w')\")",
        f"exec(\"open('{path}','w')\")",
        f"eval(\"open('{path}','w')\")",
        f"open('{path}', 'w')",
        f"(lambda: open('{path}', 'w'))()",
        f"[open('{path}', 'w') for _ in [1]]",
        f"f\"{{open('{path}', 'w')}}\"",
        f"x[open('{path}', 'w')]",
        f"exp(open('{path}', 'w'))",
        f"getattr(__builtins__, 'exec')(\"open('{path}','w')\")",
        f"().__class__.__base__.__subclasses__()[0](\"{path}\")",
        f"(x := open('{path}', 'w'))",
        f"x if open('{path}', 'w') else x",
    ]
    for text in attacks:
        with pytest.raises(SpecError):
            activation(text)
        with pytest.raises(SpecError):
            claim(text)
    assert not sentinel.exists()


def test_expressions_module_never_calls_an_evaluator():
    tree = ast.parse(inspect.getsource(expressions))
    called = {node.func.id if isinstance(node.func, ast.Name) else node.func.attr
              for node in ast.walk(tree) if isinstance(node, ast.Call)
              and isinstance(node.func, (ast.Name, ast.Attribute))}
    assert not called & {"eval", "exec", "compile", "sympify", "parse_expr", "S", "__import__"}


# --- format_error ---------------------------------------------------------------

def test_format_error_short_text():
    assert format_error("loss", "a*q", 2, "unknown name 'q'") == \
        "loss: unknown name 'q' at position 3 in 'a*q'"


def test_format_error_long_text_excerpt():
    text = "a" * 100 + "Q" + "b" * 100
    message = format_error("loss", text, 100, "bad", "hint")
    assert message == f"loss: bad at position 101 in '...{'a' * 25}Q{'b' * 24}...'; hint"


def test_parse_expression_syntax_error_at_the_end_points_at_the_end():
    """Python reports an expression that stops short ("x +") at offset 0; the message
    points after the last character, where the missing operand belongs."""
    with pytest.raises(SpecError, match=re.escape("syntax error at position 4 in 'x +'")):
        expressions.parse_expression("x +", field="f", names={"x": sympy.Symbol("x")})
