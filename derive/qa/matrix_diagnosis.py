"""What is wrong with an incorrect matrix claim, found by evaluating corrections.

Every diagnosis is a candidate computed from the engine's numbers at the
claim's points (matrix_claim.Point) and compared with what the claim gave;
the first candidate the claim equals at every point names the mistake.  The
text of the claim is never matched against patterns, so a mistake is found
however it is written.  The candidates, in order:

- the gradient transposed (dW^T: a result with W.T's shape), the wrong sign,
  another parameter's gradient (db2 claimed for W2);
- the 1/m of a mean missing (m times the data term), or a 1/m under a sum
  reduction, or the regulariser divided by m with the data term;
- the regularisation term l2*W (or l1*sign(W)) missing, doubled or halved,
  or added to a bias that is not regularised;
- a bias summed over the neuron axis instead of the examples, or over both;
- an activation derivative missing (dZ of a layer taken without f'(Z)) or
  multiplied in once more;
- each of these on the transposed claim ("is transposed and ...");
- one name where another belongs (A2 where A1 belongs: the wrong layer),
  by evaluating the claim with one name's matrix given to another of its
  family (the same quantity of another layer, A and Z, X and A);
- a constant factor.

A claim whose shapes do not fit (`ShapeMismatch`) gets both operands'
shapes, and the transposed operands are tried in the whole claim: the
transpose that fits and makes the claim right is named first, else one that
gives the parameter's shape, else one that only fits there.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .matrix_eval import ShapeMismatch, close, evaluate, fitted
from .matrix_expr import names, replace, shape_text, transposed, with_args
from ..check.numeric import compile_expr
from ..spec.registry import X


class Judge:
    """The claim's tree and points of one matrix claim, and the candidates tried on them."""

    def __init__(self, net, layout, kind: str, layer: int, tree, points):
        self.net, self.layout, self.kind, self.layer = net, layout, kind, layer
        self.tree, self.points = tree, points
        self.name = f"{kind}{layer}"
        self.spec = net.spec
        self.m = self.spec.batch

    # -- helpers ---------------------------------------------------------------------
    def evaluate_all(self, tree, overlay: dict | None = None) -> list | None:
        """The tree at every point (with some names given other matrices); None if shapes fail."""
        try:
            return [evaluate(tree, {**p.env, **(overlay(p) if overlay else {})}, self.layout.neuron_axis)
                    for p in self.points]
        except ShapeMismatch:
            return None

    def matches(self, claimed: list, targets: list) -> bool:
        return all(close(c, t) for c, t in zip(claimed, targets))

    def shape(self) -> str:
        return shape_text(self.points[0].truth.shape)

    # -- values ----------------------------------------------------------------------
    def values(self, claimed: list) -> str | None:
        """The mistake of a claim whose shapes fit but whose numbers are wrong."""
        if not all(np.all(np.isfinite(c)) for c in claimed):
            return ("the claim is not a finite number everywhere (a log or sqrt of a negative "
                    "number, or a division by zero?)")
        for words, targets in self.candidates():
            if self.matches(claimed, targets):
                return words
        truth, got = self.points[0].truth, claimed[0]
        if got.shape == truth.T.shape != truth.shape:
            for words, targets in self.candidates():
                if self.matches([c.T for c in claimed], targets):
                    return f"is transposed (its shape {shape_text(got.shape)} is {self.name}.T's) and {words}"
        found = self.swap() or self.ratio(claimed)
        if found:
            return found
        if fitted(got, truth.shape) is None:
            has = "is a number" if not got.shape else f"has shape {shape_text(got.shape)}"
            return (f"{has}, but dL/d{self.name} has {self.name}'s shape "
                    f"{self.shape()} in the {self.layout.name} layout")
        return None

    def candidates(self) -> Iterator[tuple[str, list]]:
        pts, name = self.points, self.name
        truth = [p.truth for p in pts]
        if truth[0].shape != truth[0].T.shape or not self.matches(truth, [t.T for t in truth]):
            yield (f"is dL/d{name} transposed: its shape {shape_text(truth[0].T.shape)} is that of {name}.T, "
                   f"not {name}'s {self.shape()} in the {self.layout.name} layout (you computed "
                   f"d{name}^T): transpose it"), [t.T for t in truth]
        yield "has the wrong sign", [-t for t in truth]
        for other in pts[0].gradients:
            if other != name:
                yield f"is dL/d{other}, not dL/d{name}", [p.gradients[other] for p in pts]
        yield from self.scale()
        yield from self.regularization()
        if self.kind == "b":
            yield from self.bias_axis()
        yield from self.activation_derivatives()

    def scale(self) -> Iterator[tuple[str, list]]:
        """A missing or extra 1/m (the data term only, or with the regulariser)."""
        if self.m == 1:
            return
        pts, m = self.points, self.m
        reg = [p.truth - p.data for p in pts]
        if self.spec.training.reduction == "mean":
            yield (f"is missing the 1/m of the mean reduction: its data term is m = {m} times the "
                   f"gradient's (divide the sum over the examples by m)"), [m * p.data + r for p, r in zip(pts, reg)]
            yield (f"is m = {m} times the gradient: the 1/m of the mean reduction is missing"), \
                [m * p.truth for p in pts]
            yield ("divides the regularisation term by m too: R(W) is added once to the loss, not "
                   "averaged over the examples (write + l2*W outside the 1/m)"), \
                [p.data + r / m for p, r in zip(pts, reg)]
        else:
            yield (f"divides by m = {m}, but the spec's reduction is sum (L = sum_n loss_n): "
                   f"drop the 1/m"), [p.data / m + r for p, r in zip(pts, reg)]
            yield (f"is 1/m = 1/{m} of the gradient, but the spec's reduction is sum: drop the 1/m"), \
                [p.truth / m for p in pts]

    def regularization(self) -> Iterator[tuple[str, list]]:
        reg, pts, name = self.spec.regularization, self.points, self.name
        terms = {"l2": f"l2*{name}", "l1": f"l1*sign({name})"}
        if not reg.covers(self.kind):
            for key in ("l2", "l1"):
                if getattr(reg, key):
                    yield (f"adds {terms[key]}, but the biases are not regularised "
                           f"(regularization.biases = false): drop it"), [p.truth + p.would_be[key] for p in pts]
            return
        active = [k for k in ("l2", "l1") if getattr(reg, k)]
        if len(active) == 2:
            yield (f"is missing the regularisation terms {terms['l2']} + {terms['l1']}"), [p.data for p in pts]
        for key in active:
            r = [p.regularizers[key] for p in pts]
            yield (f"is missing the regularisation term {terms[key]} (dR/d{name} of "
                   f"{'(l2/2) sum w^2' if key == 'l2' else 'l1 sum |w|'})"), [p.truth - v for p, v in zip(pts, r)]
            yield f"has the regularisation term {terms[key]} twice", [p.truth + v for p, v in zip(pts, r)]
            if key == "l2":
                yield ("has half the regularisation term: the derivative of (l2/2) w^2 is l2*w, "
                       "not l2*w/2"), [p.truth - v / 2 for p, v in zip(pts, r)]

    def bias_axis(self) -> Iterator[tuple[str, list]]:
        """sum(dZ, axis=<neurons>) (a row of m in the column layout) or sum(dZ) (a number)."""
        lay, l = self.layout, self.layer
        neuron, example = lay.neuron_axis, 1 - lay.neuron_axis
        s = self.spec.training.scale
        wrong = [np.sum(p.env[f"dZ{l}"], axis=neuron, keepdims=True) for p in self.points]
        right = f"sum(dZ{l}, axis={example})"
        for factor, how in ((s, ""), (1 / self.net.model.n[l], " (a mean)")):
            yield (f"sums dZ{l} over the wrong axis{how}: axis={neuron} adds up the neurons of each "
                   f"example, the bias gradient sums over the examples: {right}"), [factor * w for w in wrong]
        total = [np.asarray(s * np.sum(p.env[f"dZ{l}"])) for p in self.points]
        yield (f"sums all of dZ{l} to one number: the bias gradient sums over the examples only, "
               f"{right}"), total

    def activation_derivatives(self) -> Iterator[tuple[str, list]]:
        """dZ of layer k (k >= the parameter's layer) without f'_k(Z_k), or with it twice."""
        L, acts = self.net.model.L, self.spec.activations
        for k in range(L, self.layer - 1, -1):
            row = acts[k - 1]
            if row.vector:
                continue
            f = compile_expr(row.derivative(), (X,))
            for omit in (True, False):
                targets = [self.gradient_from(p, k, f, omit) for p in self.points]
                if any(t is None for t in targets):
                    continue
                if omit:
                    yield self.missing_words(k, row.name), targets
                else:
                    yield (f"multiplies dZ{k} by the activation derivative {row.name}'(Z{k}) once "
                           f"more: dZ{k} already contains it"), targets

    def missing_words(self, k: int, act: str) -> str:
        L = self.net.model.L
        if k == L:
            why = ("A - Y is dZ only for sigmoid with bce or softmax with cross_entropy; here "
                   f"dZ{k} = dL/dA{k} * {act}'(Z{k})")
        else:
            up = f"dZ{k + 1} @ W{k + 1}.T" if self.layout.row else f"W{k + 1}.T @ dZ{k + 1}"
            why = f"dZ{k} = ({up}) * {act}'(Z{k}), elementwise"
        return f"is missing the activation derivative of layer {k}, {act}'(Z{k}): {why}"

    def gradient_from(self, p, k: int, f, omit: bool) -> np.ndarray | None:
        """The gradient with dZ_k's f' left out (omit) or doubled, carried down to the layer."""
        t, W = p.trace, p.W
        fk = np.atleast_2d(f(t.z[k]))
        delta = np.atleast_2d(t.delta[k])
        if omit:
            if k < self.net.model.L:
                delta = np.atleast_2d(t.delta[k + 1]) @ W[k + 1]
            elif np.any(fk == 0):
                return None
            else:
                delta = delta / fk
        else:
            delta = delta * fk
        acts = self.spec.activations
        for l in range(k - 1, self.layer - 1, -1):
            if acts[l - 1].vector:
                return None
            delta = (delta @ W[l + 1]) * np.atleast_2d(compile_expr(acts[l - 1].derivative(), (X,))(t.z[l]))
        grad = self.layout.gradient(self.kind, delta, t.a[self.layer - 1], self.spec.training.scale)
        return grad + p.regularizers["l2"] + p.regularizers["l1"]

    # -- names -------------------------------------------------------------------------
    def swap(self) -> str | None:
        """'uses A2 where A1 belongs': a name of the claim given another name's matrix."""
        truth = [p.truth for p in self.points]
        others = [n for n in self.points[0].env if self.points[0].env[n].ndim == 2]
        for own in names(self.tree):
            if own not in others:
                continue
            kind = own.rstrip("0123456789")
            for other in sorted(others, key=lambda n: n.rstrip("0123456789") != kind):
                if other == own or not _related(own, other):
                    continue
                values = self.evaluate_all(self.tree, lambda p, o=own, n=other: {o: p.env[n]})
                if values is not None and self.matches(values, truth):
                    same = other.rstrip("0123456789") == kind and kind not in ("X", "Y")
                    env = self.points[0].env
                    sizes = (f" ({own} is {shape_text(env[own].shape)}, {other} {shape_text(env[other].shape)})"
                             if env[own].shape != env[other].shape else "")
                    return f"uses {own} where {other} belongs" + (" (the wrong layer)" if same else "") + sizes
        return None

    def ratio(self, claimed: list) -> str | None:
        got = [fitted(c, p.truth.shape) for c, p in zip(claimed, self.points)]
        if any(g is None for g in got):
            return None
        pairs = [(g.ravel(), p.truth.ravel()) for g, p in zip(got, self.points)]
        big = [(g[np.abs(t) > 1e-12], t[np.abs(t) > 1e-12]) for g, t in pairs]
        ratios = np.concatenate([g / t for g, t in big]) if big else np.array([])
        if ratios.size == 0 or not np.allclose(ratios, ratios[0], rtol=1e-9):
            return None
        r = float(ratios[0])
        if r == 0:
            return "is 0 at every point, and the gradient is not"
        return (f"has an extra constant factor {r:.6g}" if abs(r) >= 1 else
                f"is missing a constant factor {1 / r:.6g} (it is {r:.6g} times the gradient)")

    # -- shapes ------------------------------------------------------------------------
    def shapes(self, mismatch: ShapeMismatch) -> str:
        """Both operands' shapes, and the transpose of an operand that fits (and helps)."""
        node = mismatch.node
        shown = [f"{a.text} is {shape_text(s)}" for a, s in zip(node.args, mismatch.shapes)]
        base = f"the shapes do not fit in {node.text}: {' and '.join(shown)}, and {mismatch.problem}"
        swap = self.swap()
        if swap:
            return f"{swap}: {base}"
        truth = [p.truth for p in self.points]
        shaped = fits = None
        for fixed in self.transposes(node):
            values = self.evaluate_all(replace(self.tree, node, fixed))
            if values is None:
                continue
            if self.matches(values, truth):
                return self.transposed_operand(node, fixed, base)
            if shaped is None and values[0].shape == truth[0].shape:
                shaped = (fixed, self.values(values))
            fits = fits or (fixed, self.values(values))
        if shaped is not None:
            return (f"{base}; {shaped[0].text} would fit (and give {self.name}'s shape {self.shape()})"
                    + (f"; with it the claim still {shaped[1]}" if shaped[1] else ""))
        if fits is not None:
            return f"{base}; {fits[0].text} would fit there" + (f", but the claim then {fits[1]}" if fits[1] else "")
        return base

    def transposed_operand(self, node, fixed, base: str) -> str:
        """The fix that makes the claim right; 'you computed dW^T' when the operand it
        transposes has W.T's shape (a term of the gradient, transposed)."""
        truth = self.points[0].truth
        for old, new in zip(node.args, fixed.args):
            if new is not old and new.kind == "T" and old.kind != "name":
                shape = evaluate(old, self.points[0].env, self.layout.neuron_axis).shape
                if shape == truth.T.shape != truth.shape:
                    return (f"computes d{self.name}^T: {old.text} is {shape_text(shape)}, {self.name}.T's "
                            f"shape, not {self.name}'s {self.shape()}; transpose it: {fixed.text} "
                            f"is right ({base})")
        return f"{base}; {fixed.text} fits, and with it the claim is right"

    @staticmethod
    def transposes(node) -> Iterator:
        """node with one operand transposed, then both."""
        args = node.args
        for i in range(len(args)):
            yield with_args(node, args[:i] + (transposed(args[i]),) + args[i + 1:])
        if len(args) == 2:
            yield with_args(node, tuple(transposed(a) for a in args))


#: Names a careless claim confuses: the same quantity of another layer, and A with Z.
_FAMILIES = ({"X", "A"}, {"Z", "A"}, {"dZ"}, {"W"}, {"b"}, {"Y", "A"})


def _related(own: str, other: str) -> bool:
    kinds = {own.rstrip("0123456789"), other.rstrip("0123456789")}
    return any(kinds <= family for family in _FAMILIES)
