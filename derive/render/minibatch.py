r"""From one example to the minibatch: the document's batch section, as printed math.

Sections 3-5 of a document derive one example's loss L_[n].  A network with a
minibatch, a regulariser or the row layout (spec/training.py) gets one more
section, `batch_section`, which takes that derivation to the loss that is
trained, L = s sum_n L_[n] + R:

- the sum over the batch: dL/dW = s sum_n (delta a^T)_[n] + dR/dW and the bias
  gradient s sum_n delta_[n], written by batchform.py's `batch_latex` (the
  sentence `derive grad` and `which` use too), with why a bias sums (b enters
  every example's z with coefficient 1);
- where the 1/m sits: derive multiplies the sum by it; the generated code folds it
  into the output delta; Ng's course keeps dZ = A - Y and writes dW = (1/m) dZ A^T;
- the regulariser's own gradient, added once and not divided by m;
- the matrix form in the network's layout with each factor's shape written under
  it (\underset, which amsmath and MathJax 3 both read), general and per layer, so
  the reader sees why the transpose is needed.

The worked example's batch tables are in `minibatch_example.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .formulas import Style, format_number
from .batchform import batch_latex, scale_latex

if TYPE_CHECKING:
    from ..api import Network

#: Layers whose matrix form is written out with their own sizes (deeper: the general form).
LISTED_LAYERS = 4


def shown(spec) -> bool:
    """Whether a document has the batch section: a minibatch, a regulariser or the row layout."""
    return not spec.training.single or spec.row_layout


def reg_latex(spec, w: str) -> str:
    r"""dR/dw for a weight printed `w`: \lambda_{2} w + \lambda_{1} sign(w), the terms in use."""
    reg = spec.regularization
    terms = ([rf"\lambda_{{2}} {w}"] if reg.l2 else []) + \
        ([rf"\lambda_{{1}} \operatorname{{sign}}\left({w}\right)"] if reg.l1 else [])
    return " + ".join(terms)


def penalty_latex(spec, style: Style) -> str | None:
    r"""R = \frac{\lambda_2}{2} \sum w^2 + \lambda_1 \sum |w|, or None without a regulariser."""
    reg = spec.regularization
    if not reg.active:
        return None
    w = style.w("l", style.to, style.frm)
    over = "" if not reg.biases else r" \;(\text{and the biases})"
    terms = ([rf"\frac{{\lambda_{{2}}}}{{2}} \sum_{{l,{style.to},{style.frm}}} \bigl({w}\bigr)^{{2}}"]
             if reg.l2 else []) + \
        ([rf"\lambda_{{1}} \sum_{{l,{style.to},{style.frm}}} \bigl|{w}\bigr|"] if reg.l1 else [])
    return "R = " + " + ".join(terms) + over


def reg_values(spec) -> str:
    r"""'\lambda_{2} = 0.01' (and \lambda_{1}), the coefficients' values."""
    reg = spec.regularization
    return ", ".join(rf"\lambda_{{{i}}} = {format_number(v)}" for i, v in (("2", reg.l2), ("1", reg.l1)) if v)


def batch_section(net: Network, style: Style) -> dict | None:
    """The section's printed math and flags; None for one example, no regulariser, column layout."""
    spec, model = net.spec, net.model
    if not shown(spec):
        return None
    t, L = spec.training, style.L
    w = style.w("l", style.to, style.frm)
    per_w = rf"{style.sym('delta', 'l', style.to)}\, {style.a('l-1', style.frm)}"
    b = style.sym("b", "l", style.to)
    total = rf"{L} = {scale_latex(model)}\sum_{{n=1}}^{{m}} {L}_{{[n]}}" if t.batched else f"{L} = {L}_{{[1]}}"
    penalty = penalty_latex(spec, style)
    b_reg = reg_latex(spec, b) if spec.regularization.covers("b") else ""
    shown_layers = range(spec.depth, max(spec.depth - LISTED_LAYERS, 0), -1)  # from the output back
    return {
        "m": t.batch, "batched": t.batched, "mean": t.reduction == "mean", "row": t.row,
        "loss": total + (" + R" if penalty else ""), "penalty": penalty,
        "penalty_values": reg_values(spec), "biases_regularized": spec.regularization.covers("b"),
        "per_example": rf"{L}_{{[n]}}",
        "weight": rf"{style.d_loss(w)} = {batch_latex(model, per_w, reg_latex(spec, w))}",
        "bias": (f"{style.d_loss(b)} = {batch_latex(model, style.sym('delta', 'l', style.to), b_reg)}"
                 if spec.bias else None),
        "bias_input": rf"\partial z^{{(l)}}_{{{style.to},[n]}}/\partial {b} = 1",
        "reg_weight": reg_latex(spec, w) or None, "l2": spec.regularization.l2 != 0,
        "ng": ng_convention(spec), "folded": folded_convention(spec, style),
        "matrix": matrix_lines(spec, style, general_sizes()),
        "layers": [{"layer": l, "lines": matrix_lines(spec, style, layer_sizes(spec, l))}
                   for l in shown_layers],
        "all_layers": spec.depth <= LISTED_LAYERS,
        "transpose": transpose_reason(spec),
    }


def ng_convention(spec) -> dict:
    """Andrew Ng's course: dZ = A - Y without 1/m, the 1/m in dW and db (column layout)."""
    return {"dz": r"dZ^{[L]} = A^{[L]} - Y",
            "dw": r"dW^{[l]} = \frac{1}{m}\, dZ^{[l]} A^{[l-1]\top}",
            "db": r"db^{[l]} = \frac{1}{m} \sum_{n=1}^{m} dZ^{[l](n)}",
            "lambda": r"\frac{\lambda}{2m} \sum \lVert W^{[l]} \rVert_F^{2}"}


def folded_convention(spec, style: Style) -> dict:
    """The generated code's: the output delta divided by m once, no 1/m after it."""
    L, dw = spec.depth, rf"\partial {style.L}/\partial W^{{(l)}}"
    return {"dz": rf"\widetilde{{dZ}}^{{({L})}} = \frac{{1}}{{m}}\, dZ^{{({L})}}",
            "dw": (rf"{dw} = (A^{{(l-1)}})^{{\top}}\, \widetilde{{dZ}}^{{(l)}}" if spec.row_layout else
                   rf"{dw} = \widetilde{{dZ}}^{{(l)}}\, (A^{{(l-1)}})^{{\top}}")}


def general_sizes() -> dict:
    return {"m": "m", "n": "n_{l}", "prev": "n_{l-1}", "next": "n_{l+1}",
            "l": "l", "l-1": "l-1", "l+1": "l+1"}


def layer_sizes(spec, l: int) -> dict:
    nxt = spec.layers[l + 1] if l < spec.depth else None
    return {"m": str(spec.batch), "n": str(spec.layers[l]), "prev": str(spec.layers[l - 1]),
            "next": None if nxt is None else str(nxt), "l": str(l), "l-1": str(l - 1), "l+1": str(l + 1)}


def _u(shape: tuple[str, str], tex: str) -> str:
    r"""`tex` with its shape written under it: \underset{2 \times 3}{W^{(2)}}."""
    return rf"\underset{{{shape[0]} \times {shape[1]}}}{{{tex}}}"


def matrix_lines(spec, style: Style, s: dict) -> list[str]:
    """The forward product, the backward step (not for the output layer), dL/dW and dL/db
    of layer s["l"], each factor with its shape under it, in the network's layout."""
    row, L = spec.row_layout, style.L
    m, n, prev, nxt = s["m"], s["n"], s["prev"], s["next"]
    l, lm, lp = s["l"], s["l-1"], s["l+1"]
    sh = (lambda a, b: (b, a)) if row else (lambda a, b: (a, b))  # noqa: E731  (n x m) or (m x n)
    Z, dZ, A_prev = f"Z^{{({l})}}", f"dZ^{{({l})}}", f"A^{{({lm})}}"
    W, W_next, dZ_next = f"W^{{({l})}}", f"W^{{({lp})}}", f"dZ^{{({lp})}}"
    b, b_row = rf"\boldsymbol{{b}}^{{({l})}}", rf"(\boldsymbol{{b}}^{{({l})}})^{{\top}}"
    ones, ones_t = r"\mathbf{1}", r"\mathbf{1}^{\top}"
    A_t, W_next_t = rf"({A_prev})^{{\top}}", rf"({W_next})^{{\top}}"
    # the mean's 1/m, in the general form even for m = 1 (it is what a minibatch would use)
    s_tex = r"\frac{1}{m}\, " if spec.training.reduction == "mean" and m != "1" else ""
    reg = reg_latex(spec, W)
    if row:
        bias = f" + {_u((m, '1'), ones)}\\, {_u(('1', n), b_row)}" if spec.bias else ""
        lines = [f"{_u(sh(n, m), Z)} = {_u(sh(prev, m), A_prev)}\\, {_u((prev, n), W)}{bias}"]
    else:
        bias = f" + {_u((n, '1'), b)}\\, {_u(('1', m), ones_t)}" if spec.bias else ""
        lines = [f"{_u(sh(n, m), Z)} = {_u((n, prev), W)}\\, {_u(sh(prev, m), A_prev)}{bias}"]
    if nxt is not None:
        f = rf"f_{{{l}}}'\bigl({Z}\bigr)"
        back = (f"{_u(sh(nxt, m), dZ_next)}\\, {_u((nxt, n), W_next_t)}" if row else
                f"{_u((n, nxt), W_next_t)}\\, {_u(sh(nxt, m), dZ_next)}")
        lines.append(rf"{_u(sh(n, m), dZ)} = {back} \odot {_u(sh(n, m), f)}")
    dW = _u((prev, n) if row else (n, prev), rf"\frac{{\partial {L}}}{{\partial {W}}}")
    prod = (f"{_u((prev, m), A_t)}\\, {_u((m, n), dZ)}" if row else
            f"{_u((n, m), dZ)}\\, {_u((m, prev), A_t)}")
    lines.append(f"{dW} = {s_tex}{prod}" + (f" + {reg}" if reg else ""))
    if spec.bias:
        db = rf"\frac{{\partial {L}}}{{\partial {b}}}"
        breg = (" + " + reg_latex(spec, b)) if spec.regularization.covers("b") else ""
        if row:
            lines.append(f"{_u(('1', n), db)} = {s_tex}{_u(('1', m), ones_t)}\\, {_u((m, n), dZ)}{breg}")
        else:
            lines.append(f"{_u((n, '1'), db)} = {s_tex}{_u((n, m), dZ)}\\, {_u((m, '1'), ones)}{breg}")
    return [line.replace(" = ", " &= ", 1) for line in lines]  # aligned at the equals sign


def transpose_reason(spec) -> dict:
    """The words for why dL/dW needs a transpose, in the layout's shapes."""
    if spec.row_layout:
        return {"w_shape": r"n_{l-1} \times n_{l}", "dz_shape": r"m \times n_{l}",
                "a_shape": r"m \times n_{l-1}", "product": r"(A^{(l-1)})^{\top} dZ^{(l)}",
                "bias_sum": "rows", "back": r"dZ^{(l+1)} (W^{(l+1)})^{\top}"}
    return {"w_shape": r"n_{l} \times n_{l-1}", "dz_shape": r"n_{l} \times m",
            "a_shape": r"n_{l-1} \times m", "product": r"dZ^{(l)} (A^{(l-1)})^{\top}",
            "bias_sum": "columns", "back": r"(W^{(l+1)})^{\top} dZ^{(l+1)}"}
