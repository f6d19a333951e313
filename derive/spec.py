"""Stage 1: the network spec and the numeric values, read and validated.

A spec comes from a TOML file (`load_spec`) or from keyword arguments / CLI
shorthand (`make_spec`); both meet in `make_spec`, which checks every field
and raises `SpecError` naming the field and the problem.  Values (x, y, the
weights and biases, an optional learning rate) are checked against the spec's
shapes in `make_values`.  Nothing here knows about SymPy beyond the registry
rows it looks up; the symbolic model is built from a valid spec in model.py.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import numbers
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .errors import SpecError
from .files import read_toml
from .registry import ACTIVATIONS, LOSSES, Activation, Loss, custom_activation, custom_loss

#: Up-front limits; a bigger network is refused with the limit and how to raise
#: it.  A CLI flag (`limits`) beats an environment variable, which beats these.
MAX_PARAMETERS = 250_000
MAX_DEPTH = 1_000
#: Past this many parameters a refusal does not suggest raising the limit.
SENSIBLE_PARAMETERS = 10**12
#: How to raise each limit: (CLI flag, environment variable).
LIMIT_KNOBS = {"MAX_PARAMETERS": ("--max-params", "DERIVE_MAX_PARAMS"),
               "MAX_DEPTH": ("--max-depth", "DERIVE_MAX_DEPTH")}
#: Input files are read up to this many bytes per allowed parameter (at least
#: `MIN_FILE_BYTES`), so /dev/zero or a stray 2 GB file is refused, not read whole.
FILE_BYTES_PER_PARAMETER = 64
MIN_FILE_BYTES = 16 * 2**20
#: Longest repr of a bad value quoted in a message.
SHOW_WIDTH = 60
_overrides: dict[str, int] = {}

SPEC_KEYS = ("title", "layers", "activation", "loss", "bias", "values")
VALUE_KEYS_FIXED = ("x", "y", "learning_rate")
MAX_TITLE = 200
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")
_VALUE_KEY = re.compile(r"^[Wb]\d+$")


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
        return parameter_count(self.layers, self.bias)

    @property
    def stem(self) -> str:
        """A file-name stem derived from the shape: net-2-3-1."""
        return "net-" + "-".join(str(n) for n in self.layers)

    def describe(self) -> str:
        acts = ", ".join(a.name for a in self.activations)
        return f"{'-'.join(map(str, self.layers))} network ({acts}; loss {self.loss.name})"

    def __repr__(self) -> str:
        return f"NetworkSpec({self.describe()}, bias={self.bias})"


def parameter_count(layers: Sequence[int], bias: bool = True) -> int:
    """Weights and biases of a network with these layer sizes."""
    n = layers
    return sum(n[l] * n[l - 1] + (n[l] if bias else 0) for l in range(1, len(n)))


def _show(value: Any) -> str:
    """repr(value), cut to `SHOW_WIDTH` characters so a message stays one short line."""
    try:
        text = repr(value)
    except ValueError:  # an int too long for str(): Python refuses past 4300 digits
        text = (f"<an integer of about {value.bit_length() * math.log10(2):.0f} digits>"
                if isinstance(value, int) else f"<a {type(value).__name__} holding an integer "
                f"of over {sys.get_int_max_str_digits()} digits>")
    return text if len(text) <= SHOW_WIDTH else text[:SHOW_WIDTH - 3] + "..."


def limit(name: str) -> int:
    """The limit in force: a `limits()` override, else the environment, else the constant."""
    if name in _overrides:
        return _overrides[name]
    flag, env = LIMIT_KNOBS[name]
    raw = os.environ.get(env)
    if raw is not None and raw.strip():
        return _positive_limit(raw, env)
    return globals()[name]


def _positive_limit(raw: Any, where: str) -> int:
    text = str(raw).strip().replace("_", "")
    if not text.isdigit() or int(text) < 1:
        raise SpecError(f"{where} must be a positive integer, got {_show(raw)}")
    return int(text)


@contextlib.contextmanager
def limits(max_parameters: int | None = None, max_depth: int | None = None) -> Iterator[None]:
    """Raise (or lower) the limits inside a `with` block; the CLI's --max-params does this."""
    saved = dict(_overrides)
    for name, value, flag in (("MAX_PARAMETERS", max_parameters, "--max-params"),
                              ("MAX_DEPTH", max_depth, "--max-depth")):
        if value is not None:
            _overrides[name] = _positive_limit(value, flag)
    try:
        yield
    finally:
        _overrides.clear()
        _overrides.update(saved)


def _how_to_raise(name: str, needed: int) -> str:
    flag, env = LIMIT_KNOBS[name]
    return (f"raise it with {flag} {needed} (or {env}={needed}; "
            f"in Python, derive.spec.{name} = {needed})")


def _suggest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return "; expected one of " + ", ".join(choices)


def _check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str,
                hint=lambda key: None) -> None:
    for key in table:
        if key not in allowed:
            prefix = f"{where}: " if where else ""
            why = hint(key) if isinstance(key, str) else None
            shown = _show(key)
            if why:
                raise SpecError(f"{prefix}unknown key {shown} ({why})")
            raise SpecError(f"{prefix}unknown key {shown}{_suggest(str(key), allowed)}")


def _spec_key_hint(key: str) -> str | None:
    if key in VALUE_KEYS_FIXED or _VALUE_KEY.match(key):
        return f"numbers go in a [values] table: put [values] above {key} = ..."
    return None


def _layers(raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, (list, tuple)):
        raise SpecError(f"layers must be a list of sizes like [2, 3, 1], got {_show(raw)}")
    if len(raw) < 2:
        raise SpecError(f"layers needs at least an input and an output size, got {_show(list(raw))}")
    for i, n in enumerate(raw):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise SpecError(f"layers[{i}] must be a positive integer, got {_show(n)}")
    depth, max_depth = len(raw) - 1, limit("MAX_DEPTH")
    if depth > max_depth:
        raise SpecError(f"layers has depth {depth}, above the limit {max_depth}; "
                        + _how_to_raise("MAX_DEPTH", depth))
    return tuple(int(n) for n in raw)


def activation_row(name: Any, field_name: str = "activation") -> Activation:
    """The registry row for a name, or a custom row for an expression in x."""
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"{field_name} must be an activation name or an expression in x, "
                        f"got {_show(name)}")
    text = name.strip()
    if text in ACTIVATIONS:
        return ACTIVATIONS[text]
    if _IDENTIFIER.match(text) and text != "x":
        raise SpecError(f"unknown activation {_show(text)}{_suggest(text, list(ACTIVATIONS))}")
    return custom_activation(text, field_name)


def loss_row(name: Any) -> Loss:
    """The registry row for a name, or a custom row for an expression in a and y."""
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"loss must be a loss name or an expression in a and y, got {_show(name)}")
    text = name.strip()
    if text in LOSSES:
        return LOSSES[text]
    if _IDENTIFIER.match(text) and text not in ("a", "y"):
        raise SpecError(f"unknown loss {_show(text)}{_suggest(text, list(LOSSES))}")
    return custom_loss(text)


def _activations(raw: Any, depth: int) -> tuple[Activation, ...]:
    if isinstance(raw, str):
        row = activation_row(raw)
        rows = (row,) * depth
    elif isinstance(raw, (list, tuple)):
        if len(raw) != depth:
            raise SpecError(f"activation lists {_count(len(raw), 'name')} but the network has "
                            f"{_count(depth, 'layer')}; give one name, or {depth}")
        rows = tuple(activation_row(r, f"activation[{i}]") for i, r in enumerate(raw))
    else:
        raise SpecError(f"activation must be a name or a list of names, got {_show(raw)}")
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
        raise SpecError(f"bias must be true or false, got {_show(bias)}")
    _check_title(title)
    count = parameter_count(sizes, bias)
    max_params = limit("MAX_PARAMETERS")
    if count > max_params:  # before any activation row is built: cheap and early
        if count > SENSIBLE_PARAMETERS:  # no point suggesting --max-params 10^183
            raise SpecError(f"layers {_show(list(sizes))} give about 10^"
                            f"{int(count.bit_length() * math.log10(2))} parameters, far above the "
                            f"limit {max_params:,}")
        raise SpecError(f"layers {_show(list(sizes))} give {count:,} parameters, above the limit "
                        f"{max_params:,}; " + _how_to_raise("MAX_PARAMETERS", count))
    spec = NetworkSpec(sizes, _activations(activation, len(sizes) - 1), loss_row(loss), bias, title)
    if values is not None:
        if not isinstance(values, Mapping):
            raise SpecError(f"values must be a table, got {_show(values)}")
        spec = with_values(spec, values)
    return spec


def _check_title(title: Any) -> None:
    if title is None:
        return
    if not isinstance(title, str):
        raise SpecError(f"title must be a string, got {_show(title)}")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in title):
        raise SpecError(f"title must be one line of text without control characters, got {_show(title)}")
    if len(title) > MAX_TITLE:
        raise SpecError(f"title has {len(title)} characters; the limit is {MAX_TITLE}")


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def with_values(spec: NetworkSpec, raw: Mapping[str, Any]) -> NetworkSpec:
    """The spec with its values replaced by `raw` (validated)."""
    return NetworkSpec(spec.layers, spec.activations, spec.loss, spec.bias, spec.title,
                       make_values(spec, raw))


def max_file_bytes() -> int:
    """Largest spec or values file read; it grows with the parameter limit."""
    return max(MIN_FILE_BYTES, FILE_BYTES_PER_PARAMETER * limit("MAX_PARAMETERS"))


def _read_toml(path: Any, what: str) -> dict[str, Any]:
    if not isinstance(path, (str, os.PathLike)):
        raise SpecError(f"{what} file must be a path, got {_show(path)}")
    return read_toml(path, what, max_file_bytes(), "it rises with --max-params")


def load_spec(path: Path | str, values_path: Path | str | None = None) -> NetworkSpec:
    """Read a spec TOML file (and optionally a values file overriding [values])."""
    table = _read_toml(path, "spec")
    _check_keys(table, SPEC_KEYS, "spec", _spec_key_hint)
    if "layers" not in table:
        raise SpecError(f"spec file {_show(str(path))} has no 'layers' (e.g. layers = [2, 3, 1])")
    spec = make_spec(**{k: table[k] for k in SPEC_KEYS if k in table and k != "values"})
    raw_values = load_values_table(values_path) if values_path is not None else table.get("values")
    if raw_values is not None:
        if not isinstance(raw_values, Mapping):
            raise SpecError(f"values must be a table, got {_show(raw_values)}")
        spec = with_values(spec, raw_values)
    return spec


def load_values_table(path: Path | str) -> dict[str, Any]:
    """The raw table of a values file (validated against a spec by `make_values`)."""
    table = _read_toml(path, "values")
    if isinstance(table.get("values"), Mapping) and "x" not in table:
        raise SpecError(f"values file {_show(str(path))} has a [values] table; a values file "
                        f"holds x, y, W1, ... at the top level (drop the [values] line)")
    return table


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise SpecError(f"{where} must be a number, got {_show(v)}")
    try:
        f = float(v)
    except OverflowError:
        raise SpecError(f"{where} must be finite, got {_show(v)} (beyond float64)") from None
    if not math.isfinite(f):
        raise SpecError(f"{where} must be finite, got {_show(v)}")
    return f


def _vector(raw: Any, n: int, name: str) -> tuple[float, ...]:
    if not isinstance(raw, (list, tuple)):
        raise SpecError(f"{name} must be a list of {_count(n, 'number')}, got {_show(raw)}")
    if len(raw) != n:
        raise SpecError(f"{name} must have {_count(n, 'entry', 'entries')}, got {len(raw)}")
    return tuple(_number(v, f"{name}[{i + 1}]") for i, v in enumerate(raw))


def _shape(raw: Any) -> str:
    """What a would-be matrix looks like, for a message: '3x2', 'ragged rows ...'."""
    if not isinstance(raw, (list, tuple)):
        return _show(raw)
    if not raw:
        return "an empty list"
    if not any(isinstance(r, (list, tuple)) for r in raw):
        return f"a flat list of {_count(len(raw), 'item')} (write rows as [[...], [...]])"
    if not all(isinstance(r, (list, tuple)) for r in raw):
        bad = next(i for i, r in enumerate(raw) if not isinstance(r, (list, tuple)))
        return f"row {bad + 1} = {_show(raw[bad])}, not a list"
    cols = sorted({len(r) for r in raw})
    if len(cols) == 1:
        return f"{len(raw)}x{cols[0]}"
    return f"{len(raw)} rows of {', '.join(map(str, cols[:-1]))} and {cols[-1]} entries"


def _matrix(raw: Any, rows: int, cols: int, name: str) -> tuple[tuple[float, ...], ...]:
    shape_ok = (isinstance(raw, (list, tuple)) and len(raw) == rows
                and all(isinstance(r, (list, tuple)) and len(r) == cols for r in raw))
    if not shape_ok:
        raise SpecError(f"{name} must be {rows}x{cols}, got {_shape(raw)}")
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


def _values_key_hint(spec: NetworkSpec):
    L = spec.depth

    def hint(key: str) -> str | None:
        if key == "values":
            return "this is already the values table: put x, y, W1, ... directly in it"
        if key in SPEC_KEYS:
            return f"{key} belongs in the spec, above the [values] table"
        if not _VALUE_KEY.match(key):
            return None
        if key[0] == "b" and not spec.bias:
            return "this network has no biases: bias = false"
        names = f"{key[0]}1" if L == 1 else f"{key[0]}1 to {key[0]}{L}"
        return f"the network has {_count(L, 'layer')}: {names}"

    return hint


def make_values(spec: NetworkSpec, raw: Mapping[str, Any]) -> Values:
    """Validate a values table against the spec's shapes."""
    if not isinstance(raw, Mapping):
        raise SpecError(f"values must be a table, got {_show(raw)}")
    L, n = spec.depth, spec.layers
    allowed = list(VALUE_KEYS_FIXED) + [f"W{l}" for l in range(1, L + 1)]
    if spec.bias:
        allowed += [f"b{l}" for l in range(1, L + 1)]
    _check_keys(raw, allowed, "values", _values_key_hint(spec))
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
