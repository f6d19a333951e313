r"""Stage 3e: the minibatch and the regulariser around the per-example derivation.

backprop.py derives dloss/dp for one example.  The loss of a minibatch
(spec/training.py) is L = s sum_n loss_n + R(W), so

    dL/dp = s * sum_{n=1}^{m} (dloss/dp)_n  +  dR/dp,     dR/dp = l2 p + l1 sign(p),

where (dloss/dp)_n is the per-example formula at example n (x_n, y_n and that
example's z, a and delta), s = 1/m for the mean and 1 for the sum.  This module
gives that outer layer as SymPy terms and as printed text, so every renderer
(grad, documents, which) writes the same sentence.  The regulariser's
coefficients are the symbols lambda_2, lambda_1 (printed \lambda_{2}, \lambda_{1});
their values are the spec's l2 and l1.
"""

from __future__ import annotations

import sympy

from .model import Param, SymbolicModel

#: The minibatch size and the regulariser's coefficients, as printed symbols.
M = sympy.Symbol("m", positive=True, integer=True)
LAMBDA2 = sympy.Symbol("lambda_2", positive=True)
LAMBDA1 = sympy.Symbol("lambda_1", positive=True)


def regularizer_gradient(model: SymbolicModel, p: Param) -> sympy.Expr:
    """dR/dp = lambda_2 p + lambda_1 sign(p) (the terms the spec turns on), else 0."""
    reg = model.spec.regularization
    if not reg.covers(p.kind):
        return sympy.Integer(0)
    w = model.symbol(p)
    return (LAMBDA2 * w if reg.l2 else 0) + (LAMBDA1 * sympy.sign(w) if reg.l1 else 0)


def regularizer_values(model: SymbolicModel) -> dict[sympy.Symbol, float]:
    """lambda_2 and lambda_1 as numbers, for evaluating a formula that names them."""
    reg = model.spec.regularization
    return {LAMBDA2: reg.l2, LAMBDA1: reg.l1}


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
