"""Property: any byte streams, both directions, over a lossy/reordering/duplicating/corrupting
link arrive byte-exact, and both sides end fully closed (issue #2). SACK on and off."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcpdive.sim.world import World
from tcpdive.socket import IPPROTO_TCP, SHUT_WR, TCP_INFO
from tcpdive.tcp.sockopt import TCP_INFO_LEN

from .helpers import tcp_sockets

TCP_FIN_WAIT1, TCP_LAST_ACK, TCP_CLOSING = 4, 9, 11


def _tcpi_state(sock) -> int:
    return sock.getsockopt(IPPROTO_TCP, TCP_INFO, TCP_INFO_LEN)[0]


def transfer(seed: int, a_data: bytes, b_data: bytes, *, loss: float, reorder: float,
             duplicate: float, corrupt: float, client_first: bool, sack: bool,
             linger: bool = False):
    """``linger``: close as SO_LINGER does (``sk_stream_wait_close``): shut down, stay the
    owner until our FIN is acked, then close, so no orphan is dropped under tcp_orphan_retries
    while its data or FIN are still in flight."""
    w = World(seed=seed)
    c = w.host("client", "10.0.0.1")
    s = w.host("server", "10.0.0.2")
    link = w.link(c, s, delay=0.005, loss=loss, reorder=reorder, duplicate=duplicate,
                  corrupt=corrupt)
    if not sack:
        for h in (c, s):
            h.sysctl.set("tcp_sack", 0)
    if linger:
        # Without SACK, a lost retransmission in CA_Loss is found only by RTO (backed off to
        # 120 s), so at 20 % loss one Loss episode can outlast tcp_retries2's 924.6 s; Linux then
        # gives up (ETIMEDOUT, counted from the episode's first retransmission) even though data
        # still trickles through. These batches test delivery, not that policy: more retries.
        for h in (c, s):
            h.sysctl.set("tcp_retries2", 30)
    ls = s.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(5)
    got: dict[str, bytes] = {}

    async def side(name, sock, out: bytes, first: bool) -> None:
        buf = bytearray()

        async def reader() -> None:
            while True:
                d = await sock.arecv(65536)
                if not d:
                    return
                buf.extend(d)

        rt = asyncio.ensure_future(reader())
        await sock.asendall(out)
        if first:
            sock.shutdown(SHUT_WR)        # our FIN goes first; keep reading to the peer's EOF
        await rt                          # the second closer waits for EOF before its FIN
        if linger:
            if not first:
                sock.shutdown(SHUT_WR)
            while _tcpi_state(sock) in (TCP_FIN_WAIT1, TCP_CLOSING, TCP_LAST_ACK):
                await asyncio.sleep(0.5)
        sock.close()
        got[name] = bytes(buf)

    async def client() -> None:
        sock = c.socket()
        await sock.aconnect(("10.0.0.2", 80))
        await side("client", sock, a_data, client_first)

    async def server() -> None:
        sock, _ = await ls.aaccept()
        ls.close()
        await side("server", sock, b_data, not client_first)

    tc = c.spawn(client())
    ts = s.spawn(server())
    w.run()                               # until nothing is left: TIME_WAIT and all timers
    assert tc.done() and ts.done()
    tc.result()
    ts.result()
    assert got["server"] == a_data
    assert got["client"] == b_data
    assert tcp_sockets(c) == [] and tcp_sockets(s) == []
    return w, link


sizes = st.sampled_from([0, 1, 1447, 1448, 1449, 65536, 300_000, 1_000_000, 2_500_000])


def _stream(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


common = settings(max_examples=12, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("sack", [True, False], ids=["sack", "nosack"])
@common
@given(seed=st.integers(0, 2**16), a_len=sizes, b_len=sizes,
       loss=st.floats(0, 0.12), reorder=st.floats(0, 0.3), duplicate=st.floats(0, 0.1),
       corrupt=st.floats(0, 0.02), client_first=st.booleans())
def test_stream_integrity(sack, seed, a_len, b_len, loss, reorder, duplicate, corrupt,
                          client_first):
    transfer(seed, _stream(seed, a_len), _stream(seed + 1, b_len), loss=loss, reorder=reorder,
             duplicate=duplicate, corrupt=corrupt, client_first=client_first, sack=sack)


# 20 % loss each way drives Linux's own RTO to TCP_RTO_MAX at times (a dupack echoing a stale
# ts_recent acks only retransmitted data, so tcp_ack_update_rtt samples now - TSecr: pinned in
# tests/tcp/test_rtt.py). An orphan in LAST_ACK is then not 'alive' and tcp_write_timeout drops
# it at the next RTO (tcp_orphan_retries 0), data and FIN unacked: seed 0 without SACK does
# that with a plain close(), and so did Linux 6.18 on this workload through the same impaired
# Pipe (KernelRelay, cubic, no SACK: 3 of 8 runs). The batch therefore closes like SO_LINGER,
# staying the owner (tcp_retries2 applies, not tcp_orphan_retries) until its FIN is acked.
@pytest.mark.parametrize("sack", [True, False], ids=["sack", "nosack"])
@pytest.mark.parametrize("seed", range(3))
def test_stream_integrity_high_loss(sack, seed):
    """20 % loss each way plus corruption: a harder fixed-seed batch."""
    transfer(seed, _stream(seed, 400_000), _stream(seed + 7, 100_000), loss=0.2, reorder=0.2,
             duplicate=0.05, corrupt=0.02, client_first=bool(seed % 2), sack=sack,
             linger=True)


def test_impairments_really_happened():
    w, link = transfer(5, _stream(1, 500_000), _stream(2, 200_000), loss=0.1, reorder=0.2,
                       duplicate=0.05, corrupt=0.02, client_first=True, sack=True)
    for p in (link.ab, link.ba):
        assert p.dropped_loss and p.reordered and p.duplicated and p.corrupted
    c, s = w.hosts["client"], w.hosts["server"]
    assert c.mib["TcpRetransSegs"] + s.mib["TcpRetransSegs"] > 0
    assert (c.mib["TcpInCsumErrors"] + s.mib["TcpInCsumErrors"]
            + c.mib["IpInHdrErrors"] + s.mib["IpInHdrErrors"]) > 0


@pytest.mark.parametrize("sack", [True, False], ids=["sack", "nosack"])
@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), a_len=st.sampled_from([1, 1449, 65536, 300_000]),
       b_len=st.sampled_from([0, 1448, 100_000]), loss=st.floats(0.12, 0.2),
       reorder=st.floats(0, 0.3), duplicate=st.floats(0, 0.1), corrupt=st.floats(0, 0.02),
       client_first=st.booleans())
def test_stream_integrity_up_to_20pct_loss(sack, seed, a_len, b_len, loss, reorder, duplicate,
                                           corrupt, client_first):
    """Random streams at 12-20 % loss each way, closing as SO_LINGER (see above)."""
    transfer(seed, _stream(seed, a_len), _stream(seed + 1, b_len), loss=loss, reorder=reorder,
             duplicate=duplicate, corrupt=corrupt, client_first=client_first, sack=sack,
             linger=True)
