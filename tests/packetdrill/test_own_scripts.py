"""tcpdive's own packetdrill scripts for Linux behaviours pinned elsewhere in the test suite:
timers (issue #3) expressed in Linux's own test language. Each must PASS."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpdive.packetdrill.runner import run_script

SCRIPTS = Path(__file__).parent / "scripts" / "timers"


@pytest.mark.parametrize("name", sorted(p.name for p in SCRIPTS.glob("*.pkt")))
def test_timer_script_passes(name: str) -> None:
    res = run_script(str(SCRIPTS / name))
    assert res.verdict == "PASS", f"{res.reason}\n{res.details}"
