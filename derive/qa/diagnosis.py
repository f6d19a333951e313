"""What is wrong with an incorrect claim: which factor is missing or extra.

The true gradient is a sum over paths of products of local derivatives
(paths.py).  Plausible mistakes are variants of that sum, each named in
words: a role's factor dropped from every path ("missing the activation
derivative of layer 1"), two of them dropped, one path kept instead of the
sum, the wrong sign, a constant factor, another parameter's gradient (the
indices transposed), a downstream weight matrix transposed, a softmax
Jacobian cut to its diagonal, one local factor too many or too few.  Each
variant is evaluated numerically at a few of the claim's random points
(values, not algebra: cheap, and exact to the working precision); the first
variant the claim equals at all of them is the diagnosis.

When none matches, a weaker hint may still be given: the claim uses the loss
L itself (which never appears in a gradient), or never mentions the symbols
a factor of the chain depends on.
"""

from __future__ import annotations

import itertools
from typing import Iterator

import mpmath
import sympy

from ..check.points import equal
from ..render.answer_words import layers_words
from ..calculus.model import Param
from ..calculus.paths import Path, count_paths, paths
from ..check.points import LOSS, evaluate, gradient_value

#: Points a variant must match at (the failing one first).
POINTS = 6
#: Path-based variants are tried only when the chain has at most this many paths.
MAX_PATHS = 64
#: Single-path variants ("kept only one path") up to this many paths.
MAX_SINGLE_PATHS = 16

Variant = tuple[str, list]


def diagnose(net, p: Param, claim: sympy.Expr, envs: list[dict], failing: dict) -> str | None:
    """A sentence saying what the claim gets wrong, or None if no variant explains it."""

    envs = [failing] + [e for e in envs if e is not failing][:POINTS - 1]
    claimed = [evaluate(claim, e) for e in envs]
    if any(c is None or isinstance(c, mpmath.mpc) for c in claimed[:1]):
        return "the claim is undefined (or not a real number) at this point"
    truth = [gradient_value(net, p, e) for e in envs]
    for description, values in _variants(net, p, envs, truth, claimed):
        if all(equal(c, v) for c, v in zip(claimed, values)):
            return description
    return _hint(net, p, claim)


def _variants(net, p, envs, truth, claimed) -> Iterator[Variant]:
    yield "has the wrong sign", [-t for t in truth]
    ratio = _constant_ratio(claimed, truth)
    if ratio is not None:
        yield _ratio_words(ratio), [ratio * t for t in truth]
    yield from _other_parameters(net, p, envs)
    if count_paths(net.derivation, p) <= MAX_PATHS:
        table = _PathTable(net, p, envs)
        yield from table.softmax_diagonal()
        yield from table.removals()
        yield from table.single_paths()
        yield from table.transposed_weights()
    yield from _extra_or_missing_factor(net, p, envs, truth)


def _constant_ratio(claimed, truth):
    """claimed / true if it is the same number at every point (and not 1)."""

    if any(t == 0 or c is None or isinstance(c, mpmath.mpc) for c, t in zip(claimed, truth)):
        return None
    ratios = [c / t for c, t in zip(claimed, truth)]
    if all(equal(r, ratios[0]) for r in ratios) and not equal(ratios[0], mpmath.mpf(1)):
        return ratios[0]
    return None


def _ratio_words(r) -> str:
    if abs(r + 1) < 1e-20:
        return "has the wrong sign"
    near = mpmath.nint(r)
    if abs(r - near) < 1e-20:
        return f"has an extra constant factor {int(near)}"
    inverse = mpmath.nint(1 / r)
    if abs(1 / r - inverse) < 1e-20:
        return f"is missing a constant factor {int(inverse)} (it is 1/{int(inverse)} of the gradient)"
    return f"is off by a constant factor {mpmath.nstr(r, 9)}"


def _other_parameters(net, p: Param, envs) -> Iterator[Variant]:
    """The gradient of another parameter of the same layer: transposed first."""
    n = net.model.n
    if p.kind != "W":
        others = [Param(p.layer, "b", j) for j in range(1, n[p.layer] + 1) if j != p.j]
    else:
        others = [Param(p.layer, "W", j, k) for j in range(1, n[p.layer] + 1)
                  for k in range(1, n[p.layer - 1] + 1) if (j, k) != (p.j, p.k)]
        others.sort(key=lambda q: (q.j, q.k) != (p.k, p.j))
    for q in others[:256]:
        if q.kind == "W" and (q.j, q.k) == (p.k, p.j):
            words = f"is the derivative for {q.name}, not {p.name}: the indices are transposed"
        else:
            words = f"is the derivative for {q.name}, not {p.name}"
        yield words, [gradient_value(net, q, e) for e in envs]


def _name(s) -> str:
    """A network symbol in the claim syntax: W2[1,2], a1[2], x[1]."""
    layer = "" if s.layer is None else s.layer
    return f"{s.kind}{layer}[{','.join(map(str, s.idx))}]"


_GROUP_WORDS = {"loss": "the loss derivative", "activation": "the activation derivative of layer {}",
                "weight": "the weights of layer {}", "input": "the input factor"}


class _PathTable:
    """Every factor of every path, evaluated at every point."""

    def __init__(self, net, p: Param, envs):
        self.net, self.p, self.envs = net, p, envs
        self.paths: list[Path] = list(paths(net.derivation, p, net.simplifier))
        self.values = [[[evaluate(f.expr, e) for e in envs] for f in q] for q in self.paths]
        if any(v is None for vals in self.values for row in vals for v in row):
            self.paths, self.values = [], []  # a factor undefined at a point: no path variants

    def _sum(self, keep_path=lambda q: True, keep_factor=lambda f: True) -> list:
        """At each point: the sum over the kept paths of the product of their kept factors."""
        out = []
        for e in range(len(self.envs)):
            total = mpmath.mpf(0)
            for q, vals in zip(self.paths, self.values):
                if keep_path(q):
                    total += mpmath.fprod(vals[i][e] for i, f in enumerate(q) if keep_factor(f))
            out.append(total)
        return out

    def _group_words(self, group) -> str:
        role, layer = group
        if role == "input":
            return f"the input factor {_name(self.paths[0][-1].expr)}"
        return _GROUP_WORDS[role].format(layer)

    def _words(self, dropped) -> str:
        """'the activation derivatives of layers 2 and 1', 'the loss derivative and ...'."""
        if len(dropped) == 2 and dropped[0][0] == dropped[1][0] in ("activation", "weight"):
            role = "activation derivatives" if dropped[0][0] == "activation" else "weights"
            return f"the {role} of layers {dropped[0][1]} and {dropped[1][1]}"
        return " and ".join(self._group_words(g) for g in dropped)

    def removals(self) -> Iterator[Variant]:
        groups = list(dict.fromkeys((f.role, f.layer) for q in self.paths for f in q))
        for size in (1, 2):
            for dropped in itertools.combinations(groups, size):
                yield f"is missing {self._words(dropped)}", self._sum(
                    keep_factor=lambda f: (f.role, f.layer) not in dropped)

    def single_paths(self) -> Iterator[Variant]:
        if not 1 < len(self.paths) <= MAX_SINGLE_PATHS:
            return
        for path in self.paths:
            through = ", ".join(dict.fromkeys(
                [_name(path[0].denominator)] + [_name(f.numerator) for f in path
                                                if f.role == "activation" and f.layer > self.p.layer]))
            words = (f"has only one of the {len(self.paths)} paths from {self.p.name} to the loss "
                     f"(the one through {through}); the chain rule sums over all of them")
            yield words, self._sum(keep_path=lambda q: q is path)

    def softmax_diagonal(self) -> Iterator[Variant]:
        if not self.net.spec.activations[-1].vector or not self.paths:
            return
        L = self.net.model.L

        def diagonal(q):
            top = next(g for g in q if g.role == "activation" and g.layer == L)
            return top.numerator.idx == top.denominator.idx

        yield ("uses only the diagonal of the softmax Jacobian; the off-diagonal terms "
               "-a_i a_m are missing"), self._sum(keep_path=diagonal)

    def transposed_weights(self) -> Iterator[Variant]:
        m = self.net.model
        for t in range(self.p.layer + 1, m.L + 1):
            swapped = []
            for e, env in enumerate(self.envs):
                total = mpmath.mpf(0)
                for q, vals in zip(self.paths, self.values):
                    term = mpmath.mpf(1)
                    for i, f in enumerate(q):
                        if f.role == "weight" and f.layer == t:
                            j, k = f.expr.idx
                            if j > m.n[t - 1] or k > m.n[t]:
                                return  # the transpose does not fit this layer
                            term *= env[m.W(t, k, j)]
                        else:
                            term *= vals[i][e]
                    total += term
                swapped.append(total)
            yield (f"uses the weights of layer {t} with their indices transposed "
                   f"(W{t}[k,j] where W{t}[j,k] belongs)"), swapped


def _candidates(net, p: Param) -> Iterator[tuple[str, sympy.Expr]]:
    """Single local factors a careless formula might add or drop."""
    m, d = net.model, net.derivation
    for j in range(1, m.n[m.L] + 1):
        yield f"the loss derivative dL/d{_name(m.a(m.L, j))}", d.loss_derivative(j)
    for l in range(m.L, 0, -1):
        if not net.spec.activations[l - 1].vector:
            for j in range(1, m.n[l] + 1):
                yield f"the activation derivative of layer {l} at neuron {j}", d.activation_derivative(l, j, j)
    for l in range(m.L, -1, -1):
        for j in range(1, m.n[l] + 1):
            yield _name(m.a(l, j)) if l else _name(m.x(j)), m.a(l, j)


def _extra_or_missing_factor(net, p: Param, envs, truth) -> Iterator[Variant]:
    if sum(net.model.n) > 64:
        return
    for words, expr in _candidates(net, p):
        values = [evaluate(expr, e) for e in envs]
        if any(v is None or v == 0 for v in values):
            continue
        yield f"has an extra factor: {words}", [t * v for t, v in zip(truth, values)]
        yield f"is missing a factor: {words}", [t / v for t, v in zip(truth, values)]


def _hint(net, p: Param, claim: sympy.Expr) -> str | None:
    """A weaker diagnosis from the symbols the claim mentions."""
    if LOSS in claim.free_symbols:
        return ("uses the loss L itself, which never appears in a gradient: the chain rule "
                "multiplies the loss derivative dL/da by the other local derivatives")
    mentioned = claim.free_symbols
    loss_missing, layers = False, []
    for path in itertools.islice(paths(net.derivation, p, net.simplifier), 1):
        for f in path:
            if f.role == "activation":
                needed = f.expr.free_symbols | f.simplified.free_symbols
                if needed and not needed & mentioned:
                    layers.append(f.layer)
            elif f.role == "loss":
                needed = {s for s in f.expr.free_symbols if getattr(s, "kind", None) == "y"}
                loss_missing = bool(needed and not needed & mentioned)
    parts = (["the loss derivative"] if loss_missing else []) + (
        [f"the activation derivative{'s' if len(layers) > 1 else ''} of {layers_words(layers)}"]
        if layers else [])
    if not parts:
        return None
    return ("matches no simple variant of the chain, but it never mentions the values "
            f"that {' and '.join(parts)} depend{'s' if len(parts) == 1 and len(layers) < 2 else ''} on")
