"""PyPy 3.11 for the simulator: where to find one and how to set its JIT for kernel-shaped code.

tcpdive is plain Python 3.11 and runs unchanged on PyPy 3.11, whose JIT makes the per-packet
paths several times faster than CPython (``tcpdive bench`` prints both). ``scripts/install-pypy``
puts Debian's PyPy 3.11 in a private prefix on Debian 12 or later.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

# The kernel's shape means long functions (tcp_ack, tcp_rcv_state_process, the TcpSock
# constructor): past PyPy's default trace_limit (6000 operations) a trace is abandoned and that
# code stays interpreted; 30000 lets them compile. A stack has many paths taken a few times per
# connection (states, timers, options): lower thresholds and eager bridges compile them after
# ~10,000 lifecycles instead of ~25,000.
JIT_PARAMS = "trace_limit=30000,threshold=300,function_threshold=400,trace_eagerness=50"
# Set only in the bench's child (tune_jit): in long runs that mix every feature (the whole test
# suite), PyPy 7.3.19's tracer with these limits sometimes hits an internal AssertionError
# ("Fatal RPython error" in getfield_gc tracing) and aborts; with its defaults it has not.
# The young generation: PyPy's default (about the L2 cache) makes connection churn, which
# allocates a socket, skbs and timers per packet, spend its time in minor collections.
GC_NURSERY = "64M"


def on_pypy() -> bool:
    return sys.implementation.name == "pypy"


def tune_jit() -> None:
    """Set JIT_PARAMS when running on PyPy (a no-op on CPython); the bench's child calls it."""
    if on_pypy():
        import pypyjit  # type: ignore[import-not-found]

        pypyjit.set_param(JIT_PARAMS)


def default_prefix() -> Path:
    """Where scripts/install-pypy installs PyPy 3.11 unless told otherwise."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "tcpdive" / "pypy3.11"


def find_pypy() -> str | None:
    """A PyPy 3.11: $TCPDIVE_PYPY, pypy3.11 on PATH, or scripts/install-pypy's prefix."""
    for cand in (os.environ.get("TCPDIVE_PYPY"), shutil.which("pypy3.11"),
                 str(default_prefix() / "bin" / "pypy3.11")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a PyPy child running this tree's tcpdive."""
    env = dict(os.environ if env is None else env)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([src] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("PYPY_GC_NURSERY", GC_NURSERY)
    return env
