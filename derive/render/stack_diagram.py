r"""A [[layer]] network drawn as feature-map blocks: TikZ for LaTeX, SVG for Markdown.

A conv or pool layer is its output's feature maps (up to three stacked
sheets, "2 x 4 x 4" under them), not thousands of neurons; a vector is one
bar whose height grows with its length.  One geometry (`_blocks`, in
centimetres, y up), two printers, so both pictures agree.  A layer with
parameters is outlined in the weight role's colour; a residual layer's
identity path is an arc over the blocks it skips, in the loss role's colour
(the gradient it carries back unchanged).
"""

from __future__ import annotations

from typing import NamedTuple
from xml.sax.saxutils import escape

from .roles import ROLES

STEP = 2.3      # cm between blocks, at most: a long stack is squeezed into WIDTH
WIDTH = 15.0    # cm the blocks may span (the text width is about 16.6 cm)
PX = 44         # SVG pixels per centimetre
MAX_SHEETS = 3  # feature maps drawn per block


class Block(NamedTuple):
    x: float          # centre
    width: float
    height: float
    sheets: int       # stacked maps drawn
    name: str         # "conv2d", "input"
    shape: str        # "2x4x4"
    weighted: bool    # has parameters


def _blocks(spec) -> list[Block]:
    shapes = [spec.input] + [layer.output for layer in spec.layers]
    names = ["input"] + [f"{layer.number} {layer.kind.name}" for layer in spec.layers]
    weighted = [False] + [bool(layer.params) for layer in spec.layers]
    tallest = max(s[1] if len(s) > 1 else s[0] for s in shapes)
    step = min(STEP, WIDTH / max(1, len(shapes) - 1))
    out = []
    for i, (shape, name, w) in enumerate(zip(shapes, names, weighted)):
        if len(shape) == 1:  # a vector: a bar
            out.append(Block(i * step, 0.25, 0.5 + 1.6 * shape[0] / max(tallest, shape[0]), 1, name,
                             str(shape[0]), w))
            continue
        size = 0.5 + 1.2 * shape[1] / tallest
        width = size if len(shape) == 3 else 0.3
        out.append(Block(i * step, width, size, min(shape[0], MAX_SHEETS), name,
                         "x".join(map(str, shape)), w))
    return out


def _arcs(spec) -> list[tuple[int, int]]:
    return [(layer.cfg["from"], layer.number) for layer in spec.layers if layer.kind.name == "residual"]


def tikz(spec) -> str:
    """The picture as a tikzpicture (xcolor's derive* colours must be defined)."""
    blocks = _blocks(spec)
    font = r"\small" if len(blocks) < 8 else r"\scriptsize"
    lines = [rf"\begin{{tikzpicture}}[x=1cm,y=1cm,font={font}]"]
    weight, loss = ROLES["weight"].xcolor, ROLES["loss"].xcolor
    for b in blocks:
        edge = weight if b.weighted else "black"
        for s in reversed(range(b.sheets)):  # back sheets first
            dx, dy = 0.12 * s, 0.12 * s
            lines.append(rf"\draw[{edge}, fill=black!{8 + 6 * s}] ({b.x - b.width / 2 + dx:.2f},{-b.height / 2 + dy:.2f}) "
                         rf"rectangle ({b.x + b.width / 2 + dx:.2f},{b.height / 2 + dy:.2f});")
        shape = b.shape.replace("x", r" \times ")
        lines.append(rf"\node[anchor=north, align=center] at ({b.x:.2f},{-1.3:.2f}) "
                     rf"{{\textsf{{{b.name}}}\\ ${shape}$}};")
    for a, b in zip(blocks, blocks[1:]):
        lines.append(rf"\draw[->] ({a.x + a.width / 2 + 0.3:.2f},0) -- ({b.x - b.width / 2 - 0.05:.2f},0);")
    for f, r in _arcs(spec):
        a, b = blocks[f], blocks[r]
        lines.append(rf"\draw[->, {loss}, thick] ({a.x:.2f},1.2) .. controls ({a.x:.2f},1.9) and ({b.x:.2f},1.9) "
                     rf".. ({b.x:.2f},1.2) node[midway, above] {{identity}};")
    lines.append(r"\end{tikzpicture}")
    return "\n".join(lines)


def svg(spec) -> str:
    """The same picture as a standalone SVG (y flipped, centimetres times PX)."""
    blocks = _blocks(spec)
    width, top = blocks[-1].x + 2.0, 2.4
    X = lambda x: (x + 1.0) * PX  # noqa: E731
    Y = lambda y: (top - y) * PX  # noqa: E731
    height = (top + 2.2) * PX
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width * PX:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width * PX:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>']
    for b in blocks:
        edge = ROLES["weight"].colour if b.weighted else "#000000"
        for s in reversed(range(b.sheets)):
            grey = 235 - 15 * s
            out.append(f'<rect x="{X(b.x - b.width / 2 + 0.12 * s):.1f}" y="{Y(b.height / 2 + 0.12 * s):.1f}" '
                       f'width="{b.width * PX:.1f}" height="{b.height * PX:.1f}" fill="rgb({grey},{grey},{grey})" '
                       f'stroke="{edge}"/>')
        for k, text in enumerate((b.name, b.shape.replace("x", " × "))):
            out.append(f'<text x="{X(b.x):.1f}" y="{Y(-1.5) + 15 * k:.1f}" text-anchor="middle">{escape(text)}</text>')
    for a, b in zip(blocks, blocks[1:]):
        out.append(f'<line x1="{X(a.x + a.width / 2 + 0.3):.1f}" y1="{Y(0):.1f}" x2="{X(b.x - b.width / 2 - 0.05):.1f}" '
                   f'y2="{Y(0):.1f}" stroke="#000000" marker-end="url(#arrow)"/>')
    for f, r in _arcs(spec):
        a, b = blocks[f], blocks[r]
        colour = ROLES["loss"].colour
        out.append(f'<path d="M{X(a.x):.1f},{Y(1.2):.1f} C{X(a.x):.1f},{Y(1.9):.1f} {X(b.x):.1f},{Y(1.9):.1f} '
                   f'{X(b.x):.1f},{Y(1.2):.1f}" fill="none" stroke="{colour}" stroke-width="2" marker-end="url(#arrow)"/>')
        out.append(f'<text x="{X((a.x + b.x) / 2):.1f}" y="{Y(1.85):.1f}" text-anchor="middle" fill="{colour}">identity</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
