"""Stage 3e: the chain rule as a sum over paths, each factor named by its role.

dL/dW(l)_jk is a sum over every route from the parameter to the loss: the
parameter's input a(l-1)_k, then up through neuron j of layer l, one neuron
of every later layer, to an output, and into the loss.  Along a route the
factors are exactly four kinds (`ROLES`), listed from the loss back:

    loss        dL/da(L)_m                       once, at the output
    activation  da(t)_i/dz(t)_m   (i = m unless the layer is softmax)
    weight      dz(t+1)_i/da(t)_m = W(t+1)_im    the downstream weights
    input       dz(l)_j/dW(l)_jk  = a(l-1)_k     absent for a bias

This is the honest answer to "is it the activation's derivative or the
loss's?": both, chained.  The number of paths is the product of the later
layers' widths, so `paths` is a generator and `count_paths` says how many
there are before anyone asks for them all.  Factors carry the derived local
derivative (`expr`) and its display form (`simplified`); the sum of the
paths' products equals the derivation's gradient (tests/test_which.py).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from math import prod
from typing import Iterator

import sympy

from .backprop import Derivation
from .model import Param
from ..spec.registry import A, Y
from .simplify import Simplifier, shorter

ROLES = ("loss", "activation", "weight", "input")


@dataclass(frozen=True)
class Factor:
    """One factor of one path: its role, layer, what it differentiates, its value."""

    role: str
    layer: int
    numerator: sympy.Expr      # what is differentiated (L, a, z)
    denominator: sympy.Expr    # with respect to what (a, z, W)
    expr: sympy.Expr           # the local derivative as SymPy derived it
    simplified: sympy.Expr     # the same, in display form

    def __repr__(self) -> str:
        return f"Factor({self.role}, layer {self.layer}: {self.simplified})"


#: Stand-in for the loss as the numerator of the loss factor.
LOSS = sympy.Symbol("L")

Path = tuple[Factor, ...]


def count_paths(derivation: Derivation, p: Param) -> int:
    """How many paths `paths` yields for p (before dropping zero ones)."""
    n, L = derivation.n, derivation.L
    outputs = n[L] if derivation.model.spec.activations[-1].vector else 1
    return prod(n[t] for t in range(p.layer + 1, L + 1)) * outputs


def paths(derivation: Derivation, p: Param, simplifier: Simplifier | None = None) -> Iterator[Path]:
    """Every path from the loss back to p whose product is not identically zero."""
    simplifier = simplifier or Simplifier(derivation)
    m, L, n = derivation.model, derivation.L, derivation.n
    softmax_out = m.spec.activations[-1].vector
    later = [range(1, n[t] + 1) for t in range(p.layer + 1, L + 1)]
    for route in itertools.product(*later):
        neurons = (p.j, *route)  # neurons[t - p.layer] is the neuron used in layer t
        for out in (range(1, n[L] + 1) if softmax_out else (neurons[-1],)):
            path = _path(derivation, simplifier, p, neurons, out)
            if all(f.expr != 0 for f in path):
                yield path


def _path(d: Derivation, s: Simplifier, p: Param, neurons: tuple[int, ...], out: int) -> Path:
    m, L, l0 = d.model, d.L, p.layer
    top = neurons[-1]
    factors = [Factor("loss", L, LOSS, m.a(L, out), d.loss_derivative(out),
                      _simplified_loss_derivative(d, out))]
    for t in range(L, l0 - 1, -1):
        i = neurons[t - l0]
        upper = out if t == L else i
        factors.append(Factor("activation", t, m.a(t, upper), m.z(t, i),
                              d.activation_derivative(t, upper, i),
                              s.activation_derivative(t, upper, i)))
        if t > l0:
            below = neurons[t - 1 - l0]
            w = m.W(t, i, below)
            factors.append(Factor("weight", t, m.z(t, i), m.a(t - 1, below), w, w))
    if p.kind == "W":
        a_in = m.a(l0 - 1, p.k)
        factors.append(Factor("input", l0, m.z(l0, p.j), m.W(l0, p.j, p.k), a_in, a_in))
    return tuple(factors)


def _simplified_loss_derivative(d: Derivation, j: int) -> sympy.Expr:
    m = d.model
    # `shorter` is cached: once per loss row, not once per path
    return shorter(d.loss_term_derivative).xreplace({A: m.a(d.L, j), Y: m.y(j)})


def path_product(path: Path, simplified: bool = False) -> sympy.Expr:
    return sympy.Mul(*[(f.simplified if simplified else f.expr) for f in path])
