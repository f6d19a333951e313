r"""Stage 3e: the minibatch and the regulariser around the per-example derivation.

backprop.py derives dloss/dp for one example.  The loss of a minibatch
(spec/training.py) is L = s sum_n loss_n + R(W), so

    dL/dp = s * sum_{n=1}^{m} (dloss/dp)_n  +  dR/dp,     dR/dp = l2 p + l1 sign(p),

where (dloss/dp)_n is the per-example formula at example n (x_n, y_n and that
example's z, a and delta), s = 1/m for the mean and 1 for the sum.  This module
gives that outer layer as SymPy terms; render/batchform.py prints it, once for every
renderer (grad, documents, which).  The regulariser's
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
