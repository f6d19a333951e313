"""Values of a [[layer]] network: nested lists checked against every shape.

x is one example shaped like `input` ([c][h][w], [c][l] or [n]; token indices
1..vocabulary for an embedding first layer) or, with batch = m, a list of m of
those; y is a vector of the last layer's size (or m of them).  Each parameter
array is a nested list in its index order: K1 as [c_out][c_in][u][v], W3 as
[j][k], gamma2 as [j], E1 as [v][d].  A dropout layer's mask<l> (0s and 1s
shaped like the layer's input, one per example) may be given; otherwise it is
drawn from the layer's seed, so a spec always means the same numbers.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..errors import SpecError
from .stack import StackSpec
from .words import check_keys, show


@dataclass(frozen=True, eq=False)
class StackValues:
    """x (m, *input), y (m, n_out), parameter arrays by name, dropout masks by layer."""

    x: np.ndarray
    y: np.ndarray
    params: Mapping[str, np.ndarray]
    masks: Mapping[int, np.ndarray]

    def __repr__(self) -> str:
        return f"StackValues(batch={self.x.shape[0]}, arrays={list(self.params)})"


def _nested(raw: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """A nested list of exactly `shape`, every entry a finite number, as a float array."""
    raw = raw.tolist() if callable(getattr(raw, "tolist", None)) and not isinstance(raw, list) else raw

    def walk(node, depth, where):
        if depth == len(shape):
            if isinstance(node, bool) or not isinstance(node, numbers.Real) or not math.isfinite(node):
                raise SpecError(f"{name}{where} must be a finite number, got {show(node)}")
            return float(node)
        if not isinstance(node, (list, tuple)) or len(node) != shape[depth]:
            got = f"a list of {len(node)}" if isinstance(node, (list, tuple)) else show(node)
            raise SpecError(f"{name} must be shaped {'x'.join(map(str, shape))} (nested lists); at "
                            f"{name}{where or ''} expected a list of {shape[depth]}, got {got}")
        return [walk(v, depth + 1, f"{where}[{i + 1}]") for i, v in enumerate(node)]

    return np.array(walk(raw, 0, ""), dtype=float).reshape(shape)


def _tokens(x: np.ndarray, vocabulary: int) -> None:
    bad = (x != np.round(x)) | (x < 1) | (x > vocabulary)
    if bad.any():
        i = tuple(int(v) + 1 for v in np.argwhere(bad)[0])
        raise SpecError(f"x{list(i)} = {x[tuple(v - 1 for v in i)]:g} is not a token index 1..{vocabulary}")


def dropout_mask(spec: StackSpec, layer, raw: Any) -> np.ndarray:
    """Layer `layer`'s mask: the one given (checked: 0s and 1s, shaped like its input), or drawn."""
    shape = (spec.batch,) + layer.input
    if raw is None:  # drawn from the layer's seed: the same spec always means the same mask
        rng = np.random.default_rng(layer.cfg["seed"])
        return (rng.random(shape) >= layer.cfg["p"]).astype(float)
    mask = _nested(raw if spec.batch > 1 else [raw], shape, f"mask{layer.number}")
    if not np.isin(mask, (0.0, 1.0)).all():
        raise SpecError(f"mask{layer.number} must hold only 0s and 1s")
    return mask


def make_stack_values(spec: StackSpec, raw: Mapping[str, Any]) -> StackValues:
    """Validate a values table against the stack's shapes."""
    if not isinstance(raw, Mapping):
        raise SpecError(f"values must be a table, got {show(raw)}")
    arrays = dict(spec.parameter_arrays())
    dropouts = {layer.number: layer for layer in spec.layers if layer.kind.name == "dropout"}
    allowed = ["x", "y", *arrays, *(f"mask{n}" for n in dropouts)]
    check_keys(raw, allowed, "values")
    missing = [k for k in ["x", "y", *arrays] if k not in raw]
    if missing:
        raise SpecError(f"values: missing {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    m, one = spec.batch, spec.batch == 1
    x = _nested(raw["x"] if not one else [raw["x"]], (m,) + spec.input, "x")
    if spec.embedding_input:
        _tokens(x, spec.layers[0].cfg["vocabulary"])
    y_shape = (m, spec.steps, spec.output_size) if spec.every_step else (m, spec.output_size)
    y = _nested(raw["y"] if not one else [raw["y"]], y_shape, "y")
    if spec.loss.probabilistic and ((y < 0) | (y > 1)).any():
        raise SpecError(f"y must lie in [0, 1] for loss {spec.loss.name!r}")
    if spec.softmax_cross_entropy and (np.abs(y.sum(axis=-1) - 1) > 1e-9).any():
        raise SpecError("y must sum to 1 (per example) for cross_entropy after softmax")
    params = {name: _nested(raw[name], shape, name) for name, shape in arrays.items()}
    masks = {n: dropout_mask(spec, layer, raw.get(f"mask{n}")) for n, layer in dropouts.items()}
    return StackValues(x, y, params, masks)
