r"""What a document says about a network, as printed math for the templates.

Each `*_section` function returns a plain dict of strings (LaTeX already
printed by a `formulas.Style`) and small lists; templates only arrange them.
The formulas come from the derivation itself: local derivatives from the
registry rows through `sympy.diff` (or the row's identity in a, as the
simplifier uses), the output delta from `Simplifier.output_delta`, concrete
forward equations from `SymbolicModel`.  A row's formula in its own symbols
(a, y, x) is printed for "neuron j of layer l" by `general`, which swaps
those symbols for printed names.

Sizes decide how much is written out: concrete equations per neuron only
for small networks (`SMALL_NEURONS`); layers with the same activation are
described once ("layers 1-29, tanh") so a 30-layer network stays short.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .formulas import Style, mixed
from .rows import (activation_derivative, definition, fprime, general, loss_derivative,
                   loss_derivative_expr, output_delta_general, output_names, parens, vparens)
from ..spec.registry import LOSSES, A, X, Y, Activation

if TYPE_CHECKING:
    from ..api import Network

#: Networks with at most this many neurons (all layers) get every forward equation.
SMALL_NEURONS = 12
DELTA = r"\delta"
#: Output layers up to this width get the loss written out term by term.
SMALL_OUTPUTS = 4


def layer_groups(net: Network, first: int = 1, last: int | None = None):
    """Runs of consecutive layers with the same activation: (first, last, row)."""
    last = net.spec.depth if last is None else last
    groups: list[list] = []
    for l in range(first, last + 1):
        row = net.spec.activations[l - 1]
        if groups and groups[-1][2] is row and groups[-1][1] == l - 1:
            groups[-1][1] = l
        else:
            groups.append([l, l, row])
    return [tuple(g) for g in groups]


def layer_range(first: int, last: int) -> str:
    """'l = 2' or 'l = 1, \\dots, 29' (LaTeX)."""
    if first == last:
        return f"l = {first}"
    return f"l = {first}, {last}" if last == first + 1 else rf"l = {first}, \dots, {last}"


# -- section 1: the network ------------------------------------------------------
def network_section(net: Network, style: Style) -> dict:
    spec = net.spec
    rows = [{"layers": "0 (input)", "width": spec.layers[0], "activation": "", "params": ""}]
    for first, last, row in layer_groups(net):
        n = spec.layers[first]
        widths = {spec.layers[l] for l in range(first, last + 1)}
        label = str(first) if first == last else f"{first}{_dash(style)}{last}"
        if len(widths) > 1:  # same activation, different widths: one row per layer
            for l in range(first, last + 1):
                rows.append(_layer_row(spec, str(l), l, l, row))
            continue
        rows.append(_layer_row(spec, label, first, last, row))
        assert n == spec.layers[last]
    return {
        "depth": spec.depth, "inputs": spec.layers[0], "outputs": spec.layers[-1],
        "sizes": _sizes(spec.layers, style), "parameters": spec.parameter_count,
        "bias": spec.bias, "rows": rows,
        "loss_name": spec.loss.name, "loss_note": loss_note(spec.loss),
        "loss": rf"{style.L} = {spec.loss.latex}",
        "definitions": [definition(style, row) for row in _distinct(spec.activations)],
        "kink": any(row.kink for row in spec.activations),
        "z": _z_general(spec, style),
        "a": r"a^{(l)}_{j} = f_l\bigl(z^{(l)}_{j}\bigr)",
        "a0": r"a^{(0)}_{k} = x_{k}" if style.notation == "nielsen" else r"a^{(0)}_{i} = x_{i}",
        "weight": style.w("l", "j", style.frm), "to": style.to, "from": style.frm,
        "example_weight": style.latex(net.model.W(1, 1, spec.layers[0])),
        "example_from": spec.layers[0],
        "notation": style.notation, "loss_symbol": style.L, "row": spec.row_layout,
    }


def _z_general(spec, style: Style) -> str:
    """z_j = sum_k W_jk a_k + b_j; in the row layout a_k W_kj, as Z = A W + b reads."""
    w, a = style.w("l", "j", style.frm), rf"a^{{(l-1)}}_{{{style.frm}}}"
    terms = rf"{a}\, {w}" if spec.row_layout else rf"{w}\, {a}"
    return rf"z^{{(l)}}_{{j}} = \sum_{{{style.frm}}} {terms}" + (r" + b^{(l)}_{j}" if spec.bias else "")


def default_title(spec) -> str:
    """'Backpropagation in a 2-3-1 sigmoid network' for a spec without a title."""
    names = list(dict.fromkeys(row.name for row in spec.activations))
    acts = names[0] if len(names) == 1 else ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
    sizes = "-".join(map(str, spec.layers)) if len(spec.layers) <= 8 else \
        f"{spec.depth}-layer, width-{max(spec.layers)}"
    return f"Backpropagation in a {sizes} {acts} network"


def _dash(style: Style) -> str:
    """An en dash for number ranges: TeX's -- or the character itself."""
    return "--" if style.target == "tex" else "\u2013"


def loss_note(loss) -> str:
    """The row's note: prose for a table row, prose with $math$ for a custom loss."""
    return loss.note if LOSSES.get(loss.name) is loss else mixed(loss.note)


def _sizes(layers, style: Style) -> str:
    """'2-3-1', or '16-16-...-16' when long (en dashes in LaTeX)."""
    dash, dots = ("--", r"\ldots") if style.target == "tex" else ("-", "\u2026")
    if len(layers) <= 8:
        return dash.join(map(str, layers))
    return dash.join([str(layers[0]), str(layers[1]), dots, str(layers[-1])])


def _layer_row(spec, label: str, first: int, last: int, row: Activation) -> dict:
    n = spec.layers[first]
    per = spec.layer_parameter_count(first)
    count = sum(spec.layer_parameter_count(l) for l in range(first, last + 1))
    # "tanh (tanh)" says it twice: the name is shown only where the symbol differs
    return {"layers": label, "width": n, "activation": row.latex, "name": row.name,
            "same_name": row.latex.lstrip("\\") == row.name,
            "params": str(count) if first == last else f"{count} ({per} each)"}


def _distinct(rows):
    out = []
    for row in rows:
        if all(row is not r for r in out):
            out.append(row)
    return out


# -- section 2: the forward pass -------------------------------------------------
def forward_section(net: Network, style: Style) -> dict:
    spec, m = net.spec, net.model
    small = sum(spec.layers[1:]) <= SMALL_NEURONS and max(spec.layers) <= SMALL_OUTPUTS + 2
    layers = []
    if small:
        for l in range(1, spec.depth + 1):
            row = spec.activations[l - 1]
            zs = [m.z(l, i) for i in range(1, spec.layers[l] + 1)]
            rows = [{"z": style.latex(m.z(l, j)), "z_rhs": style.latex(m.z_definition(l, j)),
                     "a": style.latex(m.a(l, j)),
                     "a_rhs": (style.latex(m.activation_of(l, j, zs)) if row.vector
                               else rf"{row.latex}\left({style.latex(m.z(l, j))}\right)")}
                    for j in range(1, spec.layers[l] + 1)]
            layers.append({"layer": l, "rows": rows})
    concrete_loss = (rf"{style.L} = {style.latex(m.loss)}"
                     if spec.layers[-1] <= SMALL_OUTPUTS else None)
    return {"small": small, "layers": layers, "loss": rf"{style.L} = {spec.loss.latex}",
            "loss_symbols": rf"a_{{j}} = a^{{({spec.depth})}}_{{j}}",
            "concrete_loss": concrete_loss}


# -- section 3: the local derivatives, by role -----------------------------------
def local_section(net: Network, style: Style) -> dict:
    spec, L = net.spec, net.spec.depth
    loss = style.paint("loss", style.d_loss(style.sym("a", L, "j"))) + " = " + loss_derivative(style, net)
    acts = []
    for first, last, row in layer_groups(net):
        layer = first if first == last else "l"
        if row.vector:
            lhs = style.partial(style.sym("a", layer, "i"), style.sym("z", layer, "m"))
            rhs = rf"a^{{({layer})}}_{{i}}\bigl([i = m] - a^{{({layer})}}_{{m}}\bigr)"
        else:
            lhs = style.partial(style.sym("a", layer, "j"), style.sym("z", layer, "j"))
            rhs = activation_derivative(style, row, layer)
        acts.append({"range": layer_range(first, last), "name": row.name, "note": row.note,
                     "equation": style.paint("activation", lhs) + " = " + rhs, "vector": row.vector})
    w_lhs = style.partial(style.sym("z", "l+1", "m"), style.sym("a", "l", "j"))
    weight = style.paint("weight", w_lhs) + " = " + style.w("l+1", "m", "j")
    i_lhs = style.partial(style.sym("z", "l", "j"), style.w("l", "j", style.frm))
    inp = style.paint("input", i_lhs) + " = " + style.a("l-1", style.frm)
    bias = style.paint("input", style.partial(style.sym("z", "l", "j"), style.sym("b", "l", "j"))) + " = 1"
    return {"loss": loss, "activations": acts, "weight": weight, "input": inp,
            "bias": bias if spec.bias else None, "legend": style.legend(),
            "softmax": spec.softmax_output}


# -- section 5: the delta recursion and the four equations -----------------------
def recursion_section(net: Network, style: Style) -> dict:
    """The delta recursion: each equation as lhs and rhs, so that `derive which`
    aligns the same equations (chain.delta_lines) that the document displays."""
    spec, L = net.spec, net.spec.depth
    out_row = spec.activations[-1]
    why = net.simplifier.cancellation()
    d_L = style.sym("delta", L, "j")
    if out_row.vector:
        general_out = rf"\sum_{{i}} \frac{{\partial {style.L}}}{{\partial a^{{({L})}}_{{i}}}}\, " \
                      rf"\frac{{\partial a^{{({L})}}_{{i}}}}{{\partial z^{{({L})}}_{{j}}}}"
        a_ = lambda i: rf"a^{{({L})}}_{{{i}}}"  # noqa: E731
        # the step behind p - y: the Jacobian against -y_i/a_i, then sum(y) = 1
        special = (rf"\sum_{{i}} \Bigl(-\frac{{y_{{i}}}}{{{a_('i')}}}\Bigr)\, {a_('i')}\bigl([i = j] - {a_('j')}\bigr)"
                   rf" = {a_('j')} \sum_{{i}} y_{{i}} - y_{{j}} = {a_('j')} - y_{{j}}" if why else
                   rf"a^{{({L})}}_{{j}}\Bigl(g_{{j}} - \sum_{{i}} a^{{({L})}}_{{i}}\, g_{{i}}\Bigr),"
                   rf"\quad g_{{i}} = {loss_derivative(style, net, 'i')}")
    else:
        general_out = rf"{style.d_loss(style.sym('a', L, 'j'))}\, {out_row.latex}'\bigl(z^{{({L})}}_{{j}}\bigr)"
        special = general(style, output_delta_general(net), output_names(style, L))
    hidden = []
    for first, last, row in layer_groups(net, 1, L - 1):
        layer = first if first == last else "l"
        back = rf"\sum_{{m}} {style.w(_plus(layer), 'm', 'j')}\, {style.sym('delta', _plus(layer), 'm')}"
        lhs = style.sym("delta", layer, "j")
        rhs = rf"\Bigl({back}\Bigr)\, " + parens(activation_derivative(style, row, layer), fprime(row))
        hidden.append({"range": layer_range(first, last), "name": row.name, "lhs": lhs, "rhs": rhs,
                       "several": first != last,
                       "equation": f"{lhs} = {rhs}"})
    return {"output": f"{d_L} = {general_out}", "output_lhs": d_L, "output_rhs": general_out,
            "output_special": special, "cancellation": mixed(why) if why else None,
            "output_name": out_row.name, "loss_name": spec.loss.name, "hidden": hidden,
            "gradient_w": rf"{style.d_loss(style.w('l', 'j', style.frm))} = "
                          rf"{style.sym('delta', 'l', 'j')}\, {style.a('l-1', style.frm)}",
            "gradient_b": rf"{style.d_loss(style.sym('b', 'l', 'j'))} = {style.sym('delta', 'l', 'j')}"
                          if spec.bias else None,
            "matrix": matrix_form(net, style), "depth": L}


def _plus(layer) -> str | int:
    return layer + 1 if isinstance(layer, int) else "l+1"


def matrix_form(net: Network, style: Style) -> dict:
    """The four backprop equations, general and with this network's functions."""
    spec, L = net.spec, net.spec.depth
    bold = lambda s, l: rf"\boldsymbol{{{s}}}^{{({l})}}"  # noqa: E731
    out_row = spec.activations[-1]
    if out_row.vector:
        bp1 = rf"{bold(DELTA, L)} = J^{{\top}}\, \nabla_{{{bold('a', L)}}} {style.L},\quad " \
              rf"J = \operatorname{{diag}}\bigl({bold('a', L)}\bigr) - {bold('a', L)} \bigl({bold('a', L)}\bigr)^{{\top}}"
    else:
        bp1 = rf"{bold(DELTA, L)} = \nabla_{{{bold('a', L)}}} {style.L} \odot {out_row.latex}'\bigl({bold('z', L)}\bigr)"
    if net.simplifier.cancellation():
        vec = {A: bold("a", L), Y: r"\boldsymbol{y}", X: bold("z", L)}
        bp1_special = general(style, output_delta_general(net), vec)
    elif out_row.vector:
        bp1_special = None
    else:
        grad = vparens(loss_derivative(style, net, vector=True), loss_derivative_expr(net))
        f_out = vparens(activation_derivative(style, out_row, L, vector=True), fprime(out_row))
        bp1_special = rf"{grad} \odot {f_out}"
    hidden = []
    back = lambda up: (rf"{bold(DELTA, up)} \bigl(W^{{({up})}}\bigr)^{{\top}}" if spec.row_layout  # noqa: E731
                       else rf"\bigl(W^{{({up})}}\bigr)^{{\top}} {bold(DELTA, up)}")
    for first, last, row in layer_groups(net, 1, L - 1):
        l = first if first == last else "l"  # one layer: its number, not "for l = 1: ... (l)"
        f_l = vparens(activation_derivative(style, row, l, vector=True), fprime(row))
        hidden.append({"range": layer_range(first, last),
                       "equation": rf"{bold(DELTA, l)} = {back(_plus(l))} \odot {f_l}"})
    return {
        "bp1": bp1, "bp1_special": bp1_special,
        "bp2": rf"{bold(DELTA, 'l')} = {back('l+1')} \odot f_l'\bigl({bold('z', 'l')}\bigr)",
        "bp2_special": hidden,
        "bp3": rf"\frac{{\partial {style.L}}}{{\partial {bold('b', 'l')}}} = {bold(DELTA, 'l')}"
               if spec.bias else None,
        # the row layout: row vectors, W(l) n_(l-1) x n_l, so the outer product is a^T delta
        "bp4": rf"\frac{{\partial {style.L}}}{{\partial W^{{(l)}}}} = " + (
            rf"\bigl({bold('a', 'l-1')}\bigr)^{{\top}} {bold(DELTA, 'l')}" if spec.row_layout else
            rf"{bold(DELTA, 'l')} \bigl({bold('a', 'l-1')}\bigr)^{{\top}}"),
        "row": spec.row_layout,
    }
