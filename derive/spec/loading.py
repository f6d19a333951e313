"""Building a spec: from keyword arguments (`make_spec`) or a TOML file (`load_spec`).

Both meet in `make_spec`, which checks the network's fields (network.py),
its size against the limits (limits.py) and then its values (values.py).
Files are read with a byte cap that grows with the parameter limit.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from ..errors import SpecError
from ..files import read_toml
from .sizes import SENSIBLE_PARAMETERS, how_to_raise, limit, max_file_bytes
from .network import (SPEC_KEYS, NetworkSpec, activations_of, check_title, layer_sizes, loss_row,
                      parameter_count, spec_key_hint)
from .stack import StackSpec, is_stack, make_stack
from .stack_values import make_stack_values
from .training import training_of
from .values import with_values
from .words import check_keys, show

def make_spec(layers: Any, activation: Any = "sigmoid", loss: Any = "half_sse",
              bias: Any = True, title: Any = None, values: Any = None, batch: Any = 1,
              reduction: Any = "mean", layout: Any = "column",
              regularization: Any = None) -> NetworkSpec:
    """Validate every field and build a `NetworkSpec` (values optional; the training
    fields, batch to regularization, as training.py describes)."""
    sizes = layer_sizes(layers)
    if not isinstance(bias, bool):
        raise SpecError(f"bias must be true or false, got {show(bias)}")
    check_title(title)
    count = parameter_count(sizes, bias)
    max_params = limit("MAX_PARAMETERS")
    if count > max_params:  # before any activation row is built: cheap and early
        if count > SENSIBLE_PARAMETERS:  # no point suggesting --max-params 10^183
            raise SpecError(f"layers {show(list(sizes))} give about 10^"
                            f"{int(count.bit_length() * math.log10(2))} parameters, far above the "
                            f"limit {max_params:,}")
        raise SpecError(f"layers {show(list(sizes))} give {count:,} parameters, above the limit "
                        f"{max_params:,}; " + how_to_raise("MAX_PARAMETERS", count))
    training = training_of(batch, reduction, layout, regularization)
    spec = NetworkSpec(sizes, activations_of(activation, len(sizes) - 1), loss_row(loss), bias, title,
                       training=training)
    if values is not None:
        if not isinstance(values, Mapping):
            raise SpecError(f"values must be a table, got {show(values)}")
        spec = with_values(spec, values)
    return spec


def _read_toml(path: Any, what: str) -> dict[str, Any]:
    if not isinstance(path, (str, os.PathLike)):
        raise SpecError(f"{what} file must be a path, got {show(path)}")
    return read_toml(path, what, max_file_bytes(), "it rises with --max-params")


def load_spec(path: Path | str, values_path: Path | str | None = None, **training) -> NetworkSpec:
    """Read a spec TOML file (and optionally a values file overriding [values]); `training`
    (batch, reduction, layout, regularization: the CLI's flags) overrides the file's fields,
    a regularization table key by key."""
    table = _read_toml(path, "spec")
    if is_stack(table):
        return _load_stack(table, values_path, training)
    check_keys(table, SPEC_KEYS, "spec", spec_key_hint)
    reg = training.pop("regularization", None)
    table = {**table, **training}
    if reg:
        base = table.get("regularization")
        table["regularization"] = {**(base if isinstance(base, Mapping) else {}), **reg}
    if "layers" not in table:
        raise SpecError(f"spec file {show(str(path))} has no 'layers' (e.g. layers = [2, 3, 1])")
    spec = make_spec(**{k: table[k] for k in SPEC_KEYS if k in table and k != "values"})
    raw_values = load_values_table(values_path) if values_path is not None else table.get("values")
    if raw_values is not None:
        if not isinstance(raw_values, Mapping):
            raise SpecError(f"values must be a table, got {show(raw_values)}")
        spec = with_values(spec, raw_values)
    return spec


def _load_stack(table: Mapping[str, Any], values_path, training: dict) -> StackSpec:
    """A [[layer]] network (stack.py) with its values; its batch is the file's own."""
    if training:
        flags = {"regularization": "--l2/--l1", "layout": "--layout", "batch": "--batch", "reduction": "--reduction"}
        raise SpecError(f"{flags.get(next(iter(training)), next(iter(training)))} is for layers = [...] "
                        f"networks: a [[layer]] network sets batch and reduction in its file, and has no "
                        f"regulariser or row layout yet")
    spec = make_stack(table)
    raw_values = load_values_table(values_path) if values_path is not None else table.get("values")
    if raw_values is None:
        return spec
    return replace(spec, values=make_stack_values(spec, raw_values))


def load_values_table(path: Path | str) -> dict[str, Any]:
    """The raw table of a values file (validated against a spec by `make_values`)."""
    table = _read_toml(path, "values")
    if isinstance(table.get("values"), Mapping) and "x" not in table:
        raise SpecError(f"values file {show(str(path))} has a [values] table; a values file "
                        f"holds x, y, W1, ... at the top level (drop the [values] line)")
    return table
