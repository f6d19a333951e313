"""Huge networks: refused up front, fast and without allocating, or run in bounded time.

Measured on the 2-core machine of FACTS.md (late 2026):
- `derive grad --layers 2,100000,2` is refused in about 1 s, all of it Python and
  SymPy imports; `make_spec` itself refuses in microseconds, before any row is built.
- `derive check` on 500 layers of width 2 (3,000 parameters) takes about 10 s with
  the default 3 points, 1,000 layers about 31 s with one point: the complex-step
  reference pushes every layer's batch through all later layers, so it grows with
  the square of the depth (verify.reference_gradients: 125,000 small products).
- `derive grad --json` on the 32-layer width-16 example starts writing after about
  1 s and then writes about 3 entries a second (printing each formula's LaTeX and
  SymPy string is 0.3 s), so all 8,704 entries take about 45 minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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


def _cli(*argv: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "derive.cli", *argv], env=ENV, capture_output=True,
                          text=True, timeout=timeout)
    return proc, time.perf_counter() - start


def test_limits_wide_network_refused_fast():
    proc, seconds = _cli("grad", "--layers", "2,100000,2")
    assert (proc.returncode, proc.stderr, proc.stdout) == (2, REFUSAL, "")
    assert seconds < 10, f"refusal took {seconds:.1f} s"


@pytest.mark.parametrize("command", ["grad", "check", "explain", "which", "code"])
def test_limits_every_command_refuses_before_work(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["grad", "--layers", "1,1"])  # imports done: what follows is the refusal alone
    capsys.readouterr()
    start = time.perf_counter()
    assert main([command, "--layers", "2,100000,2"]) == 2
    assert time.perf_counter() - start < 1.0
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


def test_limits_raised_wide_network_gradients_in_bounded_time():
    # the numbers of a 500,002-parameter network are one matrix product a layer
    rng = __import__("numpy").random.default_rng(0)
    values = {"x": [0.5, -0.5], "y": [0.1, 0.9], "W1": rng.normal(0, 0.5, (100_000, 2)).tolist(),
              "b1": [0.0] * 100_000, "W2": rng.normal(0, 0.003, (2, 100_000)).tolist(), "b2": [0.0, 0.0]}
    start = time.perf_counter()
    with limits(max_parameters=600_000):
        net = Network([2, 100_000, 2], "tanh", "half_sse")
        grads = net.gradients(values)
    assert len(grads) == 500_002 and time.perf_counter() - start < 60


def test_limits_500_layers_check_in_bounded_time(capsys):
    layers = ",".join(["2"] * 501)
    start = time.perf_counter()
    assert main(["check", "--layers", layers, "--points", "1"]) == 0
    seconds = time.perf_counter() - start
    out = capsys.readouterr().out
    assert out.endswith("all gradients agree\n") and out.count(" ok\n") == 500
    assert seconds < 60, f"500-layer check took {seconds:.1f} s"


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
    start, first = time.perf_counter(), b""
    try:
        while b'"W1[1,2]"' not in first:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, proc.stderr.read().decode()
            first += chunk
        seconds = time.perf_counter() - start
    finally:
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    assert seconds < 30, f"first entry after {seconds:.1f} s"
    head = first.decode()
    assert head.startswith('{"loss": 2.56636403519212')
    entry = head[head.index('"W1[1,1]": ') + len('"W1[1,1]": '):head.index(', "W1[1,2]"')]
    assert set(json.loads(entry)) == {"value", "latex", "expression"}
    # interrupted mid-stream: exit 130 and one line, no traceback
    assert (proc.returncode, err.decode()) == (130, "derive: interrupted\n")
