"""`derive exercises`: variants (exercises.py) written in every format asked for.

Formats: pdf and tex (an `exam`-class sheet and a separate answer key), md
(sheet and key), moodle (Moodle XML), qti (a Canvas QTI 1.2 zip) and json.
Everything is computed in memory first and the PDFs compiled before any file
is written, so a failure leaves no half-written set behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..files import ensure_folder, write_bytes_atomic, write_text_atomic
from .exercises import comma_choices, exercises
from .lms import moodle_xml, qti_zip
from .sheets import to_json, write_sheets

if TYPE_CHECKING:
    from ..api import Network

FORMATS = ("pdf", "tex", "md", "moodle", "qti", "json")
DEFAULT_FORMATS = ("pdf", "md", "json")


def parse_formats(text: str | Sequence[str] | None) -> tuple[str, ...]:
    return comma_choices(text, FORMATS, "--format", "format", DEFAULT_FORMATS)


def build(net: "Network", outdir: Path | str, count: int = 5, seed: int = 1, kinds=None,
          formats=None, stem: str = "exercises") -> list[Path]:
    """Write the exercise set into `outdir`; returns the paths written."""
    wanted = parse_formats(formats)
    variants = exercises(net, count, seed, kinds)
    title = net.spec.title or f"Backpropagation exercises: {net.spec.describe()}"
    folder = ensure_folder(outdir)
    texts = {}
    if "json" in wanted:
        texts[f"{stem}.json"] = to_json(variants)
    if "moodle" in wanted:
        texts[f"{stem}-moodle.xml"] = moodle_xml(net, variants, f"derive/{stem}-seed-{seed}")
    qti = qti_zip(net, variants, title) if "qti" in wanted else None
    written = write_sheets(net, variants, wanted, folder, stem, title)
    written += [write_text_atomic(folder / name, text) for name, text in texts.items()]
    if qti is not None:
        written.append(write_bytes_atomic(folder / f"{stem}-qti.zip", qti))
    return written
