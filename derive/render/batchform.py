r"""Printing the minibatch and the regulariser around a per-example gradient (calculus/batch.py).

    dL/dp = \frac{1}{m} \sum_{n=1}^{m} \left(per-example\right)_{[n]} + \lambda_{2} p + \lambda_{1} sign(p)

in LaTeX, and mean_n[...] + l2*p + l1*sign(p) in text: the one wording grad, the
documents and `which` share.  (...)_{[n]} is the per-example formula at example n.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..calculus.model import Param, SymbolicModel
from .printing import DerivePrinter, TextPrinter

if TYPE_CHECKING:
    from ..api import Network

#: One printer per form, made once: a symbol alone prints in microseconds, but making a
#: printer per parameter would cost seconds on 784-30-10 (as compose.PRINTERS print them).
_PRINTERS = {"latex": DerivePrinter({}).doprint, "expression": str, "text": TextPrinter().doprint}


def scale_latex(model: SymbolicModel) -> str:
    r"""'\frac{1}{m}' for the mean of a minibatch, '' for the sum (or one example)."""
    t = model.spec.training
    return r"\frac{1}{m} " if t.batched and t.reduction == "mean" else ""


def batch_latex(model: SymbolicModel, per_example: str, reg: str = "") -> str:
    r"""The whole gradient in LaTeX around a per-example formula:
    \frac{1}{m} \sum_{n=1}^{m} \left(...\right)_{[n]} + \lambda_{2} W (reg printed by the caller)."""
    t = model.spec.training
    body = per_example
    if t.batched:
        body = rf"{scale_latex(model)}\sum_{{n=1}}^{{m}} \left({per_example}\right)_{{[n]}}"
    if reg:
        body = f"{body} + {reg}" if not reg.startswith("-") else f"{body} {reg}"
    return body


def batch_text(model: SymbolicModel, per_example: str, reg: str = "") -> str:
    """The same in plain text: mean_n[...] or sum_n[...], then + the regulariser's term."""
    t = model.spec.training
    body = per_example
    if t.batched:
        body = f"{'mean' if t.reduction == 'mean' else 'sum'}_n[{per_example}]"
    if reg:
        body = f"{body} + {reg}"
    return body


#: How each printed form writes lambda_2 w and lambda_1 sign(w) around the weight's own text.
_REGULARIZER_WORDS = {"latex": (r"\lambda_{2} ", r"\lambda_{1} \operatorname{sign}\left(", r"\right)"),
                      "text": ("l2*", "l1*sign(", ")"), "expression": ("lambda_2*", "lambda_1*sign(", ")")}


def regularizer_term(net: Network, p: Param, kind: str) -> str:
    """dR/dp = l2 p + l1 sign(p) printed in form `kind` ('' if p is not regularised), by hand
    around the printed symbol: one printer call per parameter for the symbol alone, and
    the coefficient first (lambda_2 W, as textbooks write it; SymPy would order W lambda_2)."""
    reg = net.spec.regularization
    if not reg.covers(p.kind):
        return ""
    w = _PRINTERS[kind](net.model.symbol(p))
    two, one, close = _REGULARIZER_WORDS[kind]
    return " + ".join(([two + w] if reg.l2 else []) + ([one + w + close] if reg.l1 else []))
