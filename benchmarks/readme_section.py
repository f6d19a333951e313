"""Each benchmark owns one `## ...` section of benchmarks/README.md and rewrites only it."""

from __future__ import annotations

import os
from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def write_section(section: str, text: str, readme: Path = README) -> None:
    """Replace (or append) the section headed `section`, atomically."""
    old = readme.read_text() if readme.exists() else "# Benchmarks\n"
    block = f"{section}\n\n{text.strip()}\n"
    start = old.find(section)
    if start < 0:
        new = old.rstrip() + "\n\n" + block
    else:
        nxt = old.find("\n## ", start + len(section))
        new = old[:start] + block + (old[nxt:] if nxt >= 0 else "")
    tmp = readme.with_suffix(".md.part")
    tmp.write_text(new)
    os.replace(tmp, readme)
