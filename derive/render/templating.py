r"""Templates and escaping: the one Jinja2 environment and the one escaper per language.

Templates arrange words; they compute nothing.  Every formula reaches them
already printed (content.py), every user-given text (title, names) goes
through `escape_tex` or `escape_md` exactly once, here, as the `tex` and
`md` filters.  One `environment` factory serves both languages with
LaTeX-safe delimiters, since ``{{``, ``{%`` and ``{#`` clash with TeX:

    \VAR{title|tex}      a value          \BLOCK{for s in steps} ... \BLOCK{endfor}
    \#{ a comment }      which ends at its first closing brace: no braces inside

A user folder (``--templates DIR``) comes first in a `ChoiceLoader`, so any
template can be replaced by a file of the same name (``tex/chain.tex``).
The built-in templates are the repository's top-level ``templates/``
(``derive/templates/`` when installed as package data); docs/templates.md
lists the variables each one gets.  Errors name the template file that
holds them, with its line, also when it was reached through an include
(`render`), and `locate_tex_line` finds the template line behind a line of
the compiled .tex, so a TeX error in a user's tex/intro.tex names that file.
"""

from __future__ import annotations

import functools
import re
import traceback
import unicodedata
from pathlib import Path

import jinja2

from ..errors import RenderError

_PACKAGE = Path(__file__).resolve().parent.parent  # derive/
#: Built-in templates: package data when installed, else the source tree's templates/.
TEMPLATES = next((d for d in (_PACKAGE / "templates", _PACKAGE.parent / "templates")
                  if (d / "tex").is_dir()), _PACKAGE.parent / "templates")

_TEX_SPECIALS = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "%": r"\%", "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", "\"": r"\textquotedbl{}",
}
#: Non-ASCII characters pdflatex's utf8 inputenc does not know, as math or text macros.
_UNICODE_MACROS = {
    "∂": r"\partial", "∑": r"\sum", "∇": r"\nabla", "⊙": r"\odot", "×": r"\times",
    "·": r"\cdot", "→": r"\to", "←": r"\leftarrow", "≤": r"\leq", "≥": r"\geq", "≠": r"\neq",
    "≈": r"\approx", "∞": r"\infty", "−": "-", "′": "'", "∈": r"\in", "√": r"\surd",
    "⋯": r"\cdots", "⋮": r"\vdots", "±": r"\pm", "ε": r"\varepsilon",
}
_TEXT_MACROS = {"–": "--", "—": "---", "‘": "`", "’": "'", "“": "``", "”": "''", "…": r"\dots{}",
                "\u00a0": "~", "€": r"\texteuro{}", "°": r"\textdegree{}"}
#: Greek letters by Unicode name: small ones and capitals with a macro become \\sigma,
#: \\Gamma; capitals that look Latin (Alpha, Beta, ...) become that Latin letter.
_GREEK_SMALL = {n: n for n in (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa mu nu xi pi rho sigma tau "
    "upsilon phi chi psi omega").split()} | {"lamda": "lambda", "final sigma": "varsigma",
                                            "omicron": "o"}
_GREEK_CAPITAL = {n: n.capitalize() for n in "gamma delta theta xi pi sigma upsilon phi psi omega".split()
                  } | {"lamda": "Lambda"}
_GREEK_LATIN = dict(zip("alpha beta epsilon zeta eta iota kappa mu nu omicron rho tau chi".split(),
                        "ABEZHIKMNOPTX"))


def _greek(ch: str) -> str | None:
    """\\sigma for σ, \\Gamma for Γ, \\mathrm{A} for Α; None if not a Greek letter."""
    m = re.fullmatch(r"GREEK (SMALL|CAPITAL) LETTER ([A-Z ]+)", unicodedata.name(ch, ""))
    if not m:
        return None
    key = m.group(2).lower()
    if m.group(1) == "SMALL":
        macro = _GREEK_SMALL.get(key)
        return None if macro is None else (macro if macro == "o" else "\\" + macro)
    if key in _GREEK_CAPITAL:
        return "\\" + _GREEK_CAPITAL[key]
    return r"\mathrm{" + _GREEK_LATIN[key] + "}" if key in _GREEK_LATIN else None


def _tex_char(ch: str) -> str:
    if ch in _TEX_SPECIALS:
        return _TEX_SPECIALS[ch]
    if ch in "\n\r\t\f\v":
        return " "
    if ord(ch) < 128:
        return ch if ch.isprintable() else ""
    if ch in _TEXT_MACROS:
        return _TEXT_MACROS[ch]
    math = _UNICODE_MACROS.get(ch) or _greek(ch)
    if math is not None:
        return rf"\ensuremath{{{math}}}"
    # Latin-1 and Latin Extended-A letters are in T1 fonts and utf8 inputenc; the rest
    # (CJK, emoji, ...) would stop pdflatex, so they print as their code point.
    if 0xA0 <= ord(ch) <= 0x17F and unicodedata.category(ch)[0] in "LS":
        return ch
    return rf"\texttt{{[U+{ord(ch):04X}]}}"


def escape_tex(text: str) -> str:
    r"""User text for LaTeX: every character prints as itself, nothing runs.

    >>> escape_tex(r"50% of $x_1$ \input{f}")
    '50\\% of \\$x\\_1\\$ \\textbackslash{}input\\{f\\}'
    """
    return "".join(_tex_char(ch) for ch in str(text))


def escape_pdf_string(text: str) -> str:
    """User text for hyperref's PDF metadata (pdftitle): TeX specials escaped as by
    `escape_tex`, but Unicode up to U+2FFF (Greek, math symbols) kept as itself,
    since hyperref writes it into the PDF's Unicode strings where math would be dropped."""
    return "".join(ch if 128 <= ord(ch) < 0x3000 and ch.isprintable() else _tex_char(ch)
                   for ch in " ".join(str(text).split()))


#: ASCII punctuation that can start markup mid-line (math, emphasis, links, HTML, code).
_MD_PUNCTUATION = re.compile(r"([\\`*_{}\[\]<>#+!|$~^&])")


def escape_md(text: str) -> str:
    """User text for Markdown: markup characters backslash-escaped (CommonMark allows it
    for any ASCII punctuation), so no `$` opens math, no `*` emphasis, no `<` HTML."""
    return _MD_PUNCTUATION.sub(r"\\\1", " ".join(str(text).split()))


#: The filters templates may use; all formatting of numbers and math happens before.
FILTERS = {"tex": escape_tex, "md": escape_md}


def environment(user_dir: str | Path | None = None) -> jinja2.Environment:
    """The Jinja2 environment: user templates first, then the built-in ones.

    One per folder, kept: compiling the templates costs more than filling them.
    """
    if user_dir is not None:
        folder = Path(user_dir)
        if not folder.is_dir():
            raise RenderError(f"--templates {str(folder)!r} is not a folder")
        user_dir = str(folder.resolve())
    return _environment(user_dir)


@functools.lru_cache(maxsize=8)
def _environment(user_dir: str | None) -> jinja2.Environment:
    loaders = [jinja2.FileSystemLoader(user_dir)] if user_dir else []
    loaders.append(jinja2.FileSystemLoader(str(TEMPLATES)))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
        block_start_string=r"\BLOCK{", block_end_string="}",
        variable_start_string=r"\VAR{", variable_end_string="}",
        comment_start_string=r"\#{", comment_end_string="}",
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters.update(FILTERS)
    return env


def render(env: jinja2.Environment, name: str, **context) -> str:
    """Fill one template; a missing or broken template is a `RenderError` naming the
    file that holds the fault (an included one, too) and its line."""
    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template {exc.name!r} not found (looked in the --templates folder "
                          f"and {str(TEMPLATES)!r})") from None
    except jinja2.TemplateSyntaxError as exc:
        where = _describe(env, exc.filename, exc.name or name, exc.lineno)
        raise RenderError(f"{where}: {exc.message}") from None
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError,
            AttributeError) as exc:
        frame = _template_frame(env, exc)
        if frame is None and not isinstance(exc, jinja2.TemplateError):
            raise  # not a template's fault: a bug in derive
        where = _describe(env, *frame) if frame else f"template {name!r}"
        message = getattr(exc, "message", None) or str(exc)
        raise RenderError(f"{where}: {message}") from None


def _folders(env: jinja2.Environment) -> list[tuple[Path, bool]]:
    """The environment's template folders, user folder first, each with `is_user`."""
    loaders = getattr(env.loader, "loaders", [env.loader])
    folders = [Path(p) for ld in loaders for p in getattr(ld, "searchpath", [])]
    return [(f, f != Path(str(TEMPLATES))) for f in folders]


def _template_name(env: jinja2.Environment, filename: str | None):
    """('tex/intro.tex', folder, is_user) for a template file's path, or None."""
    if not filename:
        return None
    path = Path(filename)
    for folder, user in _folders(env):
        try:
            return path.relative_to(folder).as_posix(), folder, user
        except ValueError:
            continue
    return None


def _template_frame(env: jinja2.Environment, exc: BaseException) -> tuple[str, str, int] | None:
    """(filename, name, line) of the innermost template line in the exception's traceback
    (Jinja rewrites tracebacks so that template code shows as its file and line)."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        found = _template_name(env, frame.filename)
        if found:
            return frame.filename, found[0], frame.lineno
    return None


def _describe(env: jinja2.Environment, filename: str | None, name: str, line: int | None) -> str:
    """"your template tex/intro.tex (in /my/tpl) line 3" or "template 'tex/chain.tex' line 3"."""
    found = _template_name(env, filename)
    at = f" line {line}" if line else ""
    if found and found[2]:
        return f"your template {found[0]} (in {found[1]}){at}"
    return f"template {found[0] if found else name}{at}"


_TAG = re.compile(r"\\(?:VAR|BLOCK)\{[^}]*\}|\\#\{[^}]*\}")


def locate_tex_line(env: jinja2.Environment, text: str) -> str | None:
    """Which template line wrote `text` (one line of the filled .tex), e.g.
    "your template tex/intro.tex line 1"; None if no template line matches.

    Each template line becomes a pattern, its \\VAR and \\BLOCK tags matching
    anything; user templates are searched first, since the built-in ones are
    compiled by the test suite."""
    text = text.strip()
    if not text:
        return None
    for folder, user in _folders(env):
        for path in sorted(folder.glob("tex/*.tex")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                literal = _TAG.sub("", line).strip()
                if len(literal) < 3:
                    continue
                pattern = ".*?".join(re.escape(part) for part in _TAG.split(line.strip()))
                if re.fullmatch(pattern, text):
                    name = path.relative_to(folder).as_posix()
                    return f"your template {name} line {number}" if user else \
                        f"template {name} line {number}"
    return None
