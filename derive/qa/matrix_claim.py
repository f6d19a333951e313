"""`derive claim SPEC W2 "dZ2 @ A1.T / m + l2*W2"`: a whole layer's gradient in matrices.

A PARAM without brackets (``W2``, ``b1``) makes the claim a matrix claim; with
brackets (``W2[1,1]``) it stays the scalar claim of claim.py.  The formula is
parsed by matrix_expr.py and evaluated by NumPy, in the network's layout:

    column (Ng):      X, Z<l>, A<l>, dZ<l> are n_l x m, W<l> n_l x n_(l-1), b<l> n_l x 1
    row (CS231n):     X, Z<l>, A<l>, dZ<l> are m x n_l, W<l> n_(l-1) x n_l, b<l> 1 x n_l

The values of every name come from the engine at a point (`Evaluator.run`:
the forward pass, the per-example deltas dZ = dloss_n/dz), and so does the
truth, gW / gb of the same run (including s = 1/m or 1 and dR/dp), written in
the layout; the engine's own correctness is what the other checks establish.
The claim must have the parameter's shape as the layout writes it (a bias may
also be a flat vector) and equal the truth to `RTOL` (relative to the
largest entry) at the network's own values, if any, and `POINTS` seeded
random points (points.Sampler).  A wrong claim is diagnosed by
matrix_diagnosis.py from numbers, never from the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from . import matrix_diagnosis
from .claim import VerdictDisplay
from .matrix_eval import RTOL, ShapeMismatch, close, evaluate
from .matrix_expr import parse, shape_text
from ..check.numeric import as_arrays
from ..check.points import Sampler, as_table
from ..errors import SpecError

#: Random points a correct claim must match at (after the network's own values).
POINTS = 5
_BARE = re.compile(r"^\s*[A-Za-z_]\w*\s*$")
_MATRIX_PARAM = re.compile(r"^\s*([Wb])(\d+)\s*$")


def is_matrix_param(param) -> bool:
    """A PARAM without brackets (W2, b1, or a bad bare name, which `parse_param` refuses)."""
    return isinstance(param, str) and bool(_BARE.match(param))


def parse_param(net, text: str) -> tuple[str, int]:
    """("W" or "b", layer) of a bare parameter-matrix name, or a one-line `SpecError`."""
    m, L = _MATRIX_PARAM.match(text), net.model.L
    if m is None:
        raise SpecError(f"PARAM: {text.strip()!r} is not a parameter matrix; a matrix claim is about "
                        f"W<l> or b<l> (l in 1..{L}), e.g. W{L}, and one entry's is about W{L}[1,1]")
    kind, layer = m.group(1), int(m.group(2))
    if not 1 <= layer <= L:
        raise SpecError(f"PARAM: layer {layer} of {text.strip()} is not in 1..{L}")
    if kind == "b" and not net.spec.bias:
        raise SpecError(f"PARAM: {text.strip()}: this network has no biases (bias = false)")
    return kind, layer


class Layout:
    """How the layout writes the engine's arrays (rows are examples inside the engine)."""

    def __init__(self, spec):
        self.row = spec.row_layout
        self.name = "row" if self.row else "column"
        self.neuron_axis = 1 if self.row else 0

    def data(self, a: np.ndarray) -> np.ndarray:
        """An (m, n) or (n,) array of examples as the layout writes it."""
        a = np.atleast_2d(a)
        return a if self.row else a.T

    def weight(self, w: np.ndarray) -> np.ndarray:
        """A column-form (n_l, n_(l-1)) matrix as the layout writes it."""
        return w.T if self.row else w

    def bias(self, v: np.ndarray) -> np.ndarray:
        return np.asarray(v, dtype=float).reshape((1, -1) if self.row else (-1, 1))

    def gradient(self, kind: str, delta: np.ndarray, a: np.ndarray, s: float) -> np.ndarray:
        """s sum_n delta_n a_n^T (or s sum_n delta_n) from row-form arrays, in the layout."""
        delta, a = np.atleast_2d(delta), np.atleast_2d(a)
        if kind == "W":
            return self.weight(s * (delta.T @ a))
        return self.bias(s * np.sum(delta, axis=0))


@dataclass
class Point:
    """One point: the values, the environment of names, the truth and its parts."""

    values: object
    env: dict
    truth: np.ndarray
    regularizers: dict          # "l2", "l1" -> the term dR/dp adds (0 where not covered)
    would_be: dict              # "l2", "l1" -> l2*p and l1*sign(p) whether covered or not
    trace: object
    W: dict                     # column form, as the engine keeps them
    gradients: dict             # every W<l> and b<l> -> its true gradient, in the layout

    @property
    def data(self) -> np.ndarray:
        """The truth without the regulariser: s sum_n dloss_n/dp."""
        return self.truth - self.regularizers["l2"] - self.regularizers["l1"]


def point(net, layout: Layout, kind: str, layer: int, values) -> Point:
    """The environment and the truth at `values` (one engine run)."""
    spec = net.spec
    trace, gW, gb = net.evaluator.run(values)
    x, y, W, b = as_arrays(values, net.model.n, spec.bias)
    reg = spec.regularization
    env = {"X": layout.data(x), "Y": layout.data(y), "m": np.asarray(float(spec.batch)),
           "l2": np.asarray(reg.l2), "l1": np.asarray(reg.l1)}
    for l in range(1, net.model.L + 1):
        env[f"Z{l}"], env[f"A{l}"] = layout.data(trace.z[l]), layout.data(trace.a[l])
        env[f"dZ{l}"], env[f"W{l}"] = layout.data(trace.delta[l]), layout.weight(W[l])
        if spec.bias:
            env[f"b{l}"] = layout.bias(b[l])
    p = env[f"{kind}{layer}"]
    gradients = {**{f"W{l}": layout.weight(g) for l, g in gW.items()},
                 **{f"b{l}": layout.bias(g) for l, g in gb.items()}}
    truth = gradients[f"{kind}{layer}"]
    would_be = {"l2": reg.l2 * p, "l1": reg.l1 * np.sign(p)}
    covered = reg.covers(kind)
    regularizers = {k: v if covered else np.zeros_like(p) for k, v in would_be.items()}
    return Point(values, env, truth, regularizers, would_be, trace, W, gradients)


@dataclass
class MatrixVerdict(VerdictDisplay):
    """The outcome of a matrix claim (the --json object is `to_json`)."""

    parameter: str
    claim: str
    correct: bool
    layout: str
    shape: tuple                      # the parameter's shape in the layout
    claimed_shape: tuple | None = None  # None: the claim's shapes do not fit
    diagnosis: str | None = None
    counterexample: dict | None = None
    points: int = 0
    at_values: dict | None = None
    method: str = field(default="numeric")

    def __repr__(self) -> str:
        return f"MatrixVerdict({self.parameter}: {'correct' if self.correct else 'incorrect'})"

    def to_json(self) -> dict:
        shape = lambda s: None if s is None else list(s)  # noqa: E731
        return {"parameter": self.parameter, "claim": self.claim, "correct": self.correct,
                "method": self.method, "form": "matrix", "layout": self.layout,
                "shape": shape(self.shape), "claimed_shape": shape(self.claimed_shape),
                "counterexample": self.counterexample, "diagnosis": self.diagnosis,
                "points": self.points, "at_values": self.at_values}

    def text(self) -> str:
        head = f"dL/d{self.parameter} = {self.claim}"
        if self.correct:
            lines = [f"correct: {head}",
                     f"  equal to the engine's gradient ({shape_text(self.shape)}, {self.parameter}'s "
                     f"shape in the {self.layout} layout) at {self.points} points to {RTOL:g} relative"]
            where = (f"the network's values and {self.points - 1} random points" if self.at_values
                     else f"{self.points} random points")
            lines[-1] = lines[-1].replace(f"{self.points} points", where)
            if self.at_values:
                lines.append(f"  at the network's values: {_matrix_text(self.at_values['true'])}")
            return "\n".join(lines)
        lines = [f"incorrect: {head}"] + ([f"  {self.diagnosis}"] if self.diagnosis else [])
        ce = self.counterexample
        if ce is not None:
            from .claim import _point_text  # the scalar verdict's one-line point

            lines += [f"  counterexample: {_point_text(ce['point'])}",
                      f"    claimed  {_matrix_text(ce['claimed'])}", f"    true     {_matrix_text(ce['true'])}"]
        return "\n".join(lines)


def _matrix_text(m) -> str:
    if m is None:
        return "undefined"
    if not isinstance(m, list):
        return f"{m:.9g}"
    return "[" + ", ".join(_matrix_text(v) for v in m) + "]"


def check_matrix_claim(net, param: str, expr: str) -> MatrixVerdict:
    """Judge `expr` as a formula for the whole matrix dL/dparam (see the module docstring)."""
    kind, layer = parse_param(net, param)
    tree = parse(expr, net.model.L, net.spec.bias)
    layout = Layout(net.spec)
    sampler = Sampler(net.evaluator)
    points = [point(net, layout, kind, layer, v) for v in sampler.values(POINTS, first=net.spec.values)]
    name = f"{kind}{layer}"
    verdict = MatrixVerdict(name, expr, False, layout.name, points[0].truth.shape, points=len(points))
    judge = matrix_diagnosis.Judge(net, layout, kind, layer, tree, points)
    try:
        claimed = [evaluate(tree, p.env, layout.neuron_axis) for p in points]
    except ShapeMismatch as mismatch:
        verdict.diagnosis = judge.shapes(mismatch)
        return verdict
    verdict.claimed_shape = claimed[0].shape
    if net.spec.values is not None:
        verdict.at_values = {"claimed": _listed(claimed[0]), "true": _listed(points[0].truth)}
    failing = next((i for i, (c, p) in enumerate(zip(claimed, points)) if not close(c, p.truth)), None)
    if failing is None:
        verdict.correct = True
        return verdict
    p = points[failing]
    verdict.counterexample = {"point": as_table(p.values, layout.row), "claimed": _listed(claimed[failing]),
                              "true": _listed(p.truth)}
    verdict.diagnosis = judge.values(claimed)
    return verdict


def _listed(a: np.ndarray):
    """An array as nested lists of floats (None for nan or inf entries)."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 0:
        return float(a) if np.isfinite(a) else None
    return [_listed(v) for v in a]
