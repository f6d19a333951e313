"""`StackNetwork`: a [[layer]] network (conv, pool, norm, dropout, residual, embedding, dense).

What it answers today: the loss and every gradient at a point (backprop through
the layer table, check/stack_eval.py), the complex-step check of them, the
document (`derive explain`: render/stack_document.py), `derive which`
(qa/stack_answer.py), `derive claim` (qa/stack_claim.py) and a standalone NumPy or
PyTorch module (export/stackgen.py).  Exercises and the HTML page read `layers = [...]`
networks only so far; asking a stack for them is one clear line (`unsupported`),
not a wrong answer.
"""

from __future__ import annotations

from functools import cached_property
from typing import Mapping

from ..check.stack_check import check_stack
from ..check.stack_eval import StackEvaluator
from ..errors import SpecError
from ..spec.stack import StackSpec
from ..spec.stack_values import StackValues, make_stack_values


class StackNetwork:
    """A stack of layers and the numbers derived from it."""

    def __init__(self, spec: StackSpec):
        self.spec = spec

    def __repr__(self) -> str:
        return f"StackNetwork({self.spec.describe()}, {self.spec.parameter_count} parameters)"

    @cached_property
    def evaluator(self) -> StackEvaluator:
        return StackEvaluator(self.spec)

    def values(self, values: StackValues | Mapping | None = None) -> StackValues | None:
        if values is None or isinstance(values, StackValues):
            return values if values is not None else self.spec.values
        return make_stack_values(self.spec, values)

    def loss_and_gradients(self, values=None) -> tuple[float, dict[str, float]]:
        """The loss and every dL/dp by entry name (K1[1,1,2,3], gamma2[1], ...)."""
        point = self.values(values)
        if point is None:
            raise SpecError("values: none given (add a [values] table to the spec or pass --values FILE)")
        loss, grads = self.evaluator.run(point)
        names = iter(self.spec.parameter_names())
        return loss, {next(names): float(v) for name, _ in self.spec.parameter_arrays()
                      for v in grads[name].ravel()}

    def entries(self):
        """(name, layer, letter, 1-based index) of every parameter entry, in order."""
        import itertools

        for layer in self.spec.layers:
            for letter, shape in layer.params.items():
                for idx in itertools.product(*(range(1, n + 1) for n in shape)):
                    yield f"{layer.kind.array_name(letter, layer.number)}[{','.join(map(str, idx))}]", layer, letter, idx

    def claim(self, param: str, expr: str):
        """Judge a claimed formula for one entry's gradient (qa/stack_claim.py)."""
        from ..qa.stack_claim import check_stack_claim

        return check_stack_claim(self, param, expr)

    def check(self, values=None, points: int = 3, seed: int | None = None):
        return check_stack(self.spec, self.values(values), points, **({} if seed is None else {"seed": seed}))

    def code(self, target: str = "numpy") -> str:
        """Source of a standalone NumPy or PyTorch module with forward(), loss(),
        gradients(params, x, y, masks) and check() (see export/stackgen.py).

        >>> from derive.spec.stack import make_stack
        >>> net = StackNetwork(make_stack({"input": [2], "loss": "half_sse",
        ...                                "layer": [{"kind": "dense", "units": 1}]}))
        >>> module = {}
        >>> exec(net.code(), module)
        >>> module["gradients"]({"W1": [[3.0, 0.0]], "b1": [0.5]}, [2.0, 1.0], [1.0])
        {'W1': array([[11. ,  5.5]]), 'b1': array([5.5])}
        """
        from ..export.stackgen import generate_stack

        return generate_stack(self.spec, target)


def unsupported(command: str) -> SpecError:
    """The one line for a command that does not read [[layer]] networks yet."""
    return SpecError(f"{command} does not read [[layer]] networks yet (grad, check, explain, "
                     f"which, claim and code do)")
