"""How the loss is taken over examples and weights: minibatch, reduction, layout, regularisation.

The loss of a minibatch of m examples is

    L = s * sum_n loss(x_n, y_n) + R(W),   s = 1/m ("mean", the default) or 1 ("sum"),
    R(W) = (l2 / 2) * sum w^2 + l1 * sum |w|   (over the weights; the biases too if asked),

so every gradient is s * sum_n dloss_n/dp + l2 * p + l1 * sign(p).  The per-example
derivation (backprop.py) is unchanged: a minibatch is the sum of its examples'
gradients, scaled, plus the regulariser's own term.  With m = 1 and no regulariser
this is the single-example loss of every earlier version, so its outputs stay.

The layout is how weights are written, not what they compute.  "column" (Nielsen,
Ng): z = W a + b with W(l) n_l x n_(l-1) and W<l>[j,k] joining neuron k of layer
l-1 to neuron j of layer l.  "row" (CS231n, Keras): Z = X W + b with W(l)
n_(l-1) x n_l, one example per row, and W<l>[k,j] naming the same weight.  Inside,
every stage keeps the column form; names, values tables, printed symbols and the
matrix form follow the layout.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import SpecError
from .words import check_keys, show

REDUCTIONS = ("mean", "sum")
LAYOUTS = ("column", "row")
REGULARIZATION_KEYS = ("l2", "l1", "biases")
#: Examples one minibatch may hold (each is a forward and backward pass per point).
MAX_BATCH = 4096


@dataclass(frozen=True)
class Regularization:
    """R(W) = (l2/2) sum w^2 + l1 sum |w|, over the weights (and the biases if `biases`)."""

    l2: float = 0.0
    l1: float = 0.0
    biases: bool = False

    @property
    def active(self) -> bool:
        return self.l2 != 0 or self.l1 != 0

    def covers(self, kind: str) -> bool:
        """Whether parameters of this kind ("W" or "b") are regularised."""
        return self.active and (kind == "W" or self.biases)

    def describe(self) -> str:
        parts = [f"{name} = {getattr(self, name):g}" for name in ("l2", "l1") if getattr(self, name)]
        return ", ".join(parts) + (" (biases too)" if self.biases and parts else "")


@dataclass(frozen=True)
class Training:
    """Minibatch size, reduction, layout and regulariser of a network's loss."""

    batch: int = 1
    reduction: str = "mean"
    layout: str = "column"
    regularization: Regularization = field(default_factory=Regularization)

    @property
    def scale(self) -> float:
        """s in L = s sum_n loss_n: 1/m for the mean, 1 for the sum."""
        return 1.0 / self.batch if self.reduction == "mean" else 1.0

    @property
    def row(self) -> bool:
        return self.layout == "row"

    @property
    def batched(self) -> bool:
        """More than one example: gradients are sums over the batch."""
        return self.batch > 1

    @property
    def single(self) -> bool:
        """One example, no regulariser: the loss is one example's, as before this table."""
        return self.batch == 1 and not self.regularization.active

    def describe(self) -> str:
        bits = []
        if self.batched:
            bits.append(f"batch {self.batch} ({self.reduction})")
        if self.regularization.active:
            bits.append(self.regularization.describe())
        if self.row:
            bits.append("row layout")
        return "; ".join(bits)


def _coefficient(raw: Any, name: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
        raise SpecError(f"regularization.{name} must be a number >= 0, got {show(raw)}")
    value = float(raw)
    if not value >= 0 or value == float("inf"):
        raise SpecError(f"regularization.{name} must be a finite number >= 0, got {show(raw)}")
    return value


def regularization_of(raw: Any) -> Regularization:
    """The [regularization] table: l2, l1 (>= 0) and biases (true/false)."""
    if raw is None:
        return Regularization()
    if not isinstance(raw, Mapping):
        raise SpecError(f"regularization must be a table like {{l2 = 0.01}}, got {show(raw)}")
    check_keys(raw, REGULARIZATION_KEYS, "regularization")
    biases = raw.get("biases", False)
    if not isinstance(biases, bool):
        raise SpecError(f"regularization.biases must be true or false, got {show(biases)}")
    return Regularization(_coefficient(raw.get("l2", 0.0), "l2"),
                          _coefficient(raw.get("l1", 0.0), "l1"), biases)


def training_of(batch: Any = 1, reduction: Any = "mean", layout: Any = "column",
                regularization: Any = None) -> Training:
    """Validate the training fields of a spec (each error names its field)."""
    if isinstance(batch, bool) or not isinstance(batch, numbers.Integral) or batch < 1:
        raise SpecError(f"batch must be a positive integer (examples in the minibatch), got {show(batch)}")
    if batch > MAX_BATCH:
        raise SpecError(f"batch is {batch}, above the limit {MAX_BATCH}")
    for name, value, choices in (("reduction", reduction, REDUCTIONS), ("layout", layout, LAYOUTS)):
        if not isinstance(value, str) or value.strip().lower() not in choices:
            raise SpecError(f"{name} must be {' or '.join(map(repr, choices))}, got {show(value)}")
    return Training(int(batch), reduction.strip().lower(), layout.strip().lower(),
                    regularization_of(regularization))
