"""Run the examples in every derive module's docstrings (`doctest.testmod`).

The examples are part of the documentation; their expected outputs are
values worked out by hand (one identity neuron: dL/dW = (W x + b - y) x), so
a change that breaks one breaks the documentation too.  A module that cannot
be imported for want of a third-party package is skipped outside CI and a
failure under CI=true, where every dependency is installed.
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil

import pytest

import derive

MODULES = sorted(["derive"] + [f"derive.{m.name}" for m in pkgutil.iter_modules(derive.__path__)])
#: Modules whose public names must carry runnable examples.
WITH_EXAMPLES = {"derive.api": 10, "derive.codegen": 1}


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and not exc.name.startswith("derive") and os.environ.get("CI") != "true":
            pytest.skip(f"{name} needs {exc.name}, which is not installed")
        raise
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
    assert result.attempted >= WITH_EXAMPLES.get(name, 0), f"{name} lost its examples"
