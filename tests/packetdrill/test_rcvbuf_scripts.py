"""tcpdive's own packetdrill scripts for the receive-buffer bounds tcp_init_buffer_space sets
(window_clamp from the buffer's full space, rcv_ssthresh under window_clamp) and what they
decide: whether the ACK of data+FIN goes at once or waits for the delayed-ACK timer, as
ioctl-siocinq-fin.pkt shows on Linux 6.18. SIOCINQ with a FIN (tcp_inq) is pinned on the way.
Expectations derive from the Linux 6.18 source; run segment by segment (--strict_segments)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpdive.packetdrill.runner import run_script

SCRIPTS = Path(__file__).parent / "scripts" / "rcvbuf"


@pytest.mark.parametrize("name", sorted(p.name for p in SCRIPTS.glob("*.pkt")))
def test_rcvbuf_script_passes(name: str) -> None:
    res = run_script(str(SCRIPTS / name), strict_segments=True)
    assert res.verdict == "PASS", f"{res.reason}\n{res.details}"
