"""The layer table's rows as generated code: one forward line and one backward rule per kind.

`rows(layer, target)` gives, for layer n of a stack, the lines the generated
module's forward pass runs (z<n> from a<n-1>, and a cache c<n> where the
backward rule needs one), the lines giving the parameters' gradients, the
expression of the gradient at the input g<n-1> = dL/da<n-1>, and the rule in
words for the module's header.  d<n> is dL/dz<n>.  The lines call the
module's own helpers (templates/code/stack_*.py.j2), which are check/layer_ops.py's
rules written out without derive: windows by sliding_window_view (NumPy) or
Tensor.unfold (PyTorch), products by einsum, the input gradient of a
convolution or pool scattered by a loop over kernel offsets only.

The two targets share the backward rules; they differ in the forward pass:
NumPy runs the same window/einsum forward as the engine, PyTorch runs
torch.nn.functional (F.conv2d, F.max_pool2d, F.batch_norm, F.layer_norm,
F.embedding, F.linear), so its check() against autograd differentiates
torch's own forward, not ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Row:
    """The generated code of one layer (see the module docstring)."""

    forward: list[str]
    params: list[str] = field(default_factory=list)
    inputs: str | None = None
    rule: str = ""
    cache: bool = False
    #: the params lines assign g<n-1> themselves (a norm's rule gives all three at once)
    assigns_input: bool = False


def _geometry(layer, dims: int):
    cfg = layer.cfg
    tup = lambda v: tuple(v) if isinstance(v, (list, tuple)) else (v,) * dims  # noqa: E731
    kernel = tup(cfg["kernel"])
    stride = kernel if cfg.get("stride") is None else tup(cfg["stride"])
    return kernel, stride, tup(cfg.get("padding", 0))


def _dims(layer) -> int:
    return int(layer.kind.name[-2])


def _p(letter: str, n: int) -> str:
    return f'p["{letter}{n}"]'


def _dense(layer, target: str, act=None) -> Row:
    """x @ W^T + b on the last axis; after a recurrent layer (input (m, T, features)) at every
    step, so W's and b's gradients add up over the examples and the steps."""
    n, b, seq = layer.number, "b" in layer.params, len(layer.input) == 2
    axes = "(0, 1)" if seq else "0"
    if target == "torch":
        fwd = f"z{n} = F.linear(a{n - 1}, {_p('W', n)}" + (f", {_p('b', n)})" if b else ")")
        bias = f"d{n}.sum(dim={axes})"
    else:
        fwd = f"z{n} = a{n - 1} @ {_p('W', n)}.T" + (f" + {_p('b', n)}" if b else "")
        bias = f"d{n}.sum(axis={axes})"
    weight = (f"d{n}.reshape(-1, d{n}.shape[-1]).T @ a{n - 1}.reshape(-1, a{n - 1}.shape[-1])" if seq
              else f"d{n}.T @ a{n - 1}")
    params = [f'grads["W{n}"] = {weight}'] + ([f'grads["b{n}"] = {bias}'] if b else [])
    over = "examples and steps" if seq else "examples"
    return Row([fwd], params, f"d{n} @ {_p('W', n)}",
               (f"at every step: dW{n} = sum over examples and steps of d{n} (x) a{n - 1}" if seq
                else f"dW{n} = d{n}.T @ a{n - 1}")
               + (f", db{n} = d{n} summed over {over}" if b else "") + f"; g{n - 1} = d{n} @ W{n}")


def _conv(layer, target: str, act=None) -> Row:
    n, dims = layer.number, _dims(layer)
    kernel, stride, pad = _geometry(layer, dims)
    axes = (0,) + tuple(range(2, 2 + dims))
    if target == "torch":
        b = _p("b", n) if "b" in layer.params else "None"
        fwd = [f"z{n} = F.conv{dims}d(a{n - 1}, {_p('K', n)}, {b}, stride={stride}, padding={pad})"]
        kern = f'grads["K{n}"] = _conv_kernel(d{n}, _windows(a{n - 1}, {kernel}, {stride}, {pad}))'
        bias = f'grads["b{n}"] = d{n}.sum(dim={axes})'
    else:
        b = _p("b", n) if "b" in layer.params else "None"
        fwd = [f"z{n}, c{n} = _conv_forward(a{n - 1}, {_p('K', n)}, {b}, {stride}, {pad})"]
        kern = f'grads["K{n}"] = _conv_kernel(d{n}, c{n})'
        bias = f'grads["b{n}"] = d{n}.sum(axis={axes})'
    params = [kern] + ([bias] if "b" in layer.params else [])
    rule = (f"dK{n} = einsum of d{n} with the input windows"
            + (f", db{n} = d{n} summed over examples and positions" if "b" in layer.params else "")
            + f"; g{n - 1}: for each kernel offset, d{n} times that slice of K{n}, added at the "
            f"positions it read (stride {stride}, padding {pad} cut off)")
    return Row(fwd, params, f"_conv_inputs(d{n}, a{n - 1}.shape, {_p('K', n)}, {stride}, {pad})", rule,
               cache=target != "torch")


def _pool(layer, target: str, act=None) -> Row:
    n, dims = layer.number, _dims(layer)
    kernel, stride, _ = _geometry(layer, dims)
    is_max = layer.kind.name.startswith("max")
    size = kernel[0] if dims == 1 else kernel
    step = stride[0] if dims == 1 else stride
    if target == "torch":
        fwd = (f"z{n}, c{n} = F.max_pool{dims}d(a{n - 1}, {size}, {step}, return_indices=True)" if is_max
               else f"z{n} = F.avg_pool{dims}d(a{n - 1}, {size}, {step})")
        back = (f"_maxpool_inputs(d{n}, c{n}, a{n - 1}.shape)" if is_max
                else f"_avgpool_inputs(d{n}, a{n - 1}.shape, {kernel}, {stride})")
    else:
        fwd = (f"z{n}, c{n} = _maxpool_forward(a{n - 1}, {kernel}, {stride})" if is_max
               else f"z{n} = _avgpool_forward(a{n - 1}, {kernel}, {stride})")
        back = (f"_maxpool_inputs(d{n}, c{n}, a{n - 1}.shape, {kernel}, {stride})" if is_max
                else f"_avgpool_inputs(d{n}, a{n - 1}.shape, {kernel}, {stride})")
    rule = (f"g{n - 1}: each window's d{n} goes to the window's first maximum alone" if is_max
            else f"g{n - 1}: each window's d{n} divided by {_prod(kernel)} goes to every entry of the window")
    return Row([fwd], [], back, rule + f" (kernel {kernel}, stride {stride})", cache=is_max)


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def _flatten(layer, target: str, act=None) -> Row:
    n = layer.number
    fwd = (f"z{n} = torch.flatten(a{n - 1}, 1)" if target == "torch"
           else f"z{n} = a{n - 1}.reshape(a{n - 1}.shape[0], -1)")
    return Row([fwd], [], f"d{n}.reshape(a{n - 1}.shape)",
               f"g{n - 1} = d{n} reshaped back to (m, {', '.join(map(str, layer.input))})")


def _norm(layer, target: str, act=None) -> Row:
    n, rank, eps = layer.number, len(layer.input) + 1, layer.cfg["eps"]
    batch = layer.kind.name == "batchnorm"
    axes = ((0,) + tuple(range(2, rank))) if batch else tuple(range(1, rank))
    sums = axes if batch else (0,)
    shape = ((1, layer.input[0]) + (1,) * (rank - 2)) if batch else (1,) + tuple(layer.input)
    gamma, beta = _p("gamma", n), _p("beta", n)
    if target == "torch":
        if batch:
            fwd = f"z{n} = F.batch_norm(a{n - 1}, None, None, {gamma}, {beta}, training=True, eps={eps!r})"
        else:
            each = tuple(layer.input)
            fwd = (f"z{n} = F.layer_norm(a{n - 1}, {each}, {gamma}.reshape({each}), "
                   f"{beta}.reshape({each}), eps={eps!r})")
        cache = f"a{n - 1}, {eps!r}"  # torch's forward keeps no statistics: the rule recomputes them
    else:
        fwd = f"z{n}, c{n} = _norm_forward(a{n - 1}, {gamma}, {beta}, {axes}, {shape}, {eps!r})"
        cache = f"c{n}"
    params = [f'g{n - 1}, grads["gamma{n}"], grads["beta{n}"] = _norm_backward(d{n}, {cache}, {gamma}, '
              f"{axes}, {sums}, {shape})"]
    over = "the batch" + (" and positions" if rank > 2 else "") if batch else "each example's features"
    return Row([fwd], params, None,
               f"x-hat normalised over {over} (axes {axes}); dgamma{n} = sum d{n} x-hat, dbeta{n} = sum d{n} "
               f"(axes {sums}); g{n - 1} = inv/N (N dxhat - sum dxhat - x-hat sum dxhat x-hat), dxhat = d{n} gamma{n}",
               cache=target != "torch", assigns_input=True)


def _dropout(layer, target: str, act=None) -> Row:
    n, keep = layer.number, 1 - layer.cfg["p"]
    return Row([f'z{n} = a{n - 1} * (masks["mask{n}"] / {keep!r})'], [], f'd{n} * (masks["mask{n}"] / {keep!r})',
               f"g{n - 1} = d{n} * mask{n} / {keep!r} (the forward's own mask)")


def _residual(layer, target: str, act=None) -> Row:
    n, source = layer.number, layer.cfg["from"]
    return Row([f"z{n} = a{n - 1} + a{source}"], [], f"d{n}",
               f"g{n - 1} = d{n}, and d{n} is added to g{source} (the identity path)")


def _embedding(layer, target: str, act=None) -> Row:
    n, vocabulary = layer.number, layer.cfg["vocabulary"]
    look = f"F.embedding(c{n}, {_p('E', n)})" if target == "torch" else f"{_p('E', n)}[c{n}]"
    return Row([f"c{n} = _tokens(a{n - 1}, {vocabulary})", f"z{n} = {look}"],
               [f'grads["E{n}"] = _embedding_backward(d{n}, c{n}, {vocabulary})'], None,
               f"dE{n}[v] = sum of d{n} over the positions holding token v (no gradient reaches the tokens)",
               cache=True)


def _rnn(layer, target: str, act) -> Row:
    """Elman over the T steps (the helper's loop, vectorised over the batch): z<n> is every
    h_t (the layer's output; its activation is the recurrence's f, so none follows it), c<n>
    the pre-activations.  f and f' are the layer's activation, passed as lambdas."""
    n = layer.number
    f, fprime = act
    weights = f"{_p('W', n)}, {_p('R', n)}, {_p('b', n)}"
    fwd = [f"z{n}, c{n} = _rnn_forward(a{n - 1}, {weights}, lambda z{n}: {f})"]
    back = [f'g{n - 1}, grads["W{n}"], grads["R{n}"], grads["b{n}"] = _rnn_backward(',
            f"    d{n}, a{n - 1}, z{n}, c{n}, {_p('W', n)}, {_p('R', n)}, lambda z{n}, a{n}: {fprime or '1.0'})"]
    return Row(fwd, back, None,
               f"BPTT for t = T..1: dh_t = d{n}_t + R{n}^T dz_(t+1), dz_t = dh_t f'(z_t); "
               f"dW{n} = sum_t dz_t x_t, dR{n} = sum_t dz_t h_(t-1), db{n} = sum_t dz_t (shared by "
               f"every step, so summed over time); g{n - 1}_t = dz_t W{n}", cache=True, assigns_input=True)


def _lstm(layer, target: str, act=None) -> Row:
    """PyTorch's LSTM over the T steps (the helper's loop); z<n> is every h_t, c<n> the gates
    and cells per step.  The parameters go in and come out by gate: W<n>i, R<n>i, b<n>i, ..."""
    n = layer.number
    return Row([f"z{n}, c{n} = _lstm_forward(a{n - 1}, _gate_weights(p, {n}))"],
               [f"g{n - 1}, grads{n} = _lstm_backward(d{n}, a{n - 1}, z{n}, c{n}, _gate_weights(p, {n}), {n})",
                f"grads.update(grads{n})"], None,
               f"BPTT for t = T..1: dh_t = d{n}_t + sum_gates R{n}<gate>^T dgate_(t+1), "
               f"dc_t = dc_(t+1) f_(t+1) + dh_t o_t (1 - tanh^2 c_t); di = dc g i(1-i), df = dc c_(t-1) f(1-f), "
               f"dg = dc i (1-g^2), do = dh tanh(c) o(1-o); dW{n}<gate> = sum_t dgate_t x_t, "
               f"dR{n}<gate> = sum_t dgate_t h_(t-1), db{n}<gate> = sum_t dgate_t; "
               f"g{n - 1}_t = sum_gates dgate_t W{n}<gate>", cache=True, assigns_input=True)


ROWS = {"rnn": _rnn, "lstm": _lstm,
        "dense": _dense, "conv1d": _conv, "conv2d": _conv, "maxpool1d": _pool, "maxpool2d": _pool,
        "avgpool1d": _pool, "avgpool2d": _pool, "flatten": _flatten, "batchnorm": _norm,
        "layernorm": _norm, "dropout": _dropout, "residual": _residual, "embedding": _embedding}


def rows(layer, target: str, act=None) -> Row:
    """The code of `layer` for `target` ("numpy" or "torch"); `act` is (f, f' or None) of the
    layer's activation as code in z<n> (and a<n>), which a recurrent row runs inside its loop."""
    return ROWS[layer.kind.name](layer, target, act)
