"""Turn user formulas into SymPy expressions without ever executing them.

Design: `derive.spec.screening` screens the text and parses it into a Python
syntax tree (parsing runs no code).  A whitelisting walker here builds the SymPy
object node by node: numbers, allowed names, calls of allowed functions,
+ - * / **, unary signs and integer-literal subscripts (resolved by the caller's
``indexed``).  Anything else is a one-line ``SpecError`` naming the field, the
problem and the 1-based position.

SymPy evaluates eagerly and some evaluations explode (``2**10**10`` builds a huge
integer, ``Max(exp(exp(exp(100))), 1)`` hangs in evalf).  So each power and call is
checked before it is built, and each result after: numbers keep to ``MAX_DIGITS``
digits, constants evaluate to reals below ``10**MAX_DIGITS``, trees stay under
``MAX_TREE_SIZE``.  Those limits bound every single SymPy step.  Some evaluations
are merely slow (nested ``Max`` or Piecewise activations grow ~2.5x per level), so
building also has a ``MAX_SECONDS`` `Deadline`, checked before each node and after
each built value: no alarm, so it holds in any thread, and a step already running
finishes (it is bounded by the limits above) before the deadline is noticed.
"""

from __future__ import annotations

import ast
import difflib
import types
from typing import Callable, Mapping, NoReturn

import sympy

from ..errors import SpecError
from .deadline import Deadline, OutOfTime
from .screening import (MAX_DIGITS, MAX_NESTING, arity_problem, digits, format_error,
                        literal_number, parse_tree, screen, unique_nodes)

MAX_TREE_SIZE = 10_000  # nodes of the SymPy tree written out (shared parts counted each time)
MAX_EXPONENT = 1000  # magnitude of any number inside an exponent
MAX_SECONDS = 2.0  # budget for building one expression, checked between nodes
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


def parse_expression(text: str, *, field: str,
                     names: Mapping[str, sympy.Expr],
                     functions: Mapping[str, Callable[..., sympy.Expr]] | None = None,
                     indexed: Callable[[str, tuple[int, ...], int], sympy.Expr] | None = None,
                     deadline: Deadline | None = None) -> sympy.Expr:
    """Parse ``text`` into a SymPy expression or raise a one-line `SpecError`.

    ``indexed(name, indices, position)`` resolves ``W1[1,1]``; ``position`` is the
    0-based index of the name in ``text`` (`format_error` prints it 1-based).
    ``deadline`` defaults to ``MAX_SECONDS`` from now on the monotonic clock.
    """
    if not isinstance(text, str):
        raise SpecError(f"{field}: expected a formula as text, got {type(text).__name__}")
    functions = DEFAULT_FUNCTIONS if functions is None else functions
    deadline = Deadline(MAX_SECONDS) if deadline is None else deadline
    source, columns = screen(text, field)
    tree = parse_tree(source, columns, text, field)
    builder = _Builder(text, field, source, columns, names, functions, indexed, deadline)
    try:
        return builder.build(tree.body, 0)
    except OutOfTime:
        raise SpecError(format_error(field, text, 0, f"expression too slow to build "
                                     f"(over {deadline.seconds:g} s)")) from None


class _Builder:
    """Walks a parsed tree and builds the SymPy expression, refusing all else."""

    def __init__(self, text, field, source, columns, names, functions, indexed, deadline):
        self.text, self.field, self.source, self.columns = text, field, source, columns
        self.names, self.functions, self.indexed = names, functions, indexed
        self.deadline = deadline
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
        self.deadline.check("building the expression")
        handler = self.handlers.get(type(node))
        if handler is None:
            self.fail(node, f"{_DESCRIPTIONS.get(type(node), type(node).__name__)} is not allowed")
        return handler(node, depth + 1)

    def constant(self, node: ast.Constant, depth: int) -> sympy.Expr:
        value = node.value
        if type(value) is int:
            number = sympy.Integer(value) if abs(value) < 10 ** MAX_DIGITS else None
        elif type(value) is float:
            number = literal_number(ast.get_source_segment(self.source, node))
        else:
            kind = {complex: "complex number", str: "string", bytes: "bytes"}.get(type(value))
            self.fail(node, f"{kind or f'constant {value!r}'} is not allowed")
        if number is None or digits(number) > MAX_DIGITS:
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
        numbers = [n for n in unique_nodes(exponent) if n.is_Rational]
        largest = max((abs(r.p) / r.q for r in numbers), default=0)
        base_digits = max((digits(n) for n in unique_nodes(base) if n.is_Rational), default=0)
        if largest * base_digits > MAX_DIGITS:  # estimate of the digits of base**exponent
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
        for part in unique_nodes(argument):
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
        problem = arity_problem(function, len(args))
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
        self.deadline.check("building the expression")  # make() may have been slow
        if not isinstance(value, sympy.Expr):
            raise TypeError(f"{self.field}: building {ast.unparse(node)!r} gave "
                            f"{type(value).__name__}, not a sympy.Expr")
        if self.tree_size(value) > MAX_TREE_SIZE:
            self.fail(node, f"expression too large once written out (over "
                      f"{MAX_TREE_SIZE} SymPy nodes)")
        nodes = unique_nodes(value)
        undefined = [str(n) for n in nodes if n in _UNDEFINED]
        if undefined:
            self.fail(node, f"expression is undefined here ({undefined[0]}; "
                      "division by zero or log(0)?)")
        if any(n.is_Rational and digits(n) > MAX_DIGITS for n in nodes):
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
