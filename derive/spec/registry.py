"""Activations and losses: one table each, read by every stage.

A row holds what the rest of the program needs to know about a function:
its SymPy definition (the single source of truth: derivatives come from
`sympy.diff` of it, numeric code is generated from it), its LaTeX name, a
one-line note on its derivative, and an identity writing the derivative in
terms of the activation's own output a (sigma' = a(1-a), tanh' = 1-a^2) for
display.  Adding an activation or a loss is adding a row; the spec parser,
documents and tests iterate over these tables.

Piecewise activations use ``x > 0`` as the condition, so the derivative at
the kink z = 0 is that of the left branch: relu'(0) = 0, as PyTorch does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy
from sympy import Piecewise, Rational, erf, exp, log, sqrt, tanh

#: The variable every elementwise activation definition is written in.
X = sympy.Symbol("x", real=True)
#: The variables a custom loss is written in (one output, one target).
A = sympy.Symbol("a", real=True)
Y = sympy.Symbol("y", real=True)


@dataclass(frozen=True)
class Activation:
    """One row of the activation table.

    `definition` is f(x) in `X`; `in_terms_of_a`, if given, maps the output
    symbol a = f(z) to an expression equal to f'(z) (checked by the tests).
    `vector` marks softmax, whose Jacobian is not diagonal.  `kink` marks
    functions whose derivative jumps at 0, which numeric checks must avoid.
    """

    name: str
    latex: str
    definition: sympy.Expr
    note: str
    in_terms_of_a: Callable[[sympy.Expr], sympy.Expr] | None = None
    vector: bool = False
    kink: bool = False

    def __repr__(self) -> str:
        return f"Activation({self.name!r}: {self.definition})"

    def derivative(self) -> sympy.Expr:
        """f'(x) by SymPy's own calculus (elementwise activations)."""
        return sympy.diff(self.definition, X)


def _sigmoid(v):
    return 1 / (1 + exp(-v))


ACTIVATIONS: dict[str, Activation] = {
    row.name: row
    for row in [
        Activation("identity", r"\operatorname{id}", X,
                   "f'(z) = 1", lambda a: sympy.Integer(1)),
        Activation("sigmoid", r"\sigma", _sigmoid(X),
                   r"\sigma'(z) = \sigma(z)\,(1-\sigma(z)) = a(1-a)",
                   lambda a: a * (1 - a)),
        Activation("tanh", r"\tanh", tanh(X),
                   r"\tanh'(z) = 1-\tanh^2(z) = 1-a^2", lambda a: 1 - a**2),
        Activation("relu", r"\operatorname{ReLU}", Piecewise((X, X > 0), (0, True)),
                   r"\operatorname{ReLU}'(z) = 1 \text{ if } z>0 \text{, else } 0 "
                   r"\text{ (0 at } z=0 \text{, as PyTorch)}", kink=True),
        Activation("leaky_relu", r"\operatorname{LReLU}",
                   Piecewise((X, X > 0), (X / 100, True)),
                   r"\operatorname{LReLU}'(z) = 1 \text{ if } z>0 \text{, else } 0.01",
                   kink=True),
        Activation("softplus", r"\operatorname{softplus}", log(1 + exp(X)),
                   r"\operatorname{softplus}'(z) = \sigma(z) = 1-e^{-a}",
                   lambda a: 1 - exp(-a)),
        Activation("elu", r"\operatorname{ELU}", Piecewise((X, X > 0), (exp(X) - 1, True)),
                   r"\operatorname{ELU}'(z) = 1 \text{ if } z>0 \text{, else } e^{z} = a+1"),
        Activation("silu", r"\operatorname{SiLU}", X * _sigmoid(X),
                   r"\operatorname{SiLU}'(z) = \sigma(z)\,(1 + z(1-\sigma(z)))"),
        Activation("gelu", r"\operatorname{GELU}", X * (1 + erf(X / sqrt(2))) / 2,
                   r"\operatorname{GELU}'(z) = \Phi(z) + z\,\varphi(z)"),
        # Softmax's definition is per component: exp(z_i) / sum_m exp(z_m); the
        # model builds it, and its Jacobian a_i (delta_im - a_m) comes from diff.
        Activation("softmax", r"\operatorname{softmax}", exp(X),
                   r"\frac{\partial a_i}{\partial z_m} = a_i(\delta_{im} - a_m)",
                   vector=True),
    ]
}


@dataclass(frozen=True)
class Loss:
    """One row of the loss table: `per_output(a, y, n)` is one output's term;
    the loss is the sum of the terms over the n outputs."""

    name: str
    latex: str
    per_output: Callable[[sympy.Expr, sympy.Expr, int], sympy.Expr]
    note: str
    #: targets must lie in [0, 1] (and sum to 1 after softmax) for the loss to mean anything
    probabilistic: bool = False

    def __repr__(self) -> str:
        return f"Loss({self.name!r}: {self.per_output(A, Y, 1)})"


LOSSES: dict[str, Loss] = {
    row.name: row
    for row in [
        Loss("mse", r"\frac{1}{n}\sum_j (a_j - y_j)^2",
             lambda a, y, n: (a - y) ** 2 / n, "mean squared error over the $n$ outputs"),
        Loss("half_sse", r"\frac{1}{2}\sum_j (a_j - y_j)^2",
             lambda a, y, n: Rational(1, 2) * (a - y) ** 2, "half the sum of squared errors"),
        Loss("sse", r"\sum_j (a_j - y_j)^2",
             lambda a, y, n: (a - y) ** 2, "sum of squared errors"),
        Loss("bce", r"-\sum_j \left[y_j \ln a_j + (1-y_j)\ln(1-a_j)\right]",
             lambda a, y, n: -(y * log(a) + (1 - y) * log(1 - a)),
             "binary cross-entropy, outputs in $(0, 1)$", probabilistic=True),
        Loss("cross_entropy", r"-\sum_j y_j \ln a_j",
             lambda a, y, n: -y * log(a),
             "cross-entropy against a target distribution $y$", probabilistic=True),
    ]
}

#: Functions a custom expression may call, beyond the parser's defaults:
#: every elementwise activation by name, so "sigmoid(x)" means the row above.
ACTIVATION_FUNCTIONS: dict[str, Callable[[sympy.Expr], sympy.Expr]] = {
    name: (lambda row: (lambda v: row.definition.xreplace({X: v})))(row)
    for name, row in ACTIVATIONS.items()
    if not row.vector and name != "identity"
}


def custom_activation(text: str, field: str = "activation") -> Activation:
    """An activation row from a user expression in x, parsed safely."""
    from .expressions import DEFAULT_FUNCTIONS, parse_expression

    expr = parse_expression(text, field=field, names={"x": X},
                            functions={**DEFAULT_FUNCTIONS, **ACTIVATION_FUNCTIONS})
    return Activation(text, r"f", expr, f"f(z) = {sympy.latex(expr.xreplace({X: sympy.Symbol('z')}))}",
                      kink=bool(expr.has(sympy.Abs, sympy.Piecewise, sympy.Max, sympy.Min)))


def custom_loss(text: str, field: str = "loss") -> Loss:
    """A loss row from a user expression in a and y (one output's term)."""
    from .expressions import DEFAULT_FUNCTIONS, parse_expression

    expr = parse_expression(text, field=field, names={"a": A, "y": Y},
                            functions={**DEFAULT_FUNCTIONS, **ACTIVATION_FUNCTIONS})
    return Loss(text, r"\sum_j \ell(a_j, y_j)",
                lambda a, y, n: expr.xreplace({A: a, Y: y}),
                f"custom: \\ell(a, y) = {sympy.latex(expr)}")
