r"""Markdown to HTML for derive's own documents, not for Markdown at large.

The HTML handout (html.py) shows the same words as the Markdown document, so
it converts that text rather than keeping a third copy of every template.
The templates in templates/md/ use a small subset, and this handles exactly
it: ATX headings, paragraphs, pipe tables, display math between lines of
``$$``, inline ``$...$``, ``**bold**``, ``*italic*``, backslash escapes and
images.  Math is cut out first and never touched by the inline rules; it is
HTML-escaped and handed to MathJax between ``\(...\)`` and ``\[...\]``, so a
dollar in the text cannot start a formula.  Everything else is escaped
here, once, and an image becomes whatever `image` returns (the handout's
interactive diagram).
"""

from __future__ import annotations

import re
from html import escape
from typing import Callable

_INLINE_MATH = re.compile(r"(?<!\\)\$(.+?)(?<!\\)\$")
_IMAGE = re.compile(r"^!\[(.*)\]\(([^)]*)\)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")


def _words(text: str) -> str:
    """Plain Markdown text (no math) as escaped HTML with bold and italic."""
    out = escape(text, quote=False)
    out = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|$])", r"\1", out)  # Markdown's backslash escapes
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", out)


def inline(text: str) -> str:
    """One line or paragraph: inline math kept for MathJax, the rest as words."""
    parts, last = [], 0
    for m in _INLINE_MATH.finditer(text):
        parts += [_words(text[last:m.start()]), rf'<span class="math">\({escape(m.group(1))}\)</span>']
        last = m.end()
    return "".join(parts + [_words(text[last:])])


def _cells(row: str) -> list[str]:
    row = row.strip().strip("|")
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)]


def _table(rows: list[str]) -> str:
    head, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]
    out = ['<div class="table"><table>', "<thead><tr>" +
           "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr></thead>", "<tbody>"]
    out += ["<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in body]
    return "\n".join(out + ["</tbody></table></div>"])


def to_html(markdown: str, image: Callable[[str, str], str] | None = None) -> str:
    """The document's HTML; `image(alt, src)` replaces each image line."""
    lines, out, i = markdown.splitlines(), [], 0
    para: list[str] = []

    def flush():
        if para:
            out.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()

    while i < len(lines):
        line = lines[i].rstrip()
        if line.strip() == "$$":
            flush()
            end = next((e for e in range(i + 1, len(lines)) if lines[e].strip() == "$$"), len(lines))
            body = "\n".join(lines[i + 1:end])
            out.append(f'<div class="display">\\[{escape(body)}\\]</div>')
            i = end + 1
            continue
        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            flush()
            end = next((e for e in range(i, len(lines)) if not lines[e].startswith("|")), len(lines))
            out.append(_table(lines[i:end]))
            i = end
            continue
        heading, picture = _HEADING.match(line), _IMAGE.match(line.strip())
        if heading:
            flush()
            n, text = len(heading.group(1)), heading.group(2)
            out.append(f"<h{n}>{inline(text)}</h{n}>")
        elif picture and image is not None:
            flush()
            out.append(image(picture.group(1), picture.group(2)))
        elif not line.strip():
            flush()
        else:
            para.append(line.strip())
        i += 1
    flush()
    return "\n".join(out)
