r"""LaTeX and PDF: a PyLaTeX document around the filled templates, compiled safely.

The preamble is ours and small: PyLaTeX's default `lastpage` (only in
texlive-latex-extra) is dropped, and every package comes from Debian's
texlive-latex-base, -recommended or -pictures (amsmath, amssymb, xcolor,
tikz, booktabs, geometry, parskip, lmodern, hyperref).  The paper is A4 or
US letter (`PAPERS`); the title goes into the PDF's metadata as well.  The body is the
`tex/document.tex` template; math in it was printed by content.py and the
user's text escaped by templating.escape_tex, so nothing the user wrote can
reach TeX as a command.

`compile_pdf` runs pdflatex in a temporary folder with a timeout,
-no-shell-escape, -halt-on-error, and kpathsea's paranoid file access
(openin_any=p, openout_any=p: no absolute paths or parent folders), reruns
while the log asks (at most `MAX_PASSES`), and moves the PDF into place atomically.  A failure
keeps the .tex and the .log beside the requested PDF and names the log in a
`ToolError`; no TeX installed is one line saying what to install.  Given a
`locate` function (templating.locate_tex_line), the error also names the
template line that wrote the failing line of the .tex.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from pylatex import Document, NoEscape, Package

from ..errors import SpecError, ToolError
from ..files import write_bytes_atomic, write_text_atomic
from .roles import colour_definitions

ENGINE = "pdflatex"
TIMEOUT_SECONDS = 120
#: Cross-references, hyperref's outlines and longtable's column widths settle in 2-3 passes.
MAX_PASSES = 3
_RERUN = re.compile(r"Rerun (to get|LaTeX)")
INSTALL_HINT = ("apt-get install texlive-latex-base texlive-latex-recommended texlive-pictures "
                "lmodern (or run ./dev.sh setup)")
PACKAGES = [("amsmath", None), ("amssymb", None), ("xcolor", None), ("tikz", None),
            ("booktabs", None), ("longtable", None), ("hyperref", ["hidelinks"])]
#: --paper choices, as LaTeX class options.
PAPERS = {"a4": "a4paper", "letter": "letterpaper"}


def paper_option(paper: str) -> str:
    """The class option for `paper`; anything else is a SpecError listing the choices."""
    if paper not in PAPERS:
        raise SpecError(f"paper {paper!r}; expected one of {', '.join(PAPERS)}")
    return PAPERS[paper]


def latex_source(body: str, paper: str = "a4", title: str | None = None) -> str:
    """The whole .tex file: our preamble, then `body` (already valid LaTeX).

    `title` is the PDF's Title metadata, already escaped for hyperref
    (templating.escape_pdf_string)."""
    doc = Document(documentclass="article", document_options=["11pt", paper_option(paper)],
                   fontenc="T1", inputenc="utf8", lmodern=True, textcomp=True,
                   page_numbers=False, indent=False,
                   geometry_options={"margin": "2.2cm", "top": "2cm", "bottom": "2.4cm"})
    for name, options in PACKAGES:
        doc.packages.append(Package(name, options=options))
    for line in colour_definitions():
        doc.preamble.append(NoEscape(line))
    doc.preamble.append(NoEscape(r"\allowdisplaybreaks"))
    if title:
        doc.preamble.append(NoEscape(rf"\hypersetup{{pdftitle={{{title}}}, pdfcreator={{derive}}}}"))
    doc.append(NoEscape(r"\pagestyle{plain}"))  # page_numbers=False also sets `empty`
    doc.append(NoEscape(body))
    return doc.dumps() + "\n"


def find_engine() -> str | None:
    return shutil.which(ENGINE)


def missing_engine_message() -> str:
    return f"no TeX engine ({ENGINE}) found, so no PDF; to get PDFs: {INSTALL_HINT}"


def compile_pdf(tex: str, pdf_path: Path, timeout: float = TIMEOUT_SECONDS, locate=None,
                reproducible: bool = False) -> Path:
    """Compile `tex` into `pdf_path`; on failure keep <stem>.tex and <stem>.log beside it.

    `locate(line_text)` may name the template that wrote a failing line; `reproducible`
    fixes pdfTeX's dates and document ID (SOURCE_DATE_EPOCH), so the same source gives
    the same bytes."""
    engine = find_engine()
    if engine is None:
        raise ToolError(missing_engine_message())
    with tempfile.TemporaryDirectory(prefix="derive-tex-") as tmp:
        folder = Path(tmp)
        (folder / "document.tex").write_text(tex, encoding="utf-8")
        env = {**os.environ, "openin_any": "p", "openout_any": "p", "shell_escape": "f"}
        if reproducible:
            env.update(SOURCE_DATE_EPOCH="0", FORCE_SOURCE_DATE="1")
        for _ in range(MAX_PASSES):
            ok, why = _run(engine, folder, env, timeout)
            log = _read(folder / "document.log")
            if not ok:
                raise _failure(tex, pdf_path, log, why, locate)
            if not _RERUN.search(log):
                break
        write_bytes_atomic(pdf_path, (folder / "document.pdf").read_bytes())
    return pdf_path


def _run(engine: str, folder: Path, env: dict, timeout: float) -> tuple[bool, str]:
    cmd = [engine, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
           "-file-line-error", "document.tex"]
    try:
        proc = subprocess.run(cmd, cwd=folder, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"{ENGINE} did not finish in {timeout:g} s"
    except OSError as exc:
        return False, f"{ENGINE} could not run: {exc.strerror}"
    if proc.returncode != 0 or not (folder / "document.pdf").is_file():
        return False, f"{ENGINE} failed (exit {proc.returncode})"
    return True, ""


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _failure(tex: str, pdf_path: Path, log: str, why: str, locate=None) -> ToolError:
    stem = pdf_path.with_suffix("")
    tex_path, log_path = stem.with_suffix(".tex"), stem.with_suffix(".log")
    if not tex_path.exists() or tex_path.read_text(encoding="utf-8", errors="replace") != tex:
        write_text_atomic(tex_path, tex)
    write_text_atomic(log_path, log or f"{why}\n")
    error = first_error(log)
    line = re.search(r"\(line (\d+) of the \.tex\)$", error or "")
    lines = tex.splitlines()
    if line and locate is not None and int(line.group(1)) <= len(lines):
        origin = locate(lines[int(line.group(1)) - 1])
        error += f", written by {origin}" if origin else ""
    return ToolError(f"{why}: {error or 'see the log'}; kept {tex_path} and the log {log_path}")


def first_error(log: str) -> str | None:
    """The first TeX error of a log on one line, with its line in the .tex if known:
    'Undefined control sequence (line 12 of the .tex)'."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(?:\./)?document\.tex:(\d+): (.*)$", line)
        if m:
            return f"{m.group(2).strip()} (line {m.group(1)} of the .tex)"
        if line.startswith("! "):
            where = next((re.match(r"^l\.(\d+)", x) for x in lines[i + 1:i + 12]
                          if re.match(r"^l\.\d+", x)), None)
            return line[2:].strip() + (f" (line {where.group(1)} of the .tex)" if where else "")
    return None
