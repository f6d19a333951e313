r"""The chain rule for one parameter, printed: the LaTeX pieces of `derive which`.

Every function here returns LaTeX (or a few words around it) that a template
places as it is.  Factors are coloured by role with the document's colours
(diagram.py), through a `Colour` that knows its target: MathJax reads
``\color{#D55E00}{...}`` (MathJax 2 and 3 alike); LaTeX reads the xcolor
names that `XCOLOR_DEFINITIONS` define.  Indexed formulas for a general
neuron (``\delta^{(l)}_j``, the \sum over paths) are written by hand here,
from the registry's LaTeX names and identities, because the model's symbols
carry concrete indices only.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .diagram import ROLE_COLOURS, XCOLOR_NAMES
from .formulas import colour_definitions, format_number
from ..calculus.model import Param
from ..calculus.paths import Path
from .printing import factor_partial_latex, loss_symbol, partial_latex, to_latex
from ..spec.registry import A, X, Y

ROLE_WORDS = {"loss": "loss derivative", "activation": "activation derivative",
              "weight": "weight", "input": "input"}


@dataclass(frozen=True)
class Colour:
    """Wraps LaTeX in a role's colour for one target: "md" (MathJax) or "tex" (xcolor)."""

    target: str

    def __call__(self, role: str, tex: str) -> str:
        name = ROLE_COLOURS[role] if self.target == "md" else XCOLOR_NAMES[role]
        return rf"{{\color{{{name}}}{{{tex}}}}}"

    def key(self) -> list[tuple[str, str]]:
        """(coloured square, words) per role, for the colour key."""
        return [(self(role, r"\blacksquare"), ROLE_WORDS[role]) for role in ROLE_COLOURS]

    def definitions(self) -> list[str]:
        return colour_definitions() if self.target == "tex" else []


def number(v: float) -> str:
    """9 significant digits, as LaTeX (1.5 \\times 10^{-7}, not 1.5e-07): the documents' format."""
    return format_number(v)


def number_sum(values: list[float]) -> str:
    """1.5 - 0.25 + 2, not 1.5 + -0.25 + 2."""
    head = [number(values[0])] if values else []
    return "".join(head + [(" - " if v < 0 else " + ") + number(abs(v)) for v in values[1:]])


def _wrapped(expr: sympy.Expr, first: bool) -> str:
    tex = to_latex(expr)
    if isinstance(expr, sympy.Add) or (not first and expr.could_extract_minus_sign()):
        return rf"\left({tex}\right)"
    return tex


#: A path longer than this is printed with its middle elided (\cdots).
SHOWN_FACTORS = 11


def path_product_latex(path: Path, colour: Colour, partial: bool) -> str:
    r"""One path's factors, coloured: as partials (\frac{\partial ...}) or as values."""
    parts = []
    for i, f in enumerate(path):
        tex = factor_partial_latex(f) if partial else _wrapped(f.simplified, i == 0)
        parts.append(colour(f.role, tex))
    if len(parts) > SHOWN_FACTORS:
        parts = parts[:5] + [r"\cdots"] + parts[-4:]
    return r"\,".join(parts)


def path_products(path_list: list[Path], colour: Colour, partial: bool) -> list[str]:
    """Each path's product, coloured; the templates align them as a sum."""
    return [path_product_latex(q, colour, partial) for q in path_list]


# -- indexed formulas for a general neuron -------------------------------------------
def _sym(kind: str, layer: int | str | None, idx: str) -> str:
    letter = {"delta": r"\delta", "W": "W"}.get(kind, kind)
    sup = "" if layer is None else f"^{{({layer})}}"
    return f"{letter}{sup}_{{{idx}}}"


def _frac(top: str, bottom: str) -> str:
    return rf"\frac{{\partial {top}}}{{\partial {bottom}}}"


def sum_form(net, p: Param, colour: Colour) -> str:
    r"""dL/dp as \sum over the indices of the later layers of the product along a path."""
    L, n, l0 = net.model.L, net.model.n, p.layer
    softmax = net.spec.activations[-1].vector
    idx = {t: f"i_{{{t}}}" for t in range(l0 + 1, L + 1)}
    idx[l0] = str(p.j)
    out = "o" if softmax else idx[L]
    sums = [rf"\sum_{{{idx[t]}=1}}^{{{n[t]}}}" for t in range(L, l0, -1)]
    if softmax:
        sums.insert(0, rf"\sum_{{o=1}}^{{{n[L]}}}")
    factors = [colour("loss", _frac(loss_symbol(), _sym("a", L, out)))]
    for t in range(L, l0 - 1, -1):
        top = out if t == L else idx[t]
        factors.append(colour("activation", _frac(_sym("a", t, top), _sym("z", t, idx[t]))))
        if t > l0:
            factors.append(colour("weight", _sym("W", t, f"{idx[t]} {idx[t - 1]}")))
    if p.kind == "W":
        factors.append(colour("input", to_latex(net.model.a(l0 - 1, p.k))))
    if L - l0 > 3:  # deep: the first and last layers of the path, the middle elided
        factors = factors[:3] + [r"\cdots"] + factors[-3:]
        sums = sums[:2] + [r"\cdots"] + sums[-1:]
    return " ".join(sums) + r"\;" + r"\,".join(factors)


def factored_latex(net, p: Param) -> str:
    r"""dL/dp in backprop's notation: \delta^{(l)}_j a^{(l-1)}_k, or \delta^{(l)}_j."""
    d = to_latex(net.model.delta(p.layer, p.j))
    return rf"{d}\, {to_latex(net.model.a(p.layer - 1, p.k))}" if p.kind == "W" else d


def _derivative_in(net, l: int, layer: int | str, j: str = "j") -> str:
    """f_l'(z^{(layer)}_j) as the table writes it: in a^{(layer)}_j where it can;
    in parentheses when it is a sum, since it is always multiplied."""
    row = net.spec.activations[l - 1]
    if row.in_terms_of_a is not None:
        expr, names = row.in_terms_of_a(A), {A: _sym("a", layer, j)}
    else:
        expr, names = row.derivative(), {X: _sym("z", layer, j)}
    tex = to_latex(expr, symbol_names=names)
    return rf"\left({tex}\right)" if isinstance(expr, sympy.Add) else tex


def _output_delta(net) -> str:
    """delta^{(L)}_j for a general j: its definition, then this network's form."""
    L = net.model.L
    row, loss = net.spec.activations[-1], net.spec.loss
    a_j, a_i = _sym("a", L, "j"), _sym("a", L, "i")
    if row.vector:
        head = (rf"\sum_{{i=1}}^{{{net.model.n[L]}}} {_frac(loss_symbol(), a_i)}\,"
                rf"\frac{{\partial {a_i}}}{{\partial {_sym('z', L, 'j')}}}")
        if loss.name == "cross_entropy":
            return rf"{head} = {a_j} - y_{{j}}"
        term = to_latex(net.derivation.loss_term_derivative, symbol_names={A: a_i, Y: "y_{i}"})
        return rf"{head} = \sum_{{i}} \left({term}\right) {a_i}\left(\delta_{{ij}} - {a_j}\right)"
    head = rf"{_frac(loss_symbol(), a_j)}\,{row.latex}'\!\left({_sym('z', L, 'j')}\right)"
    term = to_latex(net.simplifier.output_term, symbol_names={A: a_j, Y: "y_{j}"})
    if row.in_terms_of_a is None:
        term = rf"\left({term}\right) {_derivative_in(net, L, L)}"
    return rf"{head} = {term}"


def _hidden_runs(net) -> list[tuple[int, int]]:
    """(low, high) runs of hidden layers, from the top, sharing activation and width."""
    acts, n, runs = net.spec.activations, net.model.n, []
    high = net.model.L - 1
    while high >= 1:
        low = high
        while low > 1 and acts[low - 2] is acts[high - 1] and n[low - 1] == n[high]:
            low -= 1
        runs.append((low, high))
        high = low - 1
    return runs


def delta_lines(net) -> list[str]:
    """Rows of an `aligned` block: the delta recursion specialised to this network."""
    L = net.model.L
    lines = [rf"{_sym('delta', L, 'j')} &= {_output_delta(net)}"]
    for low, high in _hidden_runs(net):
        layer, up = (high, high + 1) if low == high else ("l", "l+1")
        back = rf"\Big(\sum_{{i}} {_sym('W', up, 'ij')}\,{_sym('delta', up, 'i')}\Big)"
        where = "" if low == high else rf"\qquad (l = {low}, \dots, {high})"
        lines.append(rf"{_sym('delta', layer, 'j')} &= {back}\,{_derivative_in(net, high, layer)}{where}")
    rule = rf"{_frac(loss_symbol(), _sym('W', 'l', 'jk'))} &= {_sym('delta', 'l', 'j')}\,{_sym('a', 'l-1', 'k')}"
    if net.spec.bias:
        rule += rf", \qquad {_frac(loss_symbol(), _sym('b', 'l', 'j'))} = {_sym('delta', 'l', 'j')}"
    return lines + [rule]


# -- words ------------------------------------------------------------------------------
def layers_words(layers: list[int]) -> str:
    """'layer 2', 'layers 2 and 1', 'layers 3, 2 and 1', 'layers 31 to 1' (consecutive)."""
    names = [str(l) for l in layers]
    if len(names) == 1:
        return f"layer {names[0]}"
    if len(names) > 3:
        return f"layers {names[0]} to {names[-1]}"
    return "layers " + ", ".join(names[:-1]) + " and " + names[-1]


def count_words(count: int) -> str:
    """A path count for prose: exact up to a million, then 'about 1.7 \times 10^{35}' in math."""
    if count <= 10**6:
        return str(count)
    mantissa, exponent = f"{count:.1e}".split("e")
    return rf"about ${mantissa} \times 10^{{{int(exponent)}}}$"


def derivative_name(net, l: int) -> str:
    row = net.spec.activations[l - 1]
    return r"the softmax Jacobian" if row.vector else f"${row.latex}'$"


def network_words(net) -> dict:
    spec = net.spec
    rows = spec.activations
    if all(r is rows[0] for r in rows):
        acts = f"${rows[0].latex}$ in every layer"
    else:
        acts = ", ".join(f"${r.latex}$ in layer {l}" for l, r in enumerate(rows, start=1))
    return {"shape": "-".join(map(str, spec.layers)), "activations": acts,
            "loss": spec.loss.latex, "output_partial": _frac(loss_symbol(), _sym("a", spec.depth, "i")),
            "cancels": net.simplifier.cancellation() is not None, "depth": spec.depth,
            # softmax + cross-entropy cancels only because the targets sum to 1: say so
            "cancel_note": (r" (this uses $\sum_j y_j = 1$: the targets are a distribution)"
                            if spec.activations[-1].vector else "")}


def param_words(net, p: Param) -> dict:
    """The facts the opening paragraph states about p: which derivatives, which weights."""
    L = net.model.L
    between = list(range(L, p.layer - 1, -1))
    return {"name": p.name, "symbol": to_latex(net.model.symbol(p)), "layer": p.layer,
            "activation_layers": layers_words(between), "several_layers": len(between) > 1,
            "activation_names": " and ".join(dict.fromkeys(derivative_name(net, l) for l in between)),
            "weight_layers": layers_words(list(range(L, p.layer, -1))) if p.layer < L else None,
            "input": to_latex(net.model.a(p.layer - 1, p.k)) if p.kind == "W" else None,
            "lhs": partial_latex(p)}
