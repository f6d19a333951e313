"""`derive claim`: is a claimed formula for dL/dPARAM right, and if not, what is wrong?

The claim is parsed by notation.py (the whitelist parser, nothing is evaluated
as Python) over the network's own symbols, deltas and L, the loss.  Then:

1. Numbers first: at the spec's own values (if any) and at `POINTS` seeded
   random points (points.py), the claim and the derivation's gradient
   delta(l)_j a(l-1)_k are evaluated at `DIGITS` digits; a delta the claim
   names is valued by central differences of the forward pass, not by the
   derivation it is being checked against.  A disagreement is a
   counterexample; diagnosis.py then says what is wrong where the claim
   matches a variant of the chain.
2. If they agree everywhere, SymPy tries to prove it, within a budget:
   claim minus gradient, expanded or cancelled, must be 0, first with a and z
   as free symbols, then with a = f(z), then written out in x, W, b (the
   claim's deltas written out by the delta equations).  Only `sympy.expand`
   and `sympy.cancel` run, on expressions of at most `SYMBOLIC_MAX_OPS`
   operations, never open-ended `simplify`.  The verdict says which method
   decided it, and what it assumed: after softmax with cross-entropy the
   gradient is a_j - y_j only because the targets sum to 1, so a correct
   claim is tried once more at targets that do not, to say whether it
   relies on that.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import mpmath
import sympy

from . import diagnosis
from .notation import deltas_of, parse_claim, parse_param
from ..calculus.model import Param
from ..check.points import DIGITS, LOSS, Sampler, as_table, equal, evaluate, gradient_value
from ..spec.deadline import Deadline

__all__ = ["Verdict", "check_claim", "parse_claim", "parse_param", "proved"]

#: Random points a correct claim must match at.
POINTS = 50
#: Largest difference (SymPy count_ops) the symbolic proof attempts.
SYMBOLIC_MAX_OPS = 600
#: Wall-clock budget of the symbolic proof; steps start only within it.
SYMBOLIC_SECONDS = 3.0
#: What a correct claim after softmax + cross-entropy may rely on.
SUM_OF_TARGETS = ("sum(y) = 1: the targets of a cross-entropy form a distribution; the "
                  "softmax Jacobian gives a_j*sum(y) - y_j, which is a_j - y_j only then")
DELTA_NOTE = ("delta<l>[j] is dL/dz<l>[j]: the numbers take it from central differences "
              "of the forward pass, not from the derivation")


class VerdictDisplay:
    """How every verdict shows itself: `str` is `text()`, and Jupyter gets the verdict in bold
    with the details as the CLI prints them (scalar, matrix and stack claims alike)."""

    def __str__(self) -> str:
        return self.text()

    def _repr_markdown_(self) -> str:
        head, *rest = self.text().splitlines()
        verdict, _, formula = head.partition(": ")
        body = "\n".join(line.strip() for line in rest)
        return f"**{verdict}**: `{formula}`" + (f"\n\n```\n{body}\n```" if body else "")


@dataclass
class Verdict(VerdictDisplay):
    """The outcome of `check_claim` (the --json object is `to_json`)."""

    parameter: str
    claim: str
    correct: bool
    method: str                      # "symbolic" or "numeric"
    counterexample: dict | None = None
    diagnosis: str | None = None
    points: int = 0
    assumption: str | None = None    # what a correct verdict relies on (SUM_OF_TARGETS)
    at_values: dict | None = None    # {"claimed", "true"} at the network's values
    deltas: bool = False             # the claim names deltas
    per_example: str | None = None   # a minibatch or regulariser: what the scalar claim was judged as

    def __repr__(self) -> str:
        return f"Verdict({self.parameter}: {'correct' if self.correct else 'incorrect'}, {self.method})"

    def to_json(self) -> dict:
        return {"parameter": self.parameter, "claim": self.claim, "correct": self.correct,
                "method": self.method, "counterexample": self.counterexample,
                "diagnosis": self.diagnosis, "assumption": self.assumption,
                "at_values": self.at_values, **({"judged_as": self.per_example} if self.per_example else {})}

    def text(self) -> str:
        head = f"dL/d{self.parameter} = {self.claim}"
        if self.per_example:  # a minibatch or regulariser: the formula is one example's
            head = f"dloss/d{self.parameter} of one example = {self.claim}"
        if self.correct:
            how = ("proved symbolically: the claim minus the derived gradient simplifies to 0"
                   if self.method == "symbolic" else
                   f"equal to the derived gradient at {self.points} random points to 25 digits "
                   f"({DIGITS}-digit arithmetic); not proved symbolically (expand/cancel did not reach 0 in the budget)")
            lines = [f"correct: {head}", f"  {how}"]
            lines += [f"  uses {self.assumption}"] if self.assumption else []
        else:
            lines = [f"incorrect: {head}"] + ([f"  {self.diagnosis}"] if self.diagnosis else [])
            ce = self.counterexample
            lines.append(f"  counterexample: {_point_text(ce['point'])}")
            lines.append(f"    claimed  {_value_text(ce['claimed'])}")
            lines.append(f"    true     {_value_text(ce['true'])}")
        proof = "; the proof wrote it out by the delta equations" if self.method == "symbolic" else ""
        lines += [f"  {DELTA_NOTE}{proof}"] if self.deltas else []
        lines += [f"  {self.per_example}"] if self.per_example else []
        return "\n".join(lines + self._values_lines())

    def _values_lines(self) -> list[str]:
        v = self.at_values
        if v is None or (self.counterexample and self.counterexample["claimed"] == v["claimed"]
                         and self.counterexample["true"] == v["true"]):
            return []  # no values, or the counterexample already is the values
        same = v["claimed"] is not None and abs(v["claimed"] - v["true"]) <= 1e-12 * abs(v["true"])
        if self.correct and same:  # (not same: the values sit on a kink the check avoided)
            return [f"  at the network's values: {_value_text(v['true'])} (claimed and true)"]
        return ["  at the network's values:", f"    claimed  {_value_text(v['claimed'])}",
                f"    true     {_value_text(v['true'])}"]


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


# -- deciding ----------------------------------------------------------------------------
def check_claim(net, param: str | Param, expr: str) -> Verdict:
    """Judge `expr` as a formula for dL/dparam (see the module docstring)."""
    p = param if isinstance(param, Param) else parse_param(net, param)
    claim = parse_claim(net, expr)
    points = _Points(net, p, claim, expr)
    with mpmath.workdps(DIGITS):  # all arithmetic on the values, not only evaluation
        at_values = points.at_values()
        counterexample = points.counterexample()
    verdict = Verdict(p.name, expr, False, "numeric", points=POINTS, at_values=at_values,
                      deltas=bool(points.deltas), per_example=per_example_note(net, p))
    if counterexample is not None:
        example, why = counterexample
        return replace(verdict, counterexample=example, diagnosis=why)
    with mpmath.workdps(DIGITS):
        assumption = SUM_OF_TARGETS if points.needs_sum_of_targets() else None
    method = "symbolic" if proved(net, p, claim) else "numeric"
    return replace(verdict, correct=True, method=method, assumption=assumption)


def per_example_note(net, p: Param) -> str | None:
    """What a scalar claim about a minibatch or regularised network is judged as: one
    example's dloss/dp (the formula's symbols are one example's), with the sum and the
    regulariser's term said, and the matrix form that judges the whole gradient."""
    t = net.spec.training
    if t.single:
        return None
    whole = ["it"]
    if t.batched:
        scale = "(1/m) " if t.reduction == "mean" else ""
        whole = [f"{scale}sum_n of it over the m = {t.batch} examples"]
    reg = net.spec.regularization
    if reg.covers(p.kind):
        whole.append(" + ".join(([f"l2*{p.name}"] if reg.l2 else []) + ([f"l1*sign({p.name})"] if reg.l1 else [])))
    matrix = f"{p.kind}{p.layer}"
    where = " (x, y, a, z at example 1)" if t.batched else ""
    return (f"judged as one example's gradient dloss/d{p.name}{where}; the whole "
            f"dL/d{p.name} is {' + '.join(whole)}; `derive claim SPEC {matrix} "
            f"\"...\"` judges the whole {matrix} in matrix form")


class _Points:
    """The claim and the true gradient at the points of one `Sampler`."""

    def __init__(self, net, p: Param, claim: sympy.Expr, text: str):
        self.net, self.p, self.claim, self.text = net, p, claim, text
        self.sampler = Sampler(net.evaluator)
        self.deltas = deltas_of(claim)

    def prepare(self, env) -> None:
        """The derivation's deltas (for the truth) and the claim's own, by differences."""
        self.sampler.add_deltas(env, self.p.layer)
        for d in self.deltas:
            env[d] = self.sampler.numeric_delta(env, d.layer, d.j)

    def values(self, env) -> tuple:
        self.prepare(env)
        return evaluate(self.claim, env), gradient_value(self.net, self.p, env)

    def at_values(self) -> dict | None:
        """Claimed and true value at the network's own values (near a kink too)."""
        if self.net.spec.values is None:
            return None
        c, t = self.values(self.sampler.environment(self.net.spec.values))
        return {"claimed": _float(c), "true": float(t)}

    def counterexample(self) -> tuple[dict, str | None] | None:
        """(the first point where the claim is wrong, the diagnosis), or None.

        Points are drawn one at a time, so a wrong claim stops at its first
        counterexample; the diagnosis then gets a few more points."""
        net = self.net
        stream = self.sampler.stream(first=net.spec.values)
        for point, env in itertools.islice(stream, POINTS + (net.spec.values is not None)):
            c, t = self.values(env)
            if not equal(c, t):
                more = [e for _, e in itertools.islice(stream, diagnosis.POINTS - 1)]
                for e in more:
                    self.prepare(e)
                example = {"point": as_table(point.example(0), net.spec.row_layout), "claimed": _float(c),
                           "true": float(t)}
                return example, diagnosis.diagnose(net, self.p, self.claim, more, env, self.text)
        return None

    def needs_sum_of_targets(self) -> bool:
        """After softmax + cross-entropy: is the claim wrong where sum(y) != 1?"""
        spec = self.net.spec
        if not spec.softmax_cross_entropy:
            return False
        point, _ = next(self.sampler.stream())
        off = replace(point, y=tuple(2 * v for v in point.y))  # sums to 2; forward unchanged
        return not equal(*self.values(self.sampler.environment(off)))


def _float(v):
    return None if v is None or isinstance(v, mpmath.mpc) else float(v)


def proved(net, p: Param, claim: sympy.Expr, deadline: Deadline | None = None) -> bool:
    """claim == dL/dp by expand/cancel, within `SYMBOLIC_SECONDS` (False: undecided).

    The display form is tried against the claim with its deltas written out by
    the display equations, the factored form against the factored equations."""
    deadline = Deadline(SYMBOLIC_SECONDS) if deadline is None else deadline
    grad = net.gradient(p)
    claim = claim.xreplace({LOSS: net.model.loss})
    pairs = [(truth, _delta_free(net, claim, form)) for truth, form in
             ((grad.simplified, net.simplifier.simplified), (grad.factored, net.derivation.expanded))]
    pairs = [(t, c) for t, c in pairs if c is not None and not _has_delta(t)]
    for rewrite in (_identity, _activations_of_z(net), _written_out(net)):
        if rewrite is None:
            continue
        for truth, written in pairs:
            if deadline.expired():
                return False
            if _is_zero(rewrite(written) - rewrite(truth), deadline):
                return True
    return False


def _has_delta(e: sympy.Expr) -> bool:
    return any(getattr(s, "kind", None) == "delta" for s in e.free_symbols)


def _delta_free(net, claim: sympy.Expr, form) -> sympy.Expr | None:
    """The claim with each delta<l>[j] written out by `form` (dL/db(l)_j is delta(l)_j,
    with or without biases); None where the equations stop at later deltas."""
    deltas = deltas_of(claim)
    if not deltas:
        return claim
    written = claim.xreplace({d: form(Param(d.layer, "b", d.j)) for d in deltas})
    return None if _has_delta(written) else written


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
