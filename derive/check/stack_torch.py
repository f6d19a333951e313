"""`derive check --against torch` for a [[layer]] network: the stack rebuilt in torch, float64.

Each kind is its torch.nn.functional operation (conv1d/conv2d, max_pool/avg_pool,
flatten, linear, batch_norm in training mode, layer_norm, embedding; dropout as
the same mask / (1 - p); residual as the sum), each activation torch's own
(torchcheck.py's table), autograd for every gradient.  Points are the user's
values and `stack_check.random_point`'s, the comparison is per array (max
errors, mismatches) with the tolerance of the MLP's torch check.
"""

from __future__ import annotations

import numpy as np

from ..errors import SpecError
from ..spec.registry import ACTIVATIONS, LOSSES
from .compare import Tolerance
from .stack_check import SEED, StackReport, stack_points
from .stack_eval import StackEvaluator
from .torchcheck import ATOL, RTOL, _activations, _import_torch


def _layer(torch, layer, a, P, outs, mask):
    F, kind, cfg = torch.nn.functional, layer.kind.name, layer.cfg
    if kind == "dense":
        return F.linear(a, P["W"], P.get("b"))
    if kind in ("conv1d", "conv2d"):
        conv = F.conv1d if kind == "conv1d" else F.conv2d
        return conv(a, P["K"], P.get("b"), stride=cfg["stride"], padding=cfg["padding"])
    if kind[3:7] == "pool":
        pool = getattr(F, f"{kind[:3]}_pool{kind[-2:]}")
        return pool(a, cfg["kernel"], cfg["stride"] if cfg["stride"] is not None else cfg["kernel"])
    if kind == "flatten":
        return torch.flatten(a, 1)
    if kind == "batchnorm":
        return F.batch_norm(a, None, None, P["gamma"], P["beta"], training=True, eps=cfg["eps"])
    if kind == "layernorm":
        shape = a.shape[1:]
        return F.layer_norm(a, shape, P["gamma"].reshape(shape), P["beta"].reshape(shape), eps=cfg["eps"])
    if kind == "dropout":
        return a * torch.tensor(mask, dtype=torch.float64) / (1 - cfg["p"])
    if kind == "residual":
        return a + outs[cfg["from"]]
    if kind == "embedding":
        return F.embedding(a.long() - 1, P["E"])
    if kind in ("rnn", "lstm"):
        return _recurrent(torch, layer, a, P)
    raise AssertionError(kind)


def _recurrent(torch, layer, a, P):
    """torch.nn.RNN / torch.nn.LSTM, float64, batch first, their weights the values'
    (the LSTM's four gates stacked i, f, g, o; b_hh = 0, as b_ih + b_hh enter only as a sum)."""
    n = layer.cfg["units"]
    if layer.kind.name == "rnn":
        if layer.activation.name not in ("tanh", "relu"):
            raise SpecError(f"--against torch: layer {layer.number} is an rnn with activation "
                            f"{layer.activation.name!r}; torch.nn.RNN has tanh and relu only")
        module = torch.nn.RNN(a.shape[-1], n, nonlinearity=layer.activation.name, batch_first=True,
                              dtype=torch.float64)
        weights = {"weight_ih_l0": P["W"], "weight_hh_l0": P["R"], "bias_ih_l0": P["b"]}
    else:
        module = torch.nn.LSTM(a.shape[-1], n, batch_first=True, dtype=torch.float64)
        stack = lambda letter: torch.cat([P[f"{letter}{g}"] for g in "ifgo"])  # noqa: E731
        weights = {"weight_ih_l0": stack("W"), "weight_hh_l0": stack("R"), "bias_ih_l0": stack("b")}
    weights["bias_hh_l0"] = torch.zeros(module.bias_hh_l0.shape, dtype=torch.float64)
    out, _ = torch.func.functional_call(module, weights, (a,))
    return out


def torch_stack(spec, values) -> tuple[float, dict[str, np.ndarray]]:
    """The batch loss and every parameter array's gradient by torch autograd."""
    torch = _import_torch()
    acts = _activations(torch)
    leaves = {name: torch.tensor(v, dtype=torch.float64, requires_grad=True) for name, v in values.params.items()}
    a = torch.tensor(values.x, dtype=torch.float64)
    outs = {0: a}
    for layer in spec.layers:
        P = {letter: leaves[layer.kind.array_name(letter, layer.number)] for letter in layer.params}
        z = _layer(torch, layer, a, P, outs, values.masks.get(layer.number))
        a = outs[layer.number] = z if layer.kind.recurrent else acts[layer.activation.name](z)
    y = torch.tensor(values.y, dtype=torch.float64)
    if spec.steps is not None and spec.sequence_loss == "last":
        z, a = z[:, -1], a[:, -1]
    name = spec.loss.name
    if name == "cross_entropy":
        per = (-(y * torch.log_softmax(z, -1)) if spec.softmax_cross_entropy else -(y * torch.log(a))).sum(-1)
    elif name == "bce":
        per = -(y * torch.log(a) + (1 - y) * torch.log(1 - a)).sum(-1)
    else:
        per = {"mse": ((a - y) ** 2).mean(-1), "half_sse": ((a - y) ** 2).sum(-1) / 2,
               "sse": ((a - y) ** 2).sum(-1)}[name]
    if per.ndim > 1:  # a sequence's "all": the sum over its steps
        per = per.sum(1)
    loss = per.mean() if spec.reduction == "mean" else per.sum()
    loss.backward()
    return float(loss.detach()), {k: v.grad.numpy() for k, v in leaves.items()}


def compare_stack_with_torch(spec, values, points: int = 3, seed: int = SEED) -> StackReport:
    """Backprop through the layer table against torch autograd, array by array."""
    for layer in spec.layers:
        if ACTIVATIONS.get(layer.activation.name) is not layer.activation:
            raise SpecError(f"--against torch: layer {layer.number}'s activation is a custom expression")
    if LOSSES.get(spec.loss.name) is not spec.loss:
        raise SpecError(f"--against torch: the loss {spec.loss.name!r} is a custom expression")
    ev, pts = StackEvaluator(spec), stack_points(spec, values, points, seed)
    torch = _import_torch()
    report = StackReport(len(pts), reference=f"PyTorch {torch.__version__} autograd, float64",
                         tolerance=Tolerance(RTOL, ATOL), agree="torch agrees", disagree="TORCH DISAGREES")
    for point in pts:
        loss, derived = ev.run(point)
        torch_loss, reference = torch_stack(spec, point)
        report.add(derived, reference)
        report.add({"loss": np.array([loss])}, {"loss": np.array([torch_loss])})
    return report
