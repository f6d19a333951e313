"""LaTeX for derived expressions: SymPy's LatexPrinter plus our symbols.

`DerivePrinter` adds `_print_NetSymbol` (W^{(2)}_{13}, a^{(1)}_{2}, x_{1},
\\delta^{(2)}_{1}) and recurses only through `self._print`, so everything
else is SymPy's own.  Settings are a dict of defaults: an unknown key raises
TypeError (SymPy's Printer does that), a bad value ValueError naming the
valid ones.  `notation` chooses how a weight's indices read: "nielsen"
writes W(l)_jk with the receiving neuron first (from k to j, Nielsen's
book); "ij" writes the same weight with the sending neuron first, w_ij read
"from i to j", as many course notes do.

Products and sums print in textbook shape (`calculus.simplify.textbook_factors`,
`natural_order`): 2 a (1 - a)(a - y) x rather than SymPy's 2 a x (-a + y)(a - 1),
2/3 (a - y) rather than 2a/3 - 2y/3, and the terms of a sum in numeric index
order (9 before 10).  Only the layout changes: the printed formula is the same
expression (tests/test_printing.py evaluates both).

A two-piece `Piecewise` (the ReLU family's derivatives) prints as Iverson
brackets, [z > 0] + 0.01 [z <= 0], one line instead of a `cases` block
repeated in every factor of a product; [c] is 1 where c holds, else 0.

`fold_sums` (documents set it) prints a back-propagated sum
W(l)_1j delta(l)_1 + ... + W(l)_nj delta(l)_n with n >= fold_sums terms as
\\sum_{m=1}^{n} W^{(l)}_{m,j} \\delta^{(l)}_{m}, so a width-16 layer's
delta fits on a line; 0 (the default) never folds.
"""

from __future__ import annotations

import sympy
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from sympy.printing.precedence import PRECEDENCE

from ..calculus.model import NetSymbol, RowWeight
from ..calculus.paths import LOSS
from ..calculus.simplify import natural_order, textbook_factors

NOTATIONS = ("nielsen", "ij")
LOSS_SYMBOLS = ("L", "C", "E")


class _TextbookShape:
    """Printer mixin: products with their number in front and their sums in reading
    sign, sums in numeric index order; `_lead` writes "number, then product"."""

    def _as_ordered_terms(self, expr, order=None):
        return natural_order(super()._as_ordered_terms(expr, order=order))

    def _shaped(self, expr, top_sum: bool = False) -> str | None:
        shaped = textbook_factors(expr, top_sum)
        if shaped is None:
            return None
        coeff, factors = shaped
        body = sympy.Mul(*factors)
        text = self.parenthesize(body, PRECEDENCE["Mul"], strict=False) if body.is_Add else (
            self._print(body) if not body.is_Mul else super()._print_Mul(body))
        return self._lead(coeff, text)

    def _print_Mul(self, expr):
        shaped = self._shaped(expr)
        return shaped if shaped is not None else super()._print_Mul(expr)


class DerivePrinter(_TextbookShape, LatexPrinter):
    """LatexPrinter that typesets network symbols."""

    _default_settings = {**LatexPrinter._default_settings,
                         "notation": "nielsen", "loss_symbol": "L", "weight_letter": "W",
                         "fold_sums": 0}

    def __init__(self, settings=None):
        super().__init__(settings)
        if self._settings["notation"] not in NOTATIONS:
            raise ValueError(f"notation {self._settings['notation']!r}; expected one of {', '.join(NOTATIONS)}")
        if self._settings["loss_symbol"] not in LOSS_SYMBOLS:
            raise ValueError(f"loss_symbol {self._settings['loss_symbol']!r}; "
                             f"expected one of {', '.join(LOSS_SYMBOLS)}")
        fold = self._settings["fold_sums"]
        if isinstance(fold, bool) or not isinstance(fold, int) or fold < 0:
            raise ValueError(f"fold_sums {fold!r}; expected a non-negative integer (0: never fold)")

    @property
    def settings(self) -> dict:
        """The settings in effect (defaults filled in), for code that prints alongside."""
        return dict(self._settings)

    @staticmethod
    def _sub(idx) -> str:
        sep = "," if any(i >= 10 for i in idx) else ""
        return sep.join(str(i) for i in idx)

    def _print_NetSymbol(self, s: NetSymbol) -> str:
        kind, layer, idx = s.kind, s.layer, s.shown_idx
        if kind == "W":
            idx = idx if self._settings["notation"] == "nielsen" else idx[::-1]
            letter = self._settings["weight_letter"]
        else:
            letter = {"delta": r"\delta"}.get(kind, kind)
        sup = "" if layer is None else f"^{{({layer})}}"
        return f"{letter}{sup}_{{{self._sub(idx)}}}"

    def _lead(self, coeff: sympy.Rational, body: str) -> str:
        sign, c = ("- " if coeff < 0 else ""), abs(coeff)
        number = "" if c == 1 else (f"{c.p} " if c.q == 1 else rf"\frac{{{c.p}}}{{{c.q}}} ")
        return f"{sign}{number}{body}"

    def _print_Piecewise(self, expr):
        """e1 [c] + e2 [not c] for two pieces, the last one's condition True."""
        terms = self._iverson_terms(expr)
        return super()._print_Piecewise(expr) if terms is None else " + ".join(terms) or "0"

    def _iverson_terms(self, expr) -> list[str] | None:
        if len(expr.args) != 2 or expr.args[1].cond is not sympy.true:
            return None
        (e1, c), (e2, _) = expr.args
        return [self._iverson(e, cond) for e, cond in ((e1, c), (e2, sympy.Not(c))) if e != 0]

    def _needs_mul_brackets(self, expr, first=False, last=False) -> bool:
        # one bracket [z > 0] needs no parentheses in a product; a sum of them does
        terms = self._iverson_terms(expr) if isinstance(expr, sympy.Piecewise) else None
        if terms is None:
            return super()._needs_mul_brackets(expr, first, last)
        return len(terms) > 1

    def _iverson(self, e, cond) -> str:
        bracket = rf"\left[{self._print(cond)}\right]"
        if e == 1:
            return bracket
        factor = self._print(e)
        return (rf"\left({factor}\right)" if isinstance(e, sympy.Add) else factor) + rf"\, {bracket}"

    def _print_Add(self, expr, order=None):
        folded = self._folded_sum(expr) if self._settings["fold_sums"] else None
        if folded is not None:
            return folded
        shaped = self._shaped(expr, top_sum=True)
        if shaped is not None:
            return shaped
        parts = []  # LatexPrinter's loop, with the sign read off the printed term
        for term in self._as_ordered_terms(expr, order=order):
            tex = self._print(term)
            if self._needs_add_brackets(term):
                tex = rf"\left({tex}\right)"
            if not parts:
                parts.append(tex)
            elif tex.startswith("-"):
                parts.append(f"- {tex[1:].lstrip()}")
            else:
                parts.append(f"+ {tex}")
        return " ".join(parts)

    def _folded_sum(self, expr) -> str | None:
        r"""\sum_{m=1}^{n} W^{(l)}_{m,j} \delta^{(l)}_{m} if `expr` is exactly that sum."""
        n = len(expr.args)
        if n < self._settings["fold_sums"]:
            return None
        seen = set()
        for term in expr.args:
            factors = term.args if isinstance(term, sympy.Mul) else ()
            syms = sorted((f for f in factors if isinstance(f, NetSymbol)), key=lambda f: f.kind)
            if len(factors) != 2 or len(syms) != 2 or [f.kind for f in syms] != ["W", "delta"]:
                return None
            w, d = syms
            if w.layer != d.layer or w.idx[0] != d.idx[0]:
                return None
            seen.add((w.layer, w.idx[1], d.idx[0]))
        layers, columns = {s[0] for s in seen}, {s[1] for s in seen}
        if len(layers) != 1 or len(columns) != 1 or {s[2] for s in seen} != set(range(1, n + 1)):
            return None
        l, j = layers.pop(), columns.pop()
        idx = f"m,{j}" if self._settings["notation"] == "nielsen" else f"{j},m"
        letter = self._settings["weight_letter"]
        return rf"\sum_{{m=1}}^{{{n}}} {letter}^{{({l})}}_{{{idx}}} \delta^{{({l})}}_{{m}}"


def to_latex(expr, **settings) -> str:
    """LaTeX of a SymPy expression with network symbols typeset."""
    if not isinstance(expr, sympy.Basic):  # a plain number from our own code
        expr = sympy.Integer(expr) if isinstance(expr, int) else sympy.Float(expr)
    return DerivePrinter(settings).doprint(expr)


def symbol_latex(kind: str, layer: int | None, *idx: int, **settings) -> str:
    """LaTeX of one network symbol, e.g. symbol_latex("W", 2, 1, 3)."""
    return to_latex(NetSymbol.make(kind, layer, *idx), **settings)


def loss_symbol(**settings) -> str:
    return DerivePrinter(settings).settings["loss_symbol"]


def partial_latex(p, **settings) -> str:
    r"""\frac{\partial L}{\partial W^{(l)}_{jk}} for a `Param`."""
    if p.kind == "W":
        sym = RowWeight.make_row(p.layer, p.j, p.k) if p.row else NetSymbol.make("W", p.layer, p.j, p.k)
    else:
        sym = NetSymbol.make("b", p.layer, p.j)
    return rf"\frac{{\partial {loss_symbol(**settings)}}}{{\partial {to_latex(sym, **settings)}}}"


class TextPrinter(_TextbookShape, StrPrinter):
    """Plain text in the names a user types: W2[1,3], a1[2], x[1], delta2[1].

    The same syntax `derive claim` reads, so a formula from a table can be
    pasted back as a claim.
    """

    def _print_NetSymbol(self, s: NetSymbol) -> str:
        layer = "" if s.layer is None else str(s.layer)
        return f"{s.kind}{layer}[{','.join(map(str, s.shown_idx))}]"

    def _lead(self, coeff: sympy.Rational, body: str) -> str:
        sign, c = ("-" if coeff < 0 else ""), abs(coeff)
        return f"{sign}{'' if c == 1 else f'{c}*'}{body}"

    def _print_Add(self, expr, order=None):
        shaped = self._shaped(expr, top_sum=True)
        return shaped if shaped is not None else super()._print_Add(expr, order)


def to_text(expr) -> str:
    """A derived expression as plain text with user-facing names."""
    return TextPrinter().doprint(expr)


def factor_partial_latex(factor, **settings) -> str:
    r"""\frac{\partial a^{(2)}_{1}}{\partial z^{(2)}_{1}} for one `calculus.paths.Factor`."""
    top = loss_symbol(**settings) if factor.numerator == LOSS else to_latex(factor.numerator, **settings)
    return rf"\frac{{\partial {top}}}{{\partial {to_latex(factor.denominator, **settings)}}}"
