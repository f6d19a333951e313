"""Size limits of a spec, and how a user raises them.

A network bigger than the limits is refused up front with the limit and the
knob that raises it.  Precedence: a `limits()` block (the CLI's --max-params,
--max-depth) beats an environment variable, which beats the module constants
below.  Input files are read up to a size that grows with the parameter limit.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

from ..errors import SpecError
from .words import show

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
_overrides: dict[str, int] = {}


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
        raise SpecError(f"{where} must be a positive integer, got {show(raw)}")
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


def how_to_raise(name: str, needed: int) -> str:
    flag, env = LIMIT_KNOBS[name]
    return (f"raise it with {flag} {needed} (or {env}={needed}; "
            f"in Python, derive.spec.sizes.{name} = {needed})")

def max_file_bytes() -> int:
    """Largest spec or values file read; it grows with the parameter limit."""
    return max(MIN_FILE_BYTES, FILE_BYTES_PER_PARAMETER * limit("MAX_PARAMETERS"))

