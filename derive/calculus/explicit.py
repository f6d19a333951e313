"""Stage 3c: the explicit form, in x, y and the parameters alone.

Substituting the forward pass into the factored form writes every a(l) out
in full; its size multiplies by the layer width at every layer, so the
closed form of a deep network is astronomically large.  `explicit` first
estimates the written-out size by a recurrence over the layer sizes and
returns None (with the estimate) past `EXPLICIT_MAX_NODES`, instead of
building something nothing can print or simplify.

ReLU-family Piecewise functions are written with Heaviside steps here
(`step_form`): substituting a Piecewise into another Piecewise's condition
makes SymPy fold the conditions into ITE trees, which took 100 s for a
1-2-1-2 ReLU net; steps compose in milliseconds and keep the convention
f'(0) = left branch (Heaviside(s, 0) for a strict s > 0).
"""

from __future__ import annotations

from functools import cached_property

import sympy
from sympy.core.relational import GreaterThan, LessThan, StrictGreaterThan, StrictLessThan

from .backprop import Derivation
from .model import NetSymbol, Param
from ..spec.registry import X

#: Largest explicit form (estimated tree nodes) that is built.
EXPLICIT_MAX_NODES = 5_000


def _two_branch(e) -> bool:
    return (isinstance(e, sympy.Piecewise) and len(e.args) == 2 and e.args[1].cond == sympy.true
            and isinstance(e.args[0].cond, (StrictGreaterThan, StrictLessThan, GreaterThan, LessThan)))


def _steps(pw: sympy.Piecewise) -> sympy.Expr:
    (e1, cond), (e2, _) = pw.args
    s = cond.gts - cond.lts  # cond holds iff s > 0 (strict) or s >= 0
    strict = isinstance(cond, (StrictGreaterThan, StrictLessThan))
    return e1 * sympy.Heaviside(s, 0 if strict else 1) + e2 * sympy.Heaviside(-s, 1 if strict else 0)


def step_form(expr: sympy.Expr) -> sympy.Expr:
    """Piecewise((e1, s > 0), (e2, True)) as e1 H(s) + e2 H(-s), equal at s = 0 too."""
    return expr.replace(_two_branch, _steps)


def _size(expr: sympy.Expr, weight) -> int:
    """Tree nodes of `expr`, a node counting `weight(node)` (a dict or a function) if
    that is not None, else 1."""
    get = weight.get if isinstance(weight, dict) else weight
    total = 0
    for node in sympy.preorder_traversal(expr):
        w = get(node)
        total += 1 if w is None else w
    return total


class ExplicitForm:
    """Written-out gradients of a derivation, where they stay small."""

    def __init__(self, derivation: Derivation):
        self.derivation = derivation
        self.model = derivation.model

    def __repr__(self) -> str:
        return f"ExplicitForm({self.model.spec.describe()})"

    @cached_property
    def _forward_sizes(self) -> tuple[list[int], list[int]]:
        """Estimated tree sizes of z(l)_j and a(l)_j written out, per layer (a(0) = x: 1).

        An activation costs its definition with every x counted as a whole z: softplus
        holds z once, silu, gelu, sin(x) + x/2 twice, the ReLU family's steps up to four
        times, so the written-out size multiplies by that count per layer.
        """
        n, z_sizes, a_sizes = self.model.n, [0], [1]
        for l in range(1, self.model.L + 1):
            z_size = n[l - 1] * (a_sizes[-1] + 2) + 2
            row = self.model.spec.activations[l - 1]
            a_sizes.append(z_size * (n[l] + 2) if row.vector
                           else _size(step_form(row.definition), {X: z_size}))
            z_sizes.append(z_size)
        return z_sizes, a_sizes

    def estimate(self, expr: sympy.Expr) -> int:
        """Tree size of `expr` once its z and a symbols are written out."""
        z_sizes, a_sizes = self._forward_sizes
        return _size(expr, lambda node: (z_sizes if node.kind == "z" else a_sizes)[node.layer]
                     if isinstance(node, NetSymbol) and node.kind in ("z", "a") else None)

    @cached_property
    def forward_map(self) -> dict:
        """z(l)_j and a(l)_j -> their written-out expressions (shared subtrees)."""
        m, mapping = self.model, {}
        prev = {m.a(0, k): m.x(k) for k in range(1, m.n[0] + 1)}
        for l in range(1, m.L + 1):
            zs = [m.z_definition(l, j).xreplace(prev) for j in range(1, m.n[l] + 1)]
            mapping.update({m.z(l, j): zs[j - 1] for j in range(1, m.n[l] + 1)})
            row = m.spec.activations[l - 1]
            f = None if row.vector else step_form(row.definition)
            prev = {m.a(l, j): m.activation_of(l, j, zs) if f is None else f.xreplace({X: zs[j - 1]})
                    for j in range(1, m.n[l] + 1)}
            mapping.update(prev)
        return mapping

    def explicit(self, p: Param) -> tuple[sympy.Expr | None, int]:
        """(dL/dp written out, estimated size); the expression is None past the limit."""
        d = self.derivation
        if d.expansion_stop(p.layer) < d.L:
            return None, -1  # deltas stay symbolic: the written-out form is too large
        factored = step_form(d.expanded(p))
        size = self.estimate(factored)
        if size > EXPLICIT_MAX_NODES:
            return None, size
        return factored.xreplace(self.forward_map), size
