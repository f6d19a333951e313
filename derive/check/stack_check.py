"""`derive check` for a [[layer]] network: backprop through the layer table against complex-step.

Points: the user's values (if any), then `points` random ones drawn here,
seeded: inputs in [-1, 1] (token indices for an embedding), parameters in
+-[0.1, 1] / sqrt(fan-in), targets as the loss needs them, dropout masks as
the spec gives or draws them.  Every entry of every parameter array is
compared with `StackEvaluator.reference` (complex-step of the forward pass);
the table has one row per array, the tolerance is verify.py's.  An array of
more than `ENTRIES` entries is checked along `DIRECTIONS` random directions
instead (stack_eval.directional: linear cost), its tolerance scaled by the
size of the terms of the directional sum, sum |dL/dp_i v_i|.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .compare import Tolerance
from .stack_eval import StackEvaluator
from .verify import ATOL, RTOL
from ..spec.stack_values import StackValues, dropout_mask

TOLERANCE = Tolerance(RTOL, ATOL)
SEED = 4
#: Arrays up to this size are compared entry by entry; larger ones along random directions.
ENTRIES = 64
DIRECTIONS = 4


def random_point(spec, rng: np.random.Generator, masks) -> StackValues:
    """One random point of the stack (masks: the spec's, shared by every point)."""
    m = spec.batch
    if spec.embedding_input:
        x = rng.integers(1, spec.layers[0].cfg["vocabulary"] + 1, size=(m,) + spec.input).astype(float)
    else:
        x = rng.uniform(-1, 1, size=(m,) + spec.input)
    n = spec.output_size
    rows = (m, spec.steps) if spec.every_step else (m,)
    if spec.softmax_cross_entropy:
        y = rng.dirichlet(np.ones(n), size=rows)
    elif spec.loss.probabilistic:
        y = rng.uniform(0.05, 0.95, size=rows + (n,))
    else:
        y = rng.uniform(-1, 1, size=rows + (n,))
    params = {}
    for name, shape in spec.parameter_arrays():
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        sign = rng.choice([-1.0, 1.0], size=shape)
        params[name] = sign * rng.uniform(0.1, 1.0, size=shape) / np.sqrt(fan_in)
        if name.startswith("gamma"):
            params[name] = 1 + params[name] / 2
    return StackValues(x, y, params, masks)


@dataclass
class StackReport:
    """Largest errors per parameter array over every point."""

    points: int
    rows: dict[str, list] = field(default_factory=dict)
    reference: str = "complex-step (h = 1e-30) of the forward pass"
    tolerance: Tolerance = TOLERANCE
    agree: str = "all gradients agree"
    disagree: str = "GRADIENTS DISAGREE"

    @property
    def passed(self) -> bool:
        return all(row[3] == 0 for row in self.rows.values())

    def add(self, derived: dict, reference: dict) -> None:
        for name, d in derived.items():
            r = reference[name]
            err = np.abs(d - r)
            rel = err / np.maximum(np.abs(r), 1e-300)
            bad = int(np.sum(~self.tolerance.close(d, r)))
            row = self.rows.setdefault(name, [d.size, 0.0, 0.0, 0])
            row[1], row[2], row[3] = max(row[1], float(err.max())), max(row[2], float(rel.max())), row[3] + bad

    def add_directions(self, name: str, g: np.ndarray, probes) -> None:
        """Directional sums sum_i g_i v_i against complex-step along each v."""
        row = self.rows.setdefault(name, [g.size, 0.0, 0.0, 0])
        row.append("directions")
        for v, ref in probes:
            derived, scale = float(np.sum(g * v)), float(np.sum(np.abs(g * v)))
            err = abs(derived - ref)
            row[1], row[2] = max(row[1], err), max(row[2], err / max(scale, 1e-300))
            row[3] += int(not err <= TOLERANCE.atol + TOLERANCE.rtol * scale)

    def table(self) -> str:
        lines = [f"{'array':<10}{'entries':>8}  {'max abs err':>12}  {'max rel err':>12}  result", "-" * 56]
        for name, (size, err, rel, bad, *how) in self.rows.items():
            result = "ok" if not bad else f"{bad} MISMATCH"
            lines.append(f"{name:<10}{size:>8}  {err:>12.3e}  {rel:>12.3e}  {result}"
                         + (f" ({DIRECTIONS} random directions per point)" if how else ""))
        lines.append(f"{self.points} point(s); reference: {self.reference}; tolerance {self.tolerance}")
        lines.append(self.agree if self.passed else self.disagree)
        return "\n".join(lines)


def check_stack(spec, values: StackValues | None, points: int = 3, seed: int = SEED) -> StackReport:
    """Compare backprop through the table with complex-step at the user's and random points."""
    ev, rng = StackEvaluator(spec), np.random.default_rng(seed)
    pts = stack_points(spec, values, points, seed)
    report = StackReport(len(pts))
    for point in pts:
        derived = ev.run(point)[1]
        small = {name: g for name, g in derived.items() if g.size <= ENTRIES}
        if small:
            report.add(small, _entries(ev, point, small))
        for name, g in derived.items():
            if g.size > ENTRIES:
                report.add_directions(name, g, [(v, ev.directional(point, name, v)) for v in
                                                rng.standard_normal((DIRECTIONS,) + g.shape)])
    return report


def _entries(ev: StackEvaluator, point, arrays: dict) -> dict:
    """Complex-step, entry by entry, of the arrays named in `arrays`."""
    full = ev.reference(point, names=list(arrays))
    return {name: full[name] for name in arrays}


def stack_points(spec, values: StackValues | None, count: int, seed: int = SEED) -> list[StackValues]:
    """The points every stack check meets: the user's values (if any), then `count` random ones
    drawn from `seed`, all with the same dropout masks (the values', else the spec's draw)."""
    rng = np.random.default_rng(seed)
    masks = values.masks if values is not None else _spec_masks(spec)
    return ([values] if values is not None else []) + [random_point(spec, rng, masks) for _ in range(count)]


def _spec_masks(spec) -> dict:
    """The dropout masks drawn from each layer's seed (as a values table without mask<l>)."""
    return {layer.number: dropout_mask(spec, layer, None) for layer in spec.layers if layer.kind.name == "dropout"}
