"""tcpdive on PyPy 3.11: the same stack, bit for bit, and the bench's PyPy figures.

PyPy comes from scripts/install-pypy (CI runs it); elsewhere these tests skip when no PyPy 3.11
is found, and under CI a missing PyPy is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tcpdive.tools.pypy import child_env, find_pypy

HERE = Path(__file__).parent
PYPY = find_pypy()

if PYPY is None and os.environ.get("CI"):
    pytest.fail("no PyPy 3.11 under CI: .ci/run runs scripts/install-pypy", pytrace=False)
pytestmark = [
    pytest.mark.skipif(PYPY is None, reason="no PyPy 3.11 (bash scripts/install-pypy)"),
    pytest.mark.skipif(sys.implementation.name != "cpython",
                       reason="compares CPython with PyPy: runs under CPython"),
]


def _run(python: str, *args: str) -> dict:
    out = subprocess.run([python, *args], env=child_env(), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_pypy_is_311():
    out = subprocess.run([PYPY, "-c", "import sys; print(sys.implementation.name, "
                                      "sys.version_info[:2])"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split(maxsplit=1) == ["pypy", "(3, 11)\n"]


def test_same_packets_counters_and_bytes_on_pypy_and_cpython():
    """A lossy, reordering, duplicating, corrupting link; 12 connections of 200 kB each way."""
    script = str(HERE / "fingerprint_run.py")
    cp = _run(sys.executable, script)
    pp = _run(PYPY, script)
    assert (cp.pop("python"), pp.pop("python")) == ("cpython", "pypy")
    assert len(cp["replies"]) == 12 and cp["packets"] > 10_000
    assert cp["mib_a"]["TcpRetransSegs"] > 0 and cp["mib_b"]["IpInHdrErrors"] > 0
    assert pp == cp


def test_bench_figures_on_pypy():
    """The child run_bench starts: every figure there, the runs complete and counted."""
    f = _run(PYPY, "-m", "tcpdive.tools.bench", "--figures", "--quick")
    assert f["interpreter"].startswith("PyPy 3.11")
    assert f["churn"]["lifecycles"] == f["churn0"]["lifecycles"] == 300
    assert f["bulk"]["bytes"] == f["bulk0"]["bytes"] == 8 << 20
    assert f["bulk"]["segments"] == f["bulk0"]["segments"] > 5000
    assert f["bulk"]["packets"] < f["bulk0"]["packets"]          # TSO bursts vs MSS packets
    for k in ("bulk", "bulk0"):
        assert f[k]["segs_per_s"] > 0
    for k in ("churn", "churn0"):
        assert f[k]["per_s"] > 0
