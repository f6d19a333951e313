"""One comparison and one report for every check of the derived gradients.

A check compares the derivation's numbers with an independent reference
(complex-step differentiation in verify.py, PyTorch autograd in
torchcheck.py) at the points of points.Sampler.  Both fold each point into
the same `CheckReport` with `compare_gradients`: gradients arrive as
per-layer arrays (dL/dW(l) of shape (n_l, n_l-1), dL/db(l)), are judged by
one `Tolerance` (|derived - reference| <= atol + rtol |reference|, a nan or
inf is never close), and keep per layer the largest absolute and relative
error and the worst mismatch by name.  The report prints one table; the
`Reference` row says what the numbers were compared with, its tolerance and
the verdict lines, so only the words differ between the checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

from ..calculus.model import Param
from ..spec.network import parameter_count

#: Gradients of one point: (dL/dW by layer, dL/db by layer, empty without biases).
Gradients = tuple[Mapping[int, np.ndarray], Mapping[int, np.ndarray]]


@dataclass(frozen=True)
class Tolerance:
    """|derived - reference| <= atol + rtol * |reference| counts as equal."""

    rtol: float
    atol: float

    def close(self, derived, reference):
        """Elementwise for arrays; plain numbers (float or mpmath) give a bool."""
        with np.errstate(invalid="ignore"):  # inf - inf is nan, which is never close
            return abs(derived - reference) <= self.atol + self.rtol * abs(reference)

    def __str__(self) -> str:
        return f"|err| <= {self.atol:g} + {self.rtol:g}*|ref|"


@dataclass(frozen=True)
class Reference:
    """What a check compares with: its description, tolerance and verdict lines."""

    method: str
    tolerance: Tolerance
    agree: str = "all gradients agree"
    disagree: str = "GRADIENTS DISAGREE"


@dataclass
class LayerResult:
    """Largest errors over one layer's parameters and all points."""

    layer: int
    parameters: int
    max_abs: float = 0.0
    max_rel: float = 0.0
    failures: int = 0
    worst: str = ""
    worst_error: float = field(default=-1.0, repr=False)

    def __repr__(self) -> str:
        return f"LayerResult(l={self.layer}, abs={self.max_abs:.2e}, rel={self.max_rel:.2e})"

    def add(self, kind: str, derived: np.ndarray, ref: np.ndarray, tol: Tolerance) -> None:
        """Fold one point's dL/dW(l) (kind "W") or dL/db(l) into the row."""
        derived, ref = np.atleast_1d(derived), np.atleast_1d(ref)
        err = np.abs(derived - ref)
        err = np.where(np.isnan(err), np.inf, err)
        bad = ~tol.close(derived, ref)
        self.max_abs = max(self.max_abs, float(err.max(initial=0)))
        rel = err / np.maximum(np.abs(ref), 1e-300)
        self.max_rel = max(self.max_rel, float(np.where(np.abs(ref) > tol.atol, rel, 0).max(initial=0)))
        if not bad.any():
            return
        self.failures += int(bad.sum())
        idx = np.unravel_index(int(np.argmax(np.where(bad, err, -1))), bad.shape)
        if err[idx] > self.worst_error:
            p = Param(self.layer, kind, *(int(i) + 1 for i in idx))
            self.worst_error = float(err[idx])
            self.worst = f"{p.name}: derived {float(derived[idx])!r}, reference {float(ref[idx])!r}"


@dataclass
class CheckReport:
    """The outcome of a check: per-layer rows, points used, reference, verdict."""

    layers: list[LayerResult]
    points: int
    reference: Reference
    notes: list[str] = field(default_factory=list)
    #: Disagreements that are not a gradient's (the loss of a point).
    mismatches: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls, layers: tuple[int, ...], bias: bool, points: int, reference: Reference) -> "CheckReport":
        rows = [LayerResult(l, parameter_count(layers[l - 1:l + 1], bias)) for l in range(1, len(layers))]
        return cls(rows, points, reference)

    @property
    def method(self) -> str:
        return self.reference.method

    @property
    def passed(self) -> bool:
        return not self.mismatches and all(r.failures == 0 for r in self.layers)

    @property
    def max_abs(self) -> float:
        return max(r.max_abs for r in self.layers)

    @property
    def max_rel(self) -> float:
        return max(r.max_rel for r in self.layers)

    def __repr__(self) -> str:
        return f"CheckReport(passed={self.passed}, points={self.points}, max_abs={self.max_abs:.2e})"

    def _repr_markdown_(self) -> str:
        """Jupyter shows the table as it prints in a terminal."""
        return "```\n" + self.table() + "\n```"

    def compare_gradients(self, derived: Gradients, reference: Gradients) -> None:
        """Fold one point's derived gradients, judged against the reference's, into the rows."""
        tol = self.reference.tolerance
        for row in self.layers:
            row.add("W", derived[0][row.layer], reference[0][row.layer], tol)
            if row.layer in derived[1]:
                row.add("b", derived[1][row.layer], reference[1][row.layer], tol)

    def compare_loss(self, point: int, derived: float, reference: float) -> None:
        if not self.reference.tolerance.close(derived, reference):
            self.mismatches.append(f"loss MISMATCH: point {point}: derived {derived!r}, "
                                   f"reference {reference!r}")

    def table(self) -> str:
        head = f"{'layer':>5}  {'params':>7}  {'max abs err':>12}  {'max rel err':>12}  result"
        lines = [head, "-" * len(head)]
        for r in self.layers:
            verdict = "ok" if r.failures == 0 else f"{r.failures} MISMATCH (worst {r.worst})"
            lines.append(f"{r.layer:>5}  {r.parameters:>7}  {r.max_abs:>12.3e}  {r.max_rel:>12.3e}  {verdict}")
        lines.append(f"{self.points} point(s); reference: {self.method}; "
                     f"tolerance {self.reference.tolerance}")
        lines += self.notes + self.mismatches
        lines.append(self.reference.agree if self.passed else self.reference.disagree)
        return "\n".join(lines)


def layer_arrays(params: Iterable[Param], by_name: Mapping[str, float], layers: tuple[int, ...],
                 bias: bool) -> Gradients:
    """Gradients keyed by parameter name as per-layer arrays, for `compare_gradients`."""
    gW = {l: np.full((layers[l], layers[l - 1]), np.nan) for l in range(1, len(layers))}
    gb = {l: np.full(layers[l], np.nan) for l in gW} if bias else {}
    for p in params:
        if p.kind == "W":
            gW[p.layer][p.j - 1, p.k - 1] = by_name[p.name]
        else:
            gb[p.layer][p.j - 1] = by_name[p.name]
    return gW, gb
