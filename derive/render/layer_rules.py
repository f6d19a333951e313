r"""The layer table's printed rows: each kind's forward equation, backward rule and gradients.

One row per kind of spec/layer_kinds.py (a test checks the tables list the
same kinds), each in LaTeX with the layer's own numbers filled in, so a
layer card, `derive grad` and `which` print the same equations:

    forward   z^{(l)} from a^{(l-1)} (before the layer's activation a^{(l)} = f(z^{(l)}))
    backward  g^{(l-1)} = dL/da^{(l-1)} from delta^{(l)} = dL/dz^{(l)}
    params    dL/dP for each parameter letter, in index notation

Conventions: delta^{(l)} is dL/dz^{(l)} of the whole minibatch loss (the 1/m
already inside, as generated code folds it), so every parameter gradient is
a plain sum over the examples n and, for shared weights, over positions.
Indices are 1-based; a convolution reads a^{(l-1)} at s(p-1)+u-P (P the
padding), which is 0 outside the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class LayerRule:
    """The printed row of one kind: forward, backward and {letter: gradient}, each a
    function of the `Layer` giving LaTeX with its numbers filled in."""

    forward: Callable
    backward: Callable
    params: dict[str, Callable]


def _sup(layer, offset: int = 0) -> str:
    return f"^{{({layer.number + offset})}}"


def _at(layer, dims: int) -> tuple[str, str]:
    """The input position a convolution or pool window reads: s(p-1)+u-P (simplified)."""
    k = layer.cfg.get("kernel")
    s = layer.cfg.get("stride") or (k if layer.kind.name.startswith(("max", "avg")) else 1)
    s = s[0] if isinstance(s, (list, tuple)) else s
    pad = layer.cfg.get("padding", 0)
    pad = pad[0] if isinstance(pad, (list, tuple)) else pad

    def pos(p: str, u: str) -> str:
        shift = -s - pad  # s(p-1)+u-P = s p + u - s - P
        lead = p if s == 1 else f"{s}{p}"
        return f"{lead}+{u}" + (f"{shift:+d}" if shift else "")

    return pos("p", "u"), pos("q", "v") if dims == 2 else ""


def _conv(dims: int) -> LayerRule:
    def where(layer):
        i, j = _at(layer, dims)
        return f"c',\\,{i}" + (f",\\,{j}" if dims == 2 else "")

    def out(c: str = "c") -> str:
        return f"{c},p" + (",q" if dims == 2 else "")

    window = "u,v" if dims == 2 else "u"
    sums = r"\sum_{p}\sum_{q}" if dims == 2 else r"\sum_{p}"
    forward = lambda l: (f"z{_sup(l)}_{{{out()}}} = \\sum_{{c'}}\\sum_{{{window}}} K{_sup(l)}_{{c,c',{window}}}\\,"  # noqa: E731
                         f"a{_sup(l, -1)}_{{{where(l)}}}" + (f" + b{_sup(l)}_{{c}}" if l.cfg["bias"] else ""))
    def backward(l):
        read = where(l).split(",", 1)[1].replace(r"\,", "")
        return (f"g{_sup(l, -1)}_{{c',i}} = \\sum_{{c}}\\sum_{{{window}}} K{_sup(l)}_{{c,c',{window}}}"
                f"\\,\\delta{_sup(l)}_{{{out()}}}\\ \\text{{over the positions with }} {read} = i")
    params = {"K": lambda l: (f"\\frac{{\\partial L}}{{\\partial K{_sup(l)}_{{c,c',{window}}}}} = \\sum_{{n}} {sums} "
                              f"\\delta{_sup(l)}_{{n,{out()}}}\\, a{_sup(l, -1)}_{{n,{where(l)}}}"),
              "b": lambda l: f"\\frac{{\\partial L}}{{\\partial b{_sup(l)}_{{c}}}} = \\sum_{{n}} {sums} \\delta{_sup(l)}_{{n,{out()}}}"}
    return LayerRule(forward, backward, params)


def _pool(kind: str, dims: int) -> LayerRule:
    window = "u,v" if dims == 2 else "u"
    pos = "p,q" if dims == 2 else "p"

    def forward(l):
        i, j = _at(l, dims)
        at = f"c,\\,{i}" + (f",\\,{j}" if dims == 2 else "")
        op = r"\max_{" + window + "}" if kind == "max" else r"\frac{1}{" + _size(l, dims) + r"}\sum_{" + window + "}"
        return f"z{_sup(l)}_{{c,{pos}}} = {op} a{_sup(l, -1)}_{{{at}}}"

    def backward(l):
        if kind == "max":
            return (f"g{_sup(l, -1)}_{{c,i}} = \\sum_{{\\text{{windows }} w \\ni i}} [\\,i = \\arg\\max w\\,]\\,"
                    f"\\delta{_sup(l)}_{{c,w}}\\ \\text{{(the first maximum on a tie)}}")
        return f"g{_sup(l, -1)}_{{c,i}} = \\frac{{1}}{{{_size(l, dims)}}}\\sum_{{\\text{{windows }} w \\ni i}} \\delta{_sup(l)}_{{c,w}}"

    return LayerRule(forward, backward, {})


def _times(shape) -> str:
    return r" \times ".join(map(str, shape))


def _size(layer, dims: int) -> str:
    k = layer.cfg["kernel"]
    ks = list(k) if isinstance(k, (list, tuple)) else [k] * dims
    size = 1
    for v in ks:
        size *= v
    return str(size)


def _norm(per_example: bool) -> LayerRule:
    over = r"\text{the example's features}" if per_example else r"\text{the batch (and positions)}"
    idx = "j"
    forward = lambda l: (f"z{_sup(l)}_{{{idx}}} = \\gamma{_sup(l)}_{{{idx}}}\\,\\hat x_{{{idx}}} + \\beta{_sup(l)}_{{{idx}}},\\ "  # noqa: E731
                         f"\\hat x = \\frac{{a{_sup(l, -1)} - \\mu}}{{\\sqrt{{\\sigma^2 + \\epsilon}}}},\\ \\mu, \\sigma^2 \\text{{ over }} {over}")
    backward = lambda l: (f"g{_sup(l, -1)} = \\frac{{1}}{{N\\sqrt{{\\sigma^2+\\epsilon}}}}\\Big(N \\hat\\delta - \\sum \\hat\\delta "  # noqa: E731
                          f"- \\hat x \\sum \\hat\\delta\\,\\hat x\\Big),\\ \\hat\\delta = \\gamma{_sup(l)} \\delta{_sup(l)}"
                          f"\\ \\text{{(through }}\\hat x\\text{{, the mean and the variance)}}")
    params = {"gamma": lambda l: f"\\frac{{\\partial L}}{{\\partial \\gamma{_sup(l)}_{{j}}}} = {entry_latex(l, 'gamma', ('j',))}",
              "beta": lambda l: f"\\frac{{\\partial L}}{{\\partial \\beta{_sup(l)}_{{j}}}} = {entry_latex(l, 'beta', ('j',))}"}
    return LayerRule(forward, backward, params)


LAYER_RULES: dict[str, LayerRule] = {
    "dense": LayerRule(
        lambda l: f"z{_sup(l)}_{{j}} = \\sum_{{k}} W{_sup(l)}_{{jk}}\\, a{_sup(l, -1)}_{{k}}" + (f" + b{_sup(l)}_{{j}}" if l.cfg["bias"] else ""),
        lambda l: f"g{_sup(l, -1)}_{{k}} = \\sum_{{j}} W{_sup(l)}_{{jk}}\\,\\delta{_sup(l)}_{{j}}",
        {"W": lambda l: f"\\frac{{\\partial L}}{{\\partial W{_sup(l)}_{{jk}}}} = \\sum_{{n}} \\delta{_sup(l)}_{{n,j}}\\, a{_sup(l, -1)}_{{n,k}}",
         "b": lambda l: f"\\frac{{\\partial L}}{{\\partial b{_sup(l)}_{{j}}}} = \\sum_{{n}} \\delta{_sup(l)}_{{n,j}}"}),
    "conv1d": _conv(1), "conv2d": _conv(2),
    "maxpool1d": _pool("max", 1), "maxpool2d": _pool("max", 2),
    "avgpool1d": _pool("avg", 1), "avgpool2d": _pool("avg", 2),
    "flatten": LayerRule(lambda l: f"z{_sup(l)}_{{(c-1)HW + (i-1)W + j}} = a{_sup(l, -1)}_{{c,i,j}}" if len(l.input) == 3
                         else f"z{_sup(l)} = \\operatorname{{vec}}\\, a{_sup(l, -1)}",
                         lambda l: f"g{_sup(l, -1)} = \\delta{_sup(l)} \\text{{ reshaped to }} {_times(l.input)}", {}),
    "batchnorm": _norm(per_example=False), "layernorm": _norm(per_example=True),
    "dropout": LayerRule(lambda l: f"z{_sup(l)} = a{_sup(l, -1)} \\odot \\frac{{M{_sup(l)}}}{{1 - {l.cfg['p']:g}}}",
                         lambda l: f"g{_sup(l, -1)} = \\delta{_sup(l)} \\odot \\frac{{M{_sup(l)}}}{{1 - {l.cfg['p']:g}}}", {}),
    "residual": LayerRule(lambda l: f"z{_sup(l)} = a{_sup(l, -1)} + a^{{({l.cfg['from']})}}",
                          lambda l: f"g{_sup(l, -1)} = \\delta{_sup(l)},\\quad g^{{({l.cfg['from']})}} \\mathrel{{+}}= \\delta{_sup(l)}"
                                    f"\\ \\text{{(the identity path)}}", {}),
    "embedding": LayerRule(lambda l: f"z{_sup(l)}_{{t,d}} = E{_sup(l)}_{{x_t,\\,d}}",
                           lambda l: r"\text{none: the input is token indices}",
                           {"E": lambda l: f"\\frac{{\\partial L}}{{\\partial E{_sup(l)}_{{v,d}}}} = \\sum_{{n}}\\sum_{{t:\\,x_{{n,t}} = v}} \\delta{_sup(l)}_{{n,t,d}}"}),
}


# -- one parameter entry, its indices filled in (derive grad) --------------------------

def _geometry(layer, dims: int):
    k = layer.cfg["kernel"]
    s = layer.cfg.get("stride") or 1
    pad = layer.cfg.get("padding", 0)
    one = lambda v: tuple(v) if isinstance(v, (list, tuple)) else (v,) * dims  # noqa: E731
    return one(k), one(s), one(pad)


def _read(position: str, u: int, s: int, pad: int) -> str:
    """s(p-1) + u - P with u a number: '2p+1', 'p', 'p-1'."""
    shift = u - s - pad
    return (position if s == 1 else f"{s}{position}") + (f"{shift:+d}" if shift else "")


def entry_latex(layer, letter: str, idx: tuple[int, ...]) -> str:
    """dL/dP[idx] of one entry (1-based idx) as a formula in delta and a, LaTeX."""
    sup, low = _sup(layer), _sup(layer, -1)
    kind = layer.kind.name
    if kind.startswith("conv"):
        dims = int(kind[4])
        out = layer.output[1:]
        ranges = "".join(f"\\sum_{{{p}=1}}^{{{n}}}" for p, n in zip("pq", out))
        if letter == "b":
            return f"\\sum_{{n}} {ranges} \\delta{sup}_{{n,{idx[0]},{','.join('pq'[:dims])}}}"
        _, stride, pad = _geometry(layer, dims)
        reads = ",".join(_read(p, u, s, pd) for p, u, s, pd in zip("pq", idx[2:], stride, pad))
        note = r"\ (a = 0 \text{ in the padding})" if any(pad) else ""
        return (f"\\sum_{{n}} {ranges} \\delta{sup}_{{n,{idx[0]},{','.join('pq'[:dims])}}}\\,"
                f"a{low}_{{n,{idx[1]},{reads}}}{note}")
    if kind == "dense" and len(layer.input) == 2:  # at every step of a sequence
        return (f"\\sum_{{n}}\\sum_{{t=1}}^{{{layer.input[0]}}} \\delta{sup}_{{n,t,{idx[0]}}}"
                + (f"\\, a{low}_{{n,t,{idx[1]}}}" if letter == "W" else ""))
    if kind == "dense":
        return f"\\sum_{{n}} \\delta{sup}_{{n,{idx[0]}}}" + (f"\\, a{low}_{{n,{idx[1]}}}" if letter == "W" else "")
    if layer.kind.recurrent:
        return _recurrent_latex(layer, letter, idx)
    if kind in ("batchnorm", "layernorm"):
        spread = r"\sum_{\text{positions}}" if kind == "batchnorm" and len(layer.input) > 1 else ""
        hat = f"\\,\\hat x{sup}_{{n,{idx[0]}}}" if letter == "gamma" else ""
        return f"\\sum_{{n}}{spread} \\delta{sup}_{{n,{idx[0]}}}{hat}"
    if kind == "embedding":
        return f"\\sum_{{n}}\\sum_{{t:\\,x_{{n,t}} = {idx[0]}}} \\delta{sup}_{{n,t,{idx[1]}}}"
    raise KeyError(kind)


def entry_text(layer, letter: str, idx: tuple[int, ...]) -> str:
    """The same formula in plain text: sum_{n,p,q} delta1[n,2,p,q]*a0[n,1,p+1,q]."""
    kind, l = layer.kind.name, layer.number
    if kind.startswith("conv"):
        dims = int(kind[4])
        pos = ",".join("pq"[:dims])
        over = ",".join(f"{p}=1..{n}" for p, n in zip("pq", layer.output[1:]))
        if letter == "b":
            return f"sum_{{n, {over}}} delta{l}[n,{idx[0]},{pos}]"
        _, stride, pad = _geometry(layer, dims)
        reads = ",".join(_read(p, u, s, pd) for p, u, s, pd in zip("pq", idx[2:], stride, pad))
        return f"sum_{{n, {over}}} delta{l}[n,{idx[0]},{pos}]*a{l - 1}[n,{idx[1]},{reads}]"
    if kind == "dense" and len(layer.input) == 2:
        return (f"sum_{{n, t=1..{layer.input[0]}}} delta{l}[n,t,{idx[0]}]"
                + (f"*a{l - 1}[n,t,{idx[1]}]" if letter == "W" else ""))
    if kind == "dense":
        return f"sum_n delta{l}[n,{idx[0]}]" + (f"*a{l - 1}[n,{idx[1]}]" if letter == "W" else "")
    if layer.kind.recurrent:
        return _recurrent_text(layer, letter, idx)
    if kind in ("batchnorm", "layernorm"):
        over = "n, positions" if kind == "batchnorm" and len(layer.input) > 1 else "n"
        return f"sum_{{{over}}} delta{l}[n,{idx[0]}]" + (f"*xhat{l}[n,{idx[0]}]" if letter == "gamma" else "")
    if kind == "embedding":
        return f"sum_{{n, t: x[n,t] = {idx[0]}}} delta{l}[n,t,{idx[1]}]"
    raise KeyError(kind)


def _recurrent_parts(layer, letter: str):
    """(gate suffix, first step, the input the weight multiplies: ('a', l-1, 't') or ('a', l, 't-1'))."""
    gate = letter[1:]
    if letter[0] == "W":
        return gate, 1, (layer.number - 1, "t")
    if letter[0] == "R":
        return gate, 2, (layer.number, "t-1")
    return gate, 1, None


def _recurrent_latex(layer, letter: str, idx) -> str:
    r"""\sum_n \sum_t delta_{n,t,j} x_{n,t,k}: the weights are shared by every step (BPTT)."""
    gate, first, times = _recurrent_parts(layer, letter)
    delta = f"\\delta^{{({layer.number},{gate})}}" if gate else f"\\delta{_sup(layer)}"  # a gate's delta: (l, g)
    body = f"\\sum_{{n}}\\sum_{{t={first}}}^{{{layer.input[0]}}} {delta}_{{n,t,{idx[0]}}}"
    if times is None:
        return body
    return body + f"\\, a^{{({times[0]})}}_{{n,{times[1]},{idx[1]}}}"


def _recurrent_text(layer, letter: str, idx) -> str:
    gate, first, times = _recurrent_parts(layer, letter)
    body = f"sum_{{n, t={first}..{layer.input[0]}}} delta{layer.number}{gate}[n,t,{idx[0]}]"
    return body if times is None else body + f"*a{times[0]}[n,{times[1]},{idx[1]}]"


def _recurrent_rule(kind: str) -> LayerRule:
    if kind == "rnn":
        forward = lambda l: (f"h_t = a{_sup(l)}_t = f(z{_sup(l)}_t),\\ z{_sup(l)}_t = W{_sup(l)} a{_sup(l, -1)}_t "  # noqa: E731
                             f"+ R{_sup(l)} h_{{t-1}} + b{_sup(l)},\\ h_0 = 0")
        backward = lambda l: (f"\\delta{_sup(l)}_t = \\big(g{_sup(l)}_t + R^{{({l.number})\\top}} \\delta{_sup(l)}_{{t+1}}\\big)"  # noqa: E731
                              f" \\odot f'(z{_sup(l)}_t),\\quad g{_sup(l, -1)}_t = W^{{({l.number})\\top}} \\delta{_sup(l)}_t")
    else:
        forward = lambda l: (r"c_t = f_t \odot c_{t-1} + i_t \odot g_t,\ h_t = o_t \odot \tanh c_t,\ "  # noqa: E731
                             r"(i, f, o) = \sigma(\cdot),\ g = \tanh(\cdot)\ \text{of } W_\ast x_t + R_\ast h_{t-1} + b_\ast")
        backward = lambda l: (r"\frac{\partial c_t}{\partial c_{t-1}} = f_t,\quad \bar c_t = \bar c_{t+1} \odot f_{t+1} "  # noqa: E731
                              r"+ \bar h_t \odot o_t \odot (1 - \tanh^2 c_t)")
    letters = ["W", "R", "b"] if kind == "rnn" else [f"{x}{g}" for g in "ifgo" for x in "WRb"]
    params = {letter: (lambda l, letter=letter: _recurrent_gradient(l, letter)) for letter in letters}
    return LayerRule(forward, backward, params)


def _recurrent_gradient(layer, letter: str) -> str:
    """dL/dW, dL/dR, dL/db of a recurrent layer in index notation: a sum over the steps."""
    sym = letter[0] + _sup(layer)
    sub = ("j,k" if letter[0] != "b" else "j") if len(letter) == 1 else (
        f"{letter[1:]},j,k" if letter[0] != "b" else f"{letter[1:]},j")
    idx = ("j", "k") if letter[0] != "b" else ("j",)
    return f"\\frac{{\\partial L}}{{\\partial {sym}_{{{sub}}}}} = {_recurrent_latex(layer, letter, idx)}"


LAYER_RULES["rnn"] = _recurrent_rule("rnn")
LAYER_RULES["lstm"] = _recurrent_rule("lstm")


# -- the role colours on a printed rule ---------------------------------------------------

#: Which role a symbol of the rules plays: delta and g carry the loss's derivative back,
#: parameters are weights, the layer's input is the input (the activation's derivative
#: is painted where it is written, in delta = g * f'(z)).
_SYMBOL_ROLES = (("\\delta^{(", "loss"), ("g^{(", "loss"), ("K^{(", "weight"),
                 ("W^{(", "weight"), ("E^{(", "weight"), ("\\gamma^{(", "weight"), ("a^{(", "input"))


def _group_end(tex: str, i: int) -> int:
    """The index just past the brace group opening at tex[i] == '{'."""
    depth = 0
    for j in range(i, len(tex)):
        depth += {"{": 1, "}": -1}.get(tex[j], 0)
        if depth == 0:
            return j + 1
    return len(tex)


def paint(tex: str, painter: Callable[[str, str], str]) -> str:
    r"""The rule with each symbol on the right of its first '=' painted by role:
    `painter(role, tex)` is formulas.Style.paint (\textcolor or {\color{#hex}}).
    A symbol is its letter with its ^{(l)} and _{...} groups; the left side (what
    is being defined) stays black."""
    head, eq, body = tex.partition("=")
    if not eq:
        head, body = "", tex
    out, i = [], 0
    while i < len(body):
        hit = next(((s, r) for s, r in _SYMBOL_ROLES if body.startswith(s, i)
                    and (i == 0 or not body[i - 1].isalpha())), None)
        if hit is None:
            out.append(body[i])
            i += 1
            continue
        j = i + len(hit[0]) - (3 if hit[0].endswith("^{(") else 0)  # back to the '^'
        for mark in "^_":  # the superscript and subscript groups that belong to the symbol
            if j < len(body) and body[j] == mark and j + 1 < len(body) and body[j + 1] == "{":
                j = _group_end(body, j + 1)
        out.append(painter(hit[1], body[i:j]))
        i = j
    return head + eq + "".join(out)
