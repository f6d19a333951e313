r"""`derive which` on a [[layer]] network: one parameter entry or one input position.

    which cnn.toml "K1[1,1,2,2]"   a kernel weight: the sum over output positions, term by term
    which cnn.toml "a1[1,2,3]"     an input of the max-pool layer 2: which windows route to it
    which mlp.toml "gamma2[1]"     batchnorm's scale; "a1[2]" its input, along the three paths
    which mlp.toml "a2[1]"         the input of a dropout layer: the same mask again
    which mlp.toml "W5[1,1]"       a weight behind a residual: its gradient split by path

A parameter is named as the grad table names it; `a<l>[...]` (or `x[...]`,
a0) is a position of layer l's output per example, the input of layer l+1,
and the answer gives it for every example of the batch.  The equations are
render/layer_rules.py's, painted in the role colours; the numbers come from
one `StackEvaluator.trace` at the spec's values.  The answer is a list of
blocks (text with $...$ math, a display equation, a table) that the same
small printer writes as Markdown or LaTeX, and `to_json` gives the numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import SpecError
from ..render.formulas import Style, format_number
from ..render.layer_rules import LAYER_RULES, entry_latex, paint
from ..render.stack_content import entry_symbol
from . import stack_cases

_NAME = re.compile(r"^\s*([A-Za-z]+)(\d*)([a-z]?)\s*\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]\s*$")


def num(v: float) -> str:
    return format_number(float(np.real(v)) + 0.0, 6)


@dataclass
class StackQuery:
    """What is asked: a parameter entry (layer, letter, idx) or an input position."""

    name: str
    layer: object          # the parameter's layer, or the layer the position feeds
    letter: str | None     # None for a position
    idx: tuple[int, ...]   # 1-based, per example for a position

    @property
    def position(self) -> bool:
        return self.letter is None


def parse_query(net, text: str) -> StackQuery:
    """K1[1,1,2,2], gamma2[1] or a1[1,2,3] / x[1,2,3], checked against the shapes."""
    m = _NAME.match(str(text or ""))
    if not m:
        raise SpecError(f"PARAM {text!r}: expected an entry like K1[1,1,2,2] or gamma2[1], or an "
                        f"input position like a1[1,2,3] (the output of layer 1)")
    letter, number, gate = m.group(1), m.group(2), m.group(3)  # gate: an LSTM's W1i, R1f, ...
    idx = tuple(int(i) for i in m.group(4).split(","))
    spec = net.spec
    if letter in ("a", "x"):
        l = 0 if letter == "x" else int(number or -1)
        if not 0 <= l < spec.depth:
            raise SpecError(f"PARAM {text!r}: a<l> names the input of layer l+1, so l must be 0..{spec.depth - 1}")
        shape = spec.input if l == 0 else spec.layers[l - 1].output
        if l == 0 and spec.embedding_input:
            raise SpecError(f"PARAM {text!r}: the input is token indices, which have no gradient")
        _check_index(text, idx, shape)
        return StackQuery(f"a{l}[{','.join(map(str, idx))}]", spec.layers[l], None, idx)
    name = f"{letter}{number}{gate}[{','.join(map(str, idx))}]"
    for entry, layer, let, index in net.entries():
        if entry == name:
            return StackQuery(name, layer, let, index)
    arrays = ", ".join(f"{n}[{'x'.join(map(str, s))}]" for n, s in spec.parameter_arrays())
    raise SpecError(f"PARAM {text!r} is not a parameter entry of this network (its arrays: {arrays}; "
                    f"or a<l>[...] for a position)")


def _check_index(text, idx, shape) -> None:
    if len(idx) != len(shape) or any(not 1 <= i <= n for i, n in zip(idx, shape)):
        raise SpecError(f"PARAM {text!r}: the position must be 1-based inside {'x'.join(map(str, shape))}")


@dataclass
class StackAnswer:
    """The answer: `blocks(style)` per target, `markdown`, `latex` and `to_json`."""

    net: object
    query: StackQuery
    trace: dict | None

    def blocks(self, style: Style) -> list[dict]:
        q, layer = self.query, self.query.layer
        rule = LAYER_RULES[layer.kind.name]
        out = [{"text": f"**{stack_cases.headline(self.net, q)}**"}]
        if q.position:
            out.append({"text": f"$a^{{({layer.number - 1})}}$ is the input of layer {layer.number} "
                                f"({layer.kind.name}): {layer.kind.flow}. Its local derivative:"})
            out.append({"math": paint(rule.backward(layer), style.paint)})
        else:
            out.append({"text": f"Layer {layer.number} ({layer.kind.name}): {layer.kind.flow}. The rule:"})
            out.append({"math": paint(rule.params[q.letter](layer), style.paint)})
            lhs = entry_symbol(layer, q.letter, q.idx)
            value = f" = {num(self.value)}" if self.trace is not None else ""
            out.append({"text": "This entry:"})
            out.append({"math": f"{lhs} = {paint(entry_latex(layer, q.letter, q.idx), style.paint)}{value}"})
        if self.trace is not None:
            out += stack_cases.evidence(self.net, q, self.trace, style)
        else:
            out.append({"text": "(Give values, a [values] table or --values FILE, for the numbers.)"})
        return out

    @property
    def value(self):
        if self.trace is None or self.query.position:
            return None
        return float(self.trace.grads[self.query.layer.kind.array_name(self.query.letter, self.query.layer.number)][
            tuple(i - 1 for i in self.query.idx)])

    def markdown(self) -> str:
        return _print(self.blocks(Style("nielsen", "L", "md")), "md")

    def latex(self) -> str:
        return _print(self.blocks(Style("nielsen", "L", "tex")), "tex")

    def to_json(self) -> dict:
        q = self.query
        out = {"question": q.name, "layer": q.layer.number, "kind": q.layer.kind.name,
               "flow": q.layer.kind.flow, "headline": stack_cases.headline(self.net, q)}
        if q.position:
            out["rule"] = LAYER_RULES[q.layer.kind.name].backward(q.layer)
        else:
            out["rule"] = LAYER_RULES[q.layer.kind.name].params[q.letter](q.layer)
            out["latex"] = entry_latex(q.layer, q.letter, q.idx)
            out["value"] = self.value
        if self.trace is not None:
            out.update(stack_cases.numbers(self.net, q, self.trace))
        return out


def _print(blocks: list[dict], target: str) -> str:
    parts = []
    for b in blocks:
        if "text" in b:
            text = b["text"]
            if target == "tex":
                text = re.sub(r"\*\*(.*?)\*\*", r"\\textbf{\1}", text)
            parts.append(text)
        elif "math" in b:
            parts.append(f"$$\n{b['math']}\n$$" if target == "md" else f"\\[\n{b['math']}\n\\]")
        else:
            head, rows = b["table"]
            if target == "md":
                lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                lines += ["| " + " | ".join(r) + " |" for r in rows]
            else:
                lines = [r"\begin{tabular}{" + "r" * len(head) + "}", " & ".join(head) + r" \\ \hline"]
                lines += [" & ".join(r) + r" \\" for r in rows] + [r"\end{tabular}"]
            parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def stack_which(net, text: str) -> StackAnswer:
    """The answer for `text` at the spec's values (if any)."""
    if not text:
        raise SpecError("which on a [[layer]] network needs PARAM: an entry like K1[1,1,2,2] or a "
                        "position like a1[1,2,3]")
    query = parse_query(net, text)
    values = net.values()
    trace = None if values is None else net.evaluator.trace(values)
    return StackAnswer(net, query, trace)
