"""tcp_init_transfer's first cwnd after a retransmitted SYN (Linux 6.x): RFC 5681's 1 segment
only when more than one SYN retransmission happened (RFC 6298's 1 s initial RTO makes a single
one likely spurious); otherwise the initial window (10, or the route's initcwnd)."""

from __future__ import annotations

import pytest

from .helpers import Net


def _first_flight(drop_syns: int) -> tuple[int, int]:
    n = Net(delay=0.005)
    dropped = [0]

    def flt(pkt: bytes) -> bool:
        ihl = (pkt[0] & 15) * 4
        if pkt[9] == 6 and pkt[ihl + 13] == 0x02 and dropped[0] < drop_syns:   # a bare SYN
            dropped[0] += 1
            return False
        return True

    n.link.ab.filter = flt
    ls = n.listener(80)
    cs = n.c.socket()
    cs.connect(("10.0.0.2", 80))
    ss, _ = ls.accept()
    n.cap.clear()
    cs.setblocking(False)
    cs.send(b"x" * 50_000)                   # the first flight leaves now, before any ACK
    data = [s for s in n.segs if s.host == "client" and s.len]
    return len(data), cs.sk.total_retrans


@pytest.mark.parametrize("drop, segs", [(0, 10), (1, 10), (2, 1)])
def test_first_flight_after_syn_retransmissions(drop, segs):
    sent, total_retrans = _first_flight(drop)
    assert total_retrans == drop
    assert sent == segs
