"""Evaluating a matrix claim's tree (matrix_expr.Node) with NumPy at one point.

The environment maps each name to its array in the layout (numbers as 0-d
arrays).  Operations check shapes before NumPy runs them: a matrix product
needs two matrices with equal inner sizes, elementwise operations shapes
NumPy broadcasts; anything else raises `ShapeMismatch` naming the node and
both operands' shapes, which the claim reports as the mistake (a verdict,
not a crash).  nan and inf are values here (log of a negative number), not
errors: the claim is then simply not equal to the gradient (`close`: same
shape, a bias also as a flat vector, and equal to `RTOL` of the largest
true entry, so one tolerance serves matrices of any scale).

The elementwise functions are NumPy's and every elementwise registry
activation compiled from its definition (numeric.compile_expr, the engine's
own compiler, with the stable sigmoid and softplus); f' is compiled from
``sympy.diff`` of the same definition.
"""

from __future__ import annotations

from functools import cache
from typing import Mapping

import numpy as np

from ..check.numeric import compile_expr
from ..spec.registry import ACTIVATIONS, X

#: Claimed and true matrices agree to this, relative to the largest true entry.
RTOL = 1e-9
_REDUCTIONS = ("sum", "mean")
#: The functions of whole matrices, by how they are called.
FUNCTIONS_OF_MATRICES = {"sum": "reduction", "mean": "reduction", "softmax": "reduction",
                         "max": "two", "min": "two"}


class ShapeMismatch(Exception):
    """Operands whose shapes do not fit: `node` is the operation, `shapes` its operands'."""

    def __init__(self, node, shapes: tuple, problem: str):
        super().__init__(problem)
        self.node, self.shapes, self.problem = node, shapes, problem


# -- functions -----------------------------------------------------------------------------
@cache
def functions() -> Mapping[str, object]:
    """Elementwise NumPy functions by name (compiled from the registry on first use)."""
    table = {"exp": np.exp, "log": np.log, "ln": np.log, "sqrt": np.sqrt, "abs": np.abs,
             "sign": np.sign, "sinh": np.sinh, "cosh": np.cosh, "sin": np.sin, "cos": np.cos,
             "atan": np.arctan}
    for name, row in ACTIVATIONS.items():
        if not row.vector:
            table[name] = compile_expr(row.definition, (X,))
    return table


@cache
def derivative(name: str):
    """f' of an elementwise registry activation, as a NumPy function."""
    return compile_expr(ACTIVATIONS[name].derivative(), (X,))


# -- evaluation ----------------------------------------------------------------------------
def evaluate(node, env: Mapping[str, np.ndarray], neuron_axis: int) -> np.ndarray:
    """The tree's value over `env` (name -> array, numbers as 0-d arrays); shapes that
    do not fit raise `ShapeMismatch`; nan and inf are returned, not raised."""
    with np.errstate(all="ignore"):
        return _Evaluation(env, neuron_axis).value(node)


class _Evaluation:
    def __init__(self, env, neuron_axis):
        self.env, self.neuron_axis = env, neuron_axis

    def value(self, node) -> np.ndarray:
        kind = node.kind
        if kind == "name":
            return np.asarray(self.env[node.value], dtype=float)
        if kind == "num":
            return np.asarray(node.value)
        args = [self.value(a) for a in node.args]
        if kind == "neg":
            return -args[0]
        if kind == "T":
            return args[0].T
        if kind == "call":
            return self.call(node, args)
        return self.operation(node, *args)

    def operation(self, node, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        op, shapes = node.value, (left.shape, right.shape)
        if op == "@":
            if left.ndim != 2 or right.ndim != 2:
                number = node.args[0] if left.ndim != 2 else node.args[1]
                raise ShapeMismatch(node, shapes, f"@ multiplies two matrices, but {number.text} "
                                                  f"is a number: use * for a number")
            if left.shape[1] != right.shape[0]:
                raise ShapeMismatch(node, shapes, "the inner sizes "
                                    f"{left.shape[1]} and {right.shape[0]} of @ differ")
            return left @ right
        try:
            np.broadcast_shapes(left.shape, right.shape)
        except ValueError:
            raise ShapeMismatch(node, shapes, f"elementwise {op} needs equal shapes or ones NumPy "
                                "broadcasts (a row or column of 1)") from None
        return np.asarray({"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide,
                           "**": np.power, ">": np.greater, ">=": np.greater_equal, "<": np.less,
                           "<=": np.less_equal}[op](left, right), dtype=float)

    def call(self, node, args: list) -> np.ndarray:
        name = node.value
        if name in _REDUCTIONS or name == "softmax":
            (v,) = args
            if node.axis is not None and v.ndim != 2:
                raise ShapeMismatch(node, (v.shape,), f"{name}(..., axis={node.axis}) needs a "
                                                      "matrix, but its argument is a number")
            if name == "softmax":
                axis = self.neuron_axis if node.axis is None else node.axis
                e = np.exp(v - np.max(v, axis=axis, keepdims=True)) if v.ndim == 2 else np.exp(v - v)
                return e / np.sum(e, axis=axis, keepdims=True) if v.ndim == 2 else e
            reduce = np.sum if name == "sum" else np.mean
            return np.asarray(reduce(v)) if node.axis is None else reduce(v, axis=node.axis, keepdims=True)
        if name in ("max", "min"):
            left, right = args
            try:
                np.broadcast_shapes(left.shape, right.shape)
            except ValueError:
                raise ShapeMismatch(node, (left.shape, right.shape),
                                    f"{name}() compares elementwise and needs shapes that broadcast") from None
            return (np.maximum if name == "max" else np.minimum)(left, right)
        f = derivative(name[:-1]) if name.endswith("'") else functions()[name]
        return np.asarray(f(args[0]), dtype=float)


# -- comparing -----------------------------------------------------------------------------
def fitted(claimed: np.ndarray, shape: tuple) -> np.ndarray | None:
    """`claimed` in `shape`, a flat vector of a bias's length accepted; None if it is not."""
    claimed = np.asarray(claimed)
    if claimed.shape == shape:
        return claimed
    if claimed.ndim == 1 and 1 in shape and claimed.size == max(shape):
        return claimed.reshape(shape)
    return None


def close(claimed: np.ndarray, truth: np.ndarray) -> bool:
    """Same shape (a bias may be flat) and equal to `RTOL` of the largest true entry."""
    claimed = fitted(claimed, truth.shape)
    if claimed is None or not np.all(np.isfinite(claimed)):
        return False
    scale = max(float(np.max(np.abs(truth), initial=0.0)), 1e-12)
    return bool(np.max(np.abs(claimed - truth), initial=0.0) <= RTOL * scale)
