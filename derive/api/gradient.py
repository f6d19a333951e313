r"""One parameter's gradient in its three forms (`Gradient`), with its paths and renderings.

`Gradient` holds a network and a parameter and asks the network's stages
for each form on first use: factored (backprop's delta form), simplified
(display), explicit (in x, y, W, b, or None where too large), its LaTeX
and its chain-rule paths (`Paths`, a re-iterable sequence).  `Rendered` is a
string that can also be called, so `g.latex()` reads like `answer.latex()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from typing import TYPE_CHECKING, Iterator

import sympy

from ..calculus.batch import regularizer_gradient
from ..calculus.model import Param
from ..render.printing import partial_latex, to_latex

if TYPE_CHECKING:
    from ..calculus.paths import Path
    from .network import Network


class Rendered(str):
    """A printed form that is also callable: `g.latex` and `g.latex()` are the same
    string, so a property reads like the methods `answer.latex()` and `verdict.text()`."""

    def __call__(self) -> str:
        return str(self)


class Paths:
    """The chain rule's paths for one parameter: iterable again and again (each pass
    derives them afresh: there can be millions), `len`, and `paths[i]`."""

    def __init__(self, gradient: "Gradient"):
        self._gradient = gradient

    def __iter__(self) -> Iterator["Path"]:
        from ..calculus.paths import paths

        net = self._gradient.network
        return paths(net.derivation, self._gradient.param, net.simplifier)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __getitem__(self, i: int) -> "Path":
        if not isinstance(i, int) or i < 0:
            raise IndexError(f"paths[{i!r}]: give an index 0, 1, ... (or iterate)")
        found = next(islice(iter(self), i, None), None)
        if found is None:
            raise IndexError(f"paths[{i}]: there are only {len(self)} paths")
        return found

    def __repr__(self) -> str:
        return f"Paths({self._gradient.name}, at most {self._gradient.path_count})"


@dataclass(frozen=True)
class Gradient:
    """dL/dp of one parameter in the three forms, with LaTeX and Jupyter display.

    For one identity neuron with loss (a - y)^2 / 2, by hand: a = W x + b, so
    dL/dW = (a - y) x = (W x + b - y) x, and the one path from W to the loss
    is dL/da * da/dz * dz/dW = (a - y) * 1 * x.

    >>> from derive import Network
    >>> g = Network(layers=[1, 1], activation="identity", loss="half_sse").gradient("W1[1,1]")
    >>> g.simplified
    x_1*(a1_1 - y_1)
    >>> g.explicit
    x_1*(W1_1_1*x_1 + b1_1 - y_1)
    >>> [(f.role, f.simplified) for f in g.paths[0]]
    [('loss', a1_1 - y_1), ('activation', 1), ('input', x_1)]
    """

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
    def latex(self) -> Rendered:
        """The simplified per-example form in LaTeX (the whole gradient for one example
        without a regulariser; see `whole` otherwise)."""
        return Rendered(to_latex(self.simplified))

    @property
    def regularizer(self) -> sympy.Expr:
        """The regulariser's own term dR/dp: lambda_2 p + lambda_1 sign(p), or 0."""
        return regularizer_gradient(self.network.model, self.param)

    def whole(self, **settings) -> Rendered:
        r"""dL/dp of the whole loss in LaTeX: the per-example form summed over the minibatch
        and scaled, plus the regulariser's term (`latex` when there is neither).

        >>> from derive import Network
        >>> net = Network([1, 1], "identity", "half_sse", batch=2, regularization={"l2": 0.1})
        >>> print(net.gradient("W1[1,1]").whole())
        \frac{1}{m} \sum_{n=1}^{m} \left(x_{1} \left(a^{(1)}_{1} - y_{1}\right)\right)_{[n]} + \lambda_{2} W^{(1)}_{11}
        """
        from ..render.batchform import batch_latex, regularizer_term

        per_example = to_latex(self.simplified, **settings)
        if self.network.spec.training.single:
            return Rendered(per_example)
        reg = regularizer_term(self.network, self.param, "latex")
        return Rendered(batch_latex(self.network.model, per_example, reg))

    @property
    def expression(self) -> str:
        """SymPy's string of the explicit form, or of the factored one if that is too large."""
        return str(self.explicit if self.explicit is not None else self.factored)

    @property
    def paths(self) -> Paths:
        """The chain rule as a sum over paths: tuples of `Factor`s (roles loss,
        activation, weight, input), one tuple per nonzero path; iterable more than
        once.  Their number is the product of the later layers' widths (`path_count`)."""
        return Paths(self)

    @property
    def path_count(self) -> int:
        """How many paths `paths` enumerates (before dropping identically zero ones)."""
        from ..calculus.paths import count_paths

        return count_paths(self.network.derivation, self.param)

    def equation(self, **settings) -> str:
        r"""The LaTeX equation dL/dp = simplified form, e.g. for a display block.

        >>> from derive import Network
        >>> Network([1, 1], "identity", "half_sse").gradient("b1[1]").equation()
        '\\frac{\\partial L}{\\partial b^{(1)}_{1}} = a^{(1)}_{1} - y_{1}'
        """
        return f"{partial_latex(self.param, **settings)} = {self.whole(**settings)}"

    def _repr_latex_(self) -> str:
        return f"$$ {self.equation()} $$"

    def _repr_markdown_(self) -> str:
        return f"$$ {self.equation()} $$"
