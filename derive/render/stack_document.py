r"""Documents of a [[layer]] network: `build_stack` writes PDF, LaTeX and Markdown.

    build_stack(net)  ->  output/<stem>.pdf, <stem>.tex, <stem>.md, <stem>-network.svg

Its own path beside document.py (whose sections are neuron-by-neuron
derivations a stack does not have), sharing the rest of the pipeline: the
context (stack_content.py) is printed math for one language, the templates
tex/stack.tex and md/stack.md arrange it (a --templates folder may replace
them), pdf.py's preamble and `compile_pdf` make the PDF, and the role
colours are roles.py's.  The picture is stack_diagram.py's feature-map
blocks, as TikZ in the LaTeX and as an SVG file beside the Markdown.  With
values, one `StackEvaluator.trace` gives every number the worked section
prints.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SpecError
from ..files import ensure_folder, write_text_atomic
from .document import FORMATS, _STEM, _formats, default_stem, write_tex_and_pdf  # noqa: F401 (the same choices)
from .pdf import latex_source, paper_option
from .stack_content import context
from .stack_diagram import svg, tikz
from .templating import environment, escape_pdf_string, render


def _trace(net):
    values = net.values()
    return None if values is None else net.evaluator.trace(values)


def stack_latex(net, templates=None, paper: str = "a4", trace=None) -> str:
    """The whole .tex file of the stack's document."""
    paper_option(paper)
    ctx = context(net, "tex", trace if trace is not None else _trace(net))
    ctx["tikz"] = tikz(net.spec)
    body = render(environment(templates), "tex/stack.tex", **ctx)
    return latex_source(body, paper, title=escape_pdf_string(ctx["title"]))


def stack_markdown(net, templates=None, figure: str | None = None, trace=None) -> str:
    """The .md text; `figure` names the SVG written beside it, if any."""
    ctx = context(net, "md", trace if trace is not None else _trace(net))
    ctx["figure"] = figure
    return render(environment(templates), "md/stack.md", **ctx).rstrip("\n") + "\n"


def _refuse(params, snippet, part) -> None:
    given = [flag for flag, v in (("--params", params), ("--snippet", snippet), ("--part", part)) if v]
    if given:
        raise SpecError(f"{given[0]} is not for [[layer]] networks yet: their document is whole "
                        f"(drop {given[0]})")


def build_stack(net, formats=None, outdir="output", stem: str | None = None, templates=None,
                paper: str = "a4", params=None, snippet: bool = False, part=None, **_ignored) -> list[Path]:
    """Write the stack's document in each format into `outdir`; return the paths.
    Like document.build: without TeX and with default formats, one stderr line."""
    _refuse(params, snippet, part)
    paper_option(paper)
    fmts, explicit = _formats(formats, False)
    stem = stem or (default_stem(net) if net.spec.title else "stack")
    if not _STEM.match(stem):
        raise SpecError(f"stem {stem!r} must be letters, digits, '.', '_' or '-'")
    folder, trace, written = ensure_folder(outdir), _trace(net), []
    if "md" in fmts:
        figure = f"{stem}-network.svg"
        svg_path = write_text_atomic(folder / figure, svg(net.spec))
        written += [write_text_atomic(folder / f"{stem}.md", stack_markdown(net, templates, figure, trace)),
                    svg_path]
    if "tex" in fmts or "pdf" in fmts:
        written += write_tex_and_pdf(stack_latex(net, templates, paper, trace), folder, stem, fmts,
                                     explicit, templates)
    return written
