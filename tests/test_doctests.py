"""Run the examples in every derive module's docstrings, one test per docstring.

The examples are part of the documentation; their expected outputs are
values worked out by hand (one identity neuron: dL/dW = (W x + b - y) x), so
a change that breaks one breaks the documentation too.  An example that
cannot run for want of a third-party package (pylatex outside the .venv) is
skipped outside CI and a failure under CI=true, where everything is installed.
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil

import pytest

import derive

MODULES = sorted(["derive"] + [m.name for m in pkgutil.walk_packages(derive.__path__, "derive.")])
#: Modules whose public names must carry runnable examples (docstrings with examples).
WITH_EXAMPLES = {"derive.api.gradient": 2, "derive.api.network": 5, "derive.export.codegen": 1}
CI = os.environ.get("CI") == "true"


def _third_party(exc: BaseException) -> bool:
    return isinstance(exc, ModuleNotFoundError) and bool(exc.name) and not exc.name.startswith("derive")


def _collect():
    cases, counts = [], {}
    finder = doctest.DocTestFinder()
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            cases.append(pytest.param(name, exc, id=name))
            continue
        tests = [t for t in finder.find(module) if t.examples]
        counts[name] = len(tests)
        cases += [pytest.param(name, t, id=t.name) for t in tests]
    return cases, counts


CASES, COUNTS = _collect()


@pytest.mark.parametrize("name, test", CASES)
def test_doctest(name, test):
    if isinstance(test, BaseException):
        if _third_party(test) and not CI:
            pytest.skip(f"{name} needs {test.name}, which is not installed")
        raise test
    runner = doctest.DebugRunner(optionflags=doctest.ELLIPSIS)
    try:
        runner.run(test, clear_globs=True)
    except doctest.UnexpectedException as exc:
        error = exc.exc_info[1]
        if _third_party(error) and not CI:
            pytest.skip(f"{test.name} needs {error.name}, which is not installed")
        raise error
    except doctest.DocTestFailure as failure:
        pytest.fail(f"{test.name}, line {failure.example.lineno + 1}: {failure.example.source.strip()}\n"
                    f"expected {failure.example.want!r}\ngot      {failure.got!r}")


@pytest.mark.parametrize("name, least", sorted(WITH_EXAMPLES.items()))
def test_doctest_examples_present(name, least):
    assert COUNTS.get(name, 0) >= least, f"{name} has {COUNTS.get(name, 0)} docstrings with examples"
