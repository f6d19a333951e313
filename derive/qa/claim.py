"""`derive claim`: is a claimed formula for dL/dPARAM right, and if not, what is wrong?

The claim is parsed by the whitelist parser (expressions.py, nothing is
evaluated as Python) over the network's own symbols: x[k], y[j], W<l>[j,k],
b<l>[j], z<l>[j], a<l>[j] (a0[k] is x[k]) and L, the loss.  Then:

1. Numbers first: at the spec's own values (if any) and at `POINTS` seeded
   random points (points.py), the claim and the derivation's gradient
   delta(l)_j a(l-1)_k are evaluated at `DIGITS` digits.  A disagreement is a counterexample; diagnosis.py then says which
   factor is missing or extra where the claim matches a variant of the chain.
2. If they agree everywhere, SymPy tries to prove it, within a budget:
   claim minus gradient, expanded or cancelled, must be 0, first with a and z
   as free symbols, then with a = f(z), then written out in x, W, b.  Only
   `sympy.expand` and `sympy.cancel` run, on expressions of at most
   `SYMBOLIC_MAX_OPS` operations, never open-ended `simplify`.  The verdict
   says which method decided it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import mpmath
import sympy

from . import diagnosis
from ..errors import SpecError
from ..spec.deadline import Deadline
from ..spec.expressions import DEFAULT_FUNCTIONS, format_error, parse_expression
from ..calculus.model import Param
from ..check.points import DIGITS, LOSS, Sampler, as_table, equal, evaluate, gradient_value
from ..spec.registry import ACTIVATION_FUNCTIONS

#: Random points a correct claim must match at.
POINTS = 50
#: Largest difference (SymPy count_ops) the symbolic proof attempts.
SYMBOLIC_MAX_OPS = 600
#: Wall-clock budget of the symbolic proof; steps start only within it.
SYMBOLIC_SECONDS = 3.0
FIELD = "EXPR"


@dataclass
class Verdict:
    """The outcome of `check_claim` (the --json object is `to_json`)."""

    parameter: str
    claim: str
    correct: bool
    method: str                      # "symbolic" or "numeric"
    counterexample: dict | None = None
    diagnosis: str | None = None
    points: int = 0

    def __repr__(self) -> str:
        return f"Verdict({self.parameter}: {'correct' if self.correct else 'incorrect'}, {self.method})"

    def __str__(self) -> str:
        return self.text()

    def _repr_markdown_(self) -> str:
        """Jupyter's display: the verdict in bold, the details as the CLI prints them."""
        head, *rest = self.text().splitlines()
        verdict, _, formula = head.partition(": ")
        body = "\n".join(line.strip() for line in rest)
        return f"**{verdict}**: `{formula}`" + (f"\n\n```\n{body}\n```" if body else "")

    def to_json(self) -> dict:
        return {"parameter": self.parameter, "claim": self.claim, "correct": self.correct,
                "method": self.method, "counterexample": self.counterexample,
                "diagnosis": self.diagnosis}

    def text(self) -> str:
        head = f"dL/d{self.parameter} = {self.claim}"
        if self.correct:
            how = ("proved symbolically: the claim minus the derived gradient simplifies to 0"
                   if self.method == "symbolic" else
                   f"equal to the derived gradient at {self.points} random points to 25 digits "
                   f"({DIGITS}-digit arithmetic); not proved symbolically (expand/cancel did not reach 0 in the budget)")
            return f"correct: {head}\n  {how}"
        lines = [f"incorrect: {head}"]
        if self.diagnosis:
            lines.append(f"  {self.diagnosis}")
        ce = self.counterexample
        lines.append(f"  counterexample: {_point_text(ce['point'])}")
        lines.append(f"    claimed  {_value_text(ce['claimed'])}")
        lines.append(f"    true     {_value_text(ce['true'])}")
        return "\n".join(lines)


def _value_text(v) -> str:
    return "undefined (not a real number)" if v is None else f"{v:.12g}"


def _point_text(point: dict, limit: int = 60) -> str:
    """x, y, W1, b1, ... in one line; past `limit` numbers only x and y."""
    def fmt(v):
        return "[" + ", ".join(map(fmt, v)) + "]" if isinstance(v, list) else f"{v:g}"

    def count(v):
        return sum(map(count, v)) if isinstance(v, list) else 1

    total = sum(count(v) for v in point.values())
    keys = list(point) if total <= limit else ["x", "y"]
    text = ", ".join(f"{k} = {fmt(point[k])}" for k in keys)
    return text if total <= limit else f"{text} and {total - count(point['x']) - count(point['y'])} " \
                                       f"weights and biases (--json lists them)"


# -- parsing ---------------------------------------------------------------------------
_KINDS = {"x": 1, "y": 1, "W": 2, "b": 1, "z": 1, "a": 1}


def parse_claim(net, text: str) -> sympy.Expr:
    """The claim as a SymPy expression over the model's symbols and `LOSS`."""
    model = net.model

    def indexed(name: str, indices: tuple[int, ...], position: int) -> sympy.Expr:
        def fail(problem: str, hint: str = "") -> None:
            raise SpecError(format_error(FIELD, text, position, problem, hint))

        kind, layer = name[:1], name[1:]
        if kind not in _KINDS or not (layer.isdigit() or layer == "") or (layer == "") == (kind in "Wbza"):
            fail(f"unknown name {name!r}", "use x[k], y[j], W<l>[j,k], b<l>[j], z<l>[j], a<l>[j], L")
        if len(indices) != _KINDS[kind]:
            fail(f"{name} takes {_KINDS[kind]} ind{'ices' if _KINDS[kind] > 1 else 'ex'}, got {len(indices)}")
        l = int(layer) if layer else None
        lo = 0 if kind == "a" else 1
        if l is not None and not lo <= l <= model.L:
            fail(f"layer {l} of {name!r} is not in {lo}..{model.L}")
        if kind == "b" and not net.spec.bias:
            fail("this network has no biases (bias = false)")
        sizes = {"x": [model.n[0]], "y": [model.n[-1]]}.get(kind) or (
            [model.n[l], model.n[l - 1]] if kind == "W" else [model.n[l]])
        for i, (v, size) in enumerate(zip(indices, sizes)):
            if not 1 <= v <= size:
                fail(f"index {v} of {name}{list(indices)} is not in 1..{size}")
        if kind == "W":
            return model.W(l, *indices)
        return {"x": model.x, "y": model.y, "b": lambda j: model.b(l, j),
                "z": lambda j: model.z(l, j), "a": lambda j: model.a(l, j)}[kind](indices[0])

    functions = {**DEFAULT_FUNCTIONS, **ACTIVATION_FUNCTIONS}
    return parse_expression(text, field=FIELD, names={"L": LOSS}, functions=functions,
                            indexed=indexed)


def parse_param(net, text: str) -> Param:
    """`net.model.param`: the one parameter-name parser, its messages naming the position."""
    return net.model.param(text, field="PARAM")


# -- deciding ----------------------------------------------------------------------------
def check_claim(net, param: str | Param, expr: str) -> Verdict:
    """Judge `expr` as a formula for dL/dparam (see the module docstring)."""
    p = param if isinstance(param, Param) else parse_param(net, param)
    claim = parse_claim(net, expr)
    with mpmath.workdps(DIGITS):  # all arithmetic on the values, not only evaluation
        counterexample = _counterexample(net, p, claim)
    if counterexample is not None:
        example, why = counterexample
        return Verdict(p.name, expr, False, "numeric", example, why, POINTS)
    method = "symbolic" if proved(net, p, claim) else "numeric"
    return Verdict(p.name, expr, True, method, None, None, POINTS)


def _counterexample(net, p: Param, claim: sympy.Expr) -> tuple[dict, str | None] | None:
    """(the first point where the claim is wrong, the diagnosis), or None.

    Points are drawn one at a time, so a wrong claim stops at its first
    counterexample; the diagnosis then gets a few more points."""
    sampler = Sampler(net.evaluator)
    stream = sampler.stream(first=net.spec.values)
    for point, env in itertools.islice(stream, POINTS + (net.spec.values is not None)):
        sampler.add_deltas(env, p.layer)
        c, t = evaluate(claim, env), gradient_value(net, p, env)
        if not equal(c, t):
            more = [e for _, e in itertools.islice(stream, diagnosis.POINTS - 1)]
            for e in more:
                sampler.add_deltas(e, p.layer)
            example = {"point": as_table(point), "claimed": _float(c), "true": float(t)}
            return example, diagnosis.diagnose(net, p, claim, more, env)
    return None


def _float(v):
    return None if v is None or isinstance(v, mpmath.mpc) else float(v)


def proved(net, p: Param, claim: sympy.Expr, deadline: Deadline | None = None) -> bool:
    """claim == dL/dp by expand/cancel, within `SYMBOLIC_SECONDS` (False: undecided)."""
    deadline = Deadline(SYMBOLIC_SECONDS) if deadline is None else deadline
    grad = net.gradient(p)
    truths = [t for t in (grad.simplified, grad.factored)
              if not any(getattr(s, "kind", None) == "delta" for s in t.free_symbols)]
    claim = claim.xreplace({LOSS: net.model.loss})
    for rewrite in (_identity, _activations_of_z(net), _written_out(net)):
        if rewrite is None:
            continue
        for truth in truths:
            if deadline.expired():
                return False
            if _is_zero(rewrite(claim) - rewrite(truth), deadline):
                return True
    return False


def _identity(e):
    return e


def _activations_of_z(net):
    """a(l)_j -> f_l(z(l)_j), so that a claim in sigmoid(z) meets a gradient in a."""
    m = net.model
    mapping = {m.a(l, j): m.activation_of(l, j) for l in range(1, m.L + 1)
               for j in range(1, m.n[l] + 1)}
    return lambda e: e.xreplace(mapping)


def _written_out(net):
    """z and a written out in x, W, b: for small networks only."""
    if net.spec.parameter_count > 30:
        return None
    mapping = net.explicit_form.forward_map
    return lambda e: e.xreplace(mapping)


#: Functions expand/cancel cannot see through: with them SymPy is not asked.
_OPAQUE = (sympy.Piecewise, sympy.Max, sympy.Min, sympy.Abs, sympy.Heaviside)


def _is_zero(d: sympy.Expr, deadline: Deadline) -> bool:
    if d == 0:
        return True
    if d.has(*_OPAQUE):
        return False
    for step in (sympy.expand, sympy.cancel):
        if deadline.expired() or sympy.count_ops(d) > SYMBOLIC_MAX_OPS:
            return False
        try:
            if step(d) == 0:
                return True
        except (sympy.PolynomialError, TypeError, ValueError, RecursionError):
            continue
    return False
