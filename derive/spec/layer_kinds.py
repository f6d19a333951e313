"""The layer table: one row per kind of layer, as activations and losses have theirs.

A row says what every stage needs to know about a kind before any number is
computed: the keys its [[layer]] table takes (with defaults), the parameters
it owns and their shapes, the shape of its output for a given input shape,
and one sentence on how the gradient flows through it.  Shapes are per
example, without the batch: (n,) a vector, (C, L) a 1-D signal, (C, H, W) an
image, (T, d) a sequence of T embedded tokens.  The numeric forward and
backward rules of each kind are the same table's rows in check/layer_ops.py
(keyed by the same names; a test checks both tables list the same kinds).

Conventions (as PyTorch): convolutions are cross-correlations, K[c_out, c_in,
u(, v)]; max-pool ties go to the first maximum; flatten orders channel, row,
column (torch.flatten); batchnorm uses the batch's statistics with the biased
variance (training mode), per feature, or per channel after a convolution;
layernorm normalises each example over all its input's features; dropout
multiplies by mask / (1 - p).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import SpecError
from .words import show

Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerKind:
    """One row of the layer table.

    `keys` maps each key the [[layer]] table may hold (besides kind and activation)
    to its default (None: required).  `params(cfg, shape)` gives the parameters'
    letters and shapes; `output(cfg, shape)` the output shape, raising a SpecError
    naming the layer's key when the input does not fit.  `flow` is the sentence on
    the backward pass a layer card prints.
    """

    name: str
    keys: dict[str, Any]
    output: Callable[[dict, Shape, str], Shape]
    params: Callable[[dict, Shape], dict[str, Shape]] = lambda cfg, shape: {}
    flow: str = ""
    ranks: tuple[int, ...] = (1, 2, 3)
    first_only: bool = False
    #: recurrent kinds read `activation` as the recurrence's own f (no activation after them)
    recurrent: bool = False

    def array_name(self, letter: str, number: int) -> str:
        """A parameter array's name: letter and layer (K1, gamma2); an LSTM gate's letter
        carries its gate after the layer (Wi -> W1i), as the issue names them."""
        if self.name == "lstm":
            return f"{letter[0]}{number}{letter[1:]}"
        return f"{letter}{number}"


def _pair(value: Any, where: str, dims: int) -> tuple[int, ...]:
    """kernel = 3 or [3, 3] (one per spatial dimension), each a positive integer."""
    items = list(value) if isinstance(value, (list, tuple)) else [value] * dims
    if len(items) != dims or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in items):
        raise SpecError(f"{where} must be a positive integer or a list of {dims}, got {show(value)}")
    return tuple(items)


def _count(value: Any, where: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SpecError(f"{where} must be an integer >= {low}, got {show(value)}")
    return value


def _spatial(cfg: dict, shape: Shape, where: str, dims: int, pool: bool) -> tuple[int, ...]:
    """Output sizes floor((n + 2 pad - k) / s) + 1 per spatial dimension (torch's)."""
    kernel = _pair(cfg["kernel"], f"{where}.kernel", dims)
    stride = _pair(cfg["stride"] if cfg["stride"] is not None else kernel, f"{where}.stride", dims)
    pad = (0,) * dims if pool else tuple(_count(p, f"{where}.padding") for p in
                                         (cfg["padding"] if isinstance(cfg["padding"], (list, tuple))
                                          else [cfg["padding"]] * dims))
    sizes = shape[1:]
    out = []
    for n, k, s, p in zip(sizes, kernel, stride, pad):
        if k > n + 2 * p:
            raise SpecError(f"{where}.kernel {show(cfg['kernel'])} is larger than its input "
                            f"{'x'.join(map(str, sizes))}" + (f" with padding {p}" if p else ""))
        out.append((n + 2 * p - k) // s + 1)
    return tuple(out)


def _conv_output(dims: int):
    def output(cfg: dict, shape: Shape, where: str) -> Shape:
        if len(shape) != dims + 1:
            raise SpecError(f"{where}: conv{dims}d needs an input of {dims + 1} dimensions "
                            f"(channels, {'length' if dims == 1 else 'height, width'}), got {_shape(shape)}")
        _count(cfg["channels"], f"{where}.channels", 1)
        return (cfg["channels"],) + _spatial(cfg, shape, where, dims, pool=False)
    return output


def _conv_params(dims: int):
    def params(cfg: dict, shape: Shape) -> dict[str, Shape]:
        kernel = _pair(cfg["kernel"], "kernel", dims)
        out = {"K": (cfg["channels"], shape[0]) + kernel}
        return {**out, "b": (cfg["channels"],)} if cfg["bias"] else out
    return params


def _pool_output(dims: int):
    def output(cfg: dict, shape: Shape, where: str) -> Shape:
        if len(shape) != dims + 1:
            raise SpecError(f"{where}: a {dims}-d pool needs an input of {dims + 1} dimensions, got {_shape(shape)}")
        return (shape[0],) + _spatial(cfg, shape, where, dims, pool=True)
    return output


def _dense_output(cfg: dict, shape: Shape, where: str) -> Shape:
    """A vector to `units`; a sequence (T rows) row by row, as torch.nn.Linear on the last axis."""
    if len(shape) == 3:
        raise SpecError(f"{where}: dense needs a vector input, got {_shape(shape)}; "
                        f"put a layer of kind = \"flatten\" before it")
    return shape[:-1] + (_count(cfg["units"], f"{where}.units", 1),)


def _recurrent_output(cfg: dict, shape: Shape, where: str) -> Shape:
    return (shape[0], _count(cfg["units"], f"{where}.units", 1))


def _rnn_params(cfg: dict, shape: Shape) -> dict[str, Shape]:
    n, k = cfg["units"], shape[1]
    return {"W": (n, k), "R": (n, n), "b": (n,)}


def _lstm_params(cfg: dict, shape: Shape) -> dict[str, Shape]:
    """Per gate g in i, f, g, o (PyTorch's order): W<l><g>, R<l><g>, b<l><g>."""
    n, k = cfg["units"], shape[1]
    return {f"{letter}{gate}": size for gate in "ifgo"
            for letter, size in (("W", (n, k)), ("R", (n, n)), ("b", (n,)))}


def _norm_params(cfg: dict, shape: Shape) -> dict[str, Shape]:
    """gamma and beta: one per feature (a vector), per channel (after a convolution)."""
    return {"gamma": (shape[0],), "beta": (shape[0],)}


def _layernorm_params(cfg: dict, shape: Shape) -> dict[str, Shape]:
    size = 1
    for n in shape:
        size *= n
    return {"gamma": (size,), "beta": (size,)}


def _dropout_output(cfg: dict, shape: Shape, where: str) -> Shape:
    p = cfg["p"]
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise SpecError(f"{where}.p must be a number in [0, 1), got {show(p)}")
    return shape


def _embedding_output(cfg: dict, shape: Shape, where: str) -> Shape:
    _count(cfg["vocabulary"], f"{where}.vocabulary", 1)
    return (shape[0], _count(cfg["units"], f"{where}.units", 1))


def _flat(shape: Shape) -> Shape:
    size = 1
    for n in shape:
        size *= n
    return (size,)


def _shape(shape: Shape) -> str:
    return "x".join(map(str, shape)) if len(shape) > 1 else f"a vector of {shape[0]}"


def _same(cfg: dict, shape: Shape, where: str) -> Shape:
    return shape


_CONV = {"channels": None, "kernel": None, "stride": 1, "padding": 0, "bias": True}
_POOL = {"kernel": None, "stride": None}

LAYER_KINDS: dict[str, LayerKind] = {k.name: k for k in [
    LayerKind("dense", {"units": None, "bias": True}, _dense_output,
              lambda cfg, shape: {"W": (cfg["units"], shape[-1]), **({"b": (cfg["units"],)} if cfg["bias"] else {})},
              "each weight's gradient is its neuron's delta times its own input", ranks=(1, 2)),
    LayerKind("rnn", {"units": None}, _recurrent_output, _rnn_params,
              "W, R and b are shared by every step, so their gradients add up over time; "
              "delta of h_t comes from the output at t and from h_(t+1) through R^T and f'",
              ranks=(2,), recurrent=True),
    LayerKind("lstm", {"units": None}, _recurrent_output, _lstm_params,
              "the cell state's path c_(t-1) -> c_t multiplies the gradient by the forget gate f_t alone",
              ranks=(2,), recurrent=True),
    LayerKind("conv1d", dict(_CONV), _conv_output(1), _conv_params(1),
              "a kernel weight is shared by every output position, so its gradient adds up its uses",
              ranks=(2,)),
    LayerKind("conv2d", dict(_CONV), _conv_output(2), _conv_params(2),
              "a kernel weight is shared by every output position, so its gradient adds up its uses",
              ranks=(3,)),
    LayerKind("maxpool1d", dict(_POOL), _pool_output(1), flow="the gradient goes to the arg-max of each window alone", ranks=(2,)),
    LayerKind("maxpool2d", dict(_POOL), _pool_output(2), flow="the gradient goes to the arg-max of each window alone", ranks=(3,)),
    LayerKind("avgpool1d", dict(_POOL), _pool_output(1), flow="each input of a window gets 1/k of its gradient", ranks=(2,)),
    LayerKind("avgpool2d", dict(_POOL), _pool_output(2), flow="each input of a window gets 1/(k_h k_w) of its gradient", ranks=(3,)),
    LayerKind("flatten", {}, lambda cfg, shape, where: _flat(shape),
              flow="the gradient is reshaped back: flatten has no derivative of its own"),
    LayerKind("batchnorm", {"eps": 1e-5}, _same, _norm_params,
              "x reaches the output along three paths: through x-hat, the batch mean and the batch variance",
              ranks=(1, 2, 3)),
    LayerKind("layernorm", {"eps": 1e-5}, _same, _layernorm_params,
              "each input reaches every output of its example through the example's mean and variance"),
    LayerKind("dropout", {"p": 0.5, "seed": 0}, _dropout_output,
              flow="the backward pass multiplies by the same mask / (1 - p) again"),
    LayerKind("residual", {"from": None}, _same,
              flow="the identity path adds the gradient unchanged, which is why gradients survive depth"),
    LayerKind("embedding", {"vocabulary": None, "units": None}, _embedding_output,
              lambda cfg, shape: {"E": (cfg["vocabulary"], cfg["units"])},
              "a row of E gets the sum of the gradients of the positions holding its token",
              ranks=(1,), first_only=True),
]}
