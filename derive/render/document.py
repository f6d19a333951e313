r"""Derivation documents: `build` writes PDF, LaTeX and Markdown for a network.

    build(net)  ->  output/<stem>.pdf, <stem>.tex, <stem>.md, <stem>-network.svg

The pipeline: `context` gathers every section's printed math (content.py,
walkthrough.py, worked.py) for one language, templates arrange it
(templating.py: templates/tex/document.tex, templates/md/document.md), and
render_latex.py wraps the LaTeX in a PyLaTeX preamble and compiles it.  The
same context feeds both languages; only the colour macros and the figure
differ (TikZ in the LaTeX, an SVG file beside the Markdown, both from
diagram.py with the first chosen parameter's paths highlighted).

`render_latex` and `render_markdown` return the text alone (for
`Network.explain`); `snippet=True` gives only the equations: a fragment
for \input (amsmath and xcolor needed) or for pasting into notes.  A
snippet is made of `PARTS` (tex/part-<name>.tex, md/part-<name>.md);
`part="chain"` (or "recursion,matrix", ...) takes only those, for one slide
or one page of notes, and implies `snippet`.  File names: `<stem>.*` for
the document, `<stem>-snippet.*` for a snippet, `<stem>-<part>.*` for parts,
so a snippet never overwrites the document.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import re
import sys
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .walkthrough import chain, choose, results
from .content import default_title, forward_section, local_section, network_section, recursion_section
from ..errors import SpecError, ToolError
from ..files import ensure_folder, write_text_atomic
from .formulas import Style
from .roles import colour_definitions
from ..calculus.model import Param
from .pdf import compile_pdf, find_engine, latex_source, missing_engine_message, paper_option
from .templating import environment, escape_pdf_string, locate_tex_line, render
from .worked import check_section, example_section, param_rows
from .minibatch import batch_section

if TYPE_CHECKING:
    from ..api import Network

FORMATS = ("pdf", "tex", "md")
#: The pieces a snippet can be cut into (--part), in the order a document has them.
PARTS = ("local", "chain", "recursion", "matrix", "example")
#: What --snippet alone gives.
SNIPPET_PARTS = ("chain", "recursion", "matrix")
_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class Plan:
    """What one document shows, decided once for all its formats."""

    net: Network
    chosen: list[Param]
    highlight: Param | None
    notation: str = "nielsen"
    loss_symbol: str = "L"
    snippet: bool = False
    templates: str | Path | None = None
    parts: tuple[str, ...] = SNIPPET_PARTS
    paper: str = "a4"
    part_given: bool = False

    def __repr__(self) -> str:
        return f"Plan({self.net.spec.describe()}, params={[p.name for p in self.chosen]})"

    @property
    def settings(self) -> dict:
        return {"notation": self.notation, "loss_symbol": self.loss_symbol}

    @cached_property
    def run(self):
        """Forward and backward pass at the spec's values, or None."""
        values = self.net.spec.values
        return self.net.evaluator.run(values) if values is not None else None

    @cached_property
    def check(self) -> dict:
        return check_section(self.net, self.net.spec.values)


def parse_parts(net: Network, part) -> tuple[str, ...]:
    """'chain' or 'recursion,matrix' (or a list) -> the parts, checked, in the order given."""
    items = part.split(",") if isinstance(part, str) else list(part)
    chosen = tuple(dict.fromkeys(str(p).strip().lower() for p in items if str(p).strip()))
    bad = [p for p in chosen if p not in PARTS]
    if bad or not chosen:
        raise SpecError(f"part {','.join(bad) or '(none)'!r}; expected a comma list of "
                        f"{', '.join(PARTS)}")
    if "example" in chosen and net.spec.values is None:
        raise SpecError("part 'example' needs values: --values FILE or a [values] table in the spec")
    return chosen


def plan(net: Network, params: str | None = None, snippet: bool = False, notation: str = "nielsen",
         loss_symbol: str = "L", templates=None, part=None, paper: str = "a4") -> Plan:
    """Check the options and choose the parameters; nothing is written yet.
    A `part` makes the document a snippet of those parts alone."""
    Style(notation, loss_symbol)  # bad settings fail here, as a SpecError
    paper_option(paper)
    parts = SNIPPET_PARTS if part is None else parse_parts(net, part)
    chosen = choose(net, params)
    # the diagram shows the first parameter asked for, or by default the deepest one
    highlight = (chosen[0] if params is not None else min(chosen, key=lambda p: p.layer)) \
        if chosen else None
    return Plan(net, chosen, highlight, notation, loss_symbol, snippet or part is not None,
                templates, parts, paper, part is not None)


def context(pl: Plan, target: str, figure: str | None = None) -> dict:
    """Everything the templates of one language (`tex` or `md`) need, printed."""
    net = pl.net
    style = Style(pl.notation, pl.loss_symbol, target, row=net.spec.row_layout)
    values, run = net.spec.values, pl.run
    trace = run[0] if run else None
    batch = batch_section(net, style)
    return {
        "batch": batch,
        # Markdown numbers its headings by hand: the batch section shifts the later ones
        "sections": section_numbers(batch is not None),
        "title": net.spec.title or default_title(net.spec),
        "parts": pl.parts,
        "chosen_params": param_rows(net, style, pl.chosen, values, run) if run else None,
        "legend": style.legend(),
        "colour_definitions": colour_definitions(),
        "network": network_section(net, style),
        "forward": forward_section(net, style),
        "local": local_section(net, style),
        "chains": [chain(net, p, style, trace, values) for p in pl.chosen],
        "recursion": recursion_section(net, style),
        "results": results(net, style),
        "example": example_section(net, style, values, run),
        "check": pl.check,
        "figure": figure,
        "highlight": pl.highlight.name if pl.highlight else None,
        "highlight_inline": style.inline_partial(style.latex(net.model.symbol(pl.highlight)))
                            if pl.highlight else None,
    }


def section_numbers(with_batch: bool) -> dict:
    """The numbers of the sections after the delta recursion (5), for Markdown headings."""
    first = 7 if with_batch else 6
    return {"batch": 6, "results": first, "example": first + 1, "verification": first + 2}


def _diagram(pl: Plan, kind: str) -> str | None:
    """The diagram from diagram.py (TikZ or SVG), or None if that module is missing."""
    try:
        from . import diagram
    except ImportError:
        return None
    draw = getattr(diagram, kind, None)
    return None if draw is None else draw(pl.net.spec, highlight=pl.highlight, **pl.settings)


def _latex(pl: Plan) -> str:
    env = environment(pl.templates)
    ctx = context(pl, "tex")
    if pl.snippet:
        return _ending(render(env, "tex/snippet.tex", **ctx))
    ctx["tikz"] = _diagram(pl, "tikz")
    return latex_source(render(env, "tex/document.tex", **ctx), pl.paper,
                        title=escape_pdf_string(ctx["title"]))


def _markdown(pl: Plan, figure: str | None = None) -> str:
    name = "md/snippet.md" if pl.snippet else "md/document.md"
    return _ending(render(environment(pl.templates), name, **context(pl, "md", figure)))


def _ending(text: str) -> str:
    """Exactly one newline at the end (an included part drops its last one)."""
    return text.rstrip("\n") + "\n"


def render_latex(net: Network, params: str | None = None, snippet: bool = False,
                 notation: str = "nielsen", loss_symbol: str = "L", templates=None,
                 part=None, paper: str = "a4") -> str:
    """The .tex text: a whole document, or with `snippet` (or `part`) a fragment for \\input."""
    return _latex(plan(net, params, snippet, notation, loss_symbol, templates, part, paper))


def render_markdown(net: Network, params: str | None = None, snippet: bool = False,
                    notation: str = "nielsen", loss_symbol: str = "L", templates=None,
                    figure: str | None = None, part=None, paper: str = "a4") -> str:
    """The .md text; `figure` names the diagram's SVG file (written by `build`), if any."""
    return _markdown(plan(net, params, snippet, notation, loss_symbol, templates, part, paper),
                     figure)


def default_stem(net: Network) -> str:
    """A slug of the title ('Backprop in σ nets' -> 'backprop-in-nets'), else net-2-3-1.

    (`derive explain SPEC` passes the spec file's name as `stem` instead.)"""
    ascii_title = unicodedata.normalize("NFKD", net.spec.title or "").encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:60].strip("-")
    if slug:
        return slug
    spec = net.spec
    return spec.stem if len(spec.layers) <= 8 else \
        f"net-{spec.layers[0]}-to-{spec.layers[-1]}-{spec.depth}-layers"


def _formats(formats, snippet: bool) -> tuple[tuple[str, ...], bool]:
    if formats is None:
        return (("tex", "md") if snippet else FORMATS), False
    if isinstance(formats, str):
        formats = formats.split(",")
    chosen = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise SpecError(f"format {','.join(bad) or '(none)'!r}; expected a comma list of "
                        f"{', '.join(FORMATS)}")
    if snippet and "pdf" in chosen:
        raise SpecError("--snippet writes LaTeX and Markdown fragments; a PDF needs the whole "
                        "document (drop --snippet or --format pdf)")
    return chosen, True


def build(net: Network, formats=None, outdir="output", params: str | None = None,
          snippet: bool = False, notation: str = "nielsen", loss_symbol: str = "L",
          templates=None, stem: str | None = None, part=None, paper: str = "a4") -> list[Path]:
    """Write the document in each format into `outdir`; return the paths written.

    Files are named `stem` (default: `default_stem`), plus "-snippet" for a
    snippet or "-<part>-<part>" for parts.  Without a TeX engine and with
    default formats, the .tex and .md are written and one line on stderr says
    how to get the PDF; asked for explicitly, a missing engine is a `ToolError`.
    """
    pl = plan(net, params, snippet, notation, loss_symbol, templates, part, paper)
    fmts, explicit = _formats(formats, pl.snippet)
    if stem is None:
        stem = default_stem(net)
    if not isinstance(stem, str) or not _STEM.match(stem):
        raise SpecError(f"stem {stem!r} must be letters, digits, '.', '_' or '-'")
    if pl.snippet:
        stem += "-" + ("-".join(pl.parts) if pl.part_given else "snippet")
    folder = ensure_folder(outdir)
    written: list[Path] = []
    if "md" in fmts:
        written += _write_markdown(pl, folder, stem)
    if "tex" in fmts or "pdf" in fmts:
        written += write_tex_and_pdf(_latex(pl), folder, stem, fmts, explicit, pl.templates)
    return written


def write_tex_and_pdf(tex: str, folder: Path, stem: str, fmts, explicit: bool, templates) -> list[Path]:
    """<stem>.tex and/or <stem>.pdf of a LaTeX source; without TeX, an asked-for PDF is an
    error and a default one a stderr line (every document path: MLP and [[layer]] alike)."""
    written = []
    if "tex" in fmts:
        written.append(write_text_atomic(folder / f"{stem}.tex", tex))
    if "pdf" in fmts and find_engine() is None:
        if explicit:
            raise ToolError(missing_engine_message())
        print(f"derive: {missing_engine_message()}", file=sys.stderr)
    elif "pdf" in fmts:
        env = environment(templates)
        written.append(compile_pdf(tex, folder / f"{stem}.pdf", locate=lambda text: locate_tex_line(env, text)))
    return written


def _write_markdown(pl: Plan, folder: Path, stem: str) -> list[Path]:
    figures, figure = [], None
    svg = None if pl.snippet else _diagram(pl, "svg")
    if svg is not None:
        figure = f"{stem}-network.svg"
        figures.append(write_text_atomic(folder / figure, svg))
    return [write_text_atomic(folder / f"{stem}.md", _markdown(pl, figure))] + figures
