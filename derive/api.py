r"""The Python API: `Network` ties the stages together; the CLI calls only this.

    >>> import derive
    >>> net = derive.Network(layers=[2, 2, 2], activation="sigmoid", loss="half_sse")
    >>> net.gradient("W2[1,1]").latex
    'a^{(1)}_{1} a^{(2)}_{1} \\left(1 - a^{(2)}_{1}\\right) \\left(a^{(2)}_{1} - y_{1}\\right)'

Each stage is built on first use and kept (`cached_property`): asking for
one gradient of a 32-layer network derives that gradient only.  `values`
arguments accept a `Values`, a plain dict shaped like a values file, or
None for the spec's own [values].
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterator, Mapping

import sympy

from .backprop import Derivation
from .errors import SpecError
from .evaluate import Evaluator
from .explicit import ExplicitForm
from .model import Param, SymbolicModel
from .printing import partial_latex, to_latex
from .simplify import Simplifier
from .spec import NetworkSpec, Values, load_spec, make_spec, make_values
from .verify import DEFAULT_POINTS, CheckReport, check


@dataclass(frozen=True)
class Gradient:
    """dL/dp of one parameter in the three forms, with LaTeX and Jupyter display."""

    network: "Network"
    param: Param

    def __repr__(self) -> str:
        return f"Gradient({self.param.name} = {self.simplified})"

    @property
    def name(self) -> str:
        return self.param.name

    @cached_property
    def factored(self) -> sympy.Expr:
        """The backprop form: local derivatives as SymPy derived them, deltas substituted."""
        return self.network.derivation.expanded(self.param)

    @cached_property
    def simplified(self) -> sympy.Expr:
        """The display form: sigma' = a(1-a), tanh' = 1-a^2, a - y where it cancels."""
        return self.network.simplifier.simplified(self.param)

    @cached_property
    def _explicit(self) -> tuple[sympy.Expr | None, int]:
        return self.network.explicit_form.explicit(self.param)

    @property
    def explicit(self) -> sympy.Expr | None:
        """The form in x, y, W, b alone, or None where it would be too large."""
        return self._explicit[0]

    @property
    def latex(self) -> str:
        return to_latex(self.simplified)

    @property
    def expression(self) -> str:
        """SymPy's string of the explicit form, or of the factored one if that is too large."""
        return str(self.explicit if self.explicit is not None else self.factored)

    def equation(self, **settings) -> str:
        return f"{partial_latex(self.param, **settings)} = {to_latex(self.simplified, **settings)}"

    def _repr_latex_(self) -> str:
        return f"$$ {self.equation()} $$"

    def _repr_markdown_(self) -> str:
        return f"$$ {self.equation()} $$"


class Network:
    """A network and everything derived from it.

    >>> net = Network(layers=[1, 1], activation="identity", loss="half_sse")
    >>> net.gradients({"x": [2.0], "y": [1.0], "W1": [[3.0]], "b1": [0.5]})
    {'W1[1,1]': 11.0, 'b1[1]': 5.5}
    """

    def __init__(self, layers, activation: Any = "sigmoid", loss: Any = "half_sse",
                 bias: bool = True, title: str | None = None, values: Mapping | None = None):
        self.spec = make_spec(layers, activation, loss, bias, title, values)

    @classmethod
    def from_spec(cls, spec: NetworkSpec) -> "Network":
        net = cls.__new__(cls)
        net.spec = spec
        return net

    def __repr__(self) -> str:
        return f"Network({self.spec.describe()}, {self.spec.parameter_count} parameters)"

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
        return self.model.param(name)

    def params(self) -> Iterator[Param]:
        return self.model.params()

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

    def gradients(self, values: Values | Mapping | None = None) -> dict[str, float]:
        """dL/dp at a point for every parameter, keyed by its name."""
        grads = self.evaluator.gradients(self._require_values(values))
        return {p.name: v for p, v in grads.items()}

    def check(self, values: Values | Mapping | None = None, points: int = DEFAULT_POINTS,
              seed: int | None = None) -> CheckReport:
        """Compare every derived gradient with complex-step differentiation."""
        if not isinstance(points, int) or isinstance(points, bool) or points < 0:
            raise SpecError(f"points must be a non-negative integer, got {points!r}")
        kwargs = {} if seed is None else {"seed": seed}
        return check(self.evaluator, self.values(values), points, **kwargs)


def load(path, values_path=None) -> Network:
    """A `Network` from a spec TOML file (and optionally a values file)."""
    return Network.from_spec(load_spec(path, values_path))
