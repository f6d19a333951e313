"""Files in and out: bounded reading of inputs, atomic writing of outputs.

Inputs (spec and values TOML) are read with a byte cap, so a device such as
/dev/zero or a stray huge file is refused instead of read whole, and every
way a file can be unreadable (missing, a folder, not UTF-8, bad TOML, nested
too deeply for the parser) becomes one `SpecError` line naming the file.

Every output is written to a temporary name in its own folder and renamed
over the target (`os.replace` is atomic on one filesystem), so a reader sees
the old file or the new one, never half of one; two runs into one folder
each rename whole files.  Bad targets (a file where a folder should be, an
unwritable folder) become a `RenderError` naming the path.
"""

from __future__ import annotations

import os
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from .errors import RenderError, SpecError


def _name(path) -> str:
    text = repr(str(path))
    return text if len(text) <= 80 else text[:77] + "..."


def read_toml(path: Path | str, what: str, max_bytes: int, raise_hint: str = "") -> dict[str, Any]:
    """The table in a TOML file of at most `max_bytes` bytes, or a `SpecError`."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise SpecError(f"{what} file {_name(p)} does not exist") from None
    except IsADirectoryError:
        raise SpecError(f"{what} file {_name(p)} is a folder, not a file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SpecError(f"{what} file {_name(p)} cannot be read: {reason}") from None
    if len(data) > max_bytes:
        raise SpecError(f"{what} file {_name(p)} is larger than {max_bytes:,} bytes, the input "
                        f"limit" + (f" ({raise_hint})" if raise_hint else ""))
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{what} file {_name(p)} is not UTF-8 text (byte 0x{data[exc.start]:02x} "
                        f"at offset {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{what} file {_name(p)} is not valid TOML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{what} file {_name(p)} is not usable TOML: arrays or tables nested "
                        f"too deeply") from None
    except ValueError:  # tomllib passes on int()'s refusal of integers over 4300 digits
        raise SpecError(f"{what} file {_name(p)} is not usable TOML: an integer has more "
                        f"than {sys.get_int_max_str_digits()} digits") from None


def ensure_folder(folder: Path | str) -> Path:
    """The output folder, created if missing; an error if it is a file or unwritable."""
    folder = _output_path(folder)
    if folder.exists() and not folder.is_dir():
        raise RenderError(f"output {_name(folder)} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RenderError(f"output folder {_name(folder)} cannot be created: {_reason(exc)}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RenderError(f"output folder {_name(folder)} is not writable")
    return folder


def _output_path(path: Path | str) -> Path:
    if not isinstance(path, (str, os.PathLike)) or "\x00" in str(path):
        shown = _name(path) if isinstance(path, str) else repr(path)[:80]
        raise RenderError(f"output must be a path (without NUL bytes), got {shown}")
    return Path(path)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def write_bytes_atomic(path: Path | str, data: bytes) -> Path:
    """Write `data` to `path` via a temporary file and a rename."""
    path = _output_path(path)
    if path.is_dir():
        raise RenderError(f"output {_name(path)} is a folder, not a file")
    ensure_folder(path.parent if str(path.parent) else Path("."))
    try:  # os.access can say yes where creating fails (/proc, /sys, read-only mounts)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise RenderError(f"cannot write {_name(path)}: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise RenderError(f"cannot write {_name(path)}: {_reason(exc)}") from None
        raise
    return path


def write_text_atomic(path: Path | str, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))
