"""The parser's first stage: screen the raw text and turn it into a syntax tree.

Design: everything here runs before any SymPy object exists, so it is cheap and
bounded by the text alone.  The text is screened (length, ASCII, no comments,
bracket depth, checked before ``ast.parse`` whose C parser could overflow), ``^``
becomes ``**`` as a token, and ``ast.parse(mode="eval")`` builds a tree (parsing
runs no code) of at most ``MAX_NODES`` expression nodes.  These limits are what
bound each later SymPy step (see `derive.spec.deadline`), so they are measured
before anything is built.  Also here: the one-line error format every refusal
uses, exact decimal literals, and the small tree measures the builder needs.
"""

from __future__ import annotations

import ast
import fractions
import inspect
import math
import warnings
from typing import Callable, NoReturn

import sympy

from ..errors import SpecError

MAX_TEXT_LENGTH = 2000  # characters
MAX_NESTING = 64  # brackets on the raw text, and levels of the syntax tree
MAX_NODES = 1000  # expression nodes in the syntax tree
MAX_DIGITS = 300  # digits of any number; also log10 bound of any constant
EXCERPT_WIDTH = 50  # characters of the text quoted in an error message


def format_error(field: str, text: str, position: int, problem: str, hint: str = "") -> str:
    """One-line message; ``position`` is 0-based and printed 1-based."""
    position = max(0, min(position, len(text)))
    start = max(0, min(position - EXCERPT_WIDTH // 2, len(text) - EXCERPT_WIDTH))
    end = start + EXCERPT_WIDTH
    excerpt = ("..." if start else "") + text[start:end] + ("..." if end < len(text) else "")
    tail = f"; {hint}" if hint else ""
    return f"{field}: {problem} at position {position + 1} in {excerpt!r}{tail}"


def screen(text: str, field: str) -> tuple[str, list[int]]:
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
    return translate(text)


def translate(text: str) -> tuple[str, list[int]]:
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


def parse_tree(source: str, columns: list[int], text: str, field: str) -> ast.Expression:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. SyntaxWarning for '1 is 1'
            tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        if not exc.offset:  # Python's "offset 0": the text ended where more was needed
            index = len(text.rstrip())
        else:
            index = columns[max(0, min(exc.offset - 1, len(columns) - 1))]
        raise SpecError(format_error(field, text, index, "syntax error", exc.msg)) from None
    except (RecursionError, MemoryError, ValueError, OverflowError):
        raise SpecError(format_error(field, text, 0, "expression too complex to parse")) from None
    count = sum(isinstance(node, ast.expr) for node in ast.walk(tree))
    if count > MAX_NODES:
        raise SpecError(format_error(field, text, 0, f"expression too large "
                                     f"({count} parts; limit {MAX_NODES})"))
    return tree


def digits(number: sympy.Rational) -> float:
    """Decimal digits of the larger of numerator and denominator."""
    return math.log10(max(abs(number.p), number.q))


def literal_number(segment: str) -> sympy.Rational | None:
    """Exact value of a decimal literal, or None if it has too many digits."""
    clean = segment.replace("_", "").lower()
    exponent = clean.partition("e")[2]
    if exponent and abs(int(exponent)) > 2 * MAX_DIGITS:  # before Fraction builds 10**exponent
        return None
    # Fraction rejects anything but a number; sympy.Rational(str) falls back to sympify.
    value = fractions.Fraction(clean)
    return sympy.Rational(value.numerator, value.denominator)


def unique_nodes(expr: sympy.Basic) -> list[sympy.Basic]:
    """Each distinct subexpression object once, so shared subtrees cost once."""
    seen, stack, nodes = set(), [expr], []
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            nodes.append(node)
            stack.extend(node.args)
    return nodes


def arity_problem(function: Callable, count: int) -> str | None:
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
