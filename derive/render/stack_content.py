r"""What a [[layer]] network's document says, printed: table, loss, cards, backward chain.

Every equation comes from render/layer_rules.py (the one source the grad
table and `which` print too), painted in the role colours by
`layer_rules.paint`; this module adds the words that make a card specific to
this network (how many positions share a kernel weight, how many inputs of a
window get nothing, over how many values a batchnorm averages) and, with
values, the numbers of one forward and backward pass (`StackEvaluator.trace`).
A card is per kind, listing each layer of that kind, so a network with three
dense layers has one dense card.  Math is LaTeX valid in pdflatex and in
MathJax 3 alike; only `Style.paint` differs by target.
"""

from __future__ import annotations

from math import prod

from .formulas import Style, format_number
from .layer_rules import LAYER_RULES, entry_latex, paint
from .roles import colour_definitions
from .sequence import sequence_layers

#: Gradient entries the worked section prints per parameter array.
WORKED_ENTRIES = 2


def _span(first: int, last: int) -> str:
    return f"layer {first}" if first == last else f"layers {first}..{last}"


def _shape(shape) -> str:
    return r" \times ".join(map(str, shape))


def _act(layer) -> str:
    return layer.activation.latex


def network_section(spec) -> dict:
    """The table: one row per layer (input -> output shapes, parameters, activation)."""
    rows = []
    for layer in spec.layers:
        params = ", ".join(f"{letter}^{{({layer.number})}}: {_shape(s)}" for letter, s in layer.params.items())
        rows.append({"layer": layer.number, "kind": layer.kind.name, "input": _shape(layer.input),
                     "output": _shape(layer.output), "params": params.replace("gamma", r"\gamma")
                     .replace("beta", r"\beta") or r"\text{none}", "activation": _act(layer)})
    return {"rows": rows, "input": _shape(spec.input), "batch": spec.batch, "depth": spec.depth,
            "parameters": spec.parameter_count, "reduction": spec.reduction}


def loss_section(spec, style: Style) -> dict:
    """The loss of the minibatch and the delta it starts the backward pass with."""
    L, m = spec.depth, spec.batch
    mean = spec.reduction == "mean" and m > 1
    scale = rf"\frac{{1}}{{{m}}}" if mean else ""
    per = spec.loss.latex.replace("a_j", f"a^{{({L})}}_{{n,j}}").replace("y_j", "y_{n,j}")
    equation = rf"L = {scale}\sum_{{n=1}}^{{{m}}} \Big({per}\Big)" if m > 1 else rf"L = {per.replace('n,', '')}"
    loss_d = style.paint("loss", rf"\frac{{\partial \ell_n}}{{\partial a^{{({L})}}_{{n,j}}}}")
    if spec.softmax_cross_entropy:
        delta = rf"\delta^{{({L})}}_{{n,j}} = {scale} \big(a^{{({L})}}_{{n,j}} - y_{{n,j}}\big)"
        why = "softmax with cross-entropy: the loss derivative and the softmax Jacobian cancel to a - y"
    elif spec.layers[-1].activation.vector:
        grad = style.paint("loss", r"\nabla_{a} \ell_n")
        delta = rf"\delta^{{({L})}}_{{n}} = {scale} J_{{\operatorname{{softmax}}}}^{{\top}} {grad}"
        why = "softmax couples the outputs, so its Jacobian multiplies the loss derivative"
    else:
        fprime = style.paint("activation", rf"{_act(spec.layers[-1])}'(z^{{({L})}}_{{n,j}})")
        delta = rf"\delta^{{({L})}}_{{n,j}} = {scale} {loss_d}\, {fprime}"
        why = "the loss derivative times the output activation's derivative"
    return {"name": spec.loss.name, "equation": equation, "delta": delta, "why": why,
            "note": spec.loss.note}


def _specific(layer, spec) -> str:
    """The card's sentence made specific to this layer of this network (plain text)."""
    kind, n, m = layer.kind.name, layer.number, spec.batch
    positions = prod(layer.output[1:]) if len(layer.output) > 1 else 1
    if kind.startswith("conv"):
        return (f"Layer {n}: each of the {prod(layer.params['K'])} weights of K{n} is used at all "
                f"{positions} output positions of each of the {m} examples, so its gradient adds up "
                f"{positions * m} products delta * a.")
    if kind.startswith("maxpool"):
        size = prod(layer.cfg['kernel']) if isinstance(layer.cfg['kernel'], (list, tuple)) else \
            layer.cfg['kernel'] ** (len(layer.input) - 1)
        return (f"Layer {n}: each of the {prod(layer.output)} windows of {size} inputs (per example) "
                f"sends its delta to its arg-max alone; the other {size - 1} inputs of the window get 0.")
    if kind.startswith("avgpool"):
        return f"Layer {n}: each input of a window gets 1/{prod(layer.input) // prod(layer.output)} of the window's delta."
    if kind == "batchnorm":
        count = m * (prod(layer.input[1:]) if len(layer.input) > 1 else 1)
        return (f"Layer {n}: the mean and variance of each of the {layer.input[0]} features run over "
                f"{count} values (the batch{' and positions' if len(layer.input) > 1 else ''}), so "
                f"every input of a feature reaches every output of it: through x-hat, the mean and the variance.")
    if kind == "layernorm":
        return f"Layer {n}: each example's {prod(layer.input)} inputs share one mean and variance."
    if kind == "dropout":
        return (f"Layer {n}: the mask M{n} (p = {layer.cfg['p']:g}) zeroes some inputs forward; backward "
                f"the same mask zeroes the same gradients and scales the rest by 1/(1 - p) = "
                f"{1 / (1 - layer.cfg['p']):g}.")
    if kind == "residual":
        f = layer.cfg["from"]
        return (f"Layer {n} adds a{f}: dL/da{f} gets delta{n} unchanged, on top of what flows back "
                f"through {_span(f + 1, n - 1)}, which is why gradients survive depth.")
    if kind == "flatten":
        return f"Layer {n}: delta{n} (length {prod(layer.output)}) is reshaped back to {'x'.join(map(str, layer.input))}."
    if kind == "dense":
        return f"Layer {n}: W{n}[j,k] gets the sum over the {m} examples of delta{n}[j] times a{n - 1}[k]."
    return f"Layer {n}: {layer.kind.flow}."


def cards(spec, style: Style) -> list[dict]:
    """One card per kind used, in the order the kinds first appear."""
    out: dict[str, dict] = {}
    for layer in spec.layers:
        rule = LAYER_RULES[layer.kind.name]
        card = out.setdefault(layer.kind.name, {"kind": layer.kind.name, "flow": layer.kind.flow,
                                                "layers": []})
        card["layers"].append({
            "layer": layer.number, "forward": paint(rule.forward(layer), style.paint),
            "local": paint(rule.backward(layer), style.paint), "specific": _specific(layer, spec),
            "gradients": [paint(f(layer), style.paint) for f in rule.params.values()]})
    return list(out.values())


def backward_chain(spec, style: Style) -> list[dict]:
    """From the loss down: delta = g * f'(z) (unless the layer is the output or has no
    activation), then the layer's rule for g one layer down."""
    steps, L = [], spec.depth
    for layer in reversed(spec.layers):
        n, lines = layer.number, []
        if n != L:
            g = style.paint("loss", f"g^{{({n})}}")
            if layer.activation.name == "identity":
                lines.append(rf"\delta^{{({n})}} = {g}")
            else:
                fprime = style.paint("activation", rf"{_act(layer)}'(z^{{({n})}})")
                lines.append(rf"\delta^{{({n})}} = {g} \odot {fprime}")
        if n > 1 or layer.kind.name != "embedding":
            lines.append(paint(LAYER_RULES[layer.kind.name].backward(layer), style.paint))
        steps.append({"layer": n, "kind": layer.kind.name, "lines": lines})
    return steps


def gradient_rows(spec, style: Style) -> list[dict]:
    """Each parameter array's gradient formula (the card's rule, with its shape)."""
    rows = []
    for layer in spec.layers:
        for letter, f in LAYER_RULES[layer.kind.name].params.items():
            sym = {"gamma": r"\gamma", "beta": r"\beta"}.get(letter, letter)
            if layer.kind.name == "lstm":  # W<l><gate>: the gate as a subscript
                sym = f"{letter[0]}_{{{letter[1:]}}}"
            rows.append({"name": layer.kind.array_name(letter, layer.number), "symbol": f"{sym}^{{({layer.number})}}",
                         "shape": _shape(layer.params[letter]),
                         "equation": paint(f(layer), style.paint)})
    return rows


def entry_symbol(layer, letter: str, idx) -> str:
    """dL/dP[idx] as the left side of an equation (an LSTM gate joins the subscript)."""
    sym = {"gamma": r"\gamma", "beta": r"\beta"}.get(letter, letter)
    sub = ",".join(map(str, idx))
    if layer.kind.name == "lstm":  # W<l><gate>: the gate joins the subscript
        sym, sub = letter[0], f"{letter[1:]},{sub}"
    return rf"\frac{{\partial L}}{{\partial {sym}^{{({layer.number})}}_{{{sub}}}}}"


def worked_section(net, style: Style, trace: dict | None) -> dict | None:
    """With values: the loss, a few entries per array (formula and number), and for each
    max-pool layer the input positions that receive a gradient (example 1)."""
    if trace is None:
        return None
    grads, entries, seen = trace.grads, [], {}
    for name, layer, letter, idx in net.entries():
        key = layer.kind.array_name(letter, layer.number)
        if seen.get(key, 0) >= WORKED_ENTRIES:
            continue
        seen[key] = seen.get(key, 0) + 1
        value = float(grads[key][tuple(i - 1 for i in idx)])
        entries.append({"name": name, "symbol": entry_symbol(layer, letter, idx),
                        "formula": paint(entry_latex(layer, letter, idx), style.paint),
                        "value": value, "printed": format_number(value, 6)})
    pools = [pool_routes(layer, trace) for layer in net.spec.layers if layer.kind.name.startswith("maxpool")]
    return {"loss": trace.loss, "loss_printed": format_number(trace.loss, 9), "entries": entries,
            "pools": pools, "batch": net.spec.batch}


def pool_routes(layer, trace: dict, example: int = 0) -> dict:
    """Which inputs of a max-pool layer receive a gradient: the arg-max of each window.
    `grid` rows per channel (2-D pools; one row for 1-D), received entries boxed."""
    n = layer.number
    x = trace.a[n - 1][example].real
    g = trace.g[n - 1][example] if n - 1 in trace.g else None
    received = _argmax_mask(layer, trace, example)
    channels = []
    for c in range(x.shape[0]):
        plane = x[c] if x.ndim == 3 else x[c][None]
        mark = received[c] if x.ndim == 3 else received[c][None]
        rows = [[(rf"\boxed{{{v:.2f}}}" if mk else f"{v:.2f}") for v, mk in zip(row, mrow)]
                for row, mrow in zip(plane, mark)]
        positions = [tuple(int(i) + 1 for i in p) for p in zip(*mark.nonzero())]
        channels.append({"channel": c + 1, "rows": rows, "positions": positions,
                         "gradients": [format_number(float((g[c] if x.ndim == 3 else g[c][None])[tuple(i - 1 for i in p)]), 6)
                                       if g is not None else None for p in positions]})
    return {"layer": n, "input": n - 1, "example": example + 1, "channels": channels,
            "count": int(received.sum()), "total": int(received.size)}


def _argmax_mask(layer, trace: dict, example: int):
    """1 where an input is the (first) maximum of a window it lies in, from the cache."""
    import numpy as np

    from ..check.layer_ops import LAYER_OPS

    shape, arg = trace.caches[layer.number]
    ones = np.ones(tuple(arg.shape), dtype=float)
    back = LAYER_OPS[layer.kind.name][1](layer, ones, (shape, arg), {})[0]
    return back[example] != 0


def context(net, target: str, trace: dict | None = None) -> dict:
    """Everything stack.tex / stack.md get (docs/templates.md lists each key)."""
    style, spec = Style("nielsen", "L", target), net.spec
    return {"title": spec.title or f"Backpropagation through a {spec.describe()}",
            "legend": style.legend(), "colour_definitions": colour_definitions(),
            "network": network_section(spec), "loss": loss_section(spec, style),
            "cards": cards(spec, style), "backward": backward_chain(spec, style),
            "gradients": gradient_rows(spec, style), "worked": worked_section(net, style, trace),
            "sequence": sequence_layers(net, trace)}
