"""What is wrong with an incorrect claim: which factor is missing, extra or misplaced.

The true gradient is a sum over paths of products of local derivatives
(paths.py).  Plausible mistakes are variants of that sum, each named in
words: the wrong sign, a constant factor, another parameter's gradient (the
indices transposed), the path variants of variants.py (a role's factor
dropped, one path kept instead of the sum, a downstream weight matrix
transposed, a softmax Jacobian cut to its diagonal), one local factor too
many or too few.  Each variant is evaluated numerically at a few of the
claim's random points (values, not algebra: cheap, and exact to the working
precision); the first variant the claim equals at all of them is the diagnosis.

Then one symbol in the wrong place: the claim is evaluated again with one of
its symbols given the value of another of the chain (W1[2,1] where W2[1,2]
belongs, a1[1] where a1[2] belongs, sigmoid(a1[2]) where sigmoid(z1[2])
belongs); the environments are overlaid, so nothing is compiled again.

When none matches, a weaker hint may still be given: the claim uses the loss
L itself (which never appears in a gradient), uses another neuron of the
parameter's own layer, or never mentions the symbols a factor of the chain
depends on.
"""

from __future__ import annotations

import itertools
import re
from typing import Iterator

import mpmath
import sympy

from .notation import deltas_of
from .variants import PathTable, Variant, name
from ..calculus.model import NetSymbol, Param
from ..calculus.paths import count_paths, paths
from ..check.points import LOSS, equal, evaluate, gradient_value
from ..render.answer_words import layers_words

#: Points a variant must match at (the failing one first).
POINTS = 6
#: Path-based variants are tried only when the chain has at most this many paths.
MAX_PATHS = 64
#: Symbol swaps tried at most (claim symbols times chain symbols).
MAX_SWAPS = 4096


def diagnose(net, p: Param, claim: sympy.Expr, envs: list[dict], failing: dict,
             text: str = "") -> str | None:
    """A sentence saying what the claim (written as `text`) gets wrong, or None."""
    envs = [failing] + [e for e in envs if e is not failing][:POINTS - 1]
    claimed = [evaluate(claim, e) for e in envs]
    if any(c is None or isinstance(c, mpmath.mpc) for c in claimed[:1]):
        return "the claim is undefined (or not a real number) at this point"
    truth = [gradient_value(net, p, e) for e in envs]
    for description, values in _variants(net, p, envs, truth, claimed):
        if all(equal(c, v) for c, v in zip(claimed, values)):
            return description
    return _swap(net, p, claim, text, envs, truth) or _hint(net, p, claim)


def _variants(net, p, envs, truth, claimed) -> Iterator[Variant]:
    yield "has the wrong sign", [-t for t in truth]
    ratio = _constant_ratio(claimed, truth)
    if ratio is not None:
        yield _ratio_words(ratio), [ratio * t for t in truth]
    yield from _other_parameters(net, p, envs)
    if count_paths(net.derivation, p) <= MAX_PATHS:
        table = PathTable(net, p, envs)
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


def _candidates(net, p: Param) -> Iterator[tuple[str, sympy.Expr]]:
    """Single local factors a careless formula might add or drop."""
    m, d = net.model, net.derivation
    for j in range(1, m.n[m.L] + 1):
        yield f"the loss derivative dL/d{name(m.a(m.L, j))}", d.loss_derivative(j)
    for l in range(m.L, 0, -1):
        if not net.spec.activations[l - 1].vector:
            for j in range(1, m.n[l] + 1):
                yield f"the activation derivative of layer {l} at neuron {j}", d.activation_derivative(l, j, j)
    for l in range(m.L, -1, -1):
        for j in range(1, m.n[l] + 1):
            yield name(m.a(l, j)) if l else name(m.x(j)), m.a(l, j)


def _extra_or_missing_factor(net, p: Param, envs, truth) -> Iterator[Variant]:
    if sum(net.model.n) > 64:
        return
    for words, expr in _candidates(net, p):
        values = [evaluate(expr, e) for e in envs]
        if any(v is None or v == 0 for v in values):
            continue
        yield f"has an extra factor: {words}", [t * v for t, v in zip(truth, values)]
        yield f"is missing a factor: {words}", [t / v for t, v in zip(truth, values)]


class _Overlay(dict):
    """An environment with some symbols' values replaced."""

    def __init__(self, base: dict, changes: dict):
        super().__init__(changes)
        self.base = base

    def __missing__(self, s):
        return self.base[s]


def _chain_symbols(net, p: Param) -> list[NetSymbol]:
    """The symbols the true gradient is written in, with each a(l)_j's z(l)_j and back."""
    m, grad = net.model, net.gradient(p)
    found = {s for e in (grad.simplified, grad.factored) for s in e.free_symbols
             if isinstance(s, NetSymbol) and s.kind != "delta"}
    partners = {m.z(s.layer, s.idx[0]) if s.kind == "a" else m.a(s.layer, s.idx[0])
                for s in found if s.kind in "az" and s.layer}
    return sorted(found | partners, key=lambda s: s.name)


def _swap(net, p: Param, claim: sympy.Expr, text: str, envs, truth) -> str | None:
    """'uses W1[2,1] where W2[1,2] belongs': one symbol of the claim for another."""
    own = sorted((s for s in claim.free_symbols if isinstance(s, NetSymbol)), key=lambda s: s.name)
    chain = _chain_symbols(net, p)
    if len(own) * len(chain) > MAX_SWAPS:
        return None
    for s in own:
        for t in sorted(chain, key=lambda t: (t.kind != s.kind, t.name)):
            if t != s and all(equal(evaluate(claim, _Overlay(e, {s: e[t]})), v)
                              for e, v in zip(envs, truth)):
                return _swap_words(text, s, t)
    return None


def _spelled(s: NetSymbol) -> str:
    """A regex for s as a claim may write it: W2[1, 2] or W2_1_2 (x[1] also as a0[1])."""
    layer = "" if s.layer is None else s.layer
    kinds = f"(?:{s.kind}{layer}|a0)" if s.kind == "x" else f"{s.kind}{layer}"
    brackets = r"\s*,\s*".join(map(str, s.idx))
    return rf"(?<!\w){kinds}(?:\s*\[\s*{brackets}\s*\]|_{'_'.join(map(str, s.idx))}(?!\w))"


def _swap_words(text: str, s: NetSymbol, t: NetSymbol) -> str:
    """Name the swap inside the function it sits in, when every use of s is one."""
    uses = len(re.findall(_spelled(s), text))
    calls = re.findall(rf"(?<![\w'])([A-Za-z_]\w*'?)\(\s*{_spelled(s)}\s*\)", text)
    if uses and len(calls) == uses and len(set(calls)) == 1:
        f = calls[0]
        return f"uses {f}({name(s)}) where {f}({name(t)}) belongs"
    return f"uses {name(s)} where {name(t)} belongs"


def _hint(net, p: Param, claim: sympy.Expr) -> str | None:
    """A weaker diagnosis from the symbols the claim mentions.  A delta<l>[j] the
    claim names stands for everything from layer l to the loss."""
    if LOSS in claim.free_symbols:
        return ("uses the loss L itself, which never appears in a gradient: the chain rule "
                "multiplies the loss derivative dL/da by the other local derivatives")
    mentioned = claim.free_symbols
    covered = min((d.layer for d in deltas_of(claim)), default=net.model.L + 1)
    loss_missing, layers, neuron = False, [], None
    for path in itertools.islice(paths(net.derivation, p, net.simplifier), 1):
        for f in path:
            if f.role == "activation" and f.layer < covered:
                needed = f.expr.free_symbols | f.simplified.free_symbols
                if needed and not needed & mentioned:
                    neuron = neuron or (_other_neuron(net, p, mentioned) if f.layer == p.layer else None)
                    layers += [] if neuron and f.layer == p.layer else [f.layer]
            elif f.role == "loss" and covered > net.model.L:
                needed = {s for s in f.expr.free_symbols if getattr(s, "kind", None) == "y"}
                loss_missing = bool(needed and not needed & mentioned)
    parts = (["the loss derivative"] if loss_missing else []) + (
        [f"the activation derivative{'s' if len(layers) > 1 else ''} of {layers_words(layers)}"]
        if layers else [])
    clauses = [f"it never mentions the values that {' and '.join(parts)} "
               f"depend{'s' if len(parts) == 1 and len(layers) < 2 else ''} on"] if parts else []
    clauses += [neuron] if neuron else []
    return "matches no simple variant of the chain, but " + "; and ".join(clauses) if clauses else None


def _other_neuron(net, p: Param, mentioned) -> str | None:
    """'it uses a1[1], ...': a and z of the parameter's layer, at other neurons than p.j."""
    others = sorted((s for s in mentioned if isinstance(s, NetSymbol) and s.kind in "az"
                     and s.layer == p.layer and s.idx[0] != p.j), key=lambda s: s.name)
    if not others:
        return None
    m, l = net.model, p.layer
    return (f"it uses {', '.join(map(name, others))} where the activation derivative of layer {l} "
            f"is at neuron {p.j} ({name(m.a(l, p.j))} or {name(m.z(l, p.j))})")
