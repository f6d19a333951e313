r"""`Network`: a network and everything derived from it, each stage built on first use.

    >>> import derive
    >>> net = derive.Network(layers=[2, 2, 2], activation="sigmoid", loss="half_sse")
    >>> net.gradient("W2[1,1]").latex
    'a^{(1)}_{1} a^{(2)}_{1} \\left(1 - a^{(2)}_{1}\\right) \\left(a^{(2)}_{1} - y_{1}\\right)'

One rule for the names: what an object has, read without arguments, is a
property (`g.latex`, `g.simplified`, `g.paths`, `net.spec`); what takes
arguments or computes at a point is a method (`net.gradient(name)`,
`net.gradients(point)`, `net.values(point)`, `g.equation(**settings)`).
Renderings can also be called: `g.latex()` is `g.latex`, as `answer.latex()`.
Points are dicts of lists, NumPy arrays or torch tensors; sequences
(`net.params()`, `g.paths`) can be iterated more than once.

Each stage is built on first use and kept (`cached_property`): asking for
one gradient of a 32-layer network derives that gradient only.  `values`
arguments accept a `Values`, a plain dict shaped like a values file, or
None for the spec's own [values].  The renderers (document.py, answer.py,
claim.py, codegen.py, paths.py) are imported when first asked for, so
`import derive` stays cheap and the CLI and notebooks share one code path.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Mapping

import numpy as np

from ..calculus.backprop import Derivation
from ..calculus.explicit import ExplicitForm
from ..calculus.model import NetSymbol, Param, SymbolicModel
from ..calculus.names import bracket_name, symbol_named
from ..calculus.simplify import Simplifier
from ..check.evaluate import Evaluator
from ..check.verify import DEFAULT_POINTS, CheckReport, check
from ..errors import SpecError
from ..spec.loading import load_spec, make_spec
from ..spec.network import NetworkSpec, Values
from ..spec.values import make_values
from .gradient import Gradient


#: Random points one `check` accepts: each costs a full complex-step pass.
MAX_POINTS = 1000


class Network:
    """A network and everything derived from it.

    One identity neuron, loss (a - y)^2 / 2, at x = 2, y = 1, W = 3, b = 0.5:
    by hand a = 6.5, L = 5.5^2 / 2 = 15.125, dL/dW = (a - y) x = 11, dL/db = 5.5.

    >>> net = Network(layers=[1, 1], activation="identity", loss="half_sse")
    >>> point = {"x": [2.0], "y": [1.0], "W1": [[3.0]], "b1": [0.5]}
    >>> net.loss(point)
    15.125
    >>> net.gradients(point)
    {'W1[1,1]': 11.0, 'b1[1]': 5.5}
    >>> net.check(point).passed
    True
    """

    def __init__(self, layers, activation: Any = "sigmoid", loss: Any = "half_sse",
                 bias: bool = True, title: str | None = None, values: Mapping | None = None,
                 batch: int = 1, reduction: str = "mean", layout: str = "column",
                 regularization: Mapping | None = None):
        """`batch`, `reduction`, `layout`, `regularization` ({"l2": 0.01, "l1": 0,
        "biases": False}) are the spec's training fields (spec/training.py)."""
        self.spec = make_spec(layers, activation, loss, bias, title, values, batch, reduction,
                              layout, regularization)

    @classmethod
    def from_spec(cls, spec: NetworkSpec) -> "Network":
        net = cls.__new__(cls)
        net.spec = spec
        return net

    def __repr__(self) -> str:
        return f"Network({self.spec.describe()}, {self.spec.parameter_count} parameters)"

    def _repr_markdown_(self) -> str:
        """Jupyter's display: the layers as a table, activations and loss as math."""
        spec = self.spec
        rows = [f"**{spec.title or spec.describe()}**, {spec.parameter_count} parameters"
                f"{'' if spec.bias else ' (no biases)'}", "",
                "| layer | neurons | activation |", "|---|---|---|", f"| 0 (input x) | {spec.layers[0]} | |"]
        rows += [f"| {l} | {spec.layers[l]} | ${row.latex}$ |" for l, row in enumerate(spec.activations, 1)]
        return "\n".join(rows + ["", f"loss: ${spec.loss.latex}$"])

    # -- the stages, built on first use -------------------------------------
    @cached_property
    def model(self) -> SymbolicModel:
        return SymbolicModel(self.spec)

    @cached_property
    def derivation(self) -> Derivation:
        return Derivation(self.model)

    @cached_property
    def simplifier(self) -> Simplifier:
        return Simplifier(self.derivation)

    @cached_property
    def explicit_form(self) -> ExplicitForm:
        return ExplicitForm(self.derivation)

    @cached_property
    def evaluator(self) -> Evaluator:
        return Evaluator(self.simplifier)

    # -- questions -----------------------------------------------------------
    def param(self, name: str) -> Param:
        """A parameter by name: "W1[1,2]", or the symbol name "W1_1_2" the API prints."""
        return self.model.param(bracket_name(name))

    def params(self) -> list[Param]:
        """Every parameter, layer by layer: W(l) row-major, then b(l)."""
        return list(self.model.params())

    def symbol(self, name: str) -> NetSymbol:
        """The SymPy symbol of a quantity ("x[1]", "W1[1,2]", "a1[2]", "delta2[1]" or
        "W1_1_2"), for subs(): symbols are real, so sympy.Symbol("x_1") matches nothing."""
        return symbol_named(self.model, name)

    def gradient(self, name: str | Param) -> Gradient:
        """The derivative of the loss with respect to one parameter, e.g. "W1[1,1]"."""
        return Gradient(self, name if isinstance(name, Param) else self.param(name))

    def values(self, values: Values | Mapping | None = None) -> Values | None:
        """Normalise a values argument; None means the spec's own [values]."""
        if values is None or isinstance(values, Values):
            return values if values is not None else self.spec.values
        if not isinstance(values, Mapping):
            raise SpecError(f"values must be a table (dict), got {type(values).__name__}")
        return make_values(self.spec, values)

    def _require_values(self, values) -> Values:
        vals = self.values(values)
        if vals is None:
            raise SpecError("values: none given (add a [values] table to the spec or pass --values FILE)")
        return vals

    def loss(self, values: Values | Mapping | None = None) -> float:
        trace, _, _ = self.evaluator.run(self._require_values(values))
        return trace.loss

    def gradients(self, values: Values | Mapping | None = None, shaped: bool = False):
        """dL/dp at a point for every parameter, keyed by its name ("W1[1,2]"); with
        shaped=True, one array per matrix keyed "W1", "b1", ..., shaped like W1 and b1."""
        flat = self.loss_and_gradients(values)[1]
        return self._shaped(flat) if shaped else flat

    def _shaped(self, flat: dict[str, float]) -> dict[str, np.ndarray]:
        n, out, row = self.spec.layers, {}, self.spec.row_layout
        for l in range(1, self.spec.depth + 1):
            out[f"W{l}"] = np.zeros((n[l - 1], n[l]) if row else (n[l], n[l - 1]))
            if self.spec.bias:
                out[f"b{l}"] = np.zeros(n[l])
        for p in self.model.params():
            at = p.j - 1 if p.kind == "b" else (p.k - 1, p.j - 1) if row else (p.j - 1, p.k - 1)
            out[f"{p.kind}{p.layer}"][at] = flat[p.name]
        return out

    def loss_and_gradients(self, values: Values | Mapping | None = None) -> tuple[float, dict[str, float]]:
        """The loss and every dL/dp by name, from one forward and backward pass."""
        loss, grads = self.evaluator.loss_and_gradients(self._require_values(values))
        return loss, {p.name: v for p, v in grads.items()}

    def check(self, values: Values | Mapping | None = None, points: int = DEFAULT_POINTS,
              seed: int | None = None) -> CheckReport:
        """Compare every derived gradient with complex-step differentiation."""
        if not isinstance(points, int) or isinstance(points, bool) or points < 0:
            raise SpecError(f"points must be a non-negative integer, got {points!r}")
        if points > MAX_POINTS:
            raise SpecError(f"points is {points}, above the limit {MAX_POINTS} "
                            f"(each point checks every parameter; run several checks with --seed)")
        vals = self.values(values)
        if points == 0 and vals is None:
            raise SpecError("points is 0 and there are no values: nothing would be checked "
                            "(give --values FILE or at least one random point)")
        kwargs = {} if seed is None else {"seed": seed}
        return check(self.evaluator, vals, points, **kwargs)

    # -- renderers (imported on first use) -------------------------------------
    def explain(self, format: str = "md", **opts) -> str:
        r"""The derivation document as text: Markdown (format "md") or LaTeX ("tex").

        `opts` are those of `derive explain`: params (e.g. "W1[1,1],b2[*]"),
        snippet, notation ("nielsen" or "ij"), loss_symbol, templates.  For
        files, and PDF, use `derive.document.build(net, formats, outdir)`.

        >>> md = Network([1, 1], "identity", "half_sse").explain()
        >>> r"\frac{\partial L}{\partial W^{(1)}_{11}}" in md
        True
        """
        from ..render import document

        renderers = {"md": document.render_markdown, "tex": document.render_latex}
        if format not in renderers:
            raise SpecError(f"format {format!r}; expected md or tex (a PDF is a file: "
                            f"derive.document.build(net, formats='pdf', outdir=...))")
        return renderers[format](self, **opts)

    def which(self, param: str | Param | None = None, values: Values | Mapping | None = None,
              notation: str = "nielsen", loss_symbol: str = "L", question: str = "auto"):
        """Which derivative does backprop use for `param`? (both, chained); without one, every
        layer.  `notation`, `loss_symbol` as for `explain`; `question` picks the opening
        (render.answer_words.QUESTIONS; "auto" reads it from the parameter).

        Returns an answer with `.markdown()`, `.latex()` and `.to_json()`.

        >>> answer = Network([1, 1, 1], "identity", "half_sse").which("W1[1,1]")
        >>> answer.markdown().startswith("**Both, chained.**")
        True
        """
        from ..qa.answer import which

        return which(self, param, values, notation=notation, loss_symbol=loss_symbol,
                     question=question)

    def claim(self, param: str | Param, expr: str):
        """Check a claimed formula for dL/dparam: one entry ("W1[1,1]", text in x[k], y[j],
        W1[j,k], a1[j], z1[j]) or, for a bare matrix name ("W2", "b1"), the whole matrix
        in X, Y, W<l>, b<l>, Z<l>, A<l>, dZ<l>, m, l2, l1 (qa/matrix_claim.py).

        Returns a verdict with `.correct`, `.text()` and `.to_json()`.

        >>> net = Network([2, 3, 1], "sigmoid", "bce", batch=4)
        >>> net.claim("W2", "(A2 - Y) @ A1.T / m").correct
        True
        """
        from ..qa.matrix_claim import check_matrix_claim, is_matrix_param

        if is_matrix_param(param):
            return check_matrix_claim(self, param, expr)
        from ..qa.claim import check_claim

        return check_claim(self, param, expr)

    def exercises(self, count: int = 5, seed: int = 1, questions=None):
        """`count` seeded exercise variants (values, questions, engine-computed answers);
        `derive.qa.quiz.build(net, outdir, ...)` writes them as sheets, keys and quizzes.

        >>> v = Network([1, 1], "identity", "half_sse").exercises(1, seed=2, questions="loss")[0]
        >>> [q.kind for q in v.questions]
        ['loss']
        """
        from ..qa.exercises import exercises

        return exercises(self, count, seed, questions)

    def code(self, target: str = "numpy") -> str:
        """Source of a standalone NumPy or PyTorch module with loss(), gradients()
        and check(), printed from this derivation (see codegen.py).

        >>> import numpy as np
        >>> net = Network(layers=[1, 1], activation="identity", loss="half_sse")
        >>> module = {}
        >>> exec(net.code(), module)
        >>> module["gradients"]({"W1": np.array([[3.0]]), "b1": np.array([0.5])}, [2.0], [1.0])
        {'W1': array([[11.]]), 'b1': array([5.5])}
        """
        from ..export.codegen import generate

        return generate(self, target)


def load(path, values_path=None, **training):
    """A `Network` from a spec TOML file (and optionally a values file); `training`
    overrides the file's batch, reduction, layout or regularization.  A file of
    [[layer]] tables gives a `StackNetwork` (api/stack.py)."""
    from ..spec.stack import StackSpec
    from .stack import StackNetwork

    spec = load_spec(path, values_path, **training)
    return StackNetwork(spec) if isinstance(spec, StackSpec) else Network.from_spec(spec)
