"""Stage 1: the network spec and the numeric values, read and validated.

A spec comes from a TOML file (`load_spec`) or from keyword arguments / CLI
shorthand (`make_spec`); both meet in `make_spec`, which checks every field
and raises `SpecError` naming the field and the problem.  Values (x, y, the
weights and biases, an optional learning rate) are checked against the spec's
shapes in `make_values`.  Nothing here knows about SymPy beyond the registry
rows it looks up; the symbolic model is built from a valid spec in model.py.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .errors import SpecError
from .registry import ACTIVATIONS, LOSSES, Activation, Loss, custom_activation, custom_loss

#: Up-front limits; a bigger network is refused with the limit and how to raise it.
MAX_PARAMETERS = 250_000
MAX_DEPTH = 1_000
MAX_WIDTH = 100_000

SPEC_KEYS = ("title", "layers", "activation", "loss", "bias", "values")
VALUE_KEYS_FIXED = ("x", "y", "learning_rate")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")


@dataclass(frozen=True)
class Values:
    """A numeric point: input x, target y, weights W[l] (rows j, columns k,
    0-based lists), biases b[l] (empty when the spec has no bias), and an
    optional learning rate.  Layers are keyed 1..L as in the documents."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    W: Mapping[int, tuple[tuple[float, ...], ...]]
    b: Mapping[int, tuple[float, ...]]
    learning_rate: float | None = None

    def __repr__(self) -> str:
        return (f"Values(x={list(self.x)}, y={list(self.y)}, layers={len(self.W)}, "
                f"learning_rate={self.learning_rate})")


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

    @property
    def depth(self) -> int:
        return len(self.layers) - 1

    @property
    def parameter_count(self) -> int:
        n = self.layers
        return sum(n[l] * n[l - 1] + (n[l] if self.bias else 0) for l in range(1, len(n)))

    @property
    def stem(self) -> str:
        """A file-name stem derived from the shape: net-2-3-1."""
        return "net-" + "-".join(str(n) for n in self.layers)

    def describe(self) -> str:
        acts = ", ".join(a.name for a in self.activations)
        return f"{'-'.join(map(str, self.layers))} network ({acts}; loss {self.loss.name})"

    def __repr__(self) -> str:
        return f"NetworkSpec({self.describe()}, bias={self.bias})"


def _suggest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return "; expected one of " + ", ".join(choices)


def _check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            prefix = f"{where}: " if where else ""
            raise SpecError(f"{prefix}unknown key {key!r}{_suggest(key, allowed)}")


def _layers(raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, (list, tuple)):
        raise SpecError(f"layers must be a list of sizes like [2, 3, 1], got {raw!r}")
    if len(raw) < 2:
        raise SpecError(f"layers needs at least an input and an output size, got {list(raw)!r}")
    for i, n in enumerate(raw):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise SpecError(f"layers[{i}] must be a positive integer, got {n!r}")
        if n > MAX_WIDTH:
            raise SpecError(f"layers[{i}] is {n}, above the width limit {MAX_WIDTH} "
                            f"(raise derive.spec.MAX_WIDTH to allow it)")
    if len(raw) - 1 > MAX_DEPTH:
        raise SpecError(f"layers has depth {len(raw) - 1}, above the limit {MAX_DEPTH} "
                        f"(raise derive.spec.MAX_DEPTH to allow it)")
    return tuple(raw)


def activation_row(name: Any, field_name: str = "activation") -> Activation:
    """The registry row for a name, or a custom row for an expression in x."""
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"{field_name} must be an activation name or an expression in x, got {name!r}")
    text = name.strip()
    if text in ACTIVATIONS:
        return ACTIVATIONS[text]
    if _IDENTIFIER.match(text) and text != "x":
        raise SpecError(f"unknown activation {text!r}{_suggest(text, list(ACTIVATIONS))}")
    return custom_activation(text, field_name)


def loss_row(name: Any) -> Loss:
    """The registry row for a name, or a custom row for an expression in a and y."""
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"loss must be a loss name or an expression in a and y, got {name!r}")
    text = name.strip()
    if text in LOSSES:
        return LOSSES[text]
    if _IDENTIFIER.match(text) and text not in ("a", "y"):
        raise SpecError(f"unknown loss {text!r}{_suggest(text, list(LOSSES))}")
    return custom_loss(text)


def _activations(raw: Any, depth: int) -> tuple[Activation, ...]:
    if isinstance(raw, str):
        row = activation_row(raw)
        rows = (row,) * depth
    elif isinstance(raw, (list, tuple)):
        if len(raw) != depth:
            raise SpecError(f"activation lists {len(raw)} names but the network has "
                            f"{depth} layers; give one name, or {depth}")
        rows = tuple(activation_row(r, f"activation[{i}]") for i, r in enumerate(raw))
    else:
        raise SpecError(f"activation must be a name or a list of names, got {raw!r}")
    for l, row in enumerate(rows[:-1], start=1):
        if row.vector:
            raise SpecError(f"activation of layer {l} is {row.name!r}; softmax is allowed "
                            f"only on the output layer")
    return rows


def make_spec(layers: Any, activation: Any = "sigmoid", loss: Any = "half_sse",
              bias: Any = True, title: Any = None, values: Any = None) -> NetworkSpec:
    """Validate every field and build a `NetworkSpec` (values optional)."""
    sizes = _layers(layers)
    if not isinstance(bias, bool):
        raise SpecError(f"bias must be true or false, got {bias!r}")
    if title is not None and not isinstance(title, str):
        raise SpecError(f"title must be a string, got {title!r}")
    rows = _activations(activation, len(sizes) - 1)
    loss_r = loss_row(loss)
    spec = NetworkSpec(sizes, rows, loss_r, bias, title)
    if spec.parameter_count > MAX_PARAMETERS:
        raise SpecError(f"layers {list(sizes)} give {spec.parameter_count} parameters, above the "
                        f"limit {MAX_PARAMETERS} (raise derive.spec.MAX_PARAMETERS to allow it)")
    if values is not None:
        if not isinstance(values, Mapping):
            raise SpecError(f"values must be a table, got {values!r}")
        spec = with_values(spec, values)
    return spec


def with_values(spec: NetworkSpec, raw: Mapping[str, Any]) -> NetworkSpec:
    """The spec with its values replaced by `raw` (validated)."""
    return NetworkSpec(spec.layers, spec.activations, spec.loss, spec.bias, spec.title,
                       make_values(spec, raw))


def _read_toml(path: Path | str, what: str) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{what} file {str(p)!r} does not exist") from None
    except IsADirectoryError:
        raise SpecError(f"{what} file {str(p)!r} is a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{what} file {str(p)!r} cannot be read: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{what} file {str(p)!r} is not valid TOML: {exc}") from None


def load_spec(path: Path | str, values_path: Path | str | None = None) -> NetworkSpec:
    """Read a spec TOML file (and optionally a values file overriding [values])."""
    table = _read_toml(path, "spec")
    _check_keys(table, SPEC_KEYS, "")
    if "layers" not in table:
        raise SpecError(f"spec file {str(path)!r} has no 'layers' (e.g. layers = [2, 3, 1])")
    spec = make_spec(**{k: table[k] for k in SPEC_KEYS if k in table and k != "values"})
    raw_values = load_values_table(values_path) if values_path else table.get("values")
    if raw_values is not None:
        if not isinstance(raw_values, Mapping):
            raise SpecError(f"values must be a table, got {raw_values!r}")
        spec = with_values(spec, raw_values)
    return spec


def load_values_table(path: Path | str) -> dict[str, Any]:
    """The raw table of a values file (validated against a spec by `make_values`)."""
    return _read_toml(path, "values")


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SpecError(f"{where} must be a number, got {v!r}")
    try:
        f = float(v)
    except OverflowError:
        raise SpecError(f"{where} must be finite, got {v!r}") from None
    if not math.isfinite(f):
        raise SpecError(f"{where} must be finite, got {v!r}")
    return f


def _vector(raw: Any, n: int, name: str) -> tuple[float, ...]:
    if not isinstance(raw, (list, tuple)):
        raise SpecError(f"{name} must be a list of {n} numbers, got {raw!r}")
    if len(raw) != n:
        raise SpecError(f"{name} must have {n} entries, got {len(raw)}")
    return tuple(_number(v, f"{name}[{i + 1}]") for i, v in enumerate(raw))


def _matrix(raw: Any, rows: int, cols: int, name: str) -> tuple[tuple[float, ...], ...]:
    shape_ok = (isinstance(raw, (list, tuple)) and len(raw) == rows
                and all(isinstance(r, (list, tuple)) and len(r) == cols for r in raw))
    if not shape_ok:
        if isinstance(raw, (list, tuple)) and all(isinstance(r, (list, tuple)) for r in raw):
            got_cols = {len(r) for r in raw}
            got = f"{len(raw)}x{got_cols.pop()}" if len(got_cols) == 1 else f"ragged rows {sorted(got_cols)}"
        else:
            got = repr(raw)
        raise SpecError(f"{name} must be {rows}x{cols}, got {got}")
    return tuple(tuple(_number(v, f"{name}[{j + 1},{k + 1}]") for k, v in enumerate(r))
                 for j, r in enumerate(raw))


def _check_targets(spec: NetworkSpec, y: tuple[float, ...]) -> None:
    if not spec.loss.probabilistic:
        return
    for j, v in enumerate(y, start=1):
        if not 0 <= v <= 1:
            raise SpecError(f"y[{j}] must lie in [0, 1] for loss {spec.loss.name!r}, got {v!r}")
    if spec.activations[-1].vector and spec.loss.name == "cross_entropy":
        total = math.fsum(y)
        if abs(total - 1) > 1e-9:
            raise SpecError(f"y must sum to 1 for cross_entropy after softmax, got sum {total!r}")


def make_values(spec: NetworkSpec, raw: Mapping[str, Any]) -> Values:
    """Validate a values table against the spec's shapes."""
    L, n = spec.depth, spec.layers
    allowed = list(VALUE_KEYS_FIXED) + [f"W{l}" for l in range(1, L + 1)]
    if spec.bias:
        allowed += [f"b{l}" for l in range(1, L + 1)]
    _check_keys(raw, allowed, "values")
    missing = [k for k in allowed if k not in raw and k != "learning_rate"]
    if missing:
        raise SpecError(f"values: missing {', '.join(missing[:5])}"
                        + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    x = _vector(raw["x"], n[0], "x")
    y = _vector(raw["y"], n[-1], "y")
    W = {l: _matrix(raw[f"W{l}"], n[l], n[l - 1], f"W{l}") for l in range(1, L + 1)}
    b = {l: _vector(raw[f"b{l}"], n[l], f"b{l}") for l in range(1, L + 1)} if spec.bias else {}
    lr = raw.get("learning_rate")
    if lr is not None:
        lr = _number(lr, "learning_rate")
        if lr <= 0:
            raise SpecError(f"learning_rate must be positive, got {lr!r}")
    _check_targets(spec, y)
    return Values(x, y, W, b, lr)
