"""Check that the math in generated Markdown parses in MathJax 3.

GitHub, Jupyter and StackExchange render Markdown math with MathJax, which is not
LaTeX: `\\bm` is undefined there, for one. `markdown_math` pulls the formulas out of
Markdown the way those renderers find them; `mathjax_errors` hands a whole batch to
one node process running `mathjax/check.mjs` (starting MathJax costs more than
parsing a formula) and returns the formulas it rejects with MathJax's message.

The formulas of one batch share one page, as on the web: a `\\newcommand` carries
over to later formulas, and a `\\label` used twice is an error.

Missing node or node_modules is an error, not a skip: `./dev.sh setup` installs both,
and a validator that silently skips in CI validates nothing.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHECK_SCRIPT = Path(__file__).resolve().parent / "mathjax" / "check.mjs"
NODE_MODULES = REPO / "node_modules"
TIMEOUT_SECONDS = 120

Formula = tuple[str, bool]


def mathjax_errors(formulas: list[Formula]) -> list[tuple[str, str]]:
    """Return (tex, message) for each (tex, display) formula MathJax 3 rejects."""
    formulas = [(str(tex), bool(display)) for tex, display in formulas]
    if not formulas:
        return []
    result = subprocess.run(
        [_node(), str(CHECK_SCRIPT)],
        input=json.dumps(formulas),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        cwd=REPO,
    )
    if result.returncode != 0:
        raise RuntimeError(f"MathJax checker failed (exit {result.returncode}):\n{result.stderr}")
    return [(formulas[index][0], message) for index, message in json.loads(result.stdout)]


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH; run ./dev.sh setup to install it")
    if not (NODE_MODULES / "mathjax-full" / "package.json").is_file():
        raise RuntimeError(f"mathjax-full is not installed in {NODE_MODULES}; run ./dev.sh setup")
    return node


# Opening or closing line of a fenced code block: ``` or ~~~, indented at most 3 spaces.
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def markdown_math(text: str) -> list[Formula]:
    """Return the (tex, display) formulas in Markdown: `$$...$$` display, `$...$` inline.

    Fenced code blocks and inline code spans hold no math; `\\$` is a literal dollar.
    Inline math may not start or end with a space nor cross a blank line, and a
    delimiter that never closes is plain text, as in GitHub's renderer. Indented
    code blocks are not recognized.
    """
    formulas: list[Formula] = []
    for prose in _prose_chunks(text):
        formulas.extend(_scan_math(prose))
    return formulas


def _prose_chunks(text: str) -> list[str]:
    """Split Markdown into the runs of lines between fenced code blocks."""
    chunks, current, fence = [], [], None
    for line in text.splitlines(keepends=True):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            chunks.append("".join(current))
            current = []
        elif fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                    and not line[match.end():].strip():
                fence = None
        else:
            current.append(line)
    chunks.append("".join(current))
    return [chunk for chunk in chunks if chunk]


def _scan_math(text: str) -> list[Formula]:
    formulas: list[Formula] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
        elif char == "`":
            i = _skip_code_span(text, i)
        elif text.startswith("$$", i):
            end = _find_closing(text, i + 2, "$$")
            if end is None:
                i += 2
            else:
                formulas.append((text[i + 2:end].strip(), True))
                i = end + 2
        elif char == "$":
            end = _find_closing(text, i + 1, "$")
            body = text[i + 1:end] if end is not None else ""
            if end is None or not body or body != body.strip() or re.search(r"\n\s*\n", body):
                i += 1
            else:
                formulas.append((body, False))
                i = end + 1
        else:
            i += 1
    return formulas


def _skip_code_span(text: str, start: int) -> int:
    """Index just past the code span opening at `start`, or past its backticks if unclosed."""
    ticks = re.match(r"`+", text[start:]).group(0)
    closing = re.compile(rf"(?<!`){ticks}(?!`)")
    match = closing.search(text, start + len(ticks))
    return match.end() if match else start + len(ticks)


def _find_closing(text: str, start: int, delimiter: str) -> int | None:
    """Index of the next unescaped `delimiter` at or after `start`; a lone `$` never matches `$$`."""
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text.startswith(delimiter, i):
            if delimiter == "$" and text.startswith("$$", i):
                return None
            return i
        else:
            i += 1
    return None
