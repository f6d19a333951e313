r"""How a document writes its math: notation, loss symbol, role colours, target.

A `Style` is the one place that knows the reader's choices.  Concrete
formulas (one neuron, one parameter) go through `Style.latex`, which is
`printing.to_latex` with the notation and loss-symbol settings.  General
formulas, with index letters instead of numbers, are written by the small
helpers here (`w`, `sym`, `partial`), so that "from k to j" (Nielsen) or
"from i to j" (--notation ij) is decided once, not in every template.

Role colours and words come from the one role table (`roles.ROLES`), so
picture, equations and `derive which` agree.  LaTeX paints with xcolor's `\textcolor{deriveLoss}{...}`
(the `\definecolor`s go in the preamble or at the top of a snippet);
Markdown with `{\color{#D55E00}{...}}`, which MathJax 2 and 3 and KaTeX
all read the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .roles import ROLES
from ..errors import SpecError
from .printing import LOSS_SYMBOLS, NOTATIONS, DerivePrinter, to_latex

TARGETS = ("tex", "md")


@dataclass(frozen=True)
class Style:
    """The reader's notation and loss symbol, and the language written (tex or md)."""

    notation: str = "nielsen"
    loss_symbol: str = "L"
    target: str = "tex"
    fold_sums: int = 5
    #: The row layout (spec.training.layout): general weights read W^{(l)}_{kj}, as the
    #: printer already writes a concrete row-layout weight (model.RowWeight).
    row: bool = False
    settings: dict = field(init=False, compare=False, repr=False)

    def __post_init__(self):
        if self.notation not in NOTATIONS:
            raise SpecError(f"notation {self.notation!r}; expected one of {', '.join(NOTATIONS)}")
        if self.loss_symbol not in LOSS_SYMBOLS:
            raise SpecError(f"loss symbol {self.loss_symbol!r}; expected one of {', '.join(LOSS_SYMBOLS)}")
        if self.target not in TARGETS:
            raise ValueError(f"target {self.target!r}; expected one of {', '.join(TARGETS)}")
        object.__setattr__(self, "settings", {"notation": self.notation,
                                              "loss_symbol": self.loss_symbol})
        DerivePrinter(self.settings)  # the printer checks the settings too

    # -- concrete expressions ------------------------------------------------
    def latex(self, expr, **extra) -> str:
        """A SymPy expression printed with this style's settings."""
        # ln, as the loss table writes it, so a document never mixes ln and log
        return to_latex(expr, **self.settings, fold_sums=self.fold_sums, **{"ln_notation": True, **extra})

    @property
    def L(self) -> str:
        return self.loss_symbol

    # -- general formulas ----------------------------------------------------
    @property
    def to(self) -> str:
        """Index letter of the receiving neuron (layer l)."""
        return "j"

    @property
    def frm(self) -> str:
        """Index letter of the sending neuron (layer l-1): k (Nielsen) or i."""
        return "k" if self.notation == "nielsen" else "i"

    def w(self, layer, to, frm) -> str:
        """The weight from neuron `frm` of layer-1 to neuron `to` of `layer` (indices in the
        layout's order: the row layout swaps them, as the user's W<l>[k,j] does)."""
        idx = (to, frm) if (self.notation == "nielsen") != self.row else (frm, to)
        sep = "," if any(len(str(i)) > 1 for i in idx) else ""
        return f"W^{{({layer})}}_{{{sep.join(map(str, idx))}}}"

    @staticmethod
    def sym(kind: str, layer, idx) -> str:
        r"""a^{(l)}_{j}, \delta^{(2)}_{j}, x_{k}: a general network symbol."""
        letter = r"\delta" if kind == "delta" else kind
        sup = "" if layer is None else f"^{{({layer})}}"
        return f"{letter}{sup}_{{{idx}}}"

    def a(self, layer, idx) -> str:
        """a^{(layer)}_{idx}, written x_{idx} for the input layer 0."""
        return self.sym("x", None, idx) if str(layer) == "0" else self.sym("a", layer, idx)

    def partial(self, top: str, bottom: str) -> str:
        return rf"\frac{{\partial {top}}}{{\partial {bottom}}}"

    def inline_partial(self, bottom: str, top: str | None = None) -> str:
        r"""\partial L/\partial W^{(1)}_{11}: a partial derivative for running text."""
        return rf"\partial {top or self.L}/\partial {bottom}"

    def d_loss(self, bottom: str) -> str:
        return self.partial(self.L, bottom)

    # -- colour ----------------------------------------------------------------
    def paint(self, role: str, tex: str) -> str:
        """`tex` in the colour of its chain-rule role."""
        if self.target == "tex":
            return rf"\textcolor{{{ROLES[role].xcolor}}}{{{tex}}}"
        return rf"{{\color{{{ROLES[role].colour}}}{{{tex}}}}}"

    def legend(self) -> list[dict]:
        """The colour key: role, prose name, colour, and the role's name painted."""
        return [{"role": r.name, "name": r.words, "colour": r.colour,
                 "painted": self.paint(r.name, rf"\text{{{r.words}}}"),
                 "square": self.paint(r.name, r"\blacksquare")} for r in ROLES.values()]


def format_number(value: float, digits: int = 9) -> str:
    r"""A float to `digits` significant digits as LaTeX: 0.298371109, 1.5 \times 10^{-5}."""
    if value != value:
        return r"\mathrm{NaN}"
    if value in (float("inf"), float("-inf")):
        return ("-" if value < 0 else "") + r"\infty"
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return rf"{mantissa} \times 10^{{{int(exponent)}}}"
    return text


_PROSE_WORD = re.compile(r"^[A-Za-z]{2,}[,.;:]?$")


def mixed(text: str) -> str:
    r"""A table's note that mixes words and bare LaTeX math, with the math put in $...$.

    >>> mixed(r"f'(z) = 1 and the \tfrac12 cancels the exponent 2")
    "$f'(z) = 1$ and the $\\tfrac12$ cancels the exponent $2$"

    Words of two or more letters are prose; every run of other tokens is math.
    """
    out, math = [], []
    for token in text.split():
        if _PROSE_WORD.match(token):
            if math:
                out.append("$" + " ".join(math) + "$")
                math = []
            out.append(token)
        else:
            math.append(token)
    if math:
        out.append("$" + " ".join(math) + "$")
    return " ".join(out)


def chunks(items: list[str], size: int) -> list[list[str]]:
    """`items` in runs of at most `size`, for breaking a long product over lines."""
    return [items[i:i + size] for i in range(0, len(items), size)] or [[]]
