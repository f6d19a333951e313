"""Stage 3b: the simplified form used for display, by rules from the tables.

No general-purpose `sympy.simplify` runs here: on a closed-form gradient it
can take minutes (FACTS.md).  Instead, local derivatives are rewritten with
the registry's identities in terms of the layer's output a (sigma' = a(1-a),
tanh' = 1-a^2), and the output delta dL/da * f'(z) is cancelled once, on the
row symbols a and y, where that makes it shorter: sigmoid + bce and
identity + half_sse come out as a - y by `sympy.cancel` itself.  Softmax with
cross-entropy gives a_j sum_i y_i - y_j, which is a_j - y_j because the
targets of a cross-entropy are a distribution (spec/values.py enforces sum y = 1).
The tests evaluate every simplified form against the factored one.

`shorter` tries factor(cancel(e)), which SymPy cannot interrupt and which a
custom loss can make slow (a loss (a-y)^20/(a+y)^15 + ... took ~2 s, one in six
functions of a and y raised to the 5th ~3 s).  So it first measures its input
(`written_size`, and `monomials`: a bound on the polynomial cancel expands,
from the degree and the number of generators, each one walk over the shared
tree) and leaves anything over `SHORTER_MAX_SIZE` or `SHORTER_MAX_MONOMIALS` as
it is; within those limits the two calls took at most ~0.2 s on the inputs we
tried (0.45 s with the 2 cores at load 10; `benchmarks/bench_expressions.py`),
and every row of the tables is far inside.  The decision
depends on the input alone, so it is cached; a caller's `Deadline`, checked before
cancel and between cancel and factor, can still cut the work short; such a result,
which depended on the clock, is returned but never cached.
"""

from __future__ import annotations

import math
import re
from functools import cached_property, lru_cache

import sympy

from .backprop import Derivation, softmax_jacobian
from ..spec.deadline import Deadline
from .model import Param
from ..spec.registry import A, Y

#: Output layers whose delta the simplifier writes as a - y, and why.
CANCELLATIONS = {
    ("sigmoid", "bce"): r"\sigma'(z) = a(1-a) cancels the denominators of the loss derivative",
    ("identity", "half_sse"): r"f'(z) = 1 and the \tfrac12 cancels the exponent 2",
    ("softmax", "cross_entropy"): r"the softmax Jacobian against -y_i/a_i gives a_j\sum_i y_i - y_j, and \sum_i y_i = 1",
}


#: Inputs `shorter` hands to cancel/factor: written-out SymPy nodes, and `monomials`
#: (the table's rows need at most 56; 500 took at most ~0.2 s in the cases we tried).
SHORTER_MAX_SIZE = 150
SHORTER_MAX_MONOMIALS = 500
#: Seconds `shorter` may spend when the caller gives no deadline.
SIMPLIFY_SECONDS = 2.0
#: Finished results of `shorter` (input -> output); cleared when it reaches the limit.
_SHORTER_CACHE: dict[sympy.Expr, sympy.Expr] = {}
SHORTER_CACHE_LIMIT = 256


def shorter(expr: sympy.Expr, deadline: Deadline | None = None) -> sympy.Expr:
    """factor(cancel(expr)) where that is shorter, else expr; inputs over the limits are left."""
    if expr in _SHORTER_CACHE:
        return _SHORTER_CACHE[expr]
    if written_size(expr) > SHORTER_MAX_SIZE or monomials(expr) > SHORTER_MAX_MONOMIALS:
        return _remember(expr, expr)
    deadline = Deadline(SIMPLIFY_SECONDS) if deadline is None else deadline
    if deadline.expired():
        return expr  # the clock decided: not cached
    cancelled = sympy.cancel(expr)
    if deadline.expired():
        return expr
    candidate = sympy.factor(cancelled)
    return _remember(expr, candidate if sympy.count_ops(candidate) < sympy.count_ops(expr)
                     else expr)


def _remember(expr: sympy.Expr, result: sympy.Expr) -> sympy.Expr:
    if len(_SHORTER_CACHE) >= SHORTER_CACHE_LIMIT:
        _SHORTER_CACHE.clear()  # simple bound; the loss rows that hit it are few
    _SHORTER_CACHE[expr] = result
    return result


def written_size(expr: sympy.Basic) -> int:
    """Nodes of ``expr`` written out as a tree, in one pass over its distinct nodes."""
    return _fold(expr, {}, lambda node, parts: 1 + sum(parts))


def monomials(expr: sympy.Basic) -> int:
    """How many monomials cancel may have to expand: C(degree + g, g) for g generators.

    The degree is that of numerator plus denominator once the fractions are put
    over one denominator (sums add their denominators, integer powers multiply);
    every symbol, function call or non-integer power is a generator.
    """
    generators: set[sympy.Basic] = set()

    def combine(node: sympy.Basic, parts: list[tuple[int, int]]) -> tuple[int, int]:
        if node.is_Number or not (node.args or node.is_Symbol):
            return 0, 0
        if node.is_Add:
            den = sum(d for _, d in parts)
            return max(n + den - d for n, d in parts), den
        if node.is_Mul:
            return sum(n for n, _ in parts), sum(d for _, d in parts)
        if node.is_Pow and node.exp.is_Integer:
            k, (n, d) = int(node.exp), parts[0]
            return (k * n, k * d) if k >= 0 else (-k * d, -k * n)
        generators.add(node)  # a symbol, or a call cancel treats as one
        return 1, 0
    num, den = _fold(expr, {}, combine)
    return math.comb(num + den + len(generators), len(generators))


def _fold(expr: sympy.Basic, memo: dict[int, tuple[sympy.Basic, int]], combine) -> int:
    """Bottom-up ``combine(node, [values of args])`` over distinct nodes, without recursion."""
    stack = [expr]
    while stack:
        node = stack[-1]
        if id(node) in memo:
            stack.pop()
            continue
        pending = [arg for arg in node.args if id(arg) not in memo]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        # the node is kept in the memo so that its id cannot be reused meanwhile
        memo[id(node)] = (node, combine(node, [memo[id(arg)][1] for arg in node.args]))
    return memo[id(expr)][1]


class Simplifier:
    """The display form of a `Derivation`: same values, shorter formulas."""

    def __init__(self, derivation: Derivation):
        self.derivation = derivation
        self.model = derivation.model
        self.L = derivation.L

    def __repr__(self) -> str:
        return f"Simplifier({self.model.spec.describe()})"

    def cancellation(self) -> str | None:
        """Why delta(L) = a - y for this network, or None."""
        spec = self.model.spec
        return CANCELLATIONS.get((spec.activations[-1].name, spec.loss.name))

    def activation_derivative(self, l: int, i: int, m: int) -> sympy.Expr:
        """f_l' written in a(l) where the table has an identity, else as derived."""
        row = self.model.spec.activations[l - 1]
        if row.in_terms_of_a is not None and not row.vector:
            return row.in_terms_of_a(self.model.a(l, m)) if i == m else sympy.Integer(0)
        return self.derivation.activation_derivative(l, i, m)

    @cached_property
    def output_term(self) -> sympy.Expr:
        """dL/da * f'(z) for one elementwise output, in the row symbols a, y."""
        spec = self.model.spec
        row = spec.activations[-1]
        d_loss = self.derivation.loss_term_derivative
        if row.in_terms_of_a is None:
            return d_loss  # multiplied by f'(z) per neuron in output_delta
        return shorter(d_loss * row.in_terms_of_a(A))

    def output_delta(self, j: int) -> sympy.Expr:
        m, L = self.model, self.L
        row = m.spec.activations[-1]
        a, y = m.a(L, j), m.y(j)
        if row.vector:
            if m.spec.softmax_cross_entropy:
                return a - y
            return sympy.Add(*[self.derivation.loss_derivative(i) *
                               softmax_jacobian(m.a(L, i), a, i == j)
                               for i in range(1, m.n[L] + 1)])
        term = self.output_term.xreplace({A: a, Y: y})
        if row.in_terms_of_a is None:
            term = term * self.derivation.activation_derivative(L, j, j)
        return term

    def delta_definition(self, l: int, j: int) -> sympy.Expr:
        if l == self.L:
            return self.output_delta(j)
        m = self.model
        back = sympy.Add(*[m.W(l + 1, i, j) * m.delta(l + 1, i) for i in range(1, m.n[l + 1] + 1)])
        return back * self.activation_derivative(l, j, j)

    def simplified(self, p: Param) -> sympy.Expr:
        """dL/dp for display: the expanded factored form with the rules above."""
        return self.derivation.expanded(p, self.delta_definition)


# -- display shape: how a product and a sum read, values untouched -----------------
#
# SymPy keeps a product's sums in its own canonical sign, so sigma' = a(1-a) times
# the sse derivative prints as 2*a*(-a + y)*(a - 1), and a number times one sum is
# distributed, 2*a - 2*y.  A textbook writes 2 a (1 - a)(a - y): each sum with its
# number taken out, its sign chosen to read well, the number in front.  These two
# functions decide that shape; the printers (render/printing.py) only lay it out.

def _flipped(prim: sympy.Expr) -> bool:
    """Whether a sum reads better negated: a constant term positive (1 - a, not
    a - 1), else fewer minus signs, else its first printed term positive (a - y,
    not -a + y).  SymPy's printing order is asked for only on a tie: it is slow."""
    terms = prim.args
    constant = next((t for t in terms if t.is_Number), None)
    if constant is not None:
        return bool(constant < 0)
    minus = sum(1 for t in terms if t.could_extract_minus_sign())
    if 2 * minus != len(terms):
        return 2 * minus > len(terms)
    return prim.as_ordered_terms()[0].could_extract_minus_sign()


def textbook_factors(expr: sympy.Expr, top_sum: bool = False) -> tuple[sympy.Rational, list[sympy.Expr]] | None:
    """(number, factors) with the same product as `expr`, each sum (or integer power of
    one) primitive and in its reading sign; None where nothing changes or `expr` has no
    rational coefficient.  A sum alone (`top_sum`) changes only if a number comes out."""
    if top_sum:
        content, prim = expr.primitive()
        if content == 1 or not prim.is_Add:
            return None
        return (-content, [-prim]) if _flipped(prim) else (content, [prim])
    coeff, factors = expr.as_coeff_mul()
    if not coeff.is_Rational:
        return None
    out, changed = [], False
    for f in factors:
        base, e = f.as_base_exp()
        if base.is_Add and e.is_Integer:
            content, prim = base.primitive()
            if _flipped(prim):
                content, prim = -content, -prim
            if content != 1:
                coeff, f, changed = coeff * content ** e, prim ** e, True
        out.append(f)
    return (coeff, out) if changed else None


@lru_cache(maxsize=None)
def _index_key(name: str) -> tuple[str, int, tuple[int, ...]]:
    from .model import NetSymbol

    s = NetSymbol(name, real=True)
    return s.kind, s.layer or 0, s.idx


_TWO_DIGITS = re.compile(r"\d\d")


def natural_order(terms: list[sympy.Expr]) -> list[sympy.Expr]:
    """A sum's terms with indices in numeric order (W[9,1] before W[10,1]; SymPy sorts
    symbol names as text, 10 < 9).  Terms of one shape (the same kinds and layers of
    network symbols) are sorted by their indices where the first of them stood."""
    from .model import NetSymbol

    names = [[s.name for s in t.free_symbols if isinstance(s, NetSymbol)] for t in terms]
    if len(terms) < 2 or not any(_TWO_DIGITS.search(n) for ns in names for n in ns):
        return terms  # no index of two digits: text order is numeric order

    def shape_and_index(ns):
        keys = sorted(_index_key(n) for n in ns)
        return tuple(k[:2] for k in keys), tuple(k[2] for k in keys)

    keys = [shape_and_index(ns) for ns in names]
    first: dict = {}
    for i, (shape, _) in enumerate(keys):
        first.setdefault(shape, i)
    order = sorted(range(len(terms)), key=lambda i: (first[keys[i][0]], keys[i][1]))
    return [terms[i] for i in order]
