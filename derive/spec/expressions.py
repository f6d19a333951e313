"""Turn user formulas into SymPy expressions without ever executing them.

Design: the text is screened (length, ASCII, bracket depth), ``^`` becomes ``**``,
and ``ast.parse(mode="eval")`` builds a syntax tree (parsing runs no code).  A
whitelisting walker builds the SymPy object node by node: numbers, allowed names,
calls of allowed functions, + - * / **, unary signs and integer-literal subscripts
(resolved by the caller's ``indexed``).  Anything else is a one-line ``SpecError``
naming the field, the problem and the 1-based position.

SymPy evaluates eagerly and some evaluations explode (``2**10**10`` builds a huge
integer, ``Max(exp(exp(exp(100))), 1)`` hangs in evalf).  So each power and call is
checked before it is built, and each result after: numbers keep to ``MAX_DIGITS``
digits, constants evaluate to reals below ``10**MAX_DIGITS``, trees stay under
``MAX_TREE_SIZE``.  Some evaluations are merely slow (nested ``Max`` or Piecewise
activations grow ~2.5x per level), so building also has a ``MAX_SECONDS`` budget.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import fractions
import inspect
import math
import signal
import threading
import types
import warnings
from typing import Callable, Iterator, Mapping, NoReturn

import sympy

from derive.errors import SpecError

MAX_TEXT_LENGTH = 2000  # characters
MAX_NESTING = 64  # brackets on the raw text, and levels of the syntax tree
MAX_NODES = 1000  # expression nodes in the syntax tree
MAX_TREE_SIZE = 10_000  # nodes of the SymPy tree written out (shared parts counted each time)
MAX_DIGITS = 300  # digits of any number; also log10 bound of any constant
MAX_EXPONENT = 1000  # magnitude of any number inside an exponent
MAX_SECONDS = 2.0  # wall-clock budget for building one expression (main thread only)
EXCERPT_WIDTH = 50  # characters of the text quoted in an error message
LISTING_WIDTH = 70  # characters of the "allowed names" hint

_SYMPY_FUNCTIONS = {"exp": sympy.exp, "log": sympy.log, "ln": sympy.log, "sqrt": sympy.sqrt,
                    "abs": sympy.Abs, "tanh": sympy.tanh, "sinh": sympy.sinh,
                    "cosh": sympy.cosh, "sin": sympy.sin, "cos": sympy.cos,
                    "atan": sympy.atan, "erf": sympy.erf}
# Wrapped in lambdas so that inspect.signature sees the arity SymPy classes hide.
DEFAULT_FUNCTIONS: Mapping[str, Callable[..., sympy.Expr]] = types.MappingProxyType({
    **{name: (lambda f: lambda z: f(z))(f) for name, f in _SYMPY_FUNCTIONS.items()},
    "min": lambda a, b: sympy.Min(a, b), "max": lambda a, b: sympy.Max(a, b)})
CONSTANTS: Mapping[str, sympy.Expr] = types.MappingProxyType({"pi": sympy.pi, "e": sympy.E})

_BINARY = {ast.Add: sympy.Add, ast.Sub: lambda a, b: a - b, ast.Mult: sympy.Mul}
_OPERATOR_TEXT = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.BitOr: "|",
                  ast.BitAnd: "&", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
                  ast.Not: "not", ast.Invert: "~"}
_DESCRIPTIONS = {ast.Attribute: "attribute access", ast.Lambda: "lambda", ast.List: "list",
                 ast.Compare: "comparison", ast.BoolOp: "'and'/'or'", ast.Tuple: "tuple",
                 ast.NamedExpr: "assignment ':='", ast.JoinedStr: "f-string", ast.Set: "set",
                 ast.IfExp: "'if ... else'", ast.Dict: "dict", ast.Slice: "slice",
                 ast.Starred: "starred argument", **dict.fromkeys(
                     (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp), "comprehension")}
_UNDEFINED = {sympy.zoo, sympy.nan, sympy.oo, -sympy.oo}
_SYMPY_ERRORS = (TypeError, ValueError, ArithmeticError, RecursionError)
_TOO_LARGE = f"number too large (more than {MAX_DIGITS} digits)"


class OutOfTime(BaseException):
    """Raised by the SIGALRM handler; a BaseException so `except Exception` can't eat it."""


def format_error(field: str, text: str, position: int, problem: str, hint: str = "") -> str:
    """One-line message; ``position`` is 0-based and printed 1-based."""
    position = max(0, min(position, len(text)))
    start = max(0, min(position - EXCERPT_WIDTH // 2, len(text) - EXCERPT_WIDTH))
    end = start + EXCERPT_WIDTH
    excerpt = ("..." if start else "") + text[start:end] + ("..." if end < len(text) else "")
    tail = f"; {hint}" if hint else ""
    return f"{field}: {problem} at position {position + 1} in {excerpt!r}{tail}"


def parse_expression(text: str, *, field: str,
                     names: Mapping[str, sympy.Expr],
                     functions: Mapping[str, Callable[..., sympy.Expr]] | None = None,
                     indexed: Callable[[str, tuple[int, ...], int], sympy.Expr] | None = None,
                     ) -> sympy.Expr:
    """Parse ``text`` into a SymPy expression or raise a one-line `SpecError`.

    ``indexed(name, indices, position)`` resolves ``W1[1,1]``; ``position`` is the
    0-based index of the name in ``text`` (`format_error` prints it 1-based).
    """
    if not isinstance(text, str):
        raise SpecError(f"{field}: expected a formula as text, got {type(text).__name__}")
    functions = DEFAULT_FUNCTIONS if functions is None else functions
    source, columns = _screen(text, field)
    tree = _parse(source, columns, text, field)
    builder = _Builder(text, field, source, columns, names, functions, indexed)
    try:
        with time_budget(MAX_SECONDS):
            return builder.build(tree.body, 0)
    except OutOfTime:
        raise SpecError(format_error(field, text, 0, f"expression too slow to build "
                                     f"(over {MAX_SECONDS:g} s)")) from None


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Raise `OutOfTime` after ``seconds``, and every 0.05 s after in case a gc or
    weakref callback swallowed it, in the main thread; elsewhere, or when someone
    else uses SIGALRM, do nothing."""
    usable = (threading.current_thread() is threading.main_thread()
              and hasattr(signal, "setitimer")
              and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None)
              and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0))
    if not usable:
        yield
        return

    def alarm(signum, frame):
        raise OutOfTime()
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)
    try:
        yield
    finally:
        try:  # stop the timer first, and nested so a late alarm can't skip the restore
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            signal.signal(signal.SIGALRM, previous)


def _screen(text: str, field: str) -> tuple[str, list[int]]:
    """Check the raw text; return the source to parse and its map to text columns."""
    def fail(index: int, problem: str) -> NoReturn:
        raise SpecError(format_error(field, text, index, problem))
    if len(text) > MAX_TEXT_LENGTH:
        fail(MAX_TEXT_LENGTH, f"text too long ({len(text)} characters; limit {MAX_TEXT_LENGTH})")
    if not text.strip():
        fail(0, "empty expression")
    depth = 0
    for index, char in enumerate(text):
        if not (char.isascii() and (char.isprintable() or char in "\t\n\r\f\v")):
            kind = "control character" if char.isascii() else "non-ASCII character"
            fail(index, f"{kind} {char!r} is not allowed")
        if char == "#":
            fail(index, "comments ('#') are not allowed")
        depth += (char in "([{") - (char in ")]}")
        if depth > MAX_NESTING:  # checked before ast.parse, whose C parser may overflow
            fail(index, f"brackets nested deeper than {MAX_NESTING} levels")
    return _translate(text)


def _translate(text: str) -> tuple[str, list[int]]:
    # Users mean power by ``^``; Python's ``^`` is XOR and binds looser than ``+``,
    # so rewriting the token (not the tree node) gives ``2^3*x`` == ``(2**3)*x``.
    # Leading blanks are dropped (eval mode calls them an indent) and other
    # whitespace becomes spaces, so the source is one line; `columns` maps back.
    source, columns = [], []
    for index in range(len(text) - len(text.lstrip()), len(text)):
        char = text[index]
        pieces = "**" if char == "^" else (" " if char.isspace() else char)
        source.extend(pieces)
        columns.extend([index] * len(pieces))
    columns.append(len(text))  # end-of-text position for errors there
    return "".join(source), columns


def _parse(source: str, columns: list[int], text: str, field: str) -> ast.Expression:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. SyntaxWarning for '1 is 1'
            tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        index = columns[max(0, min((exc.offset or 1) - 1, len(columns) - 1))]
        raise SpecError(format_error(field, text, index, "syntax error", exc.msg)) from None
    except (RecursionError, MemoryError, ValueError, OverflowError):
        raise SpecError(format_error(field, text, 0, "expression too complex to parse")) from None
    count = sum(isinstance(node, ast.expr) for node in ast.walk(tree))
    if count > MAX_NODES:
        raise SpecError(format_error(field, text, 0, f"expression too large "
                                     f"({count} parts; limit {MAX_NODES})"))
    return tree


def _digits(number: sympy.Rational) -> float:
    """Decimal digits of the larger of numerator and denominator."""
    return math.log10(max(abs(number.p), number.q))


def _literal_number(segment: str) -> sympy.Rational | None:
    """Exact value of a decimal literal, or None if it has too many digits."""
    clean = segment.replace("_", "").lower()
    exponent = clean.partition("e")[2]
    if exponent and abs(int(exponent)) > 2 * MAX_DIGITS:  # before Fraction builds 10**exponent
        return None
    # Fraction rejects anything but a number; sympy.Rational(str) falls back to sympify.
    value = fractions.Fraction(clean)
    return sympy.Rational(value.numerator, value.denominator)


def _unique_nodes(expr: sympy.Basic) -> list[sympy.Basic]:
    """Each distinct subexpression object once, so shared subtrees cost once."""
    seen, stack, nodes = set(), [expr], []
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            nodes.append(node)
            stack.extend(node.args)
    return nodes


def _arity_problem(function: Callable, count: int) -> str | None:
    """'takes 2 arguments, got 3' when ``function`` cannot take ``count`` positionals."""
    try:
        signature = inspect.signature(function)
        signature.bind(*range(count))
        return None
    except ValueError:  # no signature to inspect (some builtins): the call decides
        return None
    except TypeError:
        expected = len(signature.parameters)
        return f"takes {expected} argument{'' if expected == 1 else 's'}, got {count}"


class _Builder:
    """Walks a parsed tree and builds the SymPy expression, refusing all else."""

    def __init__(self, text, field, source, columns, names, functions, indexed):
        self.text, self.field, self.source, self.columns = text, field, source, columns
        self.names, self.functions, self.indexed = names, functions, indexed
        self.handlers = {ast.Constant: self.constant, ast.Name: self.name,
                         ast.UnaryOp: self.unary, ast.BinOp: self.binary,
                         ast.Call: self.call, ast.Subscript: self.subscript}
        self.sizes: dict[int, tuple[sympy.Basic, int]] = {}  # id -> (object kept alive, size)

    def position(self, node: ast.AST) -> int:
        return self.columns[min(getattr(node, "col_offset", 0), len(self.columns) - 1)]

    def fail(self, node: ast.AST, problem: str, hint: str = "") -> NoReturn:
        raise SpecError(format_error(self.field, self.text, self.position(node), problem, hint))

    def build(self, node: ast.AST, depth: int) -> sympy.Expr:
        if depth >= MAX_NESTING:
            self.fail(node, f"expression nested deeper than {MAX_NESTING} levels")
        handler = self.handlers.get(type(node))
        if handler is None:
            self.fail(node, f"{_DESCRIPTIONS.get(type(node), type(node).__name__)} is not allowed")
        return handler(node, depth + 1)

    def constant(self, node: ast.Constant, depth: int) -> sympy.Expr:
        value = node.value
        if type(value) is int:
            number = sympy.Integer(value) if abs(value) < 10 ** MAX_DIGITS else None
        elif type(value) is float:
            number = _literal_number(ast.get_source_segment(self.source, node))
        else:
            kind = {complex: "complex number", str: "string", bytes: "bytes"}.get(type(value))
            self.fail(node, f"{kind or f'constant {value!r}'} is not allowed")
        if number is None or _digits(number) > MAX_DIGITS:
            self.fail(node, _TOO_LARGE)
        return number

    def name(self, node: ast.Name, depth: int) -> sympy.Expr:
        name = node.id
        if name in self.names:
            return self.names[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        if "__" in name:
            self.fail(node, f"name {name[:30]!r} is not allowed")
        if name in self.functions:
            self.fail(node, f"function {name[:30]!r} needs arguments, e.g. {name}(x)")
        allowed = [*self.names, *CONSTANTS]
        self.fail(node, f"unknown name {name[:30]!r}", self.hint(name, "names", allowed))

    def hint(self, name: str, label: str, allowed) -> str:
        close = difflib.get_close_matches(name, list(allowed), n=1) if "__" not in name else []
        listing = ", ".join(sorted(allowed)) or "(none)"
        if len(listing) > LISTING_WIDTH:
            listing = listing[:LISTING_WIDTH].rsplit(", ", 1)[0] + ", ..."
        return (f"did you mean {close[0]!r}? " if close else "") + f"allowed {label}: {listing}"

    def unary(self, node: ast.UnaryOp, depth: int) -> sympy.Expr:
        if type(node.op) not in (ast.UAdd, ast.USub):
            self.fail(node, f"operator {_OPERATOR_TEXT[type(node.op)]!r} is not allowed")
        operand = self.build(node.operand, depth)
        return operand if isinstance(node.op, ast.UAdd) else -operand

    def binary(self, node: ast.BinOp, depth: int) -> sympy.Expr:
        kind = type(node.op)
        if kind not in _BINARY and kind not in (ast.Div, ast.Pow):
            self.fail(node, f"operator {_OPERATOR_TEXT[kind]!r} is not allowed")
        left, right = self.build(node.left, depth), self.build(node.right, depth)
        if kind is ast.Div and right == 0:
            self.fail(node.right, "division by zero")
        if kind is ast.Div:
            return self.checked(node, lambda: left / right)
        if kind is ast.Pow:
            return self.power(node, left, right)
        return self.checked(node, lambda: _BINARY[kind](left, right))

    def power(self, node: ast.AST, base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
        if base == 0 and exponent.is_negative:
            self.fail(node, "division by zero")
        self.check_exponent(node, base, exponent)
        self.check_log_products(node, exponent)
        return self.checked(node, lambda: base ** exponent)

    def check_exponent(self, node: ast.AST, base: sympy.Expr, exponent: sympy.Expr) -> None:
        """Refuse powers whose exact value (or later merging, 2**(x+a)*2**-x) is huge."""
        numbers = [n for n in _unique_nodes(exponent) if n.is_Rational]
        largest = max((abs(r.p) / r.q for r in numbers), default=0)
        digits = max((_digits(n) for n in _unique_nodes(base) if n.is_Rational), default=0)
        if largest * digits > MAX_DIGITS:  # estimate of the digits of base**exponent
            self.fail(node, _TOO_LARGE)
        if largest > MAX_EXPONENT:  # x**100000 is fine to build but not to differentiate
            self.fail(node, f"exponent too large (numbers in exponents are limited to "
                      f"{MAX_EXPONENT})")

    def check_log_products(self, node: ast.AST, argument: sympy.Expr) -> None:
        # exp(c*log(u)) evaluates to u**c at once, so treat it as that power.
        memo: dict[int, bool] = {}

        def mentions_log(expr: sympy.Basic) -> bool:
            if id(expr) not in memo:
                memo[id(expr)] = isinstance(expr, sympy.log) or any(map(mentions_log, expr.args))
            return memo[id(expr)]
        for part in _unique_nodes(argument):
            if part.is_Mul and mentions_log(part):
                coefficient, rest = part.as_coeff_Mul()
                self.check_exponent(node, rest, coefficient)

    def call(self, node: ast.Call, depth: int) -> sympy.Expr:
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute):
                self.fail(node.func, "attribute access is not allowed")
            self.fail(node, "only named functions can be called")
        name = node.func.id
        function = self.functions.get(name) if "__" not in name else None
        if function is None:
            problem = ("{} is a name, not a function" if name in self.names
                       else "function {} is not allowed").format(repr(name[:30]))
            self.fail(node, problem, self.hint(name, "functions", self.functions))
        if node.keywords:
            self.fail(node.keywords[0], "keyword arguments are not allowed")
        args = [self.build(arg, depth) for arg in node.args]
        problem = _arity_problem(function, len(args))
        if problem:
            self.fail(node, f"function {name!r} {problem}")
        for arg_node, arg in zip(node.args, args):
            self.check_log_products(arg_node, arg)
        return self.checked(node, lambda: function(*args))

    def subscript(self, node: ast.Subscript, depth: int) -> sympy.Expr:
        if self.indexed is None:
            self.fail(node, "subscripts are not allowed here")
        if not isinstance(node.value, ast.Name) or "__" in node.value.id:
            self.fail(node.value, "only a plain name can be subscripted")
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        bad = [p for p in parts if not (isinstance(p, ast.Constant) and type(p.value) is int)]
        if bad or not parts:
            self.fail(bad[0] if bad else node, "index must be a whole-number literal like 1")
        indices = tuple(part.value for part in parts)
        value = self.indexed(node.value.id, indices, self.position(node))
        return self.checked(node, lambda: value)

    def checked(self, node: ast.AST, make: Callable[[], sympy.Expr]) -> sympy.Expr:
        """Build with ``make`` and refuse undefined, huge, oversized or complex results."""
        try:
            value = make()
        except _SYMPY_ERRORS as exc:  # e.g. Min(1, I): "The argument 'I' is not comparable"
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:80]
            self.fail(node, f"cannot evaluate ({reason})")
        if not isinstance(value, sympy.Expr):
            raise TypeError(f"{self.field}: building {ast.unparse(node)!r} gave "
                            f"{type(value).__name__}, not a sympy.Expr")
        if self.tree_size(value) > MAX_TREE_SIZE:
            self.fail(node, f"expression too large once written out (over "
                      f"{MAX_TREE_SIZE} SymPy nodes)")
        nodes = _unique_nodes(value)
        undefined = [str(n) for n in nodes if n in _UNDEFINED]
        if undefined:
            self.fail(node, f"expression is undefined here ({undefined[0]}; "
                      "division by zero or log(0)?)")
        if any(n.is_Rational and _digits(n) > MAX_DIGITS for n in nodes):
            self.fail(node, _TOO_LARGE)
        if not value.is_Rational and not any(isinstance(n, sympy.Symbol) for n in nodes):
            self.check_constant(node, value)
        return value

    def tree_size(self, expr: sympy.Basic) -> int:
        if id(expr) not in self.sizes:
            size = 1 + sum(self.tree_size(arg) for arg in expr.args)
            self.sizes[id(expr)] = (expr, size)
        return self.sizes[id(expr)][1]

    def check_constant(self, node: ast.AST, value: sympy.Expr) -> None:
        # Keeping every constant small and real lets SymPy's own evalf calls
        # (sign tests in Max, sqrt, Abs) finish: exp(exp(exp(100))) never forms.
        try:
            real, imag = value.evalf(6).as_real_imag()
        except _SYMPY_ERRORS:
            real = imag = None
        if not (getattr(real, "is_Number", False) and getattr(imag, "is_Number", False)):
            self.fail(node, "constant could not be evaluated")
        if imag != 0:
            self.fail(node, f"value {ast.unparse(node)[:40]!r} is not a real number")
        if not abs(real) < sympy.Integer(10) ** MAX_DIGITS:
            self.fail(node, _TOO_LARGE)
