"""Export a [[layer]] network's loss and gradients as a standalone NumPy or PyTorch module.

The module is unrolled layer by layer, as the MLP modules of codegen.py are:
forward(params, x, masks) runs each layer's row (stack_rules.py) and then its
activation, printed by codegen's `ArrayPrinter` from the registry's SymPy
definition; gradients(params, x, y, masks) starts from the output delta and
runs each layer's backward rule in reverse, writing
    d<n> = dL/dz<n>,   g<n-1> = dL/da<n-1>,   d<n-1> = g<n-1> * f_{n-1}'(z<n-1>),
with f' printed in a<n> where the table has an identity (sigmoid' = a(1-a))
and a residual adding its d<n> to g<from>.  The output delta is the
simplified dL/da * f'(z) (sigmoid with bce gives a - y, by calculus.shorter),
softmax's Jacobian applied to dL/da, or a*sum(y) - y for softmax with
cross-entropy; it is multiplied by s = 1/m (reduction "mean") or 1 ("sum")
once, so every gradient is that of the spec's batch loss.

Shapes and names are the spec's: x (m, *input), y (m, n_out), params keyed
like the values table (K1, b1, gamma2, E1, W4, ...) with the spec's shapes,
dropout masks keyed mask<n>.  The NumPy module compares its gradients with
central differences of its loss, skipping a difference whose two sides
cross a kink (a relu's sign, a max-pool's arg-max, read from the forward
pass); the PyTorch module with torch.autograd of its torch.nn.functional
forward.
"""

from __future__ import annotations

import textwrap

import sympy

from ..calculus.simplify import shorter
from ..errors import RenderError
from ..spec.registry import A, X, Y
from .codegen import TARGETS, _array, _environment, loss_term, to_code
from .stack_rules import rows

#: Helpers of the module's template each kind calls, by target.
HELPERS = {
    "numpy": {"conv": {"_windows", "_scatter", "_conv"}, "maxpool": {"_windows", "_scatter", "_maxpool"},
              "avgpool": {"_windows", "_scatter", "_avgpool"}, "norm": {"_norm"}, "embedding": {"_embedding"},
              "rnn": {"_rnn"}, "lstm": {"_lstm"}},
    "torch": {"conv": {"_windows", "_scatter", "_conv"}, "maxpool": {"_maxpool"},
              "avgpool": {"_scatter", "_avgpool"}, "norm": {"_norm"}, "embedding": {"_embedding"},
              "rnn": {"_rnn"}, "lstm": {"_lstm"}},
}


def _family(kind: str) -> str:
    return {"conv1d": "conv", "conv2d": "conv", "maxpool1d": "maxpool", "maxpool2d": "maxpool",
            "avgpool1d": "avgpool", "avgpool2d": "avgpool", "batchnorm": "norm",
            "layernorm": "norm"}.get(kind, kind)


def _activation(layer, used: set, target: str) -> tuple[str, str | None]:
    """The forward line's right side a<n> = f(z<n>), and f' (None if 1) as a factor."""
    n, row = layer.number, layer.activation
    z, a = _array(f"z{n}"), _array(f"a{n}")
    if row.vector:
        used.add("_softmax")
        return f"_softmax(z{n})", None
    forward = to_code(row.definition.xreplace({X: z}), target, used)
    local = row.in_terms_of_a(a) if row.in_terms_of_a is not None else row.derivative().xreplace({X: z})
    return forward, None if local == 1 else to_code(local, target, used, factor=True)


def _output_delta(spec, used: set, target: str) -> tuple[str | None, str | None, str]:
    """(code of dL/dz<L> per unit of s, or None; dL/da<L> for softmax's Jacobian, or None; a line)."""
    L, last = spec.depth, spec.layers[-1]
    row, n_out = last.activation, spec.output_size
    aL, zL, y = _array(f"a{L}"), _array(f"z{L}"), _array("y")
    d_loss = sympy.diff(spec.loss.per_output(A, Y, n_out), A)
    if row.vector:
        if spec.softmax_cross_entropy:
            return None, None, f"d{L} = s * (a{L} * sum(y) - y)   (softmax with cross-entropy)"
        g = to_code(d_loss.xreplace({A: aL, Y: y}), target, used)
        return None, g, f"d{L} = s * a{L} * (g - rowsum(a{L} * g)),  g = dL/da{L} = {g}"
    if row.in_terms_of_a is not None:
        expr = shorter(d_loss * row.in_terms_of_a(A)).xreplace({A: aL, Y: y})
    else:
        expr = d_loss.xreplace({A: aL, Y: y}) * row.derivative().xreplace({X: zL})
    delta = to_code(expr, target, used)
    return delta, None, f"d{L} = s * ({delta})"


def _shape(shape) -> str:
    return "x".join(map(str, shape))


def _layers(spec, used: set, helpers: set, target: str) -> list[dict]:
    """Per layer: its header line, rule, forward and backward lines."""
    out = []
    for layer in spec.layers:
        n = layer.number
        helpers |= HELPERS[target].get(_family(layer.kind.name), set())
        forward, local = _activation(layer, used, target)
        row = rows(layer, target, (forward, local))
        if layer.kind.recurrent:  # its activation is the recurrence's f, run inside the row's loop
            forward, local = f"z{n}", None
        cfg = ", ".join(f"{k}={layer.cfg['kernel'] if v is None and k == 'stride' else v}"
                        for k, v in layer.cfg.items() if k != "seed")
        shapes = ", ".join(f"{layer.kind.array_name(letter, n)} {shape}"
                           for letter, shape in layer.params.items())
        comment = (f"layer {n}: {layer.kind.name} {_shape(layer.input)} -> {_shape(layer.output)}, "
                   f"{layer.activation.name}")
        head = comment + (f" ({cfg})" if cfg else "") + (f"; {shapes}" if shapes else "")
        out.append({"n": n, "comment": comment, "head": _wrap(head, 4, 8),
                    "rule_lines": _wrap(f"layer {n} ({layer.kind.name}): "
                                        f"{_first(row.rule) if n == 1 else row.rule}", 4, 8),
                    "forward": row.forward, "activation": forward,
                    "local": local, "params": row.params, "inputs": row.inputs, "cache": row.cache,
                    "assigns_input": row.assigns_input, "kind": layer.kind.name})
    return out


def _first(rule: str) -> str:
    """Layer 1's rule without the gradient at the input, which gradients() does not compute."""
    kept = rule.split("; g0")[0]
    return "nothing to compute (no gradient at the input is needed)" if kept.startswith("g0") else kept


def _backward(spec, layers: list[dict]) -> list[str]:
    """The lines of gradients() after the output delta: each layer's rule, in reverse."""
    lines = []
    residuals = [(x["n"], spec.layers[x["n"] - 1].cfg["from"]) for x in layers if x["kind"] == "residual"]
    for x in reversed(layers):
        n = x["n"]
        lines.append(f"# layer {n}: {x['kind']}")
        lines += x["params"]
        if n == 1:
            continue  # no gradient at the input is needed
        if x["inputs"] is not None:
            lines.append(f"g{n - 1} = {x['inputs']}")
        lines += [f"g{n - 1} = g{n - 1} + d{r}  # layer {r} is a residual from layer {n - 1}"
                  for r, source in residuals if source == n - 1]
        local = layers[n - 2]["local"]
        lines.append(f"d{n - 1} = g{n - 1} * {local}" if local else f"d{n - 1} = g{n - 1}")
    return lines


def _wrap(text: str, indent: int = 4, more: int = 4) -> list[str]:
    """A long line broken at spaces to fit 96 columns after the template's `indent`, its
    continuations indented `more` further."""
    return textwrap.wrap(text, 96 - indent, subsequent_indent=" " * more, break_long_words=False,
                         break_on_hyphens=False)


def _wrap_tuple(head: str, items: str, tail: str) -> list[str]:
    """head + items + tail as code lines, broken only between the items (inside the parentheses)."""
    lines = textwrap.wrap(head + items, 92, subsequent_indent="    ", break_long_words=False)
    lines[-1] += tail
    return lines


def _random_init(spec) -> dict:
    """Per parameter array, how check()'s random point draws it (as the engine's check does)."""
    out = {}
    for name, shape in spec.parameter_arrays():
        fan_in = 1
        for v in shape[1:]:
            fan_in *= v
        out[name] = ("gamma" if name.startswith("gamma") else "weight", fan_in if len(shape) > 1 else 1)
    return out


def generate_stack(spec, target: str = "numpy") -> str:
    """Source of a standalone module with forward(), loss(), gradients() and check() for a
    [[layer]] network (a `StackSpec`)."""
    if target not in TARGETS:
        raise RenderError(f"code target {target!r}; expected one of {', '.join(TARGETS)}")
    used, helpers, L = set(), set(), spec.depth
    layers = _layers(spec, used, helpers, target)
    delta, softmax_g, delta_line = _output_delta(spec, used, target)
    loss_code, loss_note = loss_term(spec.layers[-1].activation, spec.loss, spec.output_size, L, used, target)
    last_step = spec.steps is not None and spec.sequence_loss == "last"
    trace = ", ".join(["a0"] + [f"z{n}, a{n}" for n in range(1, L + 1)])
    caches = "{" + ", ".join(f"{x['n']}: c{x['n']}" for x in layers if x["cache"]) + "}"
    dropout = {layer.number: (tuple(layer.input), layer.cfg["p"], layer.cfg["seed"])
               for layer in spec.layers if layer.kind.name == "dropout"}
    context = {
        "description": spec.title or spec.describe(), "layer_list": layers, "L": L,
        "input": tuple(spec.input), "n_out": spec.output_size, "batch": spec.batch,
        "reduction": spec.reduction, "params": repr(dict(spec.parameter_arrays())),
        "init": repr(_random_init(spec)), "dropout": repr(dropout),
        "vocabulary": spec.layers[0].cfg["vocabulary"] if spec.embedding_input else None,
        "trace": trace, "unpack": _wrap_tuple("(", trace, "), caches = _forward(params, x, masks)"),
        "returned": _wrap_tuple("return (", trace, f"), {caches}"),
        "caches": [f"c{x['n']} = caches[{x['n']}]" for x in layers if x["cache"]],
        "backward": _backward(spec, layers), "output_delta": delta, "softmax_g": softmax_g,
        "delta_line": delta_line, "softmax_ce": spec.softmax_cross_entropy,
        "loss_term": loss_code, "loss_note": loss_note,
        "loss_text": f"sum over outputs of {spec.loss.per_output(A, Y, spec.output_size)}"
                     + {None: "", "last": " at the last step", "all": ", summed over the steps"}[
                         spec.sequence_loss if spec.steps is not None else None],
        "kinked": tuple(x["n"] for x in layers if spec.layers[x["n"] - 1].activation.kink
                        and not spec.layers[x["n"] - 1].kind.recurrent),
        # a recurrent layer's kinks are in its pre-activations, the rnn cache
        "recurrent_kinked": tuple(x["n"] for x in layers if spec.layers[x["n"] - 1].activation.kink
                                  and spec.layers[x["n"] - 1].kind.recurrent),
        "last_step": last_step, "steps": spec.steps,
        "y_shape": (spec.steps, spec.output_size) if spec.every_step else (spec.output_size,),
        "maxpools": tuple(x["n"] for x in layers if x["kind"].startswith("maxpool")),
        "probabilistic": spec.loss.probabilistic, "helpers": used, "kind_helpers": helpers,
        "math": bool(used & {"math", "_erf", "_erfc"}),
    }
    return _environment().get_template(f"stack_{target}.py.j2").render(**context)
