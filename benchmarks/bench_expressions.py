"""How long the bounded steps take: the parser on hostile formulas, `shorter` at its limits.

    python benchmarks/bench_expressions.py

The tests check these cases' results, not their speed; here the speed has targets.
Parser cases must finish (refused or built) in `PARSE_TARGET` s; `shorter` inputs
just inside `SHORTER_MAX_SIZE`/`SHORTER_MAX_MONOMIALS` must cancel and factor in
`SHORTER_TARGET` s, and those just outside must be left alone at once.  Slowest of
`ROUNDS` runs (SymPy's own cache is cold only in the first), the `shorter` cache
cleared before each.  Exit 1 when a target is missed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sympy  # noqa: E402

from derive.calculus import simplify  # noqa: E402
from derive.errors import SpecError  # noqa: E402
from derive.spec.expressions import parse_expression  # noqa: E402
from derive.spec.registry import A, Y, custom_loss  # noqa: E402

ROUNDS = 3
PARSE_TARGET = 1.0  # seconds for one hostile formula
SHORTER_TARGET = 1.0  # seconds for one shorter() call within its limits
PARSE_CASES = ["x**x**x**x**x**x", "max(exp(exp(exp(100))), 1)", "2**10**10",
               "exp(10**299*log(10**299))", "max(max(max(max(x, 1), 2), 3), 4)"]
# custom losses (one output's term); shorter sees dL/da times sigma' = a(1 - a)
SHORTER_CASES = ["(a-y)^2", "(a+y+exp(a)+log(a)+sqrt(a))^3", "(a-y)^2/(a+y)^2 + (a*y+1)^2/(a-1)^2",
                 "(a+2*y+3)^4*(a-y+1)^4*(2*a+y)^2", "(a+y+exp(a)+log(a)+sqrt(a))^5",
                 "(a-y)^20/(a+y)^15 + (a*y+1)^10/(a-1)^7"]


def slowest_seconds(work) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return max(times)


def parse_outcome(text: str) -> str:
    try:
        parse_expression(text, field="activation", names={"x": sympy.Symbol("x", real=True)})
        return "built"
    except SpecError:
        return "refused"


def shorter_row(text: str) -> tuple[str, int, int, bool, float]:
    term = sympy.diff(custom_loss(text).per_output(A, Y, 1), A) * A * (1 - A)
    size, monomials = simplify.written_size(term), simplify.monomials(term)
    inside = size <= simplify.SHORTER_MAX_SIZE and monomials <= simplify.SHORTER_MAX_MONOMIALS

    def once():
        simplify._SHORTER_CACHE.clear()
        simplify.shorter(term, simplify.Deadline(3600.0))  # the bound alone decides here
    return text, size, monomials, inside, slowest_seconds(once)


def main() -> int:
    missed = 0
    print(f"parser, slowest of {ROUNDS} (target {PARSE_TARGET:g} s each):\n")
    print("| formula | outcome | seconds |\n|---|---|---:|")
    for text in PARSE_CASES:
        seconds = slowest_seconds(lambda: parse_outcome(text))
        missed += seconds > PARSE_TARGET
        print(f"| `{text}` | {parse_outcome(text)} | {seconds:.3f} |")
    print(f"\nshorter (limits: size {simplify.SHORTER_MAX_SIZE}, monomials "
          f"{simplify.SHORTER_MAX_MONOMIALS}; target {SHORTER_TARGET:g} s inside, 0.05 s outside):\n")
    print("| custom loss | size | monomials | cancelled | seconds |\n|---|---:|---:|---|---:|")
    for text, size, monomials, inside, seconds in map(shorter_row, SHORTER_CASES):
        missed += seconds > (SHORTER_TARGET if inside else 0.05)
        print(f"| `{text}` | {size} | {monomials} | {'yes' if inside else 'left as is'} | {seconds:.3f} |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}; targets missed: {missed}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
