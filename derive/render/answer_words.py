r"""The facts a `derive which` answer states in words, for its templates.

The math of an answer comes from `chain`, the printer the documents use;
this module gathers what the prose around it says: which layers' derivatives
a parameter meets, how many paths there are, which question the answer
opens with, and the conventions a reader needs (relu'(0), the Iverson
bracket, sum(y) = 1 after softmax).

The opening fits the question (`QUESTIONS`, chosen with --question or
detected from the parameter): a weight of the output layer, a hidden
weight, a bias, "why is it p - y?" after softmax with cross-entropy, or
"why W transpose delta?".  Each question is a row: its name and the words
--help shows; the templates hold the sentences, keyed by the row's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy

from .chain import delta_form
from .minibatch import batch_section
from .batchform import batch_latex, regularizer_term
from .content import matrix_form, recursion_section
from ..errors import SpecError
from .formulas import Style, format_number
from ..calculus.model import Param
from .printing import partial_latex
from ..spec.registry import X

if TYPE_CHECKING:
    from ..api import Network

#: The questions an answer can open with: name -> what it answers (for --help).
QUESTIONS: dict[str, str] = {
    "auto": "chosen from the parameter",
    "which": "the loss's derivative or the activation's? (both, chained)",
    "output": "a weight of the output layer",
    "hidden": "a weight of a hidden layer",
    "bias": "a bias",
    "p-y": "why is the output delta p - y? (softmax with cross-entropy)",
    "transpose": "why does the delta go back through W transpose?",
    "bias-batch": "how are bias gradients computed over a minibatch? (why summed)",
    "l2": "what does the regulariser (l2, l1) add to the gradient?",
}


def question_for(net: Network, p: Param | None, asked: str = "auto") -> str:
    """The question an answer opens with: `asked`, or the one the parameter suggests."""
    if asked not in QUESTIONS:
        raise SpecError(f"--question {asked!r}; expected one of {', '.join(QUESTIONS)}")
    if asked != "auto":
        problem = _mismatch(net, p, asked)
        if problem:
            raise SpecError(f"--question {asked!r}: {problem}")
        return asked
    if p is None:
        return "which"
    if p.layer == net.spec.depth and net.spec.softmax_cross_entropy:
        return "p-y"
    if p.kind == "b":
        return "bias"
    return "output" if p.layer == net.spec.depth else "hidden"


def _mismatch(net: Network, p: Param | None, asked: str) -> str | None:
    """Why `asked` does not fit this network and parameter, or None."""
    spec = net.spec
    if asked == "p-y" and not spec.softmax_cross_entropy:
        return (f"the output is {spec.activations[-1].name} with {spec.loss.name}; "
                f"p - y is the delta of softmax with cross_entropy")
    if asked in ("output", "hidden", "bias") and p is None:
        return "give a parameter (PARAM) for this question"
    if asked == "output" and p.layer != spec.depth:
        return f"{p.name} is in layer {p.layer}, not the output layer {spec.depth}"
    if asked == "hidden" and p.layer == spec.depth:
        return f"{p.name} is in the output layer"
    if asked in ("bias", "bias-batch") and p is not None and p.kind != "b":
        return f"{p.name} is not a bias"
    if asked == "bias-batch" and p is None:
        return "give a bias (PARAM), e.g. b1[1]"
    if asked == "bias-batch" and not spec.training.batched:
        return "the network takes one example (batch = 1); give --batch M or batch = M in the spec"
    if asked == "l2" and not spec.regularization.active:
        return "the network has no regulariser; give --l2 LAMBDA or [regularization] l2 = ... in the spec"
    return None


def layers_words(layers: list[int]) -> str:
    """'layer 2', 'layers 2 and 1', 'layers 3, 2 and 1', 'layers 31 to 1' (consecutive)."""
    names = [str(l) for l in layers]
    if len(names) == 1:
        return f"layer {names[0]}"
    if len(names) > 3:
        return f"layers {names[0]} to {names[-1]}"
    return "layers " + ", ".join(names[:-1]) + " and " + names[-1]


def count_words(count: int) -> str:
    r"""A path count for prose: exact up to a million, then 'about 1.7 \times 10^{35}' in math."""
    if count <= 10**6:
        return str(count)
    mantissa, exponent = f"{count:.1e}".split("e")
    return rf"about ${mantissa} \times 10^{{{int(exponent)}}}$"


def number_sum(values: list[float]) -> str:
    """1.5 - 0.25 + 2, not 1.5 + -0.25 + 2."""
    head = [format_number(values[0])] if values else []
    return "".join(head + [(" - " if v < 0 else " + ") + format_number(abs(v)) for v in values[1:]])


def derivative_name(net: Network, l: int) -> str:
    row = net.spec.activations[l - 1]
    return r"the softmax Jacobian" if row.vector else f"${row.latex}'$"


def conventions(net: Network) -> list[str]:
    """Sentences (with $math$) on the brackets and kinks of this network's derivatives."""
    rows = list(dict.fromkeys(net.spec.activations))
    out = []
    if any(not r.vector and r.derivative().has(sympy.Piecewise) for r in rows):
        out.append(r"A bracket $[z > 0]$ is 1 where the condition holds and 0 elsewhere "
                   r"(Iverson's bracket).")
    for r in rows:
        if r.kink:  # the left branch's derivative at the kink, as the registry's `x > 0` gives it
            at_zero = sympy.nsimplify(r.derivative().subs(X, 0))
            out.append(rf"At the kink $z = 0$ the derivative is not defined; derive takes the left "
                       rf"branch, ${r.latex}'(0) = {sympy.latex(at_zero)}$, as PyTorch does.")
    return out


def network_words(net: Network, style: Style) -> dict:
    spec = net.spec
    rows = spec.activations
    if all(r is rows[0] for r in rows):
        acts = f"${rows[0].latex}$ in every layer"
    else:
        acts = ", ".join(f"${r.latex}$ in layer {l}" for l, r in enumerate(rows, start=1))
    return {"shape": "-".join(map(str, spec.layers)), "activations": acts,
            "loss": spec.loss.latex, "output_partial": style.d_loss(style.sym("a", spec.depth, "i")),
            "cancels": net.simplifier.cancellation() is not None, "depth": spec.depth,
            "softmax_ce": spec.softmax_cross_entropy, "conventions": conventions(net),
            "output_step": output_step(net, style),
            # softmax + cross-entropy cancels only because the targets sum to 1: say so
            "cancel_note": (r" (this uses $\sum_j y_j = 1$: the targets are a distribution)"
                            if spec.softmax_output else "")}


def batch_words(net: Network, style: Style) -> dict | None:
    """The minibatch and the regulariser as the answer states them (minibatch.py's section),
    or None for one example without a regulariser, whose answers stay as they were."""
    spec = net.spec
    if spec.training.single:
        return None
    section = batch_section(net, style)
    return {key: section[key] for key in ("m", "batched", "mean", "loss", "penalty", "penalty_values",
                                          "biases_regularized", "per_example", "bias_input", "ng", "l2")} | \
        {"regularized": spec.regularization.active, "weight": section["weight"], "bias": section["bias"],
         "loss_symbol": style.L}


def param_batch(net: Network, p: Param, style: Style, factored: str, numbers: dict | None) -> dict | None:
    """One parameter's gradient over the batch: the formula (batchform.py's `batch_latex`
    around its delta form, plus dR/dp) and, with values, each example's paths and the sum."""
    if net.spec.training.single:
        return None
    reg_tex = regularizer_term(net, p, "latex")
    out = {"formula": batch_latex(net.model, factored, reg_tex), "reg": reg_tex or None,
           "examples": None}
    if numbers is None:
        return out
    t = net.spec.training
    symbol = style.latex(net.model.symbol(p))
    out["examples"] = [{"n": e["n"], "value": format_number(e["value"] + 0.0),
                        "lhs": style.inline_partial(symbol, rf"{style.L}_{{[{e['n']}]}}"),
                        "paths": number_sum(e["paths"]) if len(e["paths"]) > 1 else None}
                       for e in numbers["examples"]]
    out["all_examples"] = len(numbers["examples"]) == numbers["m"]
    inside = number_sum(numbers["per_example"]) if out["all_examples"] else r"\dots"
    scale = rf"\frac{{1}}{{{numbers['m']}}}" if t.batched and t.reduction == "mean" else ""
    out["sum"] = (rf"{scale}\bigl({inside}\bigr) = {format_number(numbers['scaled'])}"
                  if t.batched else format_number(numbers["scaled"]))
    r = numbers["regularizer"]
    out["reg_value"] = ((" - " if r < 0 else " + ") + format_number(abs(r))) if reg_tex else None
    out["total"] = format_number(numbers["total"])
    return out


def output_step(net: Network, style: Style) -> str:
    """delta(L)_j from its definition to this network's form, as the document writes it."""
    rec = recursion_section(net, style)
    return f"{rec['output_lhs']} = {rec['output_rhs']} = {rec['output_special']}"


def transpose_words(net: Network, style: Style) -> dict:
    """Why the backward sum over i is a transpose: the entry, the matrix form."""
    up, j = "l+1", "j"
    w = style.w(up, "i", j)
    row = net.spec.row_layout  # delta as a row vector: delta W^T, the transpose on the right
    column = (rf"\bigl(\boldsymbol{{\delta}}^{{({up})}} (W^{{({up})}})^{{\top}}\bigr)_{{{j}}}" if row else
              rf"\bigl((W^{{({up})}})^{{\top}} \boldsymbol{{\delta}}^{{({up})}}\bigr)_{{{j}}}")
    return {"entry": rf"\sum_{{i}} {w}\, {style.sym('delta', up, 'i')}",
            "matrix": matrix_form(net, style)["bp2"], "weight": w, "column": column, "row": row}


def param_words(net: Network, p: Param, style: Style) -> dict:
    """The facts the opening paragraph states about p: which derivatives, which weights."""
    L = net.model.L
    between = list(range(L, p.layer - 1, -1))
    return {"name": p.name, "symbol": style.latex(net.model.symbol(p)), "layer": p.layer,
            "activation_layers": layers_words(between), "several_layers": len(between) > 1,
            "activation_names": " and ".join(dict.fromkeys(derivative_name(net, l) for l in between)),
            "weight_layers": layers_words(list(range(L, p.layer, -1))) if p.layer < L else None,
            "input": style.latex(net.model.a(p.layer - 1, p.k)) if p.kind == "W" else None,
            "lhs": partial_latex(p, **style.settings),
            "factored": delta_form(net, p, style)["rhs"]}
