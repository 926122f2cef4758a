"""Zero-window probing gives up as Linux 6.6+ does (tcp_timer.c).

- ``tcp_probe_timer`` (nothing in flight, data waiting): any ACK zeroes icsk_probes_out, so a
  peer that answers is probed forever; unanswered, the connection dies at the probe timer
  that finds icsk_probes_out >= tcp_retries2. TCP_USER_TIMEOUT counts from the first probe
  (icsk_probes_tstamp), answered or not, and clamps the probe timer to it.
- ``tcp_retransmit_timer`` with data in flight and snd_wnd == 0 (``tcp_rtx_probe0_timed_out``):
  dies only when the expiring timer is more than TCP_RTO_MAX*2 = 240 s after the last ACK
  (rcv_tstamp) *and* the first retransmission is more than 240 s old; with TCP_USER_TIMEOUT,
  once retransmission has lasted longer than it.

Two hosts on a 5 ms one-way link. Times are exact virtual seconds.
"""

from __future__ import annotations

import errno

import pytest

from tcpdive.socket import IPPROTO_TCP, SO_RCVBUF, SOL_SOCKET, TCP_USER_TIMEOUT

from .helpers import Net


def r6(x: float) -> float:
    return round(x, 6)


def _zero_window(user_timeout: int = 0):
    """The server never reads and has a 4 KB receive buffer: its window closes at 0.554 s."""
    n = Net(delay=0.005)
    ls = n.s.socket()
    ls.setsockopt(SOL_SOCKET, SO_RCVBUF, 4096)
    ls.bind(("0.0.0.0", 80))
    ls.listen(5)
    cs = n.c.socket()
    cs.connect(("10.0.0.2", 80))
    ss, _ = ls.accept()
    if user_timeout:
        cs.setsockopt(IPPROTO_TCP, TCP_USER_TIMEOUT, user_timeout)
    cs.setblocking(False)
    with pytest.raises(BlockingIOError):
        cs.send(b"z" * 100_000)
        cs.send(b"z" * 100_000)
    return n, cs, ss


def _etimedout(cs) -> None:
    with pytest.raises(OSError) as ei:
        cs.recv(10)
    assert ei.value.errno == errno.ETIMEDOUT


def test_unanswered_probes_die_after_tcp_retries2():
    n, cs, ss = _zero_window()
    n.w.run_until(10.0)
    sk = cs.sk
    # answered probes so far: backed off to 5, next probe at 14.11, nothing in flight
    assert (sk.snd_wnd, sk.packets_out, sk.icsk_pending, sk.icsk_backoff) == (0, 0, 3, 5)
    assert (sk.icsk_rto, sk.icsk_timeout, sk.icsk_probes_tstamp) == (218_000, 14_110_000, 554)
    n.link.ab.set(loss=1.0)                          # the peer vanishes
    n.link.ba.set(loss=1.0)
    n.cap.clear()
    n.run_for(2000)
    probes = [s for s in n.segs if s.host == "client"]
    assert all(s.flags == "." and s.len == 0 for s in probes)
    # 218 ms << backoff (6, 7, 8, 9), then TCP_RTO_MAX = 120 s
    assert [r6(s.t) for s in probes] == [
        14.11, 28.062, 55.966, 111.774, 223.39, 343.39, 463.39, 583.39, 703.39, 823.39,
        943.39, 1063.39, 1183.39, 1303.39, 1423.39]
    assert len(probes) == 15                         # tcp_retries2
    # the 16th expiry finds icsk_probes_out == 15 >= tcp_retries2: tcp_write_err, no RST
    assert n.state_lines() == ["1543.390000 client ESTABLISHED->CLOSE"]
    assert n.c.mib["TcpExtTCPAbortOnTimeout"] == 1
    assert n.c.mib["TcpOutRsts"] == 0
    _etimedout(cs)


def test_unanswered_probes_tcp_retries2_3():
    n, cs, ss = _zero_window()
    n.c.sysctl_set("net.ipv4.tcp_retries2", 3)
    n.w.run_until(10.0)
    assert cs.sk.icsk_backoff == 3                   # tcp_send_probe0: backoff <= tcp_retries2
    n.link.ab.set(loss=1.0)
    n.link.ba.set(loss=1.0)
    n.cap.clear()
    n.run_for(2000)
    assert len([s for s in n.segs if s.host == "client"]) == 3
    assert n.states[-1][2:] == ("ESTABLISHED", "CLOSE")
    _etimedout(cs)


def test_user_timeout_ends_answered_probes():
    # TCP_USER_TIMEOUT=60 s: the peer answers every probe (zero window), yet 60 s after the
    # first probe timer (0.554 s, icsk_probes_tstamp) the connection dies; tcp_ack_probe and
    # tcp_send_probe0 clamp the timer to that moment (tcp_clamp_probe0_to_user_timeout).
    n, cs, ss = _zero_window(60_000)
    n.run_for(200)
    probes = [r6(s.t) for s in n.segs if s.host == "client" and s.len == 0 and s.t > 0.5]
    assert probes[0] == 0.554
    # the last answer (55.991) would re-arm the probe for 218 ms << 8 = 55.8 s: clamped to 60.554
    assert probes[-1] == 55.986
    assert n.states[-1] == (60.554, "client", "ESTABLISHED", "CLOSE")
    assert n.c.mib["TcpExtTCPAbortOnTimeout"] == 1
    _etimedout(cs)


def test_answered_probes_without_user_timeout_never_die():
    n, cs, ss = _zero_window()
    n.run_for(3000)
    assert cs.sk.state == 1
    assert cs.sk.icsk_probes_out == 0                # every answer zeroes it


def _rto_zero_window(user_timeout: int = 0):
    """Established (the client last heard the server at 0.010 s); one byte goes out at t0 =
    0.015 s and the peer's window is then zero (it shrank it: tcp_retransmit_timer's
    'receiver dastardly shrinks window'), and nothing comes back any more."""
    n = Net(delay=0.005)
    cs, ss, ls = n.connect_pair()
    n.cap.clear()
    if user_timeout:
        cs.setsockopt(IPPROTO_TCP, TCP_USER_TIMEOUT, user_timeout)
    n.link.ab.set(loss=1.0)
    n.link.ba.set(loss=1.0)
    t0 = n.now()
    assert (t0, cs.sk.rcv_tstamp, cs.sk.icsk_rto) == (0.015, 10_000, 210_000)
    cs.sendall(b"x")
    cs.sk.snd_wnd = 0
    n.run_for(2000)
    times = [r6(s.t - t0) for s in n.segs if s.host == "client"]
    return n, cs, t0, times


def test_rto_with_zero_window_dies_per_tcp_rtx_probe0_timed_out():
    n, cs, t0, times = _rto_zero_window()
    # TLP at 0.21, then RTO retransmissions (zero-window probes) doubling from 0.42
    assert times == [0, 0.21, 0.42, 0.84, 1.68, 3.36, 6.72, 13.44, 26.88, 53.76, 107.52,
                     215.04]
    # at 215.04 the peer has been silent 215.045 s (< 240): go on. Before Linux 6.6 (silence >
    # TCP_RTO_MAX = 120 s) this RTO gave up. At 335.04 the silence is 335.045 s and the first
    # retransmission (0.42) 334.62 s old, both > 240 s: tcp_write_err.
    assert n.state_lines() == ["335.055000 client ESTABLISHED->CLOSE"]
    assert r6(n.states[-1][0] - t0) == 335.04
    # this path counts no TCPTimeouts (Linux increments it only past the zero-window branch)
    assert n.c.mib["TcpExtTCPTimeouts"] == 0
    assert n.c.mib["TcpExtTCPAbortOnTimeout"] == 1
    _etimedout(cs)


def test_rto_with_zero_window_and_user_timeout():
    # TCP_USER_TIMEOUT=5000: the RTO after 3.36 is clamped to 5.42 (5 s after the first
    # retransmission at 0.42). There rtx_delta is 5000 ms, not > 5000: it still retransmits, and
    # tcp_clamp_rto_to_user_timeout (nothing remains) fires the timer one jiffy later, where
    # 5001 > 5000 gives up.
    n, cs, t0, times = _rto_zero_window(5000)
    assert times == [0, 0.21, 0.42, 0.84, 1.68, 3.36, 5.42]
    assert r6(n.states[-1][0] - t0) == 5.421
    assert n.states[-1][2:] == ("ESTABLISHED", "CLOSE")
    _etimedout(cs)
