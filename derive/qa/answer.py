r"""`derive which`: "the activation's derivative or the loss's?", answered for one network.

The answer opens with what is asked (`answer_words.QUESTIONS`: chosen, or
detected from the parameter: an output weight, a hidden weight, a bias,
"why p - y?" after softmax with cross-entropy, "why W transpose delta?"),
then gives the evidence for this network: the chain rule for a parameter as
a sum over paths (paths.py), each factor coloured by its role, the
simplified gradient, and with values the number.  Without a parameter, the
delta recursion of the network and one representative weight per layer.
Every formula is printed by `render.chain`, the printer the documents use,
with the reader's `Style` (notation, loss symbol), so `which` and `explain`
print the same factor, path, sum and delta form the same way.

Everything is built here as data: `ParamAnswer` holds one parameter's paths
(enumerated lazily: `count_paths` says how many before anyone lists them)
and `Answer` turns them into the issue's JSON, or into a context of
already-printed LaTeX for the templates `answer.md` and `answer.tex`,
which only arrange words.  Past `LISTED_PATHS` paths the documents show the
\sum form with one path written out; past `JSON_MAX_PATHS` the JSON is
refused with the count, never truncated.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import cached_property
from ..render import answer_words as words
from ..render import chain
from .claim import parse_param
from ..errors import SpecError
from ..calculus.model import Param
from ..calculus.paths import Path, count_paths, path_product, paths
from ..render.formulas import Style, format_number
from ..render.minibatch_example import SHOWN_EXAMPLES, example_gradient, parameter_value, regularizer_value
from ..render.roles import colour_definitions
from ..render.templating import environment, render

#: Paths written out one by one in the Markdown and LaTeX answers.
LISTED_PATHS = 8
#: Paths listed in --json; more is an error naming the count (raise it here).
JSON_MAX_PATHS = 4096
#: Paths times examples whose values --json sums for a minibatch (each a 30-digit evaluation).
JSON_BATCH_EVALUATIONS = 2048
#: Layers written out one by one in the general answer; deeper nets are elided.
LISTED_LAYERS = 6


@dataclass
class ParamAnswer:
    """One parameter's chain: its paths, their count, its value at a point."""

    network: object
    param: Param
    values: object = None
    trace: object = field(default=None, repr=False)

    @cached_property
    def count(self) -> int:
        return count_paths(self.network.derivation, self.param)

    def paths(self, limit: int) -> list[Path]:
        """Every non-zero path, or the first `limit` of them."""
        gen = paths(self.network.derivation, self.param, self.network.simplifier)
        return list(itertools.islice(gen, limit))

    @cached_property
    def listed(self) -> list[Path]:
        return self.paths(LISTED_PATHS if self.count > LISTED_PATHS else self.count)

    @property
    def complete(self) -> bool:
        return self.count <= LISTED_PATHS

    @cached_property
    def value(self) -> float | None:
        if self.values is None:
            return None
        return self.network.gradients(self.values)[self.param.name]

    def path_value(self, path: Path, n: int = 0) -> float:
        """The path's product at example n (0-based) of the values: one example's chain rule."""
        from ..check.evaluate import evaluate_expr

        trace, values = self.trace, self.values
        if values.batch > 1:
            trace, values = trace.example(n), values.example(n)
        return evaluate_expr(path_product(path, simplified=True), self.network.model, trace, values)

    @cached_property
    def batch(self) -> dict | None:
        """A minibatch or a regulariser at the values: each example's own gradient (the
        engine's delta_n a_n), the listed paths' values for the first `SHOWN_EXAMPLES`,
        the scaled sum, dR/dp and the total (the engine's dL/dp); None for one example
        without a regulariser, or without values."""
        if self.values is None or self.network.spec.training.single:
            return None
        net, p, m = self.network, self.param, self.values.batch
        trace_n = (lambda n: self.trace.example(n)) if m > 1 else (lambda n: self.trace)  # noqa: E731
        per = [example_gradient(p, trace_n(n)) for n in range(m)]
        listed = self.listed if self.complete else []
        examples = [{"n": n + 1, "value": per[n], "paths": [self.path_value(q, n) for q in listed]}
                    for n in range(min(m, SHOWN_EXAMPLES))]
        scaled = net.spec.training.scale * sum(per)
        return {"m": m, "per_example": per, "examples": examples, "scaled": scaled,
                "regularizer": regularizer_value(net, p, parameter_value(self.values, p)),
                "total": self.value}

    def batch_path_values(self, listed: list[Path]) -> list[float] | None:
        """Each path summed over the batch with the loss's scale, s sum_n path_n: with dR/dp
        they add up to the gradient.  None past `JSON_BATCH_EVALUATIONS` path-examples (each
        is a 30-digit evaluation; `batch.per_example` still has every example's gradient)."""
        s, m = self.network.spec.training.scale, self.values.batch
        if m * len(listed) > JSON_BATCH_EVALUATIONS:
            return None
        return [s * sum(self.path_value(q, n) for n in range(m)) for q in listed]

    def to_json(self, style: Style = Style(fold_sums=0)) -> dict:
        """Each factor's LaTeX is the expression `which` and the documents print for it;
        `edges` names each path's steps from the parameter's input to the loss
        (x[1] -> a1[1] -> ... -> L, the HTML diagram's hooks)."""
        if self.count > JSON_MAX_PATHS:
            raise SpecError(f"{self.param.name} has {self.count} paths to the loss, more than "
                            f"--json lists ({JSON_MAX_PATHS}; raise derive.answer.JSON_MAX_PATHS "
                            f"to allow it), or ask for a parameter of a later layer")
        listed = self.paths(self.count)
        return {"parameter": self.param.name,
                "paths": [[{"role": f.role, "layer": f.layer, "latex": style.latex(chain.factor_expr(f))} for f in q]
                          for q in listed],
                "edges": [route_edges(q) for q in listed],
                "latex": style.latex(self.network.gradient(self.param).simplified),
                "value": _finite(self.value),
                "path_values": self._path_values(listed),
                **self._batch_json()}

    def _path_values(self, listed: list[Path]) -> list | None:
        if self.value is None:
            return None
        values = self.batch_path_values(listed) if self.batch else [self.path_value(q) for q in listed]
        return None if values is None else [_finite(v) for v in values]

    def _batch_json(self) -> dict:
        """The "batch" entry, only for a minibatch or a regulariser (other JSON stays as it was)."""
        if self.network.spec.training.single:
            return {}
        b = self.batch
        t = self.network.spec.training
        return {"batch": {"m": t.batch, "reduction": t.reduction, "scale": t.scale,
                          "per_example": None if b is None else [_finite(v) for v in b["per_example"]],
                          "scaled_sum": None if b is None else _finite(b["scaled"]),
                          "regularizer": None if b is None else _finite(b["regularizer"])}}

    def summary_json(self, style: Style = Style(fold_sums=0)) -> dict:
        """The general answer's entry for this (representative) parameter."""
        first = self.paths(1)
        return {"layer": self.param.layer, "parameter": self.param.name,
                "path_count": self.count,
                "roles": [[f.role, f.layer] for f in first[0]] if first else [],
                "latex": style.latex(self.network.gradient(self.param).simplified),
                "value": _finite(self.value)}

    def context(self, style: Style) -> dict:
        """Printed math and flags for the templates."""
        net, p = self.network, self.param
        ctx = words.param_words(net, p, style)
        result = chain.result_latex(net, p, style)
        ctx.update(count=words.count_words(self.count), complete=self.complete,
                   several_paths=self.count != 1, result=result["rhs"], result_delta=result["delta"],
                   paths=[chain.path_lines(style, q) for q in self.listed],
                   sum_form=None if self.complete else chain.sum_over_paths(net, p, style),
                   value=None if self.value is None else format_number(self.value))
        ctx["path_values"] = (words.number_sum([self.path_value(q) for q in self.listed])
                              if self.value is not None and self.complete and self.count > 1
                              and self.batch is None else "")  # a minibatch: per example, below
        ctx["batch"] = words.param_batch(net, p, style, ctx["factored"], self.batch)
        return ctx


def _node(s) -> str:
    """A neuron's name as the diagrams and `derive claim` write it: x[1], a2[3]."""
    return f"x[{s.idx[0]}]" if s.kind == "x" else f"a{s.layer}[{s.idx[0]}]"


def route_edges(path: Path) -> list[list[str]]:
    """The edges one path runs along, from the parameter's input to the loss.

    A weight or input factor dz(t)_i/da(t-1)_k is the edge k -> i into layer t
    (a bias has none); the loss factor dL/da(L)_m is the edge m -> L.  Softmax
    paths enter output neuron i and leave from output m, as the diagram draws."""
    edges = []
    for f in reversed(path):
        if f.role in ("weight", "input"):
            below = f.denominator if f.role == "weight" else f.expr
            edges.append([_node(below), f"a{f.numerator.layer}[{f.numerator.idx[0]}]"])
        elif f.role == "loss":
            edges.append([_node(f.denominator), "L"])
    return edges


def _finite(v):
    return v if v is not None and math.isfinite(v) else None


@dataclass
class Answer:
    """The answer for one parameter, or for the whole network (`param` None)."""

    network: object
    param: Param | None
    parts: list[ParamAnswer]
    elided: tuple[int, int] | None = None   # hidden layers left out of the general answer
    notation: str = "nielsen"
    loss_symbol: str = "L"
    question: str = "auto"

    def __post_init__(self):
        self.style("md")  # bad settings fail when the answer is made, as a SpecError
        self.question = words.question_for(self.network, self.param, self.question)

    def __repr__(self) -> str:
        if self.param is None:
            return f"Answer(all layers: {len(self.parts)} layer(s); .markdown() or .latex() reads it)"
        part = self.parts[0]
        value = "" if part.value is None else f", value {part.value:.9g}"
        return (f"Answer({self.param.name}: both derivatives, chained over {part.count} path(s)"
                f"{value}; .markdown() or .latex() reads it)")

    def __str__(self) -> str:
        return self.markdown()

    def _repr_markdown_(self) -> str:  # Jupyter shows the answer itself, math by MathJax
        return self.markdown()

    def style(self, target: str) -> Style:
        return Style(self.notation, self.loss_symbol, target, row=self.network.spec.row_layout)

    def to_json(self) -> dict:
        plain = Style(self.notation, self.loss_symbol, "md", fold_sums=0)  # sums written out, as grad does
        if self.param is not None:
            return self.parts[0].to_json(plain)
        return {"parameter": None, "layers": [part.summary_json(plain) for part in self.parts]}

    def _context(self, target: str) -> dict:
        net, style = self.network, self.style(target)
        return {"general": self.param is None, "network": words.network_words(net, style),
                "question": self.question, "transpose": words.transpose_words(net, style),
                "colour_key": style.legend(), "colour_definitions": colour_definitions(),
                "parts": [part.context(style) for part in self.parts],
                "deltas": chain.delta_lines(net, style), "elided": self.elided,
                "batch": words.batch_words(net, style)}

    def markdown(self) -> str:
        """The answer as Markdown with MathJax math, ready to paste into a post."""
        return render(environment(), "answer.md", **self._context("md"))

    def latex(self) -> str:
        """The answer as a LaTeX fragment (amsmath, amssymb and xcolor)."""
        return render(environment(), "answer.tex", **self._context("tex"))


def which(net, param: str | Param | None = None, values=None, notation: str = "nielsen",
          loss_symbol: str = "L", question: str = "auto") -> Answer:
    """The answer to "which derivative does backprop use?" for `param` (or every layer)."""
    vals = net.values(values)
    trace = net.evaluator.run(vals)[0] if vals is not None else None
    opts = {"notation": notation, "loss_symbol": loss_symbol, "question": question}
    if param is not None:
        p = param if isinstance(param, Param) else parse_param(net, param)
        return Answer(net, p, [ParamAnswer(net, p, vals, trace)], **opts)
    L = net.model.L
    layers, elided = list(range(L, 0, -1)), None
    if L > LISTED_LAYERS:
        layers, elided = [L, L - 1, L - 2, 1], (2, L - 3)
    parts = [ParamAnswer(net, Param(l, "W", 1, 1), vals, trace) for l in layers]
    return Answer(net, None, parts, elided, **opts)
