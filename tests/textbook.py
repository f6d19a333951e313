"""Activations written in mpmath from their textbook formulas, not from derive.spec.registry.

Shared by the tests that need an independent high-precision forward pass.
"""

import mpmath

SOFTSIGN, WAVE = "x/(1+abs(x))", "sin(x) + x/2"  # custom expressions (derive/expressions.py)

ACTIVATIONS = {
    "identity": lambda v: v,
    "sigmoid": lambda v: 1 / (1 + mpmath.exp(-v)),
    "tanh": lambda v: (mpmath.exp(v) - mpmath.exp(-v)) / (mpmath.exp(v) + mpmath.exp(-v)),
    "relu": lambda v: v if v > 0 else mpmath.mpf(0),
    "leaky_relu": lambda v: v if v > 0 else v / 100,
    "softplus": lambda v: mpmath.log(1 + mpmath.exp(v)),
    "elu": lambda v: v if v > 0 else mpmath.exp(v) - 1,
    "silu": lambda v: v / (1 + mpmath.exp(-v)),
    "gelu": lambda v: v * (1 + mpmath.erf(v / mpmath.sqrt(2))) / 2,
    SOFTSIGN: lambda v: v / (1 + abs(v)),
    WAVE: lambda v: mpmath.sin(v) + v / 2,
}
