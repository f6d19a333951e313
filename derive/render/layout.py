"""Where a network diagram's neurons go, and which role each one plays.

`layout` places the columns (input, layers, output) and the neurons in
them, eliding wide layers (a "⋮" row) and the middle of deep networks (a "⋯"
column) so a 30-layer width-16 net stays readable; the neurons and layers a
highlight needs are always kept.  `node_role` and `edge_role` say which
factor of the chain rule (`paths.ROLES`) an element stands for on a
parameter's paths.  diagram.py draws from both.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..calculus.model import Param
from ..spec.network import NetworkSpec

DX, DX_GAP, DY, R = 2.2, 1.3, 0.95, 0.36  # column step, step beside a gap, row step, radius (cm)


@dataclass(frozen=True)
class Column:
    """A layer (0 is the input) or, with layer None, a run of elided layers.
    `rows` are (neuron j, y) from the top; j None is the "⋮" for neurons left out."""

    layer: int | None
    x: float
    rows: tuple[tuple[int | None, float], ...]
    size: int = 0
    skipped: tuple[int, int] | None = None  # first and last layer a gap stands for

    def y(self, j: int) -> float:
        return next(y for i, y in self.rows if i == j)


@dataclass(frozen=True)
class Layout:
    columns: tuple[Column, ...]
    loss_x: float
    top: float  # every row lies in [-top, top]

    def column(self, layer: int) -> Column:
        return next(c for c in self.columns if c.layer == layer)

    def __repr__(self) -> str:
        return "Layout(" + ", ".join("⋯" if c.layer is None else f"{c.layer}:{len(c.rows)}"
                                     for c in self.columns) + ", loss)"


def _with_gaps(shown) -> list[int | None]:
    """Sorted indices, with None wherever some were left out between two."""
    out: list[int | None] = []
    for i in sorted(shown):
        if out and i > out[-1] + 1:
            out.append(None)
        out.append(i)
    return out


def layout(spec: NetworkSpec, max_neurons: int = 8, highlight: Param | None = None,
           max_layers: int = 8) -> Layout:
    """Columns and neuron rows; wider and deeper networks are elided, keeping
    both ends and whatever `highlight` needs (its layer and its input's)."""
    if max_neurons < 3 or max_layers < 4:
        raise ValueError(f"need max_neurons >= 3 and max_layers >= 4, got {max_neurons}, {max_layers}")
    p, L, n = highlight, spec.depth, spec.layers
    layers = list(range(L + 1)) if L + 1 <= max_layers else _with_gaps(
        {0, 1, L - 1, L} | ({p.layer - 1, p.layer} if p else set()))
    columns, x = [], 0.0
    for i, t in enumerate(layers):
        x += (DX_GAP if None in (t, layers[i - 1]) else DX) if i else 0.0
        if t is None:
            columns.append(Column(None, x, ((None, 0.0),), 0, (layers[i - 1] + 1, layers[i + 1] - 1)))
            continue
        keep = {p.j} if p and t == p.layer else {p.k} if p and p.k and t == p.layer - 1 else set()
        rows = _with_gaps(range(1, n[t] + 1) if n[t] <= max_neurons else
                          set(range(1, max(1, max_neurons - 2 - len(keep)) + 1)) | {n[t]} | keep)
        columns.append(Column(t, x, tuple((j, ((len(rows) - 1) / 2 - r) * DY)
                                          for r, j in enumerate(rows)), n[t]))
    return Layout(tuple(columns), x + DX, max((len(c.rows) - 1) / 2 * DY for c in columns))


# -- roles: which factor of the chain rule each element of the picture is ------
def node_role(spec: NetworkSpec, p: Param | None, layer: int, j: int) -> str | None:
    """Role of neuron j of `layer` (layer L+1 is the loss node) on p's paths."""
    if p is None:
        return None
    if layer == spec.depth + 1:
        return "loss"
    if p.kind == "W" and layer == p.layer - 1 and j == p.k:
        return "input"
    coupled = layer == p.layer == spec.depth and spec.softmax_output
    return "activation" if layer > p.layer or (layer == p.layer and (j == p.j or coupled)) else None


def edge_role(spec: NetworkSpec, p: Param | None, layer: int, k: int | None, j: int | None) -> str | None:
    """Role of the edge k -> j into `layer` (layer L+1: output k -> loss) on p's paths."""
    if p is None:
        return None
    if layer == spec.depth + 1:
        return "loss" if node_role(spec, p, spec.depth, k) else None
    if layer == p.layer:
        return "input" if p.kind == "W" and (k, j) == (p.k, p.j) else None
    return "weight" if layer > p.layer + 1 or (layer == p.layer + 1 and k == p.j) else None
