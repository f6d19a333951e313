"""Network diagrams with one parameter's backward paths highlighted.

One geometry, two printers.  `layout.layout` places the columns and
neurons (eliding wide and deep networks, keeping what a highlight needs).
`_scene` turns a layout into flat primitives (lines, discs, texts, boxes),
each tagged with the role from `paths.ROLES` it plays for the parameter,
and `tikz` and `svg` only print them, so the two pictures agree by
construction.  The roles follow paths.py: the parameter's own edge (and its
input neuron) is "input", every later edge on a path is "weight", the
neurons on the paths are "activation", the edges into the loss are "loss".
A softmax output layer is boxed: its Jacobian couples the outputs, so a
parameter of that layer reaches the loss through every output.
"""

from __future__ import annotations

from typing import NamedTuple
from xml.sax.saxutils import escape, quoteattr

from ..calculus.model import Param
from .printing import DerivePrinter, loss_symbol, symbol_latex
from .layout import R, Column, Layout, edge_role, layout, node_role  # noqa: F401  (diagram.layout: the public face)
from .roles import ROLE_COLOURS, ROLES, XCOLOR_DEFINITIONS, XCOLOR_NAMES  # noqa: F401  (one table of roles)
from ..spec.network import NetworkSpec

DEFAULTS = {"max_neurons": 8, "max_layers": 8, "legend": True}
PX = 44  # SVG pixels per centimetre


# -- the scene: flat primitives both printers share ----------------------------
class Label(NamedTuple):
    """Text in two forms: LaTeX for TikZ; base, superscript, subscript for SVG."""
    tex: str
    base: str
    sup: str = ""
    sub: str = ""


class Line(NamedTuple):
    a: tuple[float, float]
    b: tuple[float, float]
    role: str | None
    ends: tuple[str, str]  # node keys ("x1", "a2.3", "L"), so edges can be told apart


class Disc(NamedTuple):
    key: str
    label: Label
    at: tuple[float, float]
    role: str | None


class Text(NamedTuple):
    at: tuple[float, float]
    label: Label
    anchor: str = "center"  # center, north, west
    small: bool = False
    role: str | None = None  # coloured, on a white ground over the edges


class Scene(NamedTuple):
    lines: list[Line]
    discs: list[Disc]
    texts: list[Text]
    boxes: list[tuple[float, float, float, float, str | None]]  # x0, y0, x1, y1, role
    bounds: tuple[float, float, float, float]


def _neuron(layer: int, j: int, ps: dict) -> tuple[str, Label]:
    if layer == 0:
        return f"x{j}", Label(f"${symbol_latex('x', None, j, **ps)}$", "x", "", str(j))
    return f"a{layer}.{j}", Label(f"${symbol_latex('a', layer, j, **ps)}$", "a", f"({layer})", str(j))


def _short(a, b, ra=R, rb=R):
    """The segment a -> b cut back to the rims of what is drawn at its ends."""
    (x0, y0), (x1, y1) = a, b
    d = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
    ux, uy = (x1 - x0) / d, (y1 - y0) / d
    return (x0 + ux * ra, y0 + uy * ra), (x1 - ux * rb, y1 - uy * rb)


def _ends(c: Column, ps: dict):
    """(j, key, centre, radius) for everything edges attach to in a column."""
    if c.layer is None:
        return [(None, f"gap{c.skipped[0]}-{c.skipped[1]}", (c.x, 0.0), 0.3)]
    return [(j, _neuron(c.layer, j, ps)[0], (c.x, y), R) for j, y in c.rows if j is not None]


def _edges(spec, p, lay: Layout, ps: dict) -> list[Line]:
    lines = []
    pairs = [*zip(lay.columns, lay.columns[1:]), (lay.columns[-1], None)]
    for left, right in pairs:
        layer = spec.depth + 1 if right is None else right.layer if left.layer is None else left.layer + 1
        targets = [(None, "L", (lay.loss_x, 0.0), R)] if right is None else _ends(right, ps)
        for k, ka, a, ra in _ends(left, ps):
            for j, kb, b, rb in targets:
                lines.append(Line(*_short(a, b, ra, rb), edge_role(spec, p, layer, k, j), (ka, kb)))
    return sorted(lines, key=lambda e: e.role is not None)  # highlighted on top of grey


def _plain(tex: str, fallback: str) -> str:
    """σ, tanh, softmax from a registry LaTeX name; the row's name when not that simple."""
    text = tex.replace(r"\sigma", "σ").replace(r"\tanh", "tanh")
    if text.startswith(r"\operatorname{"):
        text = text[len(r"\operatorname{"):-1]
    return fallback if "\\" in text or "{" in text else text


def _captions(spec, lay: Layout) -> list[Text]:
    below = -lay.top - R - 0.2
    loss = spec.loss
    out = [Text((lay.loss_x, below), Label(f"${loss.latex}$", loss.name), "north", True)]
    for c in lay.columns:
        if c.layer is None:
            s, e = c.skipped
            out += [Text((c.x, 0.0), Label(r"$\cdots$", "⋯")),
                    Text((c.x, below), Label(f"layers {s}--{e}", f"layers {s}–{e}"), "north", True)]
            continue
        if c.layer:
            row = spec.activations[c.layer - 1]
            tex = row.latex.replace(r"\operatorname", r"\mathrm")  # so amsmath is not needed
            out.append(Text((c.x, below), Label(f"${tex}$", _plain(row.latex, row.name)), "north"))
        out += [Text((c.x, y), Label(r"$\vdots$", "⋮")) for j, y in c.rows if j is None]
        if len(c.rows) < c.size:
            out.append(Text((c.x, below - 0.5), Label(f"$n = {c.size}$", f"n = {c.size}"), "north", True))
    return out


def _parameter(p: Param, lay: Layout, ps: dict) -> tuple[list[Line], list[Text]]:
    """The parameter's own mark: its symbol on its edge, or a stub into the neuron for a bias."""
    col = lay.column(p.layer)
    at = (col.x, col.y(p.j))
    if p.kind == "b":
        start = (at[0] - 0.95, at[1] + 0.5)
        line = Line(*_short(start, at, 0.1), "input", (f"b{p.layer}.{p.j}", _neuron(p.layer, p.j, ps)[0]))
        label = Label(f"${symbol_latex('b', p.layer, p.j, **ps)}$", "b", f"({p.layer})", str(p.j))
        return [line], [Text(start, label, "center", True, "input")]
    left = lay.column(p.layer - 1)
    mid = (left.x + 0.42 * (col.x - left.x), left.y(p.k) + 0.42 * (at[1] - left.y(p.k)))
    settings = DerivePrinter(ps).settings
    idx = (p.j, p.k) if settings["notation"] == "nielsen" else (p.k, p.j)
    label = Label(f"${symbol_latex('W', p.layer, p.j, p.k, **ps)}$", settings["weight_letter"],
                  f"({p.layer})", DerivePrinter._sub(idx))
    return [], [Text(mid, label, "center", True, "input")]


def _legend(p: Param, roles: set, y: float, ps: dict) -> tuple[list[Line], list[Text]]:
    """A swatch and the factor it stands for, for each role in the picture."""
    L, W = loss_symbol(**ps), DerivePrinter(ps).settings["weight_letter"]
    # a bias has no input factor (paths.py): its mark stands for the parameter itself
    mark = ("input", W, "a") if p.kind == "W" else ("bias", "b", "1")
    ends = {"loss": "", "activation": "", "weight": f" = {W}", "input": f" = {mark[2]}"}
    entries = []
    for name, row in ROLES.items():
        word, bottom = (mark[0], mark[1]) if name == "input" else (name, row.bottom)
        top = row.top.format(L=L)
        entries.append((name, rf"{word} $\partial {top}/\partial {bottom}{ends[name]}$",
                        f"{word} ∂{top}/∂{bottom}{ends[name]}"))
    lines, texts = [], []
    for i, (role, tex, plain) in enumerate(e for e in entries if e[0] in roles):
        x, yy = (i % 2) * 4.0, y - (i // 2) * 0.5
        lines.append(Line((x, yy), (x + 0.6, yy), role, ("legend", role)))
        texts.append(Text((x + 0.75, yy), Label(tex, plain), "west", True))
    return lines, texts


def _bounds(lines, discs, texts) -> tuple[float, float, float, float]:
    # text widths are estimated (about 0.17 cm a character): the SVG has no font metrics
    xs = [x for e in lines for x, _ in (e.a, e.b)] + [d.at[0] + s * R for d in discs for s in (-1, 1)]
    ys = [y for e in lines for _, y in (e.a, e.b)] + [d.at[1] + s * R for d in discs for s in (-1, 1)]
    for t in texts:
        w = 0.17 * len(t.label.base + t.label.sup + t.label.sub) * (0.8 if t.small else 1)
        xs += [t.at[0] + w, t.at[0] - (0 if t.anchor == "west" else w / 2)]
        ys += [t.at[1] - (0.75 if t.anchor == "north" else 0.3)]
    return min(xs) - 0.3, min(ys) - 0.2, max(xs) + 0.3, max(ys) + 0.4


def _scene(spec: NetworkSpec, p: Param | None, settings: dict) -> Scene:
    ps = {k: v for k, v in settings.items() if k not in DEFAULTS}  # the printer checks these
    opts = {**DEFAULTS, **{k: v for k, v in settings.items() if k in DEFAULTS}}
    if not isinstance(opts["legend"], bool):
        raise ValueError(f"legend must be True or False, got {opts['legend']!r}")
    lay = layout(spec, opts["max_neurons"], p, opts["max_layers"])
    lines, texts = _edges(spec, p, lay, ps), _captions(spec, lay)
    discs = [Disc(*_neuron(c.layer, j, ps), (c.x, y), node_role(spec, p, c.layer, j))
             for c in lay.columns if c.layer is not None for j, y in c.rows if j is not None]
    name = loss_symbol(**ps)
    discs.append(Disc("L", Label(f"${name}$", name), (lay.loss_x, 0.0), node_role(spec, p, spec.depth + 1, 1)))
    out = lay.columns[-1]
    boxes = [(out.x - R - 0.12, -out.rows[0][1] - R - 0.12, out.x + R + 0.12, out.rows[0][1] + R + 0.12,
              node_role(spec, p, spec.depth, 1))] if spec.softmax_output else []
    if p is not None:
        more_lines, more_texts = _parameter(p, lay, ps)
        lines, texts = lines + more_lines, texts + more_texts
        if opts["legend"]:
            roles = {e.role for e in lines} | {d.role for d in discs}
            y = _bounds(lines, discs, texts)[1] - 0.1
            more_lines, more_texts = _legend(p, roles, y, ps)
            lines, texts = lines + more_lines, texts + more_texts
    return Scene(lines, discs, texts, boxes, _bounds(lines, discs, texts))


# -- printers ------------------------------------------------------------------
def _c(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _tikz_item(item) -> str:
    if isinstance(item, Line):
        width = {None: "0.4pt", "input": "2pt"}.get(item.role, "1.1pt")
        colour = XCOLOR_NAMES[item.role] if item.role else "black!30"
        return (rf"\draw[{colour}, line width={width}, line cap=round] "
                f"({_c(item.a[0])},{_c(item.a[1])}) -- ({_c(item.b[0])},{_c(item.b[1])});")
    if isinstance(item, Disc):
        name = XCOLOR_NAMES.get(item.role)
        style = (f"draw={name}, fill={name}!12, line width=1.1pt" if name
                 else "draw=black!70, fill=white, line width=0.5pt")
        return (rf"\node[circle, {style}, minimum size={2 * R}cm, inner sep=0pt, font=\footnotesize] "
                f"at ({_c(item.at[0])},{_c(item.at[1])}) {{{item.label.tex}}};")
    style = f"anchor={item.anchor}" + (r", font=\scriptsize" if item.small else "")
    if item.role:
        style += f", text={XCOLOR_NAMES[item.role]}, fill=white, inner sep=1pt"
    return rf"\node[{style}] at ({_c(item.at[0])},{_c(item.at[1])}) {{{item.label.tex}}};"


def tikz(spec: NetworkSpec, highlight: Param | None = None, **settings) -> str:
    """A tikzpicture (needs only tikz and xcolor) of the network with p's paths.

    Settings: max_neurons, max_layers, legend, and the printer's (notation,
    loss_symbol, weight_letter); an unknown key raises TypeError."""
    s = _scene(spec, highlight, settings)
    out = [r"\begin{tikzpicture}[x=1cm, y=1cm, font=\small]"]
    out += XCOLOR_DEFINITIONS.values()  # local to the picture: the preamble needs nothing
    out += [rf"\draw[{XCOLOR_NAMES.get(role, 'black!45')}, dashed, rounded corners=6pt] "
            f"({_c(x0)},{_c(y0)}) rectangle ({_c(x1)},{_c(y1)});" for x0, y0, x1, y1, role in s.boxes]
    out += [_tikz_item(i) for i in [*s.lines, *s.discs, *s.texts]]
    return "\n".join([*out, r"\end{tikzpicture}", ""])


def _tint(colour: str, amount: float = 0.12) -> str:
    """colour mixed with white, as xcolor's `colour!12`."""
    return "#" + "".join(f"{round(255 - (255 - int(colour[i:i + 2], 16)) * amount):02X}" for i in (1, 3, 5))


def _svg_text(x: float, y: float, t: Text, size: float) -> str:
    # baselines by hand: dominant-baseline is not honoured by every renderer
    y += {"center": 0.35, "north": 0.9, "west": 0.35}[t.anchor] * size
    base, sup, sub = t.label.base, t.label.sup, t.label.sub
    anchor = "start" if t.anchor == "west" else "middle"
    if sup or sub:  # stacked as TeX does: the base ends where both scripts start
        width = 0.6 * size * (len(base) + 0.7 * max(len(sup), len(sub)))
        x, anchor = x - width / 2 + 0.6 * size * len(base), "end"
    attrs = f'x="{_c(x)}" y="{_c(y)}" text-anchor="{anchor}" font-size="{_c(size)}"'
    if len(base) == 1 and base.isalpha():
        attrs += ' font-style="italic"'
    if t.role:  # a white halo keeps the label readable over edges
        attrs += f' fill="{ROLE_COLOURS[t.role]}" stroke="#FFFFFF" stroke-width="3" paint-order="stroke"'
    body, dy = escape(base), 0.0
    for script, shift in ((sup, -0.38), (sub, 0.3)):
        if script:
            body += (f'<tspan x="{_c(x + 1)}" dy="{_c((shift - dy) * size)}" text-anchor="start" '
                     f'font-size="{_c(0.7 * size)}" font-style="normal">{escape(script)}</tspan>')
            dy = shift
    return f"<text {attrs}>{body}</text>"


def _svg_items(s: Scene, at) -> list[str]:
    out = []
    for x0, y0, x1, y1, role in s.boxes:
        (a, b), (c, d) = at((x0, y1)), at((x1, y0))
        out.append(f'<rect x="{_c(a)}" y="{_c(b)}" width="{_c(c - a)}" height="{_c(d - b)}" rx="8" '
                   f'fill="none" stroke="{ROLE_COLOURS.get(role, "#8C8C8C")}" stroke-dasharray="5 4"/>')
    for e in s.lines:
        (a, b), (c, d) = at(e.a), at(e.b)
        colour, width = (ROLE_COLOURS[e.role], 3.5 if e.role == "input" else 2) if e.role else ("#B3B3B3", 0.8)
        out.append(f'<line x1="{_c(a)}" y1="{_c(b)}" x2="{_c(c)}" y2="{_c(d)}" stroke="{colour}" '
                   f'stroke-width="{width}" stroke-linecap="round" data-from={quoteattr(e.ends[0])} '
                   f"data-to={quoteattr(e.ends[1])}/>")
    for d in s.discs:
        (x, y), colour = at(d.at), ROLE_COLOURS.get(d.role, "#4D4D4D")
        out.append(f'<circle cx="{_c(x)}" cy="{_c(y)}" r="{_c(R * PX)}" '
                   f'fill="{_tint(colour) if d.role else "#FFFFFF"}" stroke="{colour}" '
                   f'stroke-width="{2 if d.role else 1}" data-node={quoteattr(d.key)}/>')
        out.append(_svg_text(x, y, Text(d.at, d.label), 12))
    return out + [_svg_text(*at(t.at), t, 11 if t.small else 14) for t in s.texts]


def svg(spec: NetworkSpec, highlight: Param | None = None, **settings) -> str:
    """A standalone SVG (no fonts, no scripts) of the same scene as `tikz`."""
    s = _scene(spec, highlight, settings)
    x0, y0, x1, y1 = s.bounds
    w, h = _c((x1 - x0) * PX), _c((y1 - y0) * PX)
    title = spec.describe() + (f"; the backward paths of {highlight.name}" if highlight else "")
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f"""font-family="'DejaVu Serif', 'Times New Roman', serif" role="img">""",
        f"<title>{escape(title)}</title>",
        '<rect width="100%" height="100%" fill="#FFFFFF"/>',  # readable on dark themes too
        # centimetres with y up (as TikZ) -> pixels with y down
        *_svg_items(s, lambda p: ((p[0] - x0) * PX, (y1 - p[1]) * PX)), "</svg>", ""])
