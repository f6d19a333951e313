"""Numeric values of a network (x, y, weights, biases, learning rate), validated.

`make_values` checks a raw table (from TOML or Python) against a spec's
shapes and returns a frozen `Values`; every refusal names the key, the entry
and what was expected ("W1 must be 3x2, got 2x3").  NumPy arrays and torch
tensors are read through their `.tolist()`, so the checks are the same ones.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import replace
from typing import Any, Mapping

from ..errors import SpecError
from .network import SPEC_KEYS, VALUE_KEY, VALUE_KEYS_FIXED, NetworkSpec, Values
from .words import check_keys, count, show

def with_values(spec: NetworkSpec, raw: Mapping[str, Any]) -> NetworkSpec:
    """The spec with its values replaced by `raw` (validated)."""
    return replace(spec, values=make_values(spec, raw))


def _plain(v: Any) -> Any:
    """NumPy arrays and torch tensors (any object with .tolist()) as nested lists, their
    0-d forms as numbers: a notebook's arrays are points as they are."""
    if isinstance(v, (list, tuple, str, bytes)) or not callable(getattr(v, "tolist", None)):
        return v
    try:
        detach = getattr(v, "detach", None)  # a torch tensor that requires grad
        return (detach() if callable(detach) else v).tolist()
    except Exception:  # tolist of some other kind: judge the object as it is
        return v


def _number(v: Any, where: str) -> float:
    v = _plain(v)
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise SpecError(f"{where} must be a number, got {show(v)}")
    try:
        f = float(v)
    except OverflowError:
        raise SpecError(f"{where} must be finite, got {show(v)} (beyond float64)") from None
    if not math.isfinite(f):
        raise SpecError(f"{where} must be finite, got {show(v)}")
    return f


def _vector(raw: Any, n: int, name: str) -> tuple[float, ...]:
    raw = _plain(raw)
    if not isinstance(raw, (list, tuple)):
        raise SpecError(f"{name} must be a list of {count(n, 'number')}, got {show(raw)}")
    if raw and all(isinstance(r, (list, tuple)) for r in raw):  # a batch, or a column
        raise SpecError(f"{name} must be a flat list of {count(n, 'number')} (one example), "
                        f"got {_shape(raw)}; a minibatch of m examples needs batch = m in the spec")
    if len(raw) != n:
        raise SpecError(f"{name} must have {count(n, 'entry', 'entries')}, got {len(raw)}")
    return tuple(_number(v, f"{name}[{i + 1}]") for i, v in enumerate(raw))


def _shape(raw: Any) -> str:
    """What a would-be matrix looks like, for a message: '3x2', 'ragged rows ...'."""
    if not isinstance(raw, (list, tuple)):
        return show(raw)
    if not raw:
        return "an empty list"
    if not any(isinstance(r, (list, tuple)) for r in raw):
        return f"a flat list of {count(len(raw), 'item')} (write rows as [[...], [...]])"
    if not all(isinstance(r, (list, tuple)) for r in raw):
        bad = next(i for i, r in enumerate(raw) if not isinstance(r, (list, tuple)))
        return f"row {bad + 1} = {show(raw[bad])}, not a list"
    cols = sorted({len(r) for r in raw})
    if len(cols) == 1:
        return f"{len(raw)}x{cols[0]}"
    return f"{len(raw)} rows of {', '.join(map(str, cols[:-1]))} and {cols[-1]} entries"


def _matrix(raw: Any, rows: int, cols: int, name: str,
            row_means: str = "per neuron of layer l") -> tuple[tuple[float, ...], ...]:
    raw = _plain(raw)
    shape_ok = (isinstance(raw, (list, tuple)) and len(raw) == rows
                and all(isinstance(r, (list, tuple)) and len(r) == cols for r in raw))
    if not shape_ok:
        got = _shape(raw)
        # W(l) is (neurons of l) x (neurons of l-1) in the column layout: the other way
        # round is the usual slip (or a row-layout matrix in a column-layout spec)
        flipped = (f" (transposed? W(l) has one row {row_means})"
                   if rows != cols and got == f"{cols}x{rows}" else "")
        raise SpecError(f"{name} must be {rows}x{cols}, got {got}{flipped}")
    return tuple(tuple(_number(v, f"{name}[{j + 1},{k + 1}]") for k, v in enumerate(r))
                 for j, r in enumerate(raw))


def _check_targets(spec: NetworkSpec, y: tuple[float, ...], name: str = "y") -> None:
    if not spec.loss.probabilistic:
        return
    for j, v in enumerate(y, start=1):
        if not 0 <= v <= 1:
            entry = f"{name}[{j}]" if name == "y" else f"{name} entry {j}"
            raise SpecError(f"{entry} must lie in [0, 1] for loss {spec.loss.name!r}, got {v!r}")
    if spec.softmax_cross_entropy:
        total = math.fsum(y)
        if abs(total - 1) > 1e-9:
            raise SpecError(f"{name} must sum to 1 for cross_entropy after softmax, got sum {total!r}")


def _values_key_hint(spec: NetworkSpec):
    L = spec.depth

    def hint(key: str) -> str | None:
        if key == "values":
            return "this is already the values table: put x, y, W1, ... directly in it"
        if key in SPEC_KEYS:
            return f"{key} belongs in the spec, above the [values] table"
        if not VALUE_KEY.match(key):
            return None
        if key[0] == "b" and not spec.bias:
            return "this network has no biases: bias = false"
        names = f"{key[0]}1" if L == 1 else f"{key[0]}1 to {key[0]}{L}"
        return f"the network has {count(L, 'layer')}: {names}"

    return hint


def make_values(spec: NetworkSpec, raw: Mapping[str, Any]) -> Values:
    """Validate a values table against the spec's shapes."""
    if not isinstance(raw, Mapping):
        raise SpecError(f"values must be a table, got {show(raw)}")
    L, n = spec.depth, spec.layers
    allowed = list(VALUE_KEYS_FIXED) + [f"W{l}" for l in range(1, L + 1)]
    if spec.bias:
        allowed += [f"b{l}" for l in range(1, L + 1)]
    check_keys(raw, allowed, "values", _values_key_hint(spec))
    missing = [k for k in allowed if k not in raw and k != "learning_rate"]
    if missing:
        raise SpecError(f"values: missing {', '.join(missing[:5])}"
                        + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    xs, ys = _examples(spec, raw["x"], raw["y"])
    x, y = xs[0], ys[0]
    W = {l: _weights(spec, raw[f"W{l}"], l) for l in range(1, L + 1)}
    b = {l: _vector(raw[f"b{l}"], n[l], f"b{l}") for l in range(1, L + 1)} if spec.bias else {}
    lr = raw.get("learning_rate")
    if lr is not None:
        lr = _number(lr, "learning_rate")
        if lr <= 0:
            raise SpecError(f"learning_rate must be positive, got {lr!r}")
    for n_, target in enumerate(ys):
        _check_targets(spec, target, f"y[{n_ + 1}]" if spec.batch > 1 else "y")
    if spec.batch == 1:
        return Values(x, y, W, b, lr)
    return Values(x, y, W, b, lr, xs, ys)


def _weights(spec: NetworkSpec, raw: Any, l: int) -> tuple[tuple[float, ...], ...]:
    """W<l> as the column form keeps it (n_l x n_(l-1)); a row-layout spec writes it
    n_(l-1) x n_l (W<l>[k,j]), read as written and transposed here, once."""
    n = spec.layers
    if not spec.row_layout:
        return _matrix(raw, n[l], n[l - 1], f"W{l}")
    rows = _matrix(raw, n[l - 1], n[l], f"W{l}", "per neuron of layer l-1 in the row layout")
    return tuple(zip(*rows))


def _examples(spec: NetworkSpec, raw_x: Any, raw_y: Any):
    """x and y: one flat list each (batch 1), or m rows of them (batch m)."""
    n, m = spec.layers, spec.batch
    if m == 1:
        return [_vector(raw_x, n[0], "x")], [_vector(raw_y, n[-1], "y")]
    out = []
    for name, raw, size in (("x", raw_x, n[0]), ("y", raw_y, n[-1])):
        raw = _plain(raw)
        if not (isinstance(raw, (list, tuple)) and raw and all(isinstance(r, (list, tuple)) for r in raw)):
            raise SpecError(f"{name} must be {m} rows of {count(size, 'number')} (batch = {m}: "
                            f"one row per example), got {_shape(raw)}")
        if len(raw) != m:
            raise SpecError(f"{name} has {count(len(raw), 'row')} but batch = {m}: give one row per example")
        out.append([_vector(r, size, f"{name}[{i + 1}]") for i, r in enumerate(raw)])
    return tuple(out[0]), tuple(out[1])
