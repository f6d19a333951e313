"""Stage 1: the network spec, validated: layer sizes, activation and loss rows, bias.

A `NetworkSpec` is frozen and valid by construction: loading.py builds it
from a file or keyword arguments through the checks here, each raising a
`SpecError` that names the field and the problem.  Nothing here knows about
SymPy beyond the registry rows it looks up; the symbolic model is built from
a valid spec in calculus/model.py.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..errors import SpecError
from .sizes import how_to_raise, limit
from .training import Training
from .registry import ACTIVATIONS, LOSSES, Activation, Loss, custom_activation, custom_loss
from .words import count, show, suggest

SPEC_KEYS = ("title", "layers", "activation", "loss", "bias", "batch", "reduction", "layout",
             "regularization", "values")
VALUE_KEYS_FIXED = ("x", "y", "learning_rate")
VALUE_KEY = re.compile(r"^[Wb]\d+$")
MAX_TITLE = 200
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")
#: Words joined by '-' (cross-entropy): read as a name before as a difference.
_HYPHENATED = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*(-[A-Za-z_][A-Za-z_0-9]*)+$")


@dataclass(frozen=True)
class Values:
    """A numeric point: input x, target y, weights W[l] (rows j, columns k,
    0-based lists: the column layout, whatever layout the user wrote), biases
    b[l] (empty when the spec has no bias), and an optional learning rate.
    Layers are keyed 1..L as in the documents.

    A minibatch keeps every example in `xs`, `ys` (m of each); `x`, `y` are
    then its first example, so a per-example reading (a worked example, a
    claim's environment) has one to read.  One example: `xs`, `ys` are empty."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    W: Mapping[int, tuple[tuple[float, ...], ...]]
    b: Mapping[int, tuple[float, ...]]
    learning_rate: float | None = None
    xs: tuple[tuple[float, ...], ...] = ()
    ys: tuple[tuple[float, ...], ...] = ()

    @property
    def examples(self) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
        """Every (x, y) of the point: one, or the minibatch's m."""
        return list(zip(self.xs, self.ys)) if self.xs else [(self.x, self.y)]

    @property
    def batch(self) -> int:
        return len(self.xs) or 1

    def example(self, n: int) -> "Values":
        """The point with example n (0-based) alone: one example's x and y, the same weights."""
        x, y = self.examples[n]
        return Values(x, y, self.W, self.b, self.learning_rate)

    def __repr__(self) -> str:
        shown = f"x={list(self.x)}, y={list(self.y)}" if not self.xs else f"batch={len(self.xs)}"
        return f"Values({shown}, layers={len(self.W)}, learning_rate={self.learning_rate})"


@dataclass(frozen=True)
class NetworkSpec:
    """A validated network: layer sizes (input first), one activation row per
    layer 1..L, the loss row, whether neurons have biases, optional values."""

    layers: tuple[int, ...]
    activations: tuple[Activation, ...]
    loss: Loss
    bias: bool = True
    title: str | None = None
    values: Values | None = field(default=None, compare=False)
    training: Training = field(default_factory=Training)

    @property
    def batch(self) -> int:
        return self.training.batch

    @property
    def row_layout(self) -> bool:
        """Weights written W<l>[k,j], n_(l-1) x n_l, Z = X W + b (training.py)."""
        return self.training.row

    @property
    def regularization(self):
        return self.training.regularization

    @property
    def depth(self) -> int:
        return len(self.layers) - 1

    @property
    def parameter_count(self) -> int:
        return parameter_count(self.layers, self.bias)

    def layer_parameter_count(self, l: int) -> int:
        """Weights and biases of layer l (1-based)."""
        return parameter_count(self.layers[l - 1:l + 1], self.bias)

    @property
    def softmax_output(self) -> bool:
        """The output layer is softmax: its Jacobian couples every output."""
        return self.activations[-1].vector

    @property
    def softmax_cross_entropy(self) -> bool:
        """Softmax output with cross-entropy: delta(L) = a - y, since the targets sum to 1."""
        return self.softmax_output and self.loss.name == "cross_entropy"

    @property
    def stem(self) -> str:
        """A file-name stem derived from the shape: net-2-3-1."""
        return "net-" + "-".join(str(n) for n in self.layers)

    def describe(self) -> str:
        acts = ", ".join(a.name for a in self.activations)
        extra = self.training.describe()
        return (f"{'-'.join(map(str, self.layers))} network ({acts}; loss {self.loss.name}"
                f"{'; ' + extra if extra else ''})")

    def __repr__(self) -> str:
        return f"NetworkSpec({self.describe()}, bias={self.bias})"


def parameter_count(layers: Sequence[int], bias: bool = True) -> int:
    """Weights and biases of a network with these layer sizes."""
    n = layers
    return sum(n[l] * n[l - 1] + (n[l] if bias else 0) for l in range(1, len(n)))


def spec_key_hint(key: str) -> str | None:
    if key in VALUE_KEYS_FIXED or VALUE_KEY.match(key):
        return f"numbers go in a [values] table: put [values] above {key} = ..."
    if key in ("l2", "l1", "weight_decay"):
        return "the regulariser goes in a table: [regularization] then l2 = ..."
    if key in ("batch_size", "minibatch"):
        return "the minibatch size is batch = m"
    return None


def layer_sizes(raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, (list, tuple)):
        raise SpecError(f"layers must be a list of sizes like [2, 3, 1], got {show(raw)}")
    if len(raw) < 2:
        raise SpecError(f"layers needs at least an input and an output size, got {show(list(raw))}")
    for i, n in enumerate(raw):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise SpecError(f"layers[{i}] must be a positive integer, got {show(n)}")
    depth, max_depth = len(raw) - 1, limit("MAX_DEPTH")
    if depth > max_depth:
        raise SpecError(f"layers has depth {depth}, above the limit {max_depth}; "
                        + how_to_raise("MAX_DEPTH", depth))
    return tuple(int(n) for n in raw)


def _table_name(text: str, table: Mapping[str, Any]) -> str | None:
    """The table's name for `text` read as a name: case-insensitive, '-' as '_'
    (ReLU, MSE, cross-entropy), or None if it names no row."""
    key = text.lower().replace("-", "_")
    return key if key in table else None


def _named_row(text: str, table: Mapping[str, Any], what: str, variables: tuple[str, ...], custom):
    """A row by name, else a custom row for the expression; a word that is neither gets
    "unknown <what>" with a suggestion, not the formula parser's message about its parts."""
    name = _table_name(text, table)
    if name is not None:
        return table[name]
    unknown = f"unknown {what} {show(text)}{suggest(text.lower().replace('-', '_'), list(table))}"
    if _IDENTIFIER.match(text) and text not in variables:
        raise SpecError(unknown)
    try:
        return custom(text)
    except SpecError:
        if _HYPHENATED.match(text):  # cross-entrpy: a misspelt name, not a formula
            raise SpecError(unknown) from None
        raise


def activation_row(name: Any, field_name: str = "activation") -> Activation:
    """The registry row for a name, or a custom row for an expression in x."""
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"{field_name} must be an activation name or an expression in x, "
                        f"got {show(name)}")
    return _named_row(name.strip(), ACTIVATIONS, "activation", ("x",),
                      lambda text: custom_activation(text, field_name))


def loss_row(name: Any) -> Loss:
    """The registry row for a name, or a custom row for an expression in a and y."""
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"loss must be a loss name or an expression in a and y, got {show(name)}")
    return _named_row(name.strip(), LOSSES, "loss", ("a", "y"), custom_loss)


def activations_of(raw: Any, depth: int) -> tuple[Activation, ...]:
    if isinstance(raw, str):
        row = activation_row(raw)
        rows = (row,) * depth
    elif isinstance(raw, (list, tuple)):
        if len(raw) != depth:
            raise SpecError(f"activation lists {count(len(raw), 'name')} but the network has "
                            f"{count(depth, 'layer')}; give one name, or {depth}")
        rows = tuple(activation_row(r, f"activation[{i}]") for i, r in enumerate(raw))
    else:
        raise SpecError(f"activation must be a name or a list of names, got {show(raw)}")
    for l, row in enumerate(rows[:-1], start=1):
        if row.vector:
            raise SpecError(f"activation of layer {l} is {row.name!r}; softmax is allowed "
                            f"only on the output layer")
    return rows


def check_title(title: Any) -> None:
    if title is None:
        return
    if not isinstance(title, str):
        raise SpecError(f"title must be a string, got {show(title)}")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in title):
        raise SpecError(f"title must be one line of text without control characters, got {show(title)}")
    if len(title) > MAX_TITLE:
        raise SpecError(f"title has {len(title)} characters; the limit is {MAX_TITLE}")


