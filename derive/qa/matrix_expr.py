"""The notation of a matrix claim: a whole layer's gradient written with matrices.

    dZ2 @ A1.T / m + l2*W2          (column layout: one example per column, as Ng)
    A1.T @ dZ2 / m + l2*W2          (row layout: one example per row, as CS231n)

Names are whole matrices: ``X``, ``Y``, ``W<l>``, ``b<l>``, ``Z<l>``, ``A<l>``
(``A0`` is ``X``), ``dZ<l>`` (each example's dloss_n/dz, the per-example
delta) and the numbers ``m`` (the batch), ``l2`` and ``l1`` (the
regularisation coefficients).  Operators: ``@``, ``.T``, elementwise
``+ - * / **`` with NumPy broadcasting, unary signs, numbers, parentheses,
comparisons (``Z1 > 0`` is 1 where it holds, else 0), ``sum(M, axis=0|1)`` and ``mean(M, axis=...)`` (keeping the reduced axis, so
a column sum stays a row), ``sum(M)`` / ``mean(M)`` (a number), ``max(M, N)``
/ ``min(M, N)`` elementwise, ``softmax(M)`` over the layout's neuron axis,
and the elementwise functions: exp, log, sqrt, abs, sign, every elementwise
registry activation by name and its derivative in prime notation
(``tanh'(Z1)``, spelled by notation.spell_primes as for the scalar claim).

As for every formula of the project, nothing is evaluated as Python: the
text is screened and parsed to a Python syntax tree by spec/screening.py
(parsing runs no code), and a whitelisting walker turns that tree into a
small tree of `Node`s, refusing anything else with a one-line positioned
`SpecError`.  matrix_eval.py computes a tree with NumPy.  The tree is
immutable, so the diagnosis builds corrected variants (an operand
transposed) with `replace`, their text written back with the parentheses
precedence needs.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass

import numpy as np

from .matrix_eval import FUNCTIONS_OF_MATRICES, functions
from .notation import spell_primes
from ..errors import SpecError
from ..spec.screening import MAX_NESTING, format_error, literal_number, parse_tree, screen

FIELD = "EXPR"
_LAYERED = re.compile(r"^(W|b|Z|A|dZ)(\d+)$")
NUMBERS = ("m", "l2", "l1")
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@"}
_COMPARISONS = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<="}
_OTHER_OPERATORS = {ast.Mod: "%", ast.FloorDiv: "//", ast.BitXor: "^", ast.BitOr: "|", ast.BitAnd: "&",
                    ast.LShift: "<<", ast.RShift: ">>"}
_USAGE = "names: X, Y, W<l>, b<l>, Z<l>, A<l>, dZ<l>, m, l2, l1"


@dataclass(frozen=True, eq=False)
class Node:
    """One node: kind "name" (value: the name), "num" (value: the float), "neg", "T",
    "op" (value: + - * / ** @ or a comparison > >= < <=), "call" (value: the function; axis for sum/mean/softmax).
    `pos` is the 0-based position in the user's text and `text` the text itself."""

    kind: str
    pos: int
    text: str
    args: tuple = ()
    value: object = None
    axis: int | None = None

    def __repr__(self) -> str:
        return f"Node({self.kind}: {self.text})"

    @property
    def atomic(self) -> bool:
        return self.kind in ("name", "num", "call", "T")


# -- parsing -------------------------------------------------------------------------------
def shape_text(shape: tuple) -> str:
    return "a number" if not shape else "x".join(map(str, shape)) if len(shape) == 2 else f"{shape}"


def name_problem(name: str, layers: int, bias: bool) -> str | None:
    """Why `name` is not a matrix of this network (None: it is one)."""
    if name in ("X", "Y", "A0", *NUMBERS):
        return None
    match = _LAYERED.match(name)
    if match is None:
        return f"unknown name {name[:30]!r}"
    kind, layer = match.group(1), int(match.group(2))
    if kind == "b" and not bias:
        return f"{name}: this network has no biases (bias = false)"
    if not 1 <= layer <= layers:
        return f"layer {layer} of {name} is not in 1..{layers}"
    return None


def parse(text: str, layers: int, bias: bool) -> Node:
    """The claim as a `Node` tree, or a one-line `SpecError` naming the position."""
    if not isinstance(text, str):
        raise SpecError(f"{FIELD}: expected a formula as text, got {type(text).__name__}")
    source, _, aliases = spell_primes(text)
    try:
        screened, columns = screen(source, FIELD)
        tree = parse_tree(screened, columns, source, FIELD)
        return _Walker(text, screened, columns, layers, bias, aliases).walk(tree.body, 0)
    except SpecError as exc:
        message = str(exc)
        for alias, spelled in aliases.items():
            message = message.replace(repr(alias), f'"{spelled}"').replace(alias, spelled)
        raise SpecError(message) from None


class _Walker:
    """Builds `Node`s from the Python syntax tree, refusing everything not whitelisted."""

    def __init__(self, text, source, columns, layers, bias, aliases):
        self.text, self.source, self.columns = text, source, columns
        self.layers, self.bias = layers, bias
        self.primes = {alias: spelled[:-1] for alias, spelled in aliases.items()}

    def position(self, node: ast.AST) -> int:
        return self.columns[min(getattr(node, "col_offset", 0), len(self.columns) - 1)]

    def segment(self, node: ast.AST) -> str:
        start = self.position(node)
        end = self.columns[min(node.end_col_offset, len(self.columns) - 1)]
        return self.text[start:end].strip() or self.text[start:]

    def fail(self, node: ast.AST, problem: str, hint: str = ""):
        raise SpecError(format_error(FIELD, self.text, self.position(node), problem, hint))

    def make(self, node: ast.AST, kind: str, args=(), value=None, axis=None) -> Node:
        return Node(kind, self.position(node), self.segment(node), tuple(args), value, axis)

    def walk(self, node: ast.AST, depth: int) -> Node:
        if depth >= MAX_NESTING:
            self.fail(node, f"expression nested deeper than {MAX_NESTING} levels")
        handler = {ast.Constant: self.constant, ast.Name: self.name, ast.UnaryOp: self.unary,
                   ast.BinOp: self.binary, ast.Attribute: self.attribute, ast.Call: self.call,
                   ast.Subscript: self.subscript, ast.Compare: self.compare}.get(type(node))
        if handler is None:
            self.fail(node, f"{type(node).__name__.lower()} is not allowed in a matrix claim")
        return handler(node, depth + 1)

    def constant(self, node: ast.Constant, depth: int) -> Node:
        value = node.value
        if type(value) not in (int, float):
            self.fail(node, f"{type(value).__name__} {str(value)[:20]!r} is not allowed")
        exact = literal_number(ast.get_source_segment(self.source, node) or str(value))
        try:
            number = float(exact) if exact is not None else float("inf")
        except OverflowError:
            number = float("inf")
        if not np.isfinite(number):
            self.fail(node, "number too large")
        return self.make(node, "num", value=number)

    def name(self, node: ast.Name, depth: int) -> Node:
        name = node.id
        if name in functions() or name in FUNCTIONS_OF_MATRICES or name in self.primes:
            self.fail(node, f"function {self.primes.get(name, name)!r} needs an argument, e.g. {name}(Z1)")
        problem = name_problem(name, self.layers, self.bias)
        if problem:
            close = difflib.get_close_matches(name, ["X", "Y", "W1", "b1", "Z1", "A1", "dZ1", *NUMBERS], n=1)
            hint = (f"did you mean {close[0]!r}? " if close and problem.startswith("unknown") else "") + _USAGE
            self.fail(node, problem, hint)
        return self.make(node, "name", value="X" if name == "A0" else name)

    def unary(self, node: ast.UnaryOp, depth: int) -> Node:
        if not isinstance(node.op, (ast.UAdd, ast.USub)):
            self.fail(node, "only the signs + and - may stand before a term")
        operand = self.walk(node.operand, depth)
        return operand if isinstance(node.op, ast.UAdd) else self.make(node, "neg", [operand])

    def binary(self, node: ast.BinOp, depth: int) -> Node:
        op = _BINARY.get(type(node.op))
        if op is None:
            shown = _OTHER_OPERATORS.get(type(node.op), type(node.op).__name__)
            self.fail(node, f"operator {shown!r} is not allowed", "use @ + - * / ** and .T")
        return self.make(node, "op", [self.walk(node.left, depth), self.walk(node.right, depth)], op)

    def compare(self, node: ast.Compare, depth: int) -> Node:
        """Z1 > 0: 1 where it holds, else 0 (relu' as Ng writes it); one comparison only."""
        op = _COMPARISONS.get(type(node.ops[0]))
        if op is None or len(node.ops) > 1:
            self.fail(node, "only one comparison < <= > >= is allowed (1 where it holds, else 0)")
        return self.make(node, "op", [self.walk(node.left, depth), self.walk(node.comparators[0], depth)], op)

    def attribute(self, node: ast.Attribute, depth: int) -> Node:
        if node.attr != "T":
            self.fail(node, f"'.{node.attr[:20]}' is not allowed; only .T (the transpose) may follow a matrix")
        return self.make(node, "T", [self.walk(node.value, depth)])

    def subscript(self, node: ast.Subscript, depth: int) -> Node:
        self.fail(node, "a matrix claim names whole matrices (W2, A1, dZ2), not entries",
                  "for one entry claim a scalar parameter: derive claim SPEC \"W2[1,1]\" \"delta2[1]*a1[1]\"")

    def call(self, node: ast.Call, depth: int) -> Node:
        if not isinstance(node.func, ast.Name):
            self.fail(node, "only named functions can be called")
        name = node.func.id
        arity = FUNCTIONS_OF_MATRICES.get(name, "one")
        if name in self.primes:
            fn = self.primes[name] + "'"
        elif name in functions() or arity != "one":
            fn = name
        else:
            allowed = ", ".join(sorted([*functions(), *FUNCTIONS_OF_MATRICES]))
            self.fail(node, f"function {name[:30]!r} is not allowed", f"allowed functions: {allowed}")
        args = list(node.args)
        axis = self.axis(node, args) if arity == "reduction" else None
        wanted = 2 if arity == "two" else 1
        if len(args) != wanted or (node.keywords and arity != "reduction"):
            self.fail(node, f"{fn}() takes {wanted} argument{'s' * (wanted > 1)}"
                      + (" and an optional axis=0 or axis=1" if arity == "reduction" else ""))
        return self.make(node, "call", [self.walk(a, depth) for a in args], fn, axis)

    def axis(self, node: ast.Call, args: list) -> int | None:
        """axis=0|1 as a keyword or a second argument (removed from `args`)."""
        given = [k.value for k in node.keywords if k.arg == "axis"]
        other = [k for k in node.keywords if k.arg != "axis"]
        if other:
            self.fail(other[0].value, f"{node.func.id}() takes only the keyword axis")
        if len(args) == 2 and not given:
            given = [args.pop()]
        if not given:
            return None
        value = given[0]
        if not (isinstance(value, ast.Constant) and type(value.value) is int and value.value in (0, 1)):
            self.fail(value, "axis must be 0 (down the columns) or 1 (along the rows)")
        return value.value


# -- rewriting -----------------------------------------------------------------------------
def transposed(node: Node) -> Node:
    """node.T, written as a user would write it (M.T.T is M)."""
    if node.kind == "T":
        return node.args[0]
    text = f"{node.text}.T" if node.atomic else f"({node.text}).T"
    return Node("T", node.pos, text, (node,))


def replace(root: Node, target: Node, new: Node) -> Node:
    """`root` with `target` (by identity) replaced by `new`; texts rebuilt on the way up."""
    if root is target:
        return new
    if not root.args:
        return root
    args = tuple(replace(a, target, new) for a in root.args)
    if all(a is b for a, b in zip(args, root.args)):
        return root
    return with_args(root, args)


def with_args(node: Node, args: tuple) -> Node:
    """`node` over other operands, its text written from theirs."""
    return Node(node.kind, node.pos, _text(node, args), tuple(args), node.value, node.axis)


#: Binding strength of each operator, for writing a rebuilt tree back as text.
_PRECEDENCE = {">": 0, ">=": 0, "<": 0, "<=": 0, "+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "neg": 3, "**": 4}


def _strength(node: Node) -> int:
    return 9 if node.atomic else _PRECEDENCE["neg" if node.kind == "neg" else node.value]


def _text(node: Node, args: tuple) -> str:
    """The text of `node` over `args`, parenthesised only where precedence needs it."""
    if node.kind == "op":
        own, left, right = _PRECEDENCE[node.value], *args
        power = node.value == "**"
        lt = left.text if _strength(left) > own or (_strength(left) == own and not power) else f"({left.text})"
        tight = _strength(right) > own or (_strength(right) == own and node.value in "+*" and not power)
        return f"{lt} {node.value} {right.text if tight else f'({right.text})'}"
    if node.kind == "neg":
        return f"-{args[0].text}" if _strength(args[0]) > 3 else f"-({args[0].text})"
    if node.kind == "T":
        return f"{args[0].text}.T" if args[0].atomic else f"({args[0].text}).T"
    inner = ", ".join(a.text for a in args) + ("" if node.axis is None else f", axis={node.axis}")
    return f"{node.value}({inner})"


def names(root: Node) -> list[str]:
    """The names the tree mentions, in order of first use."""
    found: list[str] = []
    stack = [root]
    while stack:
        node = stack.pop(0)
        if node.kind == "name" and node.value not in found:
            found.append(node.value)
        stack.extend(node.args)
    return found
