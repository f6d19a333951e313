r"""The interactive handout: one self-contained HTML page per network.

    page(net, answer)  ->  "<!DOCTYPE html>..." (MathJax, the diagram and the data inside)

The page is the Markdown document (document.py, converted by markdown.py)
with the diagram of diagram.py drawn without a highlight, plus a panel: a
weight or bias chosen in the diagram or in the list of gradients lights up
its backward paths by role and shows its chain rule, path by path.  All of
that is computed here, in Python, and embedded as JSON; the script in
templates/html/handout.js only moves classes and inserts the prepared
LaTeX, and the templates arrange it.  The paths come from `derive which`'s
engine: `answer(name)` is the caller's `which(net, name, notation=..., loss_symbol=...).to_json()`
(render sits below qa, so the engine is handed in, not imported).

Nothing is fetched when the page is viewed: MathJax's single-file SVG build
(no font files) is read from node_modules and inlined, and the diagram is
inline SVG.  Stable hooks for tools and tests: every control carries
`data-param="W1[1,1]"`; every edge `data-from`/`data-to` (`x[1]`, `a1[2]`,
`L`) and the class `on-path` exactly while it lies on the chosen path.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from . import diagram
from .answer_words import number_sum
from .formulas import Style, format_number as number
from .roles import ROLES
from .document import default_stem, default_title, plan, render_markdown
from .markdown import inline, to_html
from .printing import partial_latex
from .templating import environment, render
from ..calculus.model import Param
from ..calculus.paths import count_paths
from ..errors import ToolError
from ..files import ensure_folder, write_text_atomic

if TYPE_CHECKING:
    from ..api import Network

#: MathJax 3's TeX-to-SVG build with every TeX extension: one file, no fonts to fetch.
MATHJAX = Path("mathjax-full") / "es5" / "tex-svg-full.js"
#: A parameter with more backward paths than this gets no control (its panel would be a book).
PAGE_MAX_PATHS = 64
_KEY = re.compile(r'data-(from|to|node)="([^"]*)"')


def mathjax_source(roots=None) -> str:
    """MathJax from $DERIVE_NODE_MODULES or the source tree's node_modules (npm ci)."""
    if roots is None:
        roots = [os.environ.get("DERIVE_NODE_MODULES"), Path(__file__).resolve().parents[2] / "node_modules"]
    for root in filter(None, roots):
        path = Path(root) / MATHJAX
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise ToolError(f"the HTML page bundles MathJax, but {MATHJAX} is not in node_modules "
                    f"(run ./dev.sh setup, or point DERIVE_NODE_MODULES at a node_modules folder)")


def hook(key: str) -> str:
    """diagram.py's node keys as the page names them: x1 -> x[1], a2.3 -> a2[3], L -> L."""
    m = re.fullmatch(r"x(\d+)|a(\d+)\.(\d+)", key)
    if not m:
        return key
    return f"x[{m.group(1)}]" if m.group(1) else f"a{m.group(2)}[{m.group(3)}]"


def visible_params(net: Network, settings: dict) -> list[Param]:
    """The weights whose edge the diagram draws and the biases of the neurons it draws."""
    opts = {k: v for k, v in settings.items() if k in ("max_neurons", "max_layers")}
    lay = diagram.layout(net.spec, highlight=None, **opts)
    rows = {c.layer: [j for j, _ in c.rows if j is not None] for c in lay.columns if c.layer is not None}
    out = []
    for l in range(1, net.spec.depth + 1):
        for j in rows.get(l, []):
            out += [Param(l, "W", j, k) for k in rows.get(l - 1, [])]
            out += [Param(l, "b", j)] if net.spec.bias else []
    return [p for p in out if count_paths(net.derivation, p) <= PAGE_MAX_PATHS]


def _wrap(tex: str) -> str:
    """Parentheses around a factor that is a sum, so the product reads right."""
    depth = 0
    for i, ch in enumerate(tex):
        depth += (ch in "{(") - (ch in "})")
        if depth == 0 and i and tex[i - 1:i + 2] in (" + ", " - "):
            return rf"\left({tex}\right)"
    return tex


def _roles(p: Param, edges: list[list[str]]) -> list[str]:
    """Each edge's role, as paths.py names it: into the parameter's neuron "input",
    into the loss "loss", between them "weight"."""
    last = len(edges) - 1
    return [("loss" if i == last else "input" if i == 0 and p.kind == "W" else "weight")
            for i in range(len(edges))]


def param_data(net: Network, p: Param, js: dict, settings: dict) -> dict:
    """One parameter's highlight and chain rule, from its `which` JSON, ready to insert."""
    colour, edges, nodes = Style(target="md").paint, {}, {}
    paths = []
    values = js.get("path_values")
    if values is not None and None in values:  # a non-finite path: the numbers would mislead
        values = None
    for n, (factors, route) in enumerate(zip(js["paths"], js["edges"])):
        for (a, b), role in zip(route, _roles(p, route)):
            edges[(a, b)] = role
            nodes.setdefault(a, "input" if role == "input" else "activation")
            nodes[b] = "loss" if b == "L" else "activation"
        product = r" \cdot ".join(colour(f["role"], _wrap(f["latex"])) for f in factors)
        steps = [route[0][0]] + [b for _, b in route] if route else []
        paths.append({"route": " → ".join(([p.name] if p.kind == "b" else []) + steps),
                      "roles": ", ".join(f["role"] for f in factors),
                      "latex": product, "value": None if values is None else number(values[n])})
    value = js.get("value")
    return {"name": p.name, "lhs": partial_latex(p, **settings), "result": js["latex"],
            "edges": [[a, b, r] for (a, b), r in edges.items()],
            "nodes": [[k, r] for k, r in nodes.items()], "paths": paths,
            "value": None if value is None else number(value),
            "sum": None if values is None or len(values) < 2 else number_sum(values)}


def _svg(net: Network, controls: set[str], settings: dict) -> str:
    """The diagram with page hooks: edges and neurons named x[1], a1[2]; a weight's
    edge and a neuron (for its bias) carry `data-param` when they have a panel."""
    ps = {k: v for k, v in settings.items() if k in ("notation", "loss_symbol")}
    text = _KEY.sub(lambda m: f'data-{m.group(1)}="{hook(m.group(2))}"', diagram.svg(net.spec, None, **ps))

    def control(m: re.Match) -> str:
        tag, frm, to = m.group(0), m.group(1), m.group(2)
        dst = re.fullmatch(r"a(\d+)\[(\d+)\]", to)
        src = re.fullmatch(r"(?:x|a\d+)\[(\d+)\]", frm)
        name = f"W{dst.group(1)}[{dst.group(2)},{src.group(1)}]" if dst and src else None
        if name not in controls:
            return tag
        hit = tag.replace("<line ", f'<line class="hit" data-param="{name}" ', 1)
        hit = re.sub(r' data-(from|to)="[^"]*"', "", hit)
        return tag + hit
    text = re.sub(r'<line [^>]*data-from="([^"]*)" data-to="([^"]*)"/>', control, text)

    def bias(m: re.Match) -> str:
        name = "b{}[{}]".format(*re.fullmatch(r"a(\d+)\[(\d+)\]", m.group(1)).groups())
        return m.group(0)[:-2] + (f' data-param="{name}"/>' if name in controls else "/>")
    return re.sub(r'<circle [^>]*data-node="(a\d+\[\d+\])"/>', bias, text)


def page(net: Network, answer: Callable[[str], dict], markdown: str, selected: str | None = None,
         notation: str = "nielsen", loss_symbol: str = "L", templates=None) -> str:
    """The whole page as text: `markdown` (a document or a `which` answer) as HTML
    beside the diagram; `answer(name)` is `which(net, name, **settings).to_json()`;
    `selected` names the parameter shown when the page opens."""
    settings = {"notation": notation, "loss_symbol": loss_symbol}
    chosen = visible_params(net, settings)
    if selected is not None and selected not in {p.name for p in chosen}:
        chosen.append(net.param(selected))
    data = {p.name: param_data(net, p, answer(p.name), settings) for p in chosen}
    figure = _svg(net, set(data), settings)
    ctx = {"title": net.spec.title or default_title(net.spec), "figure": figure,
           "document": to_html(_untitled(markdown), image=lambda alt, src: ""),  # the diagram is above
           "legend": [(name, row.words) for name, row in ROLES.items()],
           "controls": [(name, inline(f"${d['lhs']}$"), d["value"]) for name, d in data.items()],
           "data": json.dumps({"params": data, "selected": selected}).replace("</", "<\\/"),
           "mathjax": mathjax_source(), "role_colours": diagram.ROLE_COLOURS}
    return render(environment(templates), "html/page.html", **ctx)


def _untitled(markdown: str) -> str:
    """The text without its `# title` line: the page's header shows the title already."""
    first, _, rest = markdown.partition("\n")
    return rest if first.startswith("# ") else markdown


def document_page(net: Network, answer: Callable[[str], dict], params: str | None = None,
                  notation: str = "nielsen", loss_symbol: str = "L", templates=None) -> str:
    """The derivation document (as `derive explain --format md` writes it) as a handout."""
    plan(net, params, False, notation, loss_symbol, templates)  # bad options fail first
    md = render_markdown(net, params, False, notation, loss_symbol, templates, figure="diagram.svg")
    return page(net, answer, md, None, notation, loss_symbol, templates)


def write_page(net: Network, answer: Callable[[str], dict], outdir="output", stem: str | None = None,
               **options) -> Path:
    """`document_page` written to outdir/<stem>.html; options are its keywords."""
    folder = ensure_folder(outdir)
    return write_text_atomic(folder / f"{stem or default_stem(net)}.html",
                             document_page(net, answer, **options))
