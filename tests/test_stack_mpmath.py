"""[[layer]] networks against high-precision central differences of a forward pass written here.

The forward pass of every kind is written below from its textbook definition,
with explicit loops over positions, in mpmath at 40 digits (object arrays of
mpf, no vectorised numpy arithmetic that derive's rules use); every
parameter entry's gradient is then a central difference with h = 1e-15
(truncation ~1e-30, rounding ~1e-25).  `derive grad --json` must agree to
1e-10 absolute + 1e-8 relative.  Small random stacks of every kind.
"""

from __future__ import annotations

import itertools
import json
import random

import mpmath
import numpy as np
import pytest

import test_gradients_hypothesis as base
from derive.cli import main
from test_stack import STACKS, _write

DPS, STEP = 40, mpmath.mpf("1e-15")


def _mp(v):
    return np.vectorize(mpmath.mpf, otypes=[object])(np.array(v, dtype=float))


def _geom(layer, dims):
    one = lambda v: list(v) if isinstance(v, (list, tuple)) else [v] * dims  # noqa: E731
    kernel = one(layer["kernel"])
    stride = one(layer.get("stride", kernel if "pool" in layer["kind"] else 1))
    return kernel, stride, one(layer.get("padding", 0))


def conv(a, K, b, layer, dims):
    """Cross-correlation, one output entry at a time: sum over c', u(, v) of K a (0 outside)."""
    kernel, stride, pad = _geom(layer, dims)
    C_out = K.shape[0]
    sizes = [(n + 2 * p - k) // s + 1 for n, k, s, p in zip(a.shape[1:], kernel, stride, pad)]
    out = np.empty([C_out] + sizes, dtype=object)
    for c in range(C_out):
        for pos in itertools.product(*(range(n) for n in sizes)):
            total = b[c] if b is not None else mpmath.mpf(0)
            for ci in range(a.shape[0]):
                for off in itertools.product(*(range(k) for k in kernel)):
                    at = [s * p + u - pd for s, p, u, pd in zip(stride, pos, off, pad)]
                    if all(0 <= i < n for i, n in zip(at, a.shape[1:])):
                        total += K[(c, ci) + off] * a[(ci,) + tuple(at)]
            out[(c,) + pos] = total
    return out


def pool(a, layer, dims, kind):
    kernel, stride, _ = _geom(layer, dims)
    sizes = [(n - k) // s + 1 for n, k, s in zip(a.shape[1:], kernel, stride)]
    out = np.empty([a.shape[0]] + sizes, dtype=object)
    for c in range(a.shape[0]):
        for pos in itertools.product(*(range(n) for n in sizes)):
            window = [a[(c,) + tuple(s * p + u for s, p, u in zip(stride, pos, off))]
                      for off in itertools.product(*(range(k) for k in kernel))]
            out[(c,) + pos] = max(window) if kind == "max" else mpmath.fsum(window) / len(window)
    return out


def normalise(values, eps):
    mu = mpmath.fsum(values) / len(values)
    var = mpmath.fsum((v - mu) ** 2 for v in values) / len(values)
    return [(v - mu) / mpmath.sqrt(var + eps) for v in values]


def batchnorm(batch, gamma, beta, eps):
    """Per channel over the batch and the positions (axis 1 of each example's array)."""
    out = [np.empty(a.shape, dtype=object) for a in batch]
    for c in range(batch[0].shape[0]):
        cells = [(n, idx) for n, a in enumerate(batch) for idx in np.ndindex(*a[c:c + 1].shape)]
        hats = normalise([batch[n][(c,) + idx[1:]] for n, idx in cells], eps)
        for (n, idx), h in zip(cells, hats):
            out[n][(c,) + idx[1:]] = gamma[c] * h + beta[c]
    return out


def forward_batch(table, params, xs, masks):
    """Every example's output, layer by layer (batchnorm couples the examples)."""
    outs = [{0: x} for x in xs]
    acts = [x for x in xs]
    for l, layer in enumerate(table["layer"], start=1):
        kind = layer["kind"]
        if kind == "batchnorm":
            zs = batchnorm(acts, params[f"gamma{l}"], params[f"beta{l}"], mpmath.mpf("1e-5"))
        else:
            zs = [one_layer(layer, l, a, params, outs[n], masks, n) for n, a in enumerate(acts)]
        act = layer.get("activation", "identity")
        for n, z in enumerate(zs):
            if act == "softmax":
                total = mpmath.fsum(mpmath.exp(v) for v in z)
                acts[n] = np.array([mpmath.exp(v) / total for v in z], dtype=object)
            else:
                acts[n] = np.vectorize(base.ACT[act], otypes=[object])(z)
            outs[n][l] = acts[n]
    return acts


def one_layer(layer, l, a, params, outs, masks, n):
    kind = layer["kind"]
    if kind in ("conv1d", "conv2d"):
        return conv(a, params[f"K{l}"], params.get(f"b{l}"), layer, int(kind[4]))
    if "pool" in kind:
        return pool(a, layer, int(kind[-2]), kind[:3])
    if kind == "flatten":
        return a.reshape(-1)
    if kind == "dense":
        W, b = params[f"W{l}"], params.get(f"b{l}")
        return np.array([mpmath.fsum(W[j, k] * a[k] for k in range(len(a))) + (b[j] if b is not None else 0)
                         for j in range(W.shape[0])], dtype=object)
    if kind == "layernorm":
        flat = normalise(list(a.reshape(-1)), mpmath.mpf("1e-5"))
        g, bt = params[f"gamma{l}"], params[f"beta{l}"]
        return np.array([g[i] * h + bt[i] for i, h in enumerate(flat)], dtype=object).reshape(a.shape)
    if kind == "dropout":
        return a * masks[l][n] / (1 - mpmath.mpf(layer["p"]))
    if kind == "residual":
        return a + outs[layer["from"]]
    if kind == "embedding":
        E = params[f"E{l}"]
        return np.array([[E[int(t) - 1, d] for d in range(E.shape[1])] for t in a], dtype=object)
    raise AssertionError(kind)


def batch_loss(table, params, values):
    m = table.get("batch", 1)
    xs = [_mp(x) for x in values["x"]]
    ys = values["y"]
    masks = {int(k[4:]): _mp(v) for k, v in values.items() if k.startswith("mask")}
    outs = forward_batch(table, params, xs, masks)
    losses = [mpmath.fsum(base.TERM[table["loss"]](p, mpmath.mpf(t), len(a)) for p, t in zip(a, y))
              for a, y in zip(outs, ys)]
    return mpmath.fsum(losses) / (m if table.get("reduction", "mean") == "mean" else 1)


def reference(table, values):
    with mpmath.workdps(DPS):
        params = {k: _mp(v) for k, v in values.items() if k not in ("x", "y") and not k.startswith("mask")}
        grads = {}
        for name, arr in params.items():
            for idx in np.ndindex(*arr.shape):
                shifted = []
                for sign in (1, -1):
                    copy = dict(params)
                    copy[name] = arr.copy()
                    copy[name][idx] += sign * STEP
                    shifted.append(batch_loss(table, copy, values))
                grads[f"{name}[{','.join(str(i + 1) for i in idx)}]"] = (shifted[0] - shifted[1]) / (2 * STEP)
        return batch_loss(table, params, values), grads


#: One stack of each of the four shapes, kept small: every parameter costs two mpmath passes.
SMALL = [STACKS[i] for i in (0, 1, 2, 3, 4, 5)]


@pytest.mark.parametrize("table,values", SMALL, ids=[f"stack{i}" for i in range(len(SMALL))])
def test_grad_json_matches_mpmath_central_differences(table, values, tmp_path, capsys):
    assert main(["grad", _write(tmp_path, table, values), "--json", "--values-only"]) == 0
    doc = json.loads(capsys.readouterr().out)
    want_loss, want = reference(table, values)
    assert sorted(doc["gradients"]) == sorted(want)
    base.assert_close(doc["loss"], want_loss, "loss")
    for name, ref in want.items():
        got = doc["gradients"][name]["value"]
        err = abs(mpmath.mpf(got) - ref)
        assert err <= 1e-10 + 1e-8 * abs(ref), f"{name}: derive {got!r}, reference {mpmath.nstr(ref, 20)}"


def test_small_stacks_cover_every_kind():
    kinds = {layer["kind"] for table, _ in SMALL for layer in table["layer"]}
    assert {"conv1d", "conv2d", "batchnorm", "layernorm", "dropout", "residual", "embedding", "flatten",
            "dense"} <= kinds and any("max" in k for k in kinds) and any("avg" in k for k in kinds)
