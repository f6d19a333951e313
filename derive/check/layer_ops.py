"""The layer table's numeric rows: each kind's forward pass and its local backward rule.

`LAYER_OPS[kind] = (forward, backward)`, keyed like spec/layer_kinds.py.
`forward(layer, x, P, mask)` maps a batch x (m, *input) to (out, cache) with the
layer's parameter arrays P (by letter); `backward(layer, g, cache, P)` maps the
gradient of the loss at the output to (gradient at the input, {letter: dL/dP}).
Every backward rule is the textbook one written out (a convolution's kernel
gradient is the correlation of the output gradient with the input windows,
max-pool routes to the arg-max, batchnorm's three paths ...); none calls the
forward pass, so the complex-step check of stack_eval.py, which only runs
`forward` with complex numbers, is an independent reference.  The forward
rules are therefore written to be complex-safe: comparisons read the real part.

No Python loop runs over positions: windows come from sliding_window_view and
products from einsum; the backward scatter loops over the kernel's entries
(9 for a 3x3 kernel), each a strided slice of the whole batch.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

_SPATIAL = "pqr"  # letters of output positions in einsum strings
_WINDOW = "uvw"   # letters of kernel offsets


def _geometry(layer, dims: int):
    k = layer.cfg["kernel"]
    kernel = tuple(k) if isinstance(k, (list, tuple)) else (k,) * dims
    s = layer.cfg.get("stride")
    stride = kernel if s is None else (tuple(s) if isinstance(s, (list, tuple)) else (s,) * dims)
    p = layer.cfg.get("padding", 0)
    pad = tuple(p) if isinstance(p, (list, tuple)) else (p,) * dims
    return kernel, stride, pad


def _windows(x: np.ndarray, kernel, stride, pad) -> np.ndarray:
    """(m, C, *out, *kernel): every window of the padded input at the strided positions."""
    dims = len(kernel)
    x = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    w = sliding_window_view(x, kernel, axis=tuple(range(2, 2 + dims)))
    return w[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)]


def _scatter(shape, pad, kernel, stride, g, pieces) -> np.ndarray:
    """The input gradient: for each kernel offset, its piece (m, C, *out) added at the
    strided positions it read (overlapping windows add up), then the padding cut off."""
    out_sizes = g.shape[2:]
    grad = np.zeros(shape[:2] + tuple(n + 2 * p for n, p in zip(shape[2:], pad)), dtype=g.dtype)
    for offset in np.ndindex(*kernel):
        where = tuple(slice(o, o + s * n, s) for o, s, n in zip(offset, stride, out_sizes))
        grad[(slice(None), slice(None)) + where] += pieces(offset)
    inner = tuple(slice(p, p + n) for p, n in zip(pad, shape[2:]))
    return grad[(slice(None), slice(None)) + inner]


def _conv(dims: int):
    sp, wn = _SPATIAL[:dims], _WINDOW[:dims]

    def forward(layer, x, P, mask=None):
        kernel, stride, pad = _geometry(layer, dims)
        win = _windows(x, kernel, stride, pad)
        z = np.einsum(f"mc{sp}{wn},oc{wn}->mo{sp}", win, P["K"])
        if "b" in P:
            z = z + P["b"].reshape((1, -1) + (1,) * dims)
        return z, (x.shape, win)

    def backward(layer, g, cache, P):
        kernel, stride, pad = _geometry(layer, dims)
        shape, win = cache
        grads = {"K": np.einsum(f"mo{sp},mc{sp}{wn}->oc{wn}", g, win)}
        if "b" in P:
            grads["b"] = g.sum(axis=(0,) + tuple(range(2, 2 + dims)))
        pieces = lambda off: np.einsum(f"mo{sp},oc->mc{sp}", g, P["K"][(slice(None), slice(None)) + off])  # noqa: E731
        return _scatter(shape, pad, kernel, stride, g, pieces), grads

    return forward, backward


def _pool(dims: int, kind: str):
    def forward(layer, x, P, mask=None):
        kernel, stride, _ = _geometry(layer, dims)
        win = _windows(x, kernel, stride, (0,) * dims)
        flat = win.reshape(win.shape[:2 + dims] + (-1,))
        if kind == "avg":
            return flat.mean(axis=-1), (x.shape, None)
        arg = np.argmax(flat.real, axis=-1)  # the first maximum, as torch
        return np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0], (x.shape, arg)

    def backward(layer, g, cache, P):
        kernel, stride, _ = _geometry(layer, dims)
        shape, arg = cache
        size = int(np.prod(kernel))
        if kind == "avg":
            pieces = lambda off: g / size  # noqa: E731
        else:
            pieces = lambda off: g * (arg == np.ravel_multi_index(off, kernel))  # noqa: E731
        return _scatter(shape, (0,) * dims, kernel, stride, g, pieces), {}

    return forward, backward


def _dense_forward(layer, x, P, mask=None):
    """x @ W^T + b on the last axis (a sequence: at every step, as torch.nn.Linear)."""
    z = x @ P["W"].T
    return (z + P["b"] if "b" in P else z), x


def _dense_backward(layer, g, x, P):
    flat_g, flat_x = g.reshape(-1, g.shape[-1]), x.reshape(-1, x.shape[-1])
    grads = {"W": flat_g.T @ flat_x}
    if "b" in P:
        grads["b"] = flat_g.sum(axis=0)
    return g @ P["W"], grads


def _rnn(functions):
    """Elman: h_t = f(W x_t + R h_(t-1) + b), h_0 = 0; the output is every h_t (m, T, units).
    `functions(layer)` gives the compiled (f, f') of the layer's activation."""

    def forward(layer, x, P, mask=None):
        f = functions(layer)[0]
        m, T = x.shape[:2]
        h, zs, hs = np.zeros((m, P["R"].shape[0]), dtype=np.result_type(x, P["W"])), [], []
        for t in range(T):
            z = x[:, t] @ P["W"].T + h @ P["R"].T + P["b"]
            h = f(z)
            zs.append(z)
            hs.append(h)
        return np.stack(hs, axis=1), (x, np.stack(zs, axis=1), np.stack(hs, axis=1))

    def backward(layer, g, cache, P):
        """BPTT: dh_t = g_t + R^T dz_(t+1); dz_t = dh_t f'(z_t); W, R, b sum over t."""
        fprime = functions(layer)[1]
        x, z, h = cache
        grads = {k: np.zeros(P[k].shape, dtype=g.dtype) for k in ("W", "R", "b")}
        dx, carry = np.zeros(x.shape, dtype=g.dtype), 0
        dhs, dzs = np.zeros(h.shape, dtype=g.dtype), np.zeros(h.shape, dtype=g.dtype)
        for t in range(x.shape[1] - 1, -1, -1):
            dhs[:, t] = g[:, t] + carry  # from the output at t and from h_(t+1)
            dz = dzs[:, t] = dhs[:, t] * fprime(z[:, t])
            grads["W"] += dz.T @ x[:, t]
            if t > 0:
                grads["R"] += dz.T @ h[:, t - 1]
            grads["b"] += dz.sum(axis=0)
            dx[:, t] = dz @ P["W"]
            carry = dz @ P["R"]
        return dx, {**grads, "_dh": dhs, "_dz": dzs}  # "_": per-step quantities, not parameters

    return forward, backward


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _lstm_forward(layer, x, P, mask=None):
    """PyTorch's LSTM: gates i, f, g, o; c_t = f c_(t-1) + i g; h_t = o tanh(c_t); h_0 = c_0 = 0."""
    m, T = x.shape[:2]
    n = P["Ri"].shape[0]
    dtype = np.result_type(x, *P.values())
    h, c, steps = np.zeros((m, n), dtype=dtype), np.zeros((m, n), dtype=dtype), []
    for t in range(T):
        pre = {g: x[:, t] @ P[f"W{g}"].T + h @ P[f"R{g}"].T + P[f"b{g}"] for g in "ifgo"}
        i, f, o = _sigmoid(pre["i"]), _sigmoid(pre["f"]), _sigmoid(pre["o"])
        gg = np.tanh(pre["g"])
        c_prev, c = c, f * c + i * gg
        h_prev, h = h, o * np.tanh(c)
        steps.append((i, f, gg, o, c_prev, c, h_prev))
    return np.stack([s_[6] for s_ in steps[1:]] + [h], axis=1), (x, steps)


def _lstm_backward(layer, g, cache, P):
    """BPTT through the gates; the cell path carries dc_(t-1) = dc_t * f_t."""
    x, steps = cache
    grads = {k: np.zeros(v.shape, dtype=g.dtype) for k, v in P.items()}
    dx = np.zeros(x.shape, dtype=g.dtype)
    dh_next, dc_next = 0, 0
    inner = {k: np.zeros(g.shape, dtype=g.dtype) for k in ("_dh", "_dc", "_di", "_df", "_dg", "_do")}
    for t in range(x.shape[1] - 1, -1, -1):
        i, f, gg, o, c_prev, c, h_prev = steps[t]
        dh = inner["_dh"][:, t] = g[:, t] + dh_next
        tc = np.tanh(c)
        dc = inner["_dc"][:, t] = dc_next + dh * o * (1 - tc ** 2)
        dpre = {"i": dc * gg * i * (1 - i), "f": dc * c_prev * f * (1 - f),
                "g": dc * i * (1 - gg ** 2), "o": dh * tc * o * (1 - o)}
        dh_next = 0
        for gate, d in dpre.items():
            inner[f"_d{gate}"][:, t] = d
            grads[f"W{gate}"] += d.T @ x[:, t]
            grads[f"R{gate}"] += d.T @ h_prev
            grads[f"b{gate}"] += d.sum(axis=0)
            dx[:, t] += d @ P[f"W{gate}"]
            dh_next = dh_next + d @ P[f"R{gate}"]
        dc_next = dc * f  # the cell path: dc_(t-1) = dc_t f_t
    return dx, {**grads, **inner}


def _flatten_forward(layer, x, P, mask=None):
    return x.reshape(x.shape[0], -1), x.shape


def _flatten_backward(layer, g, shape, P):
    return g.reshape(shape), {}


def _norm_axes(x: np.ndarray, per_example: bool):
    """Axes a norm averages over: batchnorm every axis but the feature/channel axis 1,
    layernorm every axis but the batch axis 0."""
    return tuple(range(1, x.ndim)) if per_example else (0,) + tuple(range(2, x.ndim))


def _norm(per_example: bool):
    def shaped(layer, P, x):
        if per_example:  # one gamma per input feature, in the input's own shape
            return P["gamma"].reshape(x.shape[1:])[None], P["beta"].reshape(x.shape[1:])[None]
        extra = (1,) * (x.ndim - 2)
        return P["gamma"].reshape((1, -1) + extra), P["beta"].reshape((1, -1) + extra)

    def forward(layer, x, P, mask=None):
        axes = _norm_axes(x, per_example)
        mu = x.mean(axis=axes, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)  # biased, as torch in training
        inv = 1 / np.sqrt(var + layer.cfg["eps"])
        xhat = (x - mu) * inv
        gamma, beta = shaped(layer, P, x)
        return gamma * xhat + beta, (xhat, inv, axes)

    def backward(layer, g, cache, P):
        xhat, inv, axes = cache
        gamma, _ = shaped(layer, P, xhat)
        count = np.prod([xhat.shape[a] for a in axes])
        dxhat = g * gamma
        # the three paths: through x-hat, the mean and the variance
        dx = inv / count * (count * dxhat - dxhat.sum(axis=axes, keepdims=True)
                            - xhat * (dxhat * xhat).sum(axis=axes, keepdims=True))
        other = (0,) if per_example else axes
        grads = {"gamma": (g * xhat).sum(axis=other).reshape(-1), "beta": g.sum(axis=other).reshape(-1)}
        return dx, grads

    return forward, backward


def _dropout_forward(layer, x, P, mask):
    scale = mask / (1 - layer.cfg["p"])
    return x * scale, scale


def _dropout_backward(layer, g, scale, P):
    return g * scale, {}


def _embedding_forward(layer, x, P, mask=None):
    idx = np.real(x).astype(int) - 1
    return P["E"][idx], idx


def _embedding_backward(layer, g, idx, P):
    grad = np.zeros(P["E"].shape, dtype=g.dtype)
    np.add.at(grad, idx, g)
    return None, {"E": grad}


def _identity_forward(layer, x, P, mask=None):
    return x, None  # residual: stack_eval.py adds the earlier output


def _identity_backward(layer, g, cache, P):
    return g, {}


def layer_ops(functions) -> dict:
    """The table, its recurrent rows bound to `functions(layer)` -> (f, f') of the layer's
    activation (the recurrence's f for an rnn; stack_eval compiles them once)."""
    return {**LAYER_OPS, "rnn": _rnn(functions), "lstm": (_lstm_forward, _lstm_backward)}


LAYER_OPS = {
    "dense": (_dense_forward, _dense_backward),
    "conv1d": _conv(1), "conv2d": _conv(2),
    "maxpool1d": _pool(1, "max"), "maxpool2d": _pool(2, "max"),
    "avgpool1d": _pool(1, "avg"), "avgpool2d": _pool(2, "avg"),
    "flatten": (_flatten_forward, _flatten_backward),
    "batchnorm": _norm(per_example=False), "layernorm": _norm(per_example=True),
    "dropout": (_dropout_forward, _dropout_backward),
    "residual": (_identity_forward, _identity_backward),
    "embedding": (_embedding_forward, _embedding_backward),
}
