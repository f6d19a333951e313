"""Deadlines without alarms: `Deadline`, `shorter`'s bound, no clock-made cache, no leaks.

Time is a fake clock moved by fake slow steps, or a zero budget (out before the
first step on any clock), so no test races the wall clock.  The expected simplified
forms are the textbook cancellations (sigmoid + bce gives a - y), not copies of
the code's output; the gc tests count objects a weakref still sees.
"""

import ast
import gc
import subprocess
import sys
import threading
import weakref
from pathlib import Path

import pytest
import sympy

from derive import Network
from derive.calculus import simplify
from derive.calculus.backprop import Derivation
from derive.calculus.model import SymbolicModel
from derive.errors import DeriveError
from derive.spec.deadline import Deadline, OutOfTime
from derive.spec.registry import A, ACTIVATIONS, LOSSES, Y

ROOT = Path(__file__).resolve().parent.parent


class FakeClock:
    def __init__(self):
        self.now = 10.0

    def __call__(self):
        return self.now


@pytest.fixture(autouse=True)
def empty_shorter_cache():
    simplify._SHORTER_CACHE.clear()
    yield
    simplify._SHORTER_CACHE.clear()


def slow_cancel(monkeypatch, clock, seconds):
    """sympy.cancel as seen by simplify, costing ``seconds`` on ``clock``; returns its calls."""
    calls, real = [], sympy.cancel

    def cancel(expr):
        calls.append(expr)
        clock.now += seconds
        return real(expr)
    monkeypatch.setattr(simplify.sympy, "cancel", cancel)
    return calls


def bce_sigmoid_output_term():
    # dL/da of bce, times sigma'(z) = a(1 - a): cancels to a - y
    return (-(Y / A) + (1 - Y) / (1 - A)) * A * (1 - A)


# --- Deadline ---------------------------------------------------------------------

def test_deadline_zero_budget_is_out_at_once():
    assert Deadline(0.0).expired()
    with pytest.raises(OutOfTime, match=r"^parsing took over 0 s$"):
        Deadline(0.0).check("parsing")


def test_deadline_follows_its_clock():
    clock = FakeClock()
    deadline = Deadline(2.0, clock=clock)
    clock.now += 1.5
    assert not deadline.expired() and deadline.remaining() == 0.5
    deadline.check("step")
    clock.now += 0.5
    assert deadline.expired() and deadline.remaining() == 0.0


def test_deadline_out_of_time_is_a_derive_error():
    assert issubclass(OutOfTime, DeriveError)


@pytest.mark.parametrize("seconds", [-1.0, float("nan")])
def test_deadline_refuses_a_negative_or_nan_budget(seconds):
    with pytest.raises(ValueError, match="a deadline needs seconds >= 0"):
        Deadline(seconds)


# --- shorter: bounded by its input, cut short by a deadline, cached when finished --

def test_shorter_cancels_sigmoid_bce_to_a_minus_y():
    assert simplify.shorter(bce_sigmoid_output_term()) == A - Y


def test_shorter_every_table_output_term_is_within_the_bound():
    """The rows of the tables must all reach cancel/factor, or the cancellations shown
    in documents (CANCELLATIONS) would silently stop."""
    for loss in LOSSES.values():
        d_loss = sympy.diff(loss.per_output(A, Y, 3), A)
        for row in ACTIVATIONS.values():
            if row.in_terms_of_a is not None and not row.vector:
                term = d_loss * row.in_terms_of_a(A)
                assert simplify.written_size(term) <= simplify.SHORTER_MAX_SIZE, (loss.name, row.name)
                assert simplify.monomials(term) <= simplify.SHORTER_MAX_MONOMIALS, (loss.name, row.name)


def test_shorter_leaves_a_high_degree_input_without_calling_cancel(monkeypatch):
    """Small to write but slow to cancel: (a-y)^20/(a+y)^15 + ... took ~2 s."""
    def cancel(expr):
        raise AssertionError("cancel must not run on an input over the bound")
    monkeypatch.setattr(simplify.sympy, "cancel", cancel)
    expr = (A - Y) ** 20 / (A + Y) ** 15 + (A * Y + 1) ** 10 / (A - 1) ** 7
    assert simplify.written_size(expr) <= simplify.SHORTER_MAX_SIZE
    assert simplify.shorter(expr) is expr


def test_shorter_leaves_a_large_input_without_calling_cancel(monkeypatch):
    monkeypatch.setattr(simplify.sympy, "cancel", lambda e: pytest.fail("cancel ran"))
    expr = sympy.Add(*[sympy.exp(k * A) * Y for k in range(1, 60)])  # 4 nodes a term
    assert simplify.written_size(expr) > simplify.SHORTER_MAX_SIZE
    assert simplify.shorter(expr) is expr


def test_shorter_measures_monomials_and_size():
    # degree 20 + 15 over one denominator, in 2 generators: C(37, 2)
    assert simplify.monomials((A - Y) ** 20 / (A + Y) ** 15) == 666
    # 1/a + 1/y = (y + a)/(a y): degree 1 + 2, generators a, y: C(5, 2)
    assert simplify.monomials(1 / A + 1 / Y) == 10
    # degree 2 in the generators a, y and exp(a): C(5, 3)
    assert simplify.monomials(A * Y + sympy.exp(A)) == 10
    assert simplify.monomials(sympy.Integer(7)) == 1
    assert simplify.written_size(A + Y) == 3
    shared = A + Y
    # written out, a shared argument counts each time it appears
    assert simplify.written_size(sympy.Mul(shared, sympy.sin(shared), evaluate=False)) == 1 + 3 + 4


def test_shorter_deadline_between_cancel_and_factor_keeps_the_form(monkeypatch):
    clock = FakeClock()
    calls = slow_cancel(monkeypatch, clock, 3.0)
    monkeypatch.setattr(simplify.sympy, "factor", lambda e: pytest.fail("factor ran"))
    expr = bce_sigmoid_output_term()
    assert simplify.shorter(expr, Deadline(2.0, clock=clock)) is expr
    assert len(calls) == 1


def test_shorter_does_not_cache_a_result_the_clock_decided(monkeypatch):
    clock = FakeClock()
    slow_cancel(monkeypatch, clock, 3.0)
    expr = bce_sigmoid_output_term()
    assert simplify.shorter(expr, Deadline(2.0, clock=clock)) is expr
    # the next call with time to spare simplifies: one slow call pinned nothing
    assert simplify.shorter(expr, Deadline(10.0, clock=clock)) == A - Y


def test_shorter_caches_a_finished_result(monkeypatch):
    clock = FakeClock()
    calls = slow_cancel(monkeypatch, clock, 0.1)
    expr = bce_sigmoid_output_term()
    assert simplify.shorter(expr, Deadline(2.0, clock=clock)) == A - Y
    assert simplify.shorter(expr, Deadline(0.0, clock=clock)) == A - Y  # from the cache
    assert len(calls) == 1


def test_shorter_deadline_honoured_in_a_thread(monkeypatch):
    clock, results = FakeClock(), []
    slow_cancel(monkeypatch, clock, 3.0)
    expr = bce_sigmoid_output_term()
    thread = threading.Thread(target=lambda: results.append(
        simplify.shorter(expr, Deadline(2.0, clock=clock))))
    thread.start()
    thread.join()
    assert results == [expr]


def test_shorter_zero_default_budget_keeps_the_form(monkeypatch):
    monkeypatch.setattr(simplify, "SIMPLIFY_SECONDS", 0.0)
    expr = bce_sigmoid_output_term()
    monkeypatch.setattr(simplify.sympy, "cancel", lambda e: pytest.fail("cancel ran"))
    assert simplify.shorter(expr) is expr
    assert expr not in simplify._SHORTER_CACHE


# --- nothing keeps a Derivation or a Network alive ---------------------------------

def test_deleted_derivations_are_collected():
    derivations = [Derivation(SymbolicModel(Network([2, 2, 1], "tanh", "mse").spec))
                   for _ in range(50)]
    for d in derivations:
        d.activation_derivative_row(1), d.loss_term_derivative
        d.delta_definition(1, 1)
    refs = [weakref.ref(d) for d in derivations]
    del derivations, d
    gc.collect()
    assert sum(ref() is not None for ref in refs) == 0


def test_deleted_network_is_collected_after_use():
    net = Network([2, 3, 2], "sigmoid", "bce")
    for p in net.params():
        net.gradient(p).simplified, net.gradient(p).factored
    net.which("W1[1,1]")
    refs = [weakref.ref(x) for x in (net, net.derivation, net.simplifier, net.model)]
    del net
    gc.collect()
    assert [ref() for ref in refs] == [None] * 4


def _cached_methods(source: str) -> list[str]:
    """Methods decorated with functools.lru_cache or functools.cache in ``source``."""
    found = []
    for cls in (n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef)):
        for fn in (n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for dec in fn.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                if name in ("lru_cache", "cache"):
                    found.append(f"{cls.name}.{fn.name}")
    return found


def test_no_lru_cache_on_methods_in_derive():
    """A class-level cache on a method holds every instance it saw (cached_property,
    which stores on the instance, is fine)."""
    found = [f"{path.relative_to(ROOT)}: {name}" for path in sorted((ROOT / "derive").rglob("*.py"))
             for name in _cached_methods(path.read_text())]
    assert found == []


def test_cached_methods_finds_a_cached_method():
    source = ("import functools\nclass D:\n    @functools.lru_cache(maxsize=None)\n"
              "    def row(self, l): ...\n    @cache\n    def other(self): ...\n")
    assert _cached_methods(source) == ["D.row", "D.other"]


# --- the old "Alarm clock" (exit 142) case ---------------------------------------

def _run_with_budget(seconds: float, activation: str):
    """derive grad in a fresh process whose parser and simplifier budgets are ``seconds``."""
    script = ("import sys\n"
              "from derive.spec import expressions\n"
              "from derive.calculus import simplify\n"
              f"expressions.MAX_SECONDS = simplify.SIMPLIFY_SECONDS = {seconds!r}\n"
              "from derive.cli import main\n"
              f"sys.exit(main(['grad', '--layers', '2,2,1', '--activation', {activation!r},"
              " '--loss', 'bce']))\n")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_tiny_budget_ends_with_one_derive_line_and_exit_2():
    """A custom activation with no time to build: was killed by SIGALRM (exit 142)."""
    proc = _run_with_budget(0.0, "x/(1+abs(x))")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == ("derive: activation: expression too slow to build (over 0 s) "
                           "at position 1 in 'x/(1+abs(x))'\n")


def test_tiny_budget_on_a_table_activation_still_derives():
    """sigmoid needs no parsing; a zero simplify budget just keeps forms unsimplified."""
    proc = _run_with_budget(0.0, "sigmoid")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "W1[1,1]" in proc.stdout


# --- the claim prover's deadline ---------------------------------------------------

def test_claim_proof_with_time_proves_and_without_time_is_undecided():
    """A right claim in another arrangement: expand/cancel proves it, unless the
    deadline has passed, when the verdict falls back to numeric (not "wrong")."""
    from derive.qa import claim
    net = Network([1, 1], "sigmoid", "half_sse")
    p = net.param("W1[1,1]")
    text = "(a1[1] - y[1])*a1[1]*(1 - a1[1])*x[1]"  # dL/dW by hand: (a - y) sigma'(z) x
    parsed = claim.parse_claim(net, text)
    assert claim.proved(net, p, parsed, Deadline(60.0))
    clock = FakeClock()
    assert not claim.proved(net, p, parsed, Deadline(0.0, clock=clock))
