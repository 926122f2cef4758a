"""Bulk transfers tcpdive <-> kernel, byte-exact (sha256), clean and with 1% loss + reordering;
and kernel <-> kernel through tcpdive's impaired relay."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tcpdive.real import KernelRelay
from tcpdive.real.bench import bulk_from_kernel, bulk_to_kernel
from tcpdive.real.kpeer import pattern_sha256

from .conftest import bulk_bytes, needs_real, unique_port

pytestmark = needs_real

IMPAIRED = {"loss": 0.01, "reorder": 0.01, "reorder_delay": 0.003}


@pytest.mark.parametrize("impaired", [False, True], ids=["clean", "loss1pct+reorder"])
@pytest.mark.parametrize("direction", ["to_kernel", "from_kernel"])
def test_bulk_byte_exact(stack, direction, impaired):
    if impaired:
        stack.impair(**IMPAIRED)
    n = bulk_bytes()
    fn = bulk_to_kernel if direction == "to_kernel" else bulk_from_kernel
    r = fn(stack, n, timeout=300)
    assert r["bytes"] == n and r["ok"], r
    if impaired:
        c = stack.call(lambda: (stack.to_kernel.counters(), stack.from_kernel.counters()))
        assert c[0]["dropped_loss"] > 0 and c[0]["reordered"] > 0
        assert c[1]["dropped_loss"] > 0


def test_kernel_to_kernel_through_impaired_relay():
    n = 5 * 10**6
    port = str(unique_port())
    with KernelRelay(loss=0.01, reorder=0.01, reorder_delay=0.003, delay=0.001) as rl:
        sink = rl.b.popen([sys.executable, "-m", "tcpdive.real.kpeer", "listen-sink", port],
                          stdout=subprocess.PIPE, text=True)
        assert sink.stdout.readline().strip() == "READY"
        src = rl.a.popen([sys.executable, "-m", "tcpdive.real.kpeer", "connect-source",
                          rl.b_addr, port, str(n)], stdout=subprocess.PIPE, text=True)
        out, _ = sink.communicate(timeout=120)
        src.communicate(timeout=60)
        import json

        res = json.loads(out.strip().splitlines()[-1])
        assert res["bytes"] == n and res["sha256"] == pattern_sha256(n)
        ab = rl.lt.call(rl.ab.counters)
        assert ab["dropped_loss"] > 0 and ab["reordered"] > 0
