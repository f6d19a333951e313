"""`derive check --against torch`: the derived gradients against PyTorch autograd.

The network is built a second time in torch, sharing nothing with the
derivation but the registry's names: float64 tensors, one torch function per
activation and loss (the tables below, PyTorch's own implementations), and
autograd for every gradient.  Where torch has a numerically stable fused form
of the same function (sigmoid + bce from logits, softmax + cross-entropy from
logits, softplus as logaddexp) it is used, so that the comparison measures
the derivation, not torch's rounding.  A custom expression activation or
loss has no torch counterpart here and is refused with a `SpecError`.

Points: the spec's values (if any) and `points` seeded random ones, drawn as
`derive check` draws them (away from ReLU kinks).  PyTorch is optional: when
it is not importable, `compare_with_torch` raises a `ToolError` saying how to
install it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError, ToolError
from ..spec.registry import ACTIVATIONS, LOSSES
from .verify import LayerResult

#: Two float64 implementations of the same network: |derived - torch| <= ATOL + RTOL |torch|.
#: Far tighter than torch.autograd.gradcheck's atol 1e-5, rtol 1e-3.
RTOL = 1e-8
ATOL = 1e-10
DEFAULT_POINTS = 3
SEED = 20261130
INSTALL_HINT = "--against torch needs PyTorch: pip install torch==2.13.0 (CPU)"


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ToolError(INSTALL_HINT) from None
    return torch


def _activations(torch):
    F = torch.nn.functional
    return {
        "identity": lambda z: z,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": F.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, negative_slope=0.01),
        "softplus": lambda z: torch.logaddexp(z, torch.zeros_like(z)),
        "elu": lambda z: F.elu(z, alpha=1.0),
        "silu": F.silu,
        "gelu": lambda z: F.gelu(z, approximate="none"),
        "softmax": lambda z: torch.softmax(z, dim=-1),
    }


def _loss(torch, name: str, out_act: str, z, a, y):
    """The loss of one example from the output pre-activation z and activation a."""
    F = torch.nn.functional
    if name == "mse":
        return F.mse_loss(a, y, reduction="mean")
    if name == "half_sse":
        return F.mse_loss(a, y, reduction="sum") / 2
    if name == "sse":
        return F.mse_loss(a, y, reduction="sum")
    if name == "bce":
        if out_act == "sigmoid":
            return F.binary_cross_entropy_with_logits(z, y, reduction="sum")
        return F.binary_cross_entropy(a, y, reduction="sum")
    if name == "cross_entropy":
        if out_act == "softmax":
            return F.cross_entropy(z.unsqueeze(0), y.unsqueeze(0), reduction="sum")
        if out_act == "sigmoid":
            return -(y * F.logsigmoid(z)).sum()
        return -(y * torch.log(a)).sum()
    raise AssertionError(name)  # _supported() refused everything else


def _supported(net) -> None:
    """Refuse custom expressions: torch gets only the registry's own rows."""
    spec = net.spec
    for l, row in enumerate(spec.activations, start=1):
        if ACTIVATIONS.get(row.name) is not row:
            raise SpecError(f"--against torch: layer {l}'s activation {row.name!r} is a custom "
                            f"expression, which the torch comparison does not support; "
                            f"it supports {', '.join(ACTIVATIONS)}")
    if LOSSES.get(spec.loss.name) is not spec.loss:
        raise SpecError(f"--against torch: the loss {spec.loss.name!r} is a custom expression, "
                        f"which the torch comparison does not support; it supports {', '.join(LOSSES)}")


def torch_gradients(net, values) -> tuple[float, dict[str, float]]:
    """The loss and every dL/dparam at `values` by torch autograd, keyed by parameter name."""
    _supported(net)
    torch = _import_torch()
    spec, acts = net.spec, _activations(torch)
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    Ws = {l: t(values.W[l]).requires_grad_() for l in range(1, spec.depth + 1)}
    bs = {l: t(values.b[l]).requires_grad_() for l in Ws} if spec.bias else {}
    a = z = t(values.x)
    for l, row in enumerate(spec.activations, start=1):
        z = Ws[l] @ a + (bs[l] if spec.bias else 0)
        a = acts[row.name](z)
    loss = _loss(torch, spec.loss.name, spec.activations[-1].name, z, a, t(values.y))
    loss.backward()
    grads = {}
    for l in Ws:
        gW = Ws[l].grad.numpy()
        grads.update({f"W{l}[{j + 1},{k + 1}]": float(gW[j, k]) for j, k in np.ndindex(gW.shape)})
        if spec.bias:
            grads.update({f"b{l}[{j + 1}]": float(g) for j, g in enumerate(bs[l].grad.numpy())})
    return float(loss.detach()), grads


class TorchLayer(LayerResult):
    """Largest differences over one layer's parameters and all points (verify's row)."""

    def __repr__(self) -> str:
        return f"TorchLayer(l={self.layer}, abs={self.max_abs:.2e}, failures={self.failures})"

    def add(self, name: str, derived: float, reference: float) -> None:
        err = abs(derived - reference) if np.isfinite(derived) and np.isfinite(reference) else np.inf
        self.max_abs = max(self.max_abs, err)
        if abs(reference) > ATOL:
            self.max_rel = max(self.max_rel, err / abs(reference))
        if not err <= ATOL + RTOL * abs(reference):
            self.failures += 1
            self.worst = self.worst or f"{name}: derived {derived!r}, torch {reference!r}"


@dataclass
class TorchReport:
    """Per-layer agreement of the derived gradients with torch autograd, and the losses."""

    layers: list[TorchLayer]
    points: int = 0
    loss_failures: list[str] = field(default_factory=list)
    version: str = ""

    @property
    def passed(self) -> bool:
        return not self.loss_failures and all(r.failures == 0 for r in self.layers)

    def __repr__(self) -> str:
        return f"TorchReport(passed={self.passed}, points={self.points})"

    def table(self) -> str:
        head = f"{'layer':>5}  {'params':>7}  {'max abs diff':>12}  {'max rel diff':>12}  vs torch"
        lines = ["", head, "-" * len(head)]
        for r in self.layers:
            verdict = "ok" if r.failures == 0 else f"{r.failures} MISMATCH (first {r.worst})"
            lines.append(f"{r.layer:>5}  {r.parameters:>7}  {r.max_abs:>12.3e}  {r.max_rel:>12.3e}  {verdict}")
        lines.append(f"{self.points} point(s); reference: PyTorch {self.version} autograd, float64; "
                     f"tolerance |diff| <= {ATOL:g} + {RTOL:g}*|torch|")
        lines += [f"loss MISMATCH: {m}" for m in self.loss_failures]
        lines.append("torch agrees" if self.passed else "TORCH DISAGREES")
        return "\n".join(lines)


def compare_with_torch(net, values=None, points: int = DEFAULT_POINTS, seed: int = SEED) -> TorchReport:
    """Compare `net.gradients` with torch autograd at the values (if any) and random points."""
    from .verify import random_values

    _supported(net)
    torch = _import_torch()
    if not isinstance(points, int) or isinstance(points, bool) or points < 0:
        raise SpecError(f"points must be a non-negative integer, got {points!r}")
    vals = net.values(values)
    rng = np.random.default_rng(seed)
    pts = ([vals] if vals is not None else []) + [random_values(net.evaluator, rng) for _ in range(points)]
    if not pts:
        raise SpecError("--against torch: no point to compare at (no values and points = 0)")
    n = net.spec.layers
    rows = {l: TorchLayer(l, n[l] * n[l - 1] + (n[l] if net.spec.bias else 0)) for l in range(1, len(n))}
    report = TorchReport(list(rows.values()), len(pts), version=torch.__version__)
    for i, point in enumerate(pts):
        derived_loss, derived = net.loss_and_gradients(point)
        torch_loss, reference = torch_gradients(net, point)
        if not abs(derived_loss - torch_loss) <= ATOL + RTOL * abs(torch_loss):
            report.loss_failures.append(f"point {i + 1}: derived {derived_loss!r}, torch {torch_loss!r}")
        for name, ref in reference.items():
            rows[int(name[1:name.index("[")])].add(name, derived[name], ref)
    return report
