"""Huge networks: refused up front without allocating, or run to the end.

No test here asserts a time (speed lives in benchmarks/: bench_wide.py, bench_check.py);
subprocess timeouts only turn a hang into a failure.  What is asserted instead is
what makes the cost bounded: a refusal before any row is built, nothing allocated,
and `derive grad` printing per neuron rather than per parameter (compose.py).

Measured on the 2-core machine of FACTS.md (late 2026), see benchmarks/README.md:
- `derive grad --layers 2,100000,2` is refused in about 1 s, all of it Python and
  SymPy imports; `make_spec` itself refuses in microseconds, before any row is built.
- `derive check` on 500 layers of width 2 (3,000 parameters) takes about 10 s with
  the default 3 points: the complex-step reference grows with the square of the depth.
- `derive grad --json` on Nielsen's 784-30-10 net writes all 23,860 entries in a few
  seconds (it took over 10 minutes when every gradient was printed on its own).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from derive import Network
from derive.cli import main
from derive.errors import SpecError
from derive.spec.sizes import limits
from derive.spec.loading import make_spec

ROOT = Path(__file__).resolve().parents[1]
DEEP = ROOT / "examples" / "deep.toml"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
REFUSAL = ("derive: layers [2, 100000, 2] give 500,002 parameters, above the limit 250,000; raise "
           "it with --max-params 500002 (or DERIVE_MAX_PARAMS=500002; in Python, "
           "derive.spec.sizes.MAX_PARAMETERS = 500002)\n")


def _cli(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "derive.cli", *argv], env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def test_limits_wide_network_refused():
    proc = _cli("grad", "--layers", "2,100000,2")
    assert (proc.returncode, proc.stderr, proc.stdout) == (2, REFUSAL, "")


@pytest.mark.parametrize("command", ["grad", "check", "explain", "which", "code"])
def test_limits_every_command_refuses_before_work(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["grad", "--layers", "1,1"])  # imports done: what follows is the refusal alone
    capsys.readouterr()
    assert main([command, "--layers", "2,100000,2"]) == 2
    assert capsys.readouterr() == ("", REFUSAL)
    assert list(tmp_path.iterdir()) == []


def test_limits_refusal_allocates_nothing():
    tracemalloc.start()
    try:
        with pytest.raises(SpecError, match="above the limit 250,000"):
            make_spec([2, 10**9, 2])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000


def test_limits_raised_wide_network_gradients():
    # the numbers of a 500,002-parameter network are one matrix product a layer
    rng = __import__("numpy").random.default_rng(0)
    values = {"x": [0.5, -0.5], "y": [0.1, 0.9], "W1": rng.normal(0, 0.5, (100_000, 2)).tolist(),
              "b1": [0.0] * 100_000, "W2": rng.normal(0, 0.003, (2, 100_000)).tolist(), "b2": [0.0, 0.0]}
    with limits(max_parameters=600_000):
        net = Network([2, 100_000, 2], "tanh", "half_sse")
        grads = net.gradients(values)
    assert len(grads) == 500_002


def test_limits_500_layers_check(capsys):
    layers = ",".join(["2"] * 501)
    assert main(["check", "--layers", layers, "--points", "1"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("all gradients agree\n") and out.count(" ok\n") == 500


def test_limits_depth_limit_and_its_flag(capsys):
    layers = ",".join(["1"] * 1002)
    assert main(["grad", "--layers", layers]) == 2
    assert "raise it with --max-depth 1001" in capsys.readouterr().err
    with limits(max_depth=1001):
        assert make_spec([1] * 1002).depth == 1001


def test_limits_grad_json_streams_on_the_deep_example():
    # the first entry arrives long before the whole object could be built
    proc = subprocess.Popen([sys.executable, "-m", "derive.cli", "grad", str(DEEP), "--json"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = b""
    try:
        while b'"W1[1,2]"' not in first:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, proc.stderr.read().decode()
            first += chunk
    finally:
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    head = first.decode()
    assert head.startswith('{"loss": 2.56636403519212')
    entry = head[head.index('"W1[1,1]": ') + len('"W1[1,1]": '):head.index(', "W1[1,2]"')]
    assert set(json.loads(entry)) == {"value", "latex", "expression"}
    # interrupted mid-stream: exit 130 and one line, no traceback
    assert (proc.returncode, err.decode()) == (130, "derive: interrupted\n")


def test_limits_grad_prints_per_neuron_not_per_parameter(monkeypatch):
    """200-4-2 (814 parameters, 6 neurons): every formula SymPy prints for `grad --json`
    is a neuron's delta, its product with a(l-1)_1, or one layer's check at the last k;
    the 800 weights are composed.  Each composed entry is still the printer's own
    (tests/test_report.py); here only the count of printer calls on products is held."""
    import sympy

    from derive.render import compose
    from derive.render.report import grad_json_chunks

    calls = []

    def counted(printer):
        return lambda expr: (calls.append(expr) if not isinstance(expr, sympy.Symbol) else None,
                             printer(expr))[1]

    monkeypatch.setattr(compose, "PRINTERS", {k: counted(f) for k, f in compose.PRINTERS.items()})
    net = Network([200, 4, 2], "sigmoid", "half_sse")
    assert all(net.gradient(name).explicit is None for name in ("W1[1,1]", "W2[1,1]", "b2[1]"))
    doc = json.loads("".join(grad_json_chunks(net)))
    neurons, layers, forms = 6, 2, 2  # latex and expression
    assert len(doc["gradients"]) == 814
    assert len(calls) <= forms * (2 * neurons + layers)


def test_limits_documents_elide_a_long_input_vector():
    """A 40-entry x (as a 784-pixel one) prints its first entries, \\dots, the last and its length."""
    x = [round(0.01 * k + 0.123456, 6) for k in range(40)]
    values = {"x": x, "y": [0.5], "W1": [[0.01] * 40, [-0.02] * 40], "b1": [0.0, 0.1],
              "W2": [[0.3, -0.2]], "b2": [0.05]}
    md = Network([40, 2, 1], "sigmoid", "half_sse", values=values).explain("md")
    line = next(line for line in md.splitlines() if line.startswith(r"\boldsymbol{x} = "))
    assert r"\bigl(0.123456, 0.133456, " in line and r", \dots, 0.513456\bigr)^{\top} \in \mathbb{R}^{40}" in line
    assert "0.283456" not in line and len(line) < 200  # the middle entries are elided
    assert r"\boldsymbol{y} = \bigl(0.5\bigr)^{\top}:" in md  # a short vector stays whole
