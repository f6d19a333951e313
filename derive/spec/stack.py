"""A network as a stack of [[layer]] tables: the spec, validated layer by layer.

    title = "A small CNN"
    input = [1, 6, 6]          # channels, height, width; [n] a vector; [channels, length] 1-D;
    loss = "cross_entropy"     # [T] token indices for an embedding first layer
    batch = 2
    [[layer]]
    kind = "conv2d"
    channels = 2
    kernel = 3
    activation = "relu"
    ...

Layers are numbered 1, 2, ... in order (a layer without parameters keeps its
number), each row of the layer table (layer_kinds.py) checks its own keys
and gives its output shape, so a kernel larger than its input or a residual
between unequal shapes is one line naming the layer.  Parameters are named
as the issue and the documents write them, 1-based: W<l>[j,k], b<l>[j],
K<l>[c_out,c_in,u,v], gamma<l>[j], beta<l>[j], E<l>[v,d].
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import SpecError
from .layer_kinds import LAYER_KINDS, LayerKind, Shape
from .network import activation_row, check_title, loss_row
from .registry import Activation, Loss
from .training import MAX_BATCH
from .words import check_keys, show, suggest

STACK_KEYS = ("title", "input", "loss", "batch", "reduction", "steps", "sequence_loss", "layer", "values")
SEQUENCE_LOSSES = ("last", "all")
MAX_LAYERS = 64
#: Features one example may have at any layer (a LeNet input is 784).
MAX_FEATURES = 1 << 16


@dataclass(frozen=True)
class Layer:
    """One validated layer: its number, kind row, keys, activation row and shapes."""

    number: int
    kind: LayerKind
    cfg: Mapping[str, Any]
    activation: Activation
    input: Shape
    output: Shape
    params: Mapping[str, Shape]

    def __repr__(self) -> str:
        return f"Layer({self.number}: {self.kind.name} {self.input} -> {self.output})"


@dataclass(frozen=True)
class StackSpec:
    """A validated stack: input shape, layers 1..L, loss row, minibatch, optional values."""

    input: Shape
    layers: tuple[Layer, ...]
    loss: Loss
    batch: int = 1
    reduction: str = "mean"
    title: str | None = None
    values: Any = field(default=None, compare=False)
    #: a sequence of T steps (x: T rows per example) and which steps' losses count
    steps: int | None = None
    sequence_loss: str = "last"

    @property
    def every_step(self) -> bool:
        """A sequence whose every step's loss counts: y has T rows per example."""
        return self.steps is not None and self.sequence_loss == "all"

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def output_size(self) -> int:
        return self.layers[-1].output[-1]

    @property
    def scale(self) -> float:
        return 1.0 / self.batch if self.reduction == "mean" else 1.0

    @property
    def softmax_cross_entropy(self) -> bool:
        return self.layers[-1].activation.vector and self.loss.name == "cross_entropy"

    @property
    def embedding_input(self) -> bool:
        return self.layers[0].kind.name == "embedding"

    def parameter_arrays(self) -> list[tuple[str, Shape]]:
        """Every parameter array's name (K1, b1, gamma3, ...) and shape, in layer order."""
        return [(layer.kind.array_name(letter, layer.number), shape) for layer in self.layers
                for letter, shape in layer.params.items()]

    def parameter_names(self) -> list[str]:
        """Every parameter entry, 1-based: K1[1,1,1,1], ..., b1[1], ..."""
        return [f"{name}[{','.join(str(i + 1) for i in idx)}]" for name, shape in self.parameter_arrays()
                for idx in itertools.product(*(range(n) for n in shape))]

    @property
    def parameter_count(self) -> int:
        total = 0
        for _, shape in self.parameter_arrays():
            size = 1
            for n in shape:
                size *= n
            total += size
        return total

    def describe(self) -> str:
        kinds = " -> ".join(layer.kind.name for layer in self.layers)
        return f"{'x'.join(map(str, self.input))} input, {kinds} (loss {self.loss.name})"

    def __repr__(self) -> str:
        return f"StackSpec({self.describe()})"


def is_stack(table: Mapping[str, Any]) -> bool:
    """A spec table with [[layer]] tables (or an `input` shape) is a stack."""
    return "layer" in table or "input" in table


def _input_shape(raw: Any) -> Shape:
    if not isinstance(raw, (list, tuple)) or not 1 <= len(raw) <= 3 or any(
            isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1 for n in raw):
        raise SpecError(f"input must be a shape like [784], [1, 28, 28] or [3, 100] (positive "
                        f"integers, at most 3), got {show(raw)}")
    return tuple(int(n) for n in raw)


def _layer(raw: Any, number: int, shape: Shape, shapes: dict[int, Shape], last: bool) -> Layer:
    where = f"layer {number}"
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where} must be a table ([[layer]] with kind = ...), got {show(raw)}")
    name = raw.get("kind")
    if name is None:
        raise SpecError(f"{where} has no kind (kind = \"dense\", \"conv2d\", ... : {', '.join(LAYER_KINDS)})")
    if not isinstance(name, str) or name.lower() not in LAYER_KINDS:
        raise SpecError(f"{where}.kind {show(name)} is not a layer kind"
                        f"{suggest(str(name).lower(), list(LAYER_KINDS))}")
    kind = LAYER_KINDS[name.lower()]
    check_keys(raw, ["kind", "activation", *kind.keys], where)
    cfg = {key: raw.get(key, default) for key, default in kind.keys.items()}
    missing = [key for key, v in cfg.items() if v is None and key != "stride"]
    if missing:
        raise SpecError(f"{where} ({kind.name}) needs {', '.join(missing)}")
    if kind.first_only and number != 1:
        raise SpecError(f"{where}: {kind.name} can only be the first layer (its input is token indices)")
    if kind.recurrent and len(shape) != 2:
        raise SpecError(f"{where} is {kind.name}: give steps = T (the sequence's length) and input = "
                        f"the features of one step" if len(shape) == 1 else
                        f"{where}: {kind.name} needs one row of features per step, got {'x'.join(map(str, shape))}")
    if len(shape) not in kind.ranks:
        raise SpecError(f"{where}: {kind.name} does not take an input shaped {'x'.join(map(str, shape))}")
    activation = activation_row(raw.get("activation", "tanh" if kind.recurrent else "identity"),
                                f"{where}.activation")
    if kind.recurrent and activation.vector:
        raise SpecError(f"{where}.activation of an {kind.name} is its recurrence's f; softmax is not one")
    if activation.vector and not last:
        raise SpecError(f"{where}.activation is softmax; softmax is allowed only on the last layer")
    if kind.name == "residual":
        _residual(cfg, number, shape, shapes, where)
    output = kind.output(cfg, shape, where)
    return Layer(number, kind, cfg, activation, shape, output, kind.params(cfg, shape))


def _residual(cfg: dict, number: int, shape: Shape, shapes: dict[int, Shape], where: str) -> None:
    source = cfg["from"]
    if isinstance(source, bool) or not isinstance(source, int) or not 0 <= source < number - 1:
        raise SpecError(f"{where}.from must be an earlier layer 0..{number - 2} (0: the input; not the "
                        f"layer just before, whose output is already this layer's input), got {show(source)}")
    if shapes[source] != shape:
        raise SpecError(f"{where}.from = {source}: its output is {'x'.join(map(str, shapes[source]))} but "
                        f"this layer's input is {'x'.join(map(str, shape))}; a residual adds equal shapes")


def _key_hint(key: str) -> str | None:
    """Keys of layers = [...] networks that a [[layer]] network does not take (yet)."""
    if key in ("regularization", "layout"):
        return f"{key} is for layers = [...] networks; a [[layer]] network has no regulariser or row layout yet"
    if key in ("layers", "activation", "bias"):
        return f"{key} belongs to a layers = [...] network; a [[layer]] network describes each layer in its table"
    return None


def make_stack(table: Mapping[str, Any]) -> StackSpec:
    """Validate a stack spec table (values are checked by stack_values.py)."""
    check_keys(table, STACK_KEYS, "spec", _key_hint)
    check_title(table.get("title"))
    if "input" not in table:
        raise SpecError("a [[layer]] network needs input = its shape, e.g. input = [1, 28, 28]")
    layers_raw = table.get("layer")
    if not isinstance(layers_raw, list) or not layers_raw:
        raise SpecError("a network with input = [...] needs at least one [[layer]] table")
    if len(layers_raw) > MAX_LAYERS:
        raise SpecError(f"{len(layers_raw)} layers, above the limit {MAX_LAYERS}")
    steps, sequence_loss = _sequence(table)
    shape = _input_shape(table["input"])
    if steps is not None:
        if len(shape) != 1:
            raise SpecError(f"input of a sequence (steps = {steps}) is the features of one step, like [3]; "
                            f"got {show(list(shape))}")
        shape = (steps,) + shape
    layers = _layers(layers_raw, shape, steps)
    if steps is not None and not any(layer.kind.recurrent for layer in layers):
        raise SpecError(f"steps = {steps} describes a sequence, but no layer is recurrent: add a layer of "
                        f"kind = \"rnn\" or \"lstm\", or drop steps")
    batch, reduction = _batch(table, layers)
    return StackSpec(shape, tuple(layers), loss_row(table.get("loss", "half_sse")), batch, reduction,
                     table.get("title"), steps=steps, sequence_loss=sequence_loss)


def _layers(layers_raw: list, shape: Shape, steps: int | None) -> list[Layer]:
    shapes, layers = {0: shape}, []
    for number, raw in enumerate(layers_raw, start=1):
        layer = _layer(raw, number, shape, shapes, number == len(layers_raw))
        shape = shapes[number] = layer.output
        if _size(shape) > MAX_FEATURES:
            raise SpecError(f"layer {number} has {_size(shape)} outputs per example, above {MAX_FEATURES}")
        layers.append(layer)
    want = 2 if steps is not None else 1
    if len(shape) != want:
        need = "one row per step (end with a dense layer)" if steps else "a vector (end with flatten and dense)"
        raise SpecError(f"the last layer's output is {'x'.join(map(str, shape))}; the loss needs {need}")
    return layers


def _sequence(table: Mapping[str, Any]) -> tuple[int | None, str]:
    steps = table.get("steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 1000):
        raise SpecError(f"steps must be an integer from 1 to 1000 (the sequence's length), got {show(steps)}")
    sequence_loss = table.get("sequence_loss", "last")
    if sequence_loss not in SEQUENCE_LOSSES:
        raise SpecError(f"sequence_loss must be 'last' (the last step's loss) or 'all' (the sum over steps), "
                        f"got {show(sequence_loss)}")
    if "sequence_loss" in table and steps is None:
        raise SpecError("sequence_loss needs steps = T (a sequence)")
    return steps, sequence_loss


def _batch(table: Mapping[str, Any], layers: list[Layer]) -> tuple[int, str]:
    batch = table.get("batch", 1)
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise SpecError(f"batch must be a positive integer (examples in the minibatch), got {show(batch)}")
    if batch < 2 and any(layer.kind.name == "batchnorm" for layer in layers):
        number = next(layer.number for layer in layers if layer.kind.name == "batchnorm")
        raise SpecError(f"layer {number} is batchnorm, which normalises with the batch's statistics: "
                        f"it needs batch >= 2 (got {batch})")
    reduction = table.get("reduction", "mean")
    if reduction not in ("mean", "sum"):
        raise SpecError(f"reduction must be 'mean' or 'sum', got {show(reduction)}")
    return batch, reduction


def shape_of(raw) -> Shape:
    return tuple(int(n) for n in raw)


def _size(shape: Shape) -> int:
    size = 1
    for n in shape:
        size *= n
    return size
