r"""The evidence `which` gives on a [[layer]] network, case by case, from one trace.

Each case reads the numbers of `StackEvaluator.trace` (z, a, caches, delta =
dL/dz and g = dL/da per layer, and the identity paths' share) and lays out
the terms the rule adds: a kernel weight's uses over the output positions,
the windows a pool input lies in and which of them route to it, the mask of
a dropout, batchnorm's three paths, a weight's gradient split between the
block and a residual's identity path.  `numbers` gives the same as JSON.
Blocks are {"text"}, {"math"} or {"table": (head, rows)} (stack_answer.py).
"""

from __future__ import annotations

import itertools

import numpy as np

from ..render.formulas import format_number
from ..render.sequence import step_terms

#: Terms of a sum written out before the rest is left to the total.
MAX_TERMS = 24


def _span(first: int, last: int) -> str:
    return f"layer {first}" if first == last else f"layers {first}..{last}"


def num(v) -> str:
    return format_number(float(np.real(v)) + 0.0, 6)  # + 0.0: no "-0"


def headline(net, q) -> str:
    kind, l = q.layer.kind.name, q.layer.number
    if q.position:
        return {"maxpool1d": "Only where it is the maximum of its window: a max-pool routes the gradient to the arg-max alone.",
                "maxpool2d": "Only where it is the maximum of its window: a max-pool routes the gradient to the arg-max alone.",
                "dropout": "The same mask again: zero where the mask dropped it, delta / (1 - p) where it kept it.",
                "batchnorm": "Along three paths: through x-hat, through the batch mean and through the batch variance.",
                }.get(kind, f"Through layer {l}'s local rule: {q.layer.kind.flow}.")
    if kind.startswith("conv") and q.letter == "K":
        return "The sum over every output position (and example) where the shared kernel weight was used."
    if q.layer.kind.recurrent:
        return ("The sum over every time step: the same weight acts at each step, so backpropagation "
                "through time adds up one term per step.")
    if kind in ("batchnorm", "layernorm"):
        return f"{'delta times x-hat' if q.letter == 'gamma' else 'delta'}, summed over the batch."
    if _residuals(net, l):
        return "Both paths, added: the one through the skipped layers and the identity path of the residual."
    return f"{q.layer.kind.flow[0].upper()}{q.layer.kind.flow[1:]}."


def _residuals(net, l: int) -> list:
    """Residual layers whose identity path starts at this layer's output."""
    return [r for r in net.spec.layers if r.kind.name == "residual" and r.cfg["from"] == l]


def _conv_terms(q, trace) -> list[tuple]:
    """(n, output position, delta, a read, product) of every use of K[c, c', u...]."""
    layer, dims = q.layer, len(q.layer.input) - 1
    from ..render.layer_rules import _geometry

    _, stride, pad = _geometry(layer, dims)
    delta, a = trace.delta[layer.number].real, trace.a[layer.number - 1].real
    c, ci, window = q.idx[0] - 1, q.idx[1] - 1, [u - 1 for u in q.idx[2:]]
    terms = []
    for n in range(delta.shape[0]):
        for pos in itertools.product(*(range(k) for k in layer.output[1:])):
            read = [s * p + u - pd for p, u, s, pd in zip(pos, window, stride, pad)]
            inside = all(0 <= r < size for r, size in zip(read, layer.input[1:]))
            av = a[(n, ci, *read)] if inside else 0.0
            d = delta[(n, c, *pos)]
            terms.append((n + 1, tuple(p + 1 for p in pos), d, av, d * av))
    return terms


def _split_residual(net, q, trace):
    """(identity part, block part) of a dense weight entry whose output feeds a residual."""
    from ..check.numeric import compile_expr
    from ..spec.registry import X

    l, j, k = q.layer.number, q.idx[0] - 1, q.idx[-1] - 1
    fprime = compile_expr(q.layer.activation.derivative(), (X,))(trace.z[l]).real
    ident = np.broadcast_to(trace.identity[l].real, fprime.shape) * fprime
    a = trace.a[l - 1].real
    total = trace.grads[q.layer.kind.array_name(q.letter, l)][tuple(i - 1 for i in q.idx)]
    part = float(np.sum(ident[:, j] * (a[:, k] if q.letter == "W" else 1.0)))
    return part, float(total) - part


def _pool_rows(q, trace):
    """Per example and window holding the position: the window's max, is it this input, what it sends."""
    layer, dims = q.layer, len(q.layer.input) - 1
    one = lambda v: tuple(v) if isinstance(v, (list, tuple)) else (v,) * dims  # noqa: E731
    kernel = one(layer.cfg["kernel"])
    stride = one(layer.cfg.get("stride") or layer.cfg["kernel"])  # a pool's stride defaults to its kernel
    x, delta = trace.a[layer.number - 1].real, trace.delta[layer.number].real
    c, at = q.idx[0] - 1, [i - 1 for i in q.idx[1:]]
    rows = []
    for n in range(x.shape[0]):
        for w in itertools.product(*(range(o) for o in layer.output[1:])):
            start = [s * p for s, p in zip(stride, w)]
            if not all(st <= i < st + k for st, i, k in zip(start, at, kernel)):
                continue
            patch = x[(n, c, *[slice(st, st + k) for st, k in zip(start, kernel)])]
            arg = np.unravel_index(int(np.argmax(patch)), patch.shape)
            mine = all(st + a_ == i for st, a_, i in zip(start, arg, at))
            rows.append((n + 1, tuple(p + 1 for p in w), float(patch.max()), mine,
                         float(delta[(n, c, *w)]) if mine else 0.0))
    return rows


def _bn_paths(q, trace):
    """Per example: the three terms of batchnorm's backward rule at the position, and g."""
    layer = q.layer
    xhat, inv, axes = trace.caches[layer.number]
    xhat, inv = xhat.real, inv.real
    g_z = trace.delta[layer.number].real
    gamma = trace.params[f"gamma{layer.number}"].reshape((1, -1) + (1,) * (xhat.ndim - 2))
    dxhat = g_z * gamma
    count = int(np.prod([xhat.shape[a] for a in axes]))
    hat = inv * dxhat
    mean = np.broadcast_to(-inv / count * dxhat.sum(axis=axes, keepdims=True), hat.shape)
    var = -inv / count * xhat * (dxhat * xhat).sum(axis=axes, keepdims=True)
    at = tuple(i - 1 for i in q.idx)
    return [(n + 1, hat[(n, *at)], mean[(n, *at)], var[(n, *at)], trace.g[layer.number - 1][(n, *at)].real)
            for n in range(xhat.shape[0])], count


def evidence(net, q, trace, style) -> list[dict]:
    """The numbers behind the answer, as blocks."""
    kind, l = q.layer.kind.name, q.layer.number
    low = f"a^{{({l - 1})}}"
    if q.position:
        at = ",".join(map(str, q.idx))
        if kind.startswith("maxpool"):
            rows = _pool_rows(q, trace)
            table = [[str(n), ",".join(map(str, w)), num(mx), "yes" if mine else "no", f"${num(sent)}$"]
                     for n, w, mx, mine, sent in rows]
            from ..render.stack_content import pool_routes

            out = [{"text": f"The windows of layer {l} holding ${low}_{{{at}}}$, at the values:"},
                   {"table": (["example", "window", "its max", "arg-max here?", "gradient sent here"], table)}] \
                if rows else [{"text": f"${low}_{{{at}}}$ lies in no window of layer {l} (the pool drops it), "
                                       f"so it receives no gradient at any values."}]
            for n in range(net.spec.batch):
                ch = pool_routes(q.layer, trace, n)["channels"][q.idx[0] - 1]
                spots = ", ".join("(" + ",".join(map(str, p)) + ")" for p in ch["positions"])
                out.append({"text": f"Example {n + 1}, channel {q.idx[0]}: the positions of ${low}$ that receive a "
                                    f"gradient are {spots}; every other one gets 0."})
            return out
        if kind == "dropout":
            scale = trace.caches[l].real
            rows = [[str(n + 1), f"{scale[(n, *[i - 1 for i in q.idx])] * (1 - q.layer.cfg['p']):g}",
                     f"${num(trace.delta[l][(n, *[i - 1 for i in q.idx])])}$",
                     f"${num(trace.g[l - 1][(n, *[i - 1 for i in q.idx])])}$"] for n in range(net.spec.batch)]
            return [{"text": f"The mask $M^{{({l})}}$ at ${low}_{{{at}}}$, the same forward and backward:"},
                    {"table": (["example", "mask", f"$\\delta^{{({l})}}$", f"$g^{{({l - 1})}}$ received"], rows)}]
        if kind == "batchnorm":
            rows, count = _bn_paths(q, trace)
            table = [[str(n), f"${num(h)}$", f"${num(m)}$", f"${num(v)}$", f"${num(g)}$"] for n, h, m, v, g in rows]
            return [{"text": f"The three terms of the rule at ${low}_{{{at}}}$ (N = {count} values per feature):"},
                    {"table": (["example", "through x-hat", "through the mean", "through the variance", "total"], table)}]
        g = trace.g[l - 1].real
        return [{"table": (["example", f"$g^{{({l - 1})}}_{{{at}}}$"],
                           [[str(n + 1), f"${num(g[(n, *[i - 1 for i in q.idx])])}$"] for n in range(net.spec.batch)])}]
    return _param_evidence(net, q, trace)


def _step_rows(q, trace) -> list[list[str]]:
    """Each time step's term of a recurrent weight's gradient and its share of the total."""
    terms = step_terms(trace, q.layer, q.letter, q.idx)
    total = float(np.sum(terms))
    return [[str(t + 1), f"${num(v)}$", f"{100 * v / total + 0.0:.1f}%" if total else "-"] for t, v in enumerate(terms)]


def _param_evidence(net, q, trace) -> list[dict]:
    kind, l = q.layer.kind.name, q.layer.number
    out = []
    if q.layer.kind.recurrent:
        rows = _step_rows(q, trace)
        out += [{"text": f"Its {len(rows)} steps, from the first to the last (each step's term and share):"},
                {"table": (["step t", "term", "share"], rows)},
                {"text": f"Sum: ${num(np.sum(step_terms(trace, q.layer, q.letter, q.idx)))}$. The later steps' "
                         f"terms reach back through the recursion (the document's section 'Through time')."}]
    if kind.startswith("conv") and q.letter == "K":
        terms = _conv_terms(q, trace)
        rows = [[str(n), ",".join(map(str, p)), f"${num(d)}$", f"${num(a)}$", f"${num(d * a)}$"]
                for n, p, d, a, _ in terms[:MAX_TERMS]]
        more = f" ({len(terms) - MAX_TERMS} more not shown)" if len(terms) > MAX_TERMS else ""
        out += [{"text": f"Its {len(terms)} uses (example, output position){more}:"},
                {"table": (["example", "position", f"$\\delta^{{({l})}}$", f"$a^{{({l - 1})}}$", "product"], rows)},
                {"text": f"Sum: ${num(sum(t[4] for t in terms))}$."}]
    for r in _residuals(net, l) if kind == "dense" else []:
        ident, block = _split_residual(net, q, trace)
        out += [{"text": f"Layer {r.number} adds $a^{{({l})}}$ back in ($z^{{({r.number})}} = a^{{({r.number - 1})}} + a^{{({l})}}$), "
                         f"so $g^{{({l})}}$ is the gradient through {_span(l + 1, r.number - 1)} plus "
                         f"$\\delta^{{({r.number})}}$ unchanged: the identity path."},
                {"table": (["path", "share of this entry"], [["through the block", f"${num(block)}$"],
                                                            ["identity path", f"${num(ident)}$"],
                                                            ["total", f"${num(block + ident)}$"]])}]
    if kind == "batchnorm":
        out.append({"text": "Batchnorm's input, by contrast, gets the gradient along three paths (through x-hat, "
                            "the mean and the variance): ask which for a position of its input to see them."})
    return out


def numbers(net, q, trace) -> dict:
    """The evidence as JSON."""
    kind, l = q.layer.kind.name, q.layer.number
    if q.position and kind.startswith("maxpool"):
        return {"windows": [{"example": n, "window": list(w), "max": mx, "argmax_here": mine, "gradient": s}
                            for n, w, mx, mine, s in _pool_rows(q, trace)]}
    if q.position and kind == "batchnorm":
        return {"paths": [{"example": n, "x_hat": float(h), "mean": float(m), "variance": float(v),
                           "total": float(g)} for n, h, m, v, g in _bn_paths(q, trace)[0]]}
    if q.position:
        g = trace.g[l - 1].real
        return {"gradients": [float(g[(n, *[i - 1 for i in q.idx])]) for n in range(net.spec.batch)]}
    out = {}
    if q.layer.kind.recurrent:
        out["steps"] = [float(v) for v in step_terms(trace, q.layer, q.letter, q.idx)]
    if kind.startswith("conv") and q.letter == "K":
        out["terms"] = [{"example": n, "position": list(p), "delta": float(d), "a": float(a)}
                        for n, p, d, a, _ in _conv_terms(q, trace)]
    if kind == "dense" and _residuals(net, l):
        ident, block = _split_residual(net, q, trace)
        out["paths"] = {"block": block, "identity": ident}
    return out
