"""Writing output files so that a failed or interrupted run loses nothing.

Every file is written to a temporary name in its own folder and renamed
over the target (`os.replace` is atomic on one filesystem), so a reader sees
the old file or the new one, never half of one; two runs into one folder
each rename whole files.  Bad targets (a file where a folder should be, an
unwritable folder) become a `RenderError` naming the path.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import RenderError


def ensure_folder(folder: Path | str) -> Path:
    """The output folder, created if missing; an error if it is a file or unwritable."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RenderError(f"output {str(folder)!r} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RenderError(f"output folder {str(folder)!r} cannot be created: {exc.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RenderError(f"output folder {str(folder)!r} is not writable")
    return folder


def write_bytes_atomic(path: Path | str, data: bytes) -> Path:
    """Write `data` to `path` via a temporary file and a rename."""
    path = Path(path)
    if path.is_dir():
        raise RenderError(f"output {str(path)!r} is a folder, not a file")
    ensure_folder(path.parent if str(path.parent) else Path("."))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
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
            raise RenderError(f"cannot write {str(path)!r}: {exc.strerror}") from None
        raise
    return path


def write_text_atomic(path: Path | str, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))
