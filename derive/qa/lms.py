r"""Exercises for learning management systems: Moodle XML and a Canvas QTI 1.2 package.

Moodle (its question bank's "Moodle XML format" import): one category per
exercise set; each numeric question a `numerical` question with an absolute
tolerance; each multiple-choice one a `multichoice` (single answer, fractions
100 and 0, feedback per option naming the mistake); and per variant one
`cloze` question whose parts are the steps of one derivation ({1:NUMERICAL:=v:tol}).
Math is written as \( ... \), which Moodle's MathJax filter renders.

QTI: an IMS content package (imsmanifest.xml and one assessment file) with
one item per question, in Canvas's flavour of QTI 1.2: each item names its
`question_type` and `points_possible` in its metadata; numeric items are
`response_str` scored on the value or a `vargte`/`varlte` range, multiple
choice `response_lid` with integer answer idents and the right one scored 100.
Both are built with ElementTree in a fixed order, and the zip carries a fixed
timestamp, so the same seed gives the same bytes.

The texts come from sheets.py's Markdown context (prompts, options), so the
questions read the same as on the paper sheet.
"""

from __future__ import annotations

import html
import io
import re
import xml.etree.ElementTree as ET
import zipfile
from typing import TYPE_CHECKING, Sequence

from ..render.formulas import Style
from .exercises import Question, Variant
from .sheets import POINTS, given, options_context, prompt

if TYPE_CHECKING:
    from ..api import Network

ZIP_TIME = (2026, 1, 1, 0, 0, 0)
#: Canvas wants integer answer idents.
ANSWER_ID = 1001
_DOLLARS = re.compile(r"\$(.+?)\$")


def _html(text: str) -> str:
    r"""Markdown-with-$math$ text as Moodle/Canvas HTML with \( \) math (& < > escaped)."""
    return _DOLLARS.sub(lambda m: rf"\({m.group(1)}\)", html.escape(text, quote=False))


def _setting(net, v: Variant, style: Style) -> str:
    """The network and this variant's values, as HTML above every question: a quiz
    question stands alone, so each one carries what the sheet prints once per variant."""
    lines = "".join(f"<p>{_html(f'${line}$')}</p>" for line in given(net, v.values, style))
    return f"<p>{_html(net.spec.describe())}. Variant {v.seed}:</p>{lines}"


def _text(parent: ET.Element, tag: str, content: str, fmt: str | None = "html") -> ET.Element:
    el = ET.SubElement(parent, tag, {"format": fmt} if fmt else {})
    ET.SubElement(el, "text").text = content
    return el


def _q(quiz: ET.Element, qtype: str, name: str, html: str) -> ET.Element:
    q = ET.SubElement(quiz, "question", {"type": qtype})
    _text(q, "name", name, None)
    _text(q, "questiontext", html)
    return q


def _numerical(quiz, net, v: Variant, q: Question, style: Style) -> None:
    el = _q(quiz, "numerical", f"{v.seed} {q.id} {q.kind} {q.target}",
            _setting(net, v, style) + f"<p>{_html(prompt(net, q, style, v.values['learning_rate']))}</p>")
    ET.SubElement(el, "defaultgrade").text = "1"
    answer = ET.SubElement(el, "answer", {"fraction": "100", "format": "moodle_auto_format"})
    ET.SubElement(answer, "text").text = repr(q.answer)
    ET.SubElement(answer, "tolerance").text = repr(q.tolerance)
    _text(answer, "feedback", "Right.")


def _multichoice(quiz, net, v: Variant, q: Question, style: Style) -> None:
    el = _q(quiz, "multichoice", f"{v.seed} {q.id} {q.kind} {q.target}",
            _setting(net, v, style) + f"<p>{_html(prompt(net, q, style, v.values['learning_rate']))}</p>")
    ET.SubElement(el, "single").text = "true"
    ET.SubElement(el, "shuffleanswers").text = "false"
    ET.SubElement(el, "answernumbering").text = "ABCD"
    for o in options_context(net, q, style):
        answer = ET.SubElement(el, "answer", {"fraction": "100" if o["correct"] else "0",
                                              "format": "html"})
        ET.SubElement(answer, "text").text = _html(o["text"])
        _text(answer, "feedback", o["feedback"])


def _cloze(quiz, net, v: Variant, style: Style) -> None:
    """One question per variant: every numeric step of the derivation as a blank."""
    parts = [f"<p>{_html(prompt(net, q, style, v.values['learning_rate']))} "
             f"{{1:NUMERICAL:={q.answer!r}:{q.tolerance!r}}}</p>"
             for q in v.questions if q.answer is not None]
    if parts:
        _q(quiz, "cloze", f"{v.seed} all steps", _setting(net, v, style) + "\n".join(parts))


def moodle_xml(net: "Network", variants: Sequence[Variant], category: str) -> str:
    """Moodle XML: a category, then every variant's questions and its cloze question."""
    style = Style(target="md")
    quiz = ET.Element("quiz")
    cat = ET.SubElement(quiz, "question", {"type": "category"})
    _text(cat, "category", f"$course$/top/{category}", None)
    for v in variants:
        for q in v.questions:
            (_multichoice if q.options else _numerical)(quiz, net, v, q, style)
        _cloze(quiz, net, v, style)
    ET.indent(quiz)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(quiz, encoding="unicode") + "\n"


def _material(parent: ET.Element, html: str) -> None:
    ET.SubElement(ET.SubElement(parent, "material"), "mattext", {"texttype": "text/html"}).text = html


def _metadata(item: ET.Element, q: Question) -> None:
    """Canvas reads the question type and points from the item's metadata fields."""
    fields = ET.SubElement(ET.SubElement(item, "itemmetadata"), "qtimetadata")
    kind = "multiple_choice_question" if q.options else "numerical_question"
    for label, entry in (("question_type", kind), ("points_possible", f"{POINTS[q.kind]:.1f}"),
                         ("original_answer_ids", ",".join(str(ANSWER_ID + i) for i in range(len(q.options))))):
        field = ET.SubElement(fields, "qtimetadatafield")
        ET.SubElement(field, "fieldlabel").text = label
        ET.SubElement(field, "fieldentry").text = entry


def _qti_item(section: ET.Element, net, v: Variant, q: Question, style: Style) -> None:
    item = ET.SubElement(section, "item", {"ident": f"{v.seed}-{q.id}", "title": f"{q.kind} {q.target}"})
    _metadata(item, q)
    pres = ET.SubElement(item, "presentation")
    _material(pres, _setting(net, v, style) + f"<p>{_html(prompt(net, q, style, v.values['learning_rate']))}</p>")
    cond = ET.Element("respcondition", {"continue": "No"})
    if q.options:
        lid = ET.SubElement(pres, "response_lid", {"ident": "response1", "rcardinality": "Single"})
        choices = ET.SubElement(lid, "render_choice")
        for i, o in enumerate(options_context(net, q, style)):
            label = ET.SubElement(choices, "response_label", {"ident": str(ANSWER_ID + i)})
            _material(label, _html(o["text"]))
        test = ET.SubElement(ET.SubElement(cond, "conditionvar"), "varequal", {"respident": "response1"})
        test.text = str(ANSWER_ID + q.correct)
    else:
        num = ET.SubElement(pres, "response_str", {"ident": "response1", "rcardinality": "Single"})
        ET.SubElement(num, "render_fib", {"fibtype": "Decimal"})
        # Canvas's "exact answer with margin": the value itself or within the range
        either = ET.SubElement(ET.SubElement(cond, "conditionvar"), "or")
        ET.SubElement(either, "varequal", {"respident": "response1"}).text = repr(q.answer)
        both = ET.SubElement(either, "and")
        ET.SubElement(both, "vargte", {"respident": "response1"}).text = repr(q.answer - q.tolerance)
        ET.SubElement(both, "varlte", {"respident": "response1"}).text = repr(q.answer + q.tolerance)
    processing = ET.SubElement(item, "resprocessing")
    ET.SubElement(ET.SubElement(processing, "outcomes"), "decvar",
                  {"maxvalue": "100", "minvalue": "0", "varname": "SCORE", "vartype": "Decimal"})
    processing.append(cond)
    ET.SubElement(cond, "setvar", {"action": "Set", "varname": "SCORE"}).text = "100"


def qti_assessment(net: "Network", variants: Sequence[Variant], title: str) -> str:
    style = Style(target="md")
    root = ET.Element("questestinterop", {"xmlns": "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"})
    assessment = ET.SubElement(root, "assessment", {"ident": "derive-exercises", "title": title})
    root_section = ET.SubElement(assessment, "section", {"ident": "root_section"})
    for v in variants:  # one section per variant, so its questions stay together
        section = ET.SubElement(root_section, "section", {"ident": f"variant-{v.seed}",
                                                          "title": f"Variant {v.seed}"})
        for q in v.questions:
            _qti_item(section, net, v, q, style)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _manifest(title: str) -> str:
    root = ET.Element("manifest", {"identifier": "derive-exercises-manifest",
                                   "xmlns": "http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1"})
    ET.SubElement(root, "organizations")
    resources = ET.SubElement(root, "resources")
    res = ET.SubElement(resources, "resource", {"identifier": "derive-exercises",
                                                "type": "imsqti_xmlv1p2", "href": "assessment.xml"})
    ET.SubElement(res, "file", {"href": "assessment.xml"})
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def qti_zip(net: "Network", variants: Sequence[Variant], title: str) -> bytes:
    """The QTI package as bytes: imsmanifest.xml and assessment.xml, fixed timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in (("imsmanifest.xml", _manifest(title)),
                           ("assessment.xml", qti_assessment(net, variants, title))):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()
