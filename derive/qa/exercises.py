"""`derive exercises`: seeded exercise variants whose every answer the engine computed.

A variant is one numeric point of the network, drawn so a person can compute
with it by hand: inputs, weights and biases with one decimal, targets that
fit the output activation and loss (0/1 for a sigmoid with bce, one-hot after
a softmax, values in the output's range otherwise), every pre-activation of a
ReLU-family layer kept at least `KINK_MARGIN` from the kink.  Then each
question kind asks one thing about that point:

    forward   a z or an a            loss      L
    delta     a delta(l)_j           gradient  dL/dparam
    update    the parameter after one gradient-descent step
    factors   which roles of derivative appear in dL/dparam (multiple choice)
    formula   which formula is dL/dparam (multiple choice; distractors.py)

Answers come from the derivation's own numbers (`Evaluator.run`) and are
checked elsewhere against independent references (the tests).  Randomness
is one `random.Random` per variant seeded from (seed, variant number), so
the same seed gives the same exercises, byte for byte, in every format.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import sympy

from ..errors import SpecError
from ..render.roles import ROLES
from .distractors import formula_options

if TYPE_CHECKING:
    from ..api import Network

KINDS = ("forward", "loss", "delta", "gradient", "update", "factors", "formula")
DEFAULT_KINDS = ("forward", "loss", "delta", "gradient", "update", "factors", "formula")
MAX_COUNT = 200
#: Largest network given as a hand exercise: beyond it the sheet is busywork.
MAX_HAND_PARAMETERS = 60
KINK_MARGIN = 0.05
#: Wrong formulas offered beside the right one.
DISTRACTORS = 3
DEFAULT_LEARNING_RATE = 0.5
#: A numeric answer counts when within this fraction of the answer (or `MIN_TOLERANCE`).
RELATIVE_TOLERANCE = 0.01
MIN_TOLERANCE = 0.001
def role_words(role: str) -> str:
    """A role as an option names it, from render's one role table: 'loss derivative (dL/da)'."""
    row = ROLES[role]
    return f"{row.words} (d{row.top.replace('{L}', 'L')}/d{row.bottom})"


@dataclass(frozen=True)
class Question:
    """One question: numeric (answer, tolerance) or multiple choice (options, correct)."""

    id: str
    kind: str
    target: str
    prompt: str
    answer: float | None = None
    tolerance: float | None = None
    options: tuple[str, ...] = ()
    correct: int | None = None
    feedback: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Question({self.id}: {self.kind} {self.target})"

    def to_json(self) -> dict[str, Any]:
        base = {"id": self.id, "kind": self.kind, "target": self.target, "prompt": self.prompt}
        if self.options:
            return {**base, "options": list(self.options), "correct": self.correct,
                    "feedback": list(self.feedback)}
        return {**base, "answer": self.answer, "tolerance": self.tolerance}


@dataclass(frozen=True)
class Variant:
    """One exercise: its seed, its raw values table, its questions and the worked trace."""

    seed: str
    values: dict[str, Any]
    questions: tuple[Question, ...]
    work: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __repr__(self) -> str:
        return f"Variant({self.seed}: {len(self.questions)} questions)"

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "values": self.values,
                "questions": [q.to_json() for q in self.questions]}


def comma_choices(text: str | Sequence[str] | None, choices: Sequence[str], flag: str,
                  what: str, default: Sequence[str]) -> tuple[str, ...]:
    """'a,b' -> ('a', 'b'), each checked against `choices`; None gives `default`."""
    if text is None:
        return tuple(default)
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if not items:
        raise SpecError(f"{flag} is empty; expected some of " + ", ".join(choices))
    for item in items:
        if item not in choices:
            raise SpecError(f"{flag}: unknown {what} {item!r}; expected "
                            f"{'one' if what.endswith('kind') else 'some'} of " + ", ".join(choices))
    return tuple(dict.fromkeys(items))


def parse_kinds(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """'forward,delta' -> ('forward', 'delta'), each checked against `KINDS`."""
    return comma_choices(text, KINDS, "--questions", "question kind", DEFAULT_KINDS)


def check_request(net: "Network", count: Any) -> None:
    """Refuse a count outside 1..MAX_COUNT or a network too big to compute by hand."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise SpecError(f"--count must be a whole number from 1 to {MAX_COUNT}, got {count!r}")
    n = net.spec.parameter_count
    if n > MAX_HAND_PARAMETERS:
        raise SpecError(f"the network has {n} parameters; exercises are for hand computation "
                        f"and take at most {MAX_HAND_PARAMETERS}")
    if not net.spec.training.single or net.spec.row_layout:
        # the questions and keys are per example in the column layout (one x, z = W a + b);
        # a minibatch or regulariser would change every answer they print
        raise SpecError(f"exercises are per example, column layout, without a regulariser; this "
                        f"spec has {net.spec.training.describe()} (drop batch, layout and "
                        f"[regularization] for the sheet)")


def exercises(net: "Network", count: int = 5, seed: int = 1,
              kinds: Sequence[str] | str | None = None) -> list[Variant]:
    """`count` variants of the questions `kinds`, reproducible from `seed`."""
    check_request(net, count)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SpecError(f"--seed must be a whole number, got {seed!r}")
    chosen = parse_kinds(kinds)
    options: dict[str, list] = {}  # formula options depend on the parameter, not the values
    return [_variant(net, seed, i, chosen, options) for i in range(1, count + 1)]


def _variant(net: "Network", seed: int, number: int, kinds: Sequence[str], options) -> Variant:
    rng = random.Random(f"derive-exercises:{seed}:{number}")
    raw, trace, grads = _draw_point(net, rng)
    point = (raw, trace, grads, options)
    questions = tuple(_question(net, kind, f"v{number}q{i}", rng, point)
                      for i, kind in enumerate(kinds, 1))
    return Variant(f"{seed}-{number}", raw, questions, {"trace": trace, "gradients": grads})


def _one_decimal(rng: random.Random, low: float, high: float, nonzero: bool = False) -> float:
    while True:
        v = round(rng.randint(round(low * 10), round(high * 10)) / 10, 1)
        if not (nonzero and v == 0):
            return v


def _targets(net: "Network", rng: random.Random) -> list[float]:
    spec, n = net.spec, net.spec.layers[-1]
    out = spec.activations[-1]
    if out.vector:  # softmax: a one-hot class
        hot = rng.randrange(n)
        return [1.0 if j == hot else 0.0 for j in range(n)]
    if spec.loss.probabilistic or out.name == "sigmoid":
        return [float(rng.randint(0, 1)) for _ in range(n)]
    if out.name == "tanh":
        return [_one_decimal(rng, -0.9, 0.9) for _ in range(n)]
    if out.name in ("relu", "softplus"):
        return [_one_decimal(rng, 0.0, 1.0) for _ in range(n)]
    return [_one_decimal(rng, -1.0, 1.0) for _ in range(n)]


def _raw_values(net: "Network", rng: random.Random) -> dict[str, Any]:
    spec, n = net.spec, net.spec.layers
    raw: dict[str, Any] = {"x": [_one_decimal(rng, -1.0, 1.0, True) for _ in range(n[0])],
                           "y": _targets(net, rng)}
    for l in range(1, spec.depth + 1):
        raw[f"W{l}"] = [[_one_decimal(rng, -1.0, 1.0, True) for _ in range(n[l - 1])]
                        for _ in range(n[l])]
        if spec.bias:
            raw[f"b{l}"] = [_one_decimal(rng, -0.5, 0.5) for _ in range(n[l])]
    given = spec.values.learning_rate if spec.values is not None else None
    raw["learning_rate"] = given if given is not None else DEFAULT_LEARNING_RATE
    return raw


def _draw_point(net: "Network", rng: random.Random):
    """Draw until no kinked activation sits within `KINK_MARGIN` of its kink."""
    kinked = [l for l, row in enumerate(net.spec.activations, 1) if row.kink]
    for _ in range(1000):
        raw = _raw_values(net, rng)
        trace, gW, gb = net.evaluator.run(net.values(raw))
        if all(abs(v) >= KINK_MARGIN for l in kinked for v in trace.z[l]):
            grads = {p.name: v for p, v in net.evaluator.by_parameter(gW, gb).items()}
            return raw, trace, grads
    raise SpecError("exercises: no point away from the ReLU kinks was found in 1000 draws")


def _tolerance(answer: float) -> float:
    return max(RELATIVE_TOLERANCE * abs(answer), MIN_TOLERANCE)


def _numeric(qid, kind, target, prompt, answer) -> Question:
    return Question(qid, kind, target, prompt, float(answer), _tolerance(float(answer)))


def _neuron(net: "Network", rng: random.Random) -> tuple[int, int]:
    l = rng.randint(1, net.spec.depth)
    return l, rng.randint(1, net.spec.layers[l])


def _param(net: "Network", rng: random.Random, weights_only: bool = False) -> str:
    names = [p.name for p in net.params() if not weights_only or p.kind == "W"]
    return rng.choice(names)


def _question(net, kind, qid, rng, point) -> Question:
    raw, trace, grads, options = point
    if kind == "forward":
        l, j = _neuron(net, rng)
        which = rng.choice(("z", "a"))
        value = (trace.z if which == "z" else trace.a)[l][j - 1]
        return _numeric(qid, kind, f"{which}{l}[{j}]", f"Compute {which}{l}[{j}].", value)
    if kind == "loss":
        return _numeric(qid, kind, "L", "Compute the loss L.", trace.loss)
    if kind == "delta":
        l, j = _neuron(net, rng)
        return _numeric(qid, kind, f"delta{l}[{j}]",
                        f"Compute delta{l}[{j}] = dL/dz{l}[{j}].", trace.delta[l][j - 1])
    if kind in ("gradient", "update"):
        name = _param(net, rng)
        if kind == "gradient":
            return _numeric(qid, kind, name, f"Compute dL/d{name}.", grads[name])
        lr = raw["learning_rate"]
        updated = parameter_value(net, raw, name) - lr * grads[name]
        return _numeric(qid, kind, name, f"Compute {name} after one gradient-descent step "
                        f"with learning rate {lr:g}.", updated)
    if kind == "factors":
        return _factors(net, qid, rng, _param(net, rng, weights_only=True))
    names = options.setdefault("", writable_parameters(net))
    if not names:
        raise SpecError("--questions formula: no parameter of this network has a gradient that "
                        "claim syntax can write (ReLU steps everywhere); leave 'formula' out")
    name = rng.choice(names)
    if name not in options:
        options[name] = formula_options(net, name)
    return _formula(qid, rng, name, options[name])


def parameter_value(net: "Network", raw: dict[str, Any], name: str) -> float:
    """The value of parameter `name` ("W1[2,1]", "b2[1]") in a raw values table."""
    p = net.param(name)
    row = raw[f"{p.kind}{p.layer}"]
    return float(row[p.j - 1][p.k - 1] if p.kind == "W" else row[p.j - 1])


def _factors(net, qid: str, rng: random.Random, name: str) -> Question:
    """Which roles of derivative appear in dL/dname: the true set against near misses."""
    roles = {f.role for path in net.gradient(name).paths for f in path}
    ordered = [r for r in ROLES if r in roles]
    wrong = [[r for r in ordered if r != drop] for drop in ordered if drop in ("activation", "loss")]
    wrong.append(ordered + ["the loss L itself"] if "weight" in ordered else
                 ordered + ["weight"])
    options = [ordered] + wrong[:3]
    texts = [", ".join(role_words(r) if r in ROLES else r for r in o) for o in options]
    feedback = ["right: the chain rule multiplies all of these along every path"] + [
        "leaves out a factor the chain rule needs" if len(o) < len(ordered)
        else "adds a factor that no path contains" for o in options[1:]]
    order = list(range(len(texts)))
    rng.shuffle(order)
    return Question(qid, "factors", name, f"Which factors appear in dL/d{name}?",
                    options=tuple(texts[i] for i in order), correct=order.index(0),
                    feedback=tuple(feedback[i] for i in order))


def writable_parameters(net: "Network") -> list[str]:
    """Weights whose gradient `derive claim` can read back (no ReLU step functions)."""
    return [p.name for p in net.params() if p.kind == "W" and not
            net.gradient(p).simplified.has(sympy.Piecewise, sympy.Heaviside)]


def _formula(qid: str, rng: random.Random, name: str, options) -> Question:
    picked = [0] + sorted(rng.sample(range(1, len(options)), min(DISTRACTORS, len(options) - 1)))
    options = [options[i] for i in picked]
    order = list(range(len(options)))
    rng.shuffle(order)
    return Question(qid, "formula", name, f"Which formula is dL/d{name}?",
                    options=tuple(options[i][0] for i in order), correct=order.index(0),
                    feedback=tuple(options[i][1] for i in order))
