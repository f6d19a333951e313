r"""Exercise sheets and answer keys: LaTeX (the `exam` class), PDF, Markdown and JSON.

`sheet_context` prints everything a sheet shows (the given values as
matrices, each question's prompt with its symbol as math, the options, the
worked solution) for one target language; `templates/exercises/sheet.*`
only arrange it, once without and once with the key.  The PDF is compiled
reproducibly (SOURCE_DATE_EPOCH), so the same seed gives the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..files import write_text_atomic
from ..render.formulas import Style
from ..render.roles import colour_definitions
from ..render.pdf import compile_pdf
from ..render.templating import environment, escape_md, escape_tex, render
from .claim import parse_claim
from .exercises import KINDS, Question, Variant
from .solutions import number, solution

if TYPE_CHECKING:
    from ..api import Network

#: Points per question kind on the sheet.
POINTS = {"forward": 1, "loss": 1, "delta": 2, "gradient": 2, "update": 2, "factors": 1, "formula": 2}
LETTERS = "ABCDEFGH"


def to_json(variants: Sequence[Variant]) -> str:
    """The JSON document of issue #15: {"variants": [{seed, values, questions}, ...]}."""
    return json.dumps({"variants": [v.to_json() for v in variants]}, indent=1, sort_keys=True) + "\n"


def _matrix(rows) -> str:
    body = r" \\ ".join(" & ".join(number(v) for v in row) for row in rows)
    return rf"\begin{{pmatrix}} {body} \end{{pmatrix}}"


def given(net: "Network", raw: dict[str, Any], style: Style) -> list[str]:
    """The variant's values as LaTeX lines: x, y, each W and b as matrices, the learning rate."""
    lines = [rf"x = {_matrix([[v] for v in raw['x']])}, \quad y = {_matrix([[v] for v in raw['y']])}"]
    for l in range(1, net.spec.depth + 1):
        line = rf"W^{{({l})}} = {_matrix(raw[f'W{l}'])}"
        if net.spec.bias:
            line += rf", \quad b^{{({l})}} = {_matrix([[v] for v in raw[f'b{l}']])}"
        lines.append(line)
    lines.append(rf"\eta = {number(raw['learning_rate'])}")
    return lines


def _symbol(net: "Network", target: str, style: Style) -> str:
    return style.L if target == "L" else style.latex(net.symbol(target))


def prompt(net: "Network", q: Question, style: Style, lr: float) -> str:
    """The question in the target language, its symbol as inline math."""
    s = f"${_symbol(net, q.target, style)}$"
    d = rf"$\partial {style.L}/\partial {_symbol(net, q.target, style)}$"
    words = {"forward": f"Compute {s}.", "loss": f"Compute the loss {s}.",
             "delta": f"Compute {s} (the derivative of the loss with respect to the pre-activation).",
             "gradient": f"Compute {d}.",
             "update": f"Compute {s} after one gradient-descent step with learning rate "
                       f"$\\eta = {number(lr)}$.",
             "factors": f"Which factors appear in {d}?", "formula": f"Which formula is {d}?"}
    assert set(words) == set(KINDS)
    return words[q.kind]


def options_context(net: "Network", q: Question, style: Style) -> list[dict[str, Any]]:
    esc = escape_tex if style.target == "tex" else escape_md
    out = []
    for i, text in enumerate(q.options):
        shown = (f"${style.latex(parse_claim(net, text))}$" if q.kind == "formula" else esc(text))
        out.append({"text": shown, "correct": i == q.correct, "letter": LETTERS[i],
                    "feedback": q.feedback[i] if q.feedback else ""})
    return out


def _question(net, v: Variant, q: Question, style: Style, key: bool) -> dict[str, Any]:
    return {"points": POINTS[q.kind], "point_words": "point" if POINTS[q.kind] == 1 else "points", "prompt": prompt(net, q, style, v.values["learning_rate"]),
            "options": options_context(net, q, style),
            "answer": None if q.answer is None else number(q.answer),
            "tolerance": None if q.tolerance is None else number(q.tolerance),
            "work": solution(net, v, q, style) if key else []}


def sheet_context(net: "Network", variants: Sequence[Variant], target: str, key: bool,
                  title: str) -> dict[str, Any]:
    style = Style(target=target)
    return {"title": title, "key": key, "colour_definitions": colour_definitions(),
            "intro": f"{net.spec.describe()}. Give numbers to 3 significant digits.",
            "variants": [{"number": i, "seed": v.seed, "given": given(net, v.values, style),
                          "questions": [_question(net, v, q, style, key) for q in v.questions]}
                         for i, v in enumerate(variants, 1)]}


def render_sheet(net: "Network", variants: Sequence[Variant], target: str, key: bool,
                 title: str) -> str:
    return render(environment(), f"exercises/sheet.{target}",
                  **sheet_context(net, variants, target, key, title))


def write_sheets(net: "Network", variants: Sequence[Variant], formats: Sequence[str],
                 outdir: Path, stem: str, title: str) -> list[Path]:
    """sheet and key in each of tex, pdf and md that `formats` names."""
    written = []
    for target in ("tex", "md"):
        wanted = target in formats or (target == "tex" and "pdf" in formats)
        if not wanted:
            continue
        for key, suffix in ((False, ""), (True, "-key")):
            text = render_sheet(net, variants, target, key, title)
            if target in formats:
                written.append(write_text_atomic(outdir / f"{stem}{suffix}.{target}", text))
            if target == "tex" and "pdf" in formats:
                written.append(compile_pdf(text, outdir / f"{stem}{suffix}.pdf", reproducible=True))
    return written
