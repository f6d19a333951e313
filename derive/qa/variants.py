"""Variants of the chain-rule sum a wrong claim may be, path by path.

The true gradient is a sum over paths of products of local derivatives
(calculus/paths.py).  `PathTable` evaluates every factor of every path at
each of diagnosis.py's points once; each variant is then a cheap recombination
of those numbers: a role's factor dropped from every path, one path kept
instead of the sum, a softmax Jacobian cut to its diagonal, a downstream
weight matrix transposed.  Each comes with the words that name the mistake.
"""

from __future__ import annotations

import itertools
from typing import Iterator

import mpmath

from ..calculus.model import Param
from ..calculus.paths import Path, paths
from ..check.points import evaluate

#: Single-path variants ("kept only one path") up to this many paths.
MAX_SINGLE_PATHS = 16

Variant = tuple[str, list]


def name(s) -> str:
    """A network symbol in the claim syntax: W2[1,2], a1[2], x[1]."""
    layer = "" if s.layer is None else s.layer
    return f"{s.kind}{layer}[{','.join(map(str, s.idx))}]"


_GROUP_WORDS = {"loss": "the loss derivative", "activation": "the activation derivative of layer {}",
                "weight": "the weights of layer {}", "input": "the input factor"}


class PathTable:
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
            return f"the input factor {name(self.paths[0][-1].expr)}"
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
                [name(path[0].denominator)] + [name(f.numerator) for f in path
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
