"""`derive check --against torch`: the derived gradients against PyTorch autograd.

The network is built a second time in torch, sharing nothing with the
derivation but the registry's names: float64 tensors, one torch function per
activation and loss (the tables below, PyTorch's own implementations), and
autograd for every gradient.  Where torch has a numerically stable fused form
of the same function (sigmoid + bce from logits, softmax + cross-entropy from
logits, softplus as logaddexp) it is used, so that the comparison measures
the derivation, not torch's rounding.  A custom expression activation or
loss has no torch counterpart here and is refused with a `SpecError`.

The training fields are built in torch too, from their definitions
(spec/training.py): a minibatch is one (m, n_0) input, one example per row;
the loss is torch's mean (or sum) of the examples' losses plus
(l2/2) sum w^2 + l1 sum |w|; a row-layout network's leaves are its n_(l-1) x n_l
matrices and it computes X W + b, so autograd differentiates the layout the
user wrote, not derive's internal column form.

Points: the spec's values (if any) and `points` random ones from the one
sampler of points.py, the same points `derive check` meets for the same seed;
the comparison and the report table are compare.py's, as for that check.  PyTorch is optional: when
it is not importable, `compare_with_torch` raises a `ToolError` saying how to
install it.
"""

from __future__ import annotations


from ..errors import SpecError, ToolError
from ..spec.registry import ACTIVATIONS, LOSSES
from .compare import CheckReport, Gradients, Reference, Tolerance, layer_arrays
from .points import DEFAULT_POINTS, SEED, Sampler

#: Two float64 implementations of the same network: |derived - torch| <= ATOL + RTOL |torch|.
#: Far tighter than torch.autograd.gradcheck's atol 1e-5, rtol 1e-3.
RTOL = 1e-8
ATOL = 1e-10
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


def _losses(torch, name: str, out_act: str, z, a, y):
    """Each example's loss, (m,), from the output pre-activations z and activations a
    (one example per row)."""
    F = torch.nn.functional
    if name == "mse":
        return F.mse_loss(a, y, reduction="none").mean(dim=1)
    if name == "half_sse":
        return F.mse_loss(a, y, reduction="none").sum(dim=1) / 2
    if name == "sse":
        return F.mse_loss(a, y, reduction="none").sum(dim=1)
    if name == "bce":
        if out_act == "sigmoid":
            return F.binary_cross_entropy_with_logits(z, y, reduction="none").sum(dim=1)
        return F.binary_cross_entropy(a, y, reduction="none").sum(dim=1)
    if name == "cross_entropy":
        if out_act == "softmax":
            return F.cross_entropy(z, y, reduction="none")  # y as class probabilities
        if out_act == "sigmoid":
            return -(y * F.logsigmoid(z)).sum(dim=1)
        return -(y * torch.log(a)).sum(dim=1)
    raise AssertionError(name)  # _supported() refused everything else


def _regularizer(spec, Ws, bs):
    """(l2/2) sum w^2 + l1 sum |w| over the weight leaves (and the bias leaves if asked),
    written here from the definition in training.py; torch's |w| has gradient sign(w)."""
    reg = spec.regularization
    leaves = list(Ws.values()) + (list(bs.values()) if reg.biases else [])
    return sum(reg.l2 / 2 * (w * w).sum() + reg.l1 * w.abs().sum() for w in leaves)


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


def torch_arrays(net, values) -> tuple[float, Gradients]:
    """The loss and (dL/dW, dL/db) per layer at `values` by torch autograd.

    The network is built the way its layout writes it: the leaves are the user's
    matrices, n_(l-1) x n_l with Z = X W + b in the row layout, n_l x n_(l-1) with
    Z = X W^T + b in the column one; X holds the minibatch, one example per row.  The
    loss is the mean (or sum) of the examples' losses plus R(W).  Gradients come back in
    the column form compare.py reads (the row layout's transposed)."""
    _supported(net)
    torch = _import_torch()
    spec, acts, row = net.spec, _activations(torch), net.spec.row_layout
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    Ws = {l: t(values.W[l]) for l in range(1, spec.depth + 1)}
    Ws = {l: (w.T.contiguous() if row else w).requires_grad_() for l, w in Ws.items()}
    bs = {l: t(values.b[l]).requires_grad_() for l in Ws} if spec.bias else {}
    examples = values.examples
    a = z = t([list(x) for x, _ in examples])
    for l, act in enumerate(spec.activations, start=1):
        z = (a @ Ws[l] if row else a @ Ws[l].T) + (bs[l] if spec.bias else 0)
        a = acts[act.name](z)
    losses = _losses(torch, spec.loss.name, spec.activations[-1].name, z, a,
                     t([list(y) for _, y in examples]))
    loss = losses.mean() if spec.training.reduction == "mean" else losses.sum()
    if spec.regularization.active:
        loss = loss + _regularizer(spec, Ws, bs)
    loss.backward()
    return float(loss.detach()), ({l: (w.grad.T if row else w.grad).numpy() for l, w in Ws.items()},
                                  {l: v.grad.numpy() for l, v in bs.items()})


def torch_gradients(net, values) -> tuple[float, dict[str, float]]:
    """The loss and every dL/dparam at `values` by torch autograd, keyed by parameter name."""
    loss, (gW, gb) = torch_arrays(net, values)
    return loss, {p.name: float(gW[p.layer][p.j - 1, p.k - 1] if p.kind == "W" else gb[p.layer][p.j - 1])
                  for p in net.params()}


def compare_with_torch(net, values=None, points: int = DEFAULT_POINTS, seed: int = SEED) -> CheckReport:
    """Compare `net.loss_and_gradients` with torch autograd at the values (if any) and random points."""
    _supported(net)
    torch = _import_torch()
    if not isinstance(points, int) or isinstance(points, bool) or points < 0:
        raise SpecError(f"points must be a non-negative integer, got {points!r}")
    pts = Sampler(net.evaluator, seed).values(points, first=net.values(values))
    if not pts:
        raise SpecError("--against torch: no point to compare at (no values and points = 0)")
    spec = net.spec
    reference = Reference(f"PyTorch {torch.__version__} autograd, float64", Tolerance(RTOL, ATOL),
                          agree="torch agrees", disagree="TORCH DISAGREES")
    report = CheckReport.empty(spec.layers, spec.bias, len(pts), reference)
    for i, point in enumerate(pts, start=1):
        derived_loss, derived = net.loss_and_gradients(point)
        torch_loss, torch_grads = torch_arrays(net, point)
        report.compare_loss(i, derived_loss, torch_loss)
        report.compare_gradients(layer_arrays(net.params(), derived, spec.layers, spec.bias), torch_grads)
    return report
