"""Linux's TCP timers on the virtual clock, to the microsecond (issue #3).

Every world is two hosts on a 5 ms one-way link (RTT 10 ms), so a measured RTO is
srtt 10 ms + rttvar 200 ms (tcp_rto_min) = 210 ms. Traffic is black-holed with the link's loss.

Figures marked "ip-sysctl.rst" are from the kernel's Documentation/networking/ip-sysctl.rst.
Figures marked "Linux 6.18" were measured on a real 6.18 kernel (veth pair in two network
namespaces, the peer's address removed to black-hole it, packets timed with an AF_PACKET
socket). The real kernel's timers land up to ~4% late (HZ=250 timer-wheel slack: a 1 s timer
fires after 1.024 s); the model has no slack, so its times are the exact values Linux aims at.
"""

from __future__ import annotations

import errno

import pytest

from tcpdive.socket import (
    IPPROTO_TCP,
    SO_KEEPALIVE,
    SO_RCVBUF,
    SOL_SOCKET,
    TCP_KEEPCNT,
    TCP_KEEPIDLE,
    TCP_KEEPINTVL,
    TCP_USER_TIMEOUT,
)
from tcpdive.tcp.timer import tcp_model_timeout
from tcpdive.tools.netstat import netstat_napo

from .helpers import Net


def r6(x: float) -> float:
    return round(x, 6)


def mib(host, *names: str) -> dict[str, int]:
    return {n: host.mib[n] for n in names}


def client_times(n: Net, t0: float = 0.0, flags: str | None = None) -> list[float]:
    return [r6(s.t - t0) for s in n.segs if s.host == "client" and (flags is None or s.flags == flags)]


def timer_col(host) -> list[str]:
    return [line.split("  ")[-1].strip() for line in netstat_napo(host, header=False)]


def established(n: Net):
    cs, ss, ls = n.connect_pair()
    n.cap.clear()
    return cs, ss, ls


# ---- SYN retransmission and connect() ETIMEDOUT --------------------------------------------------

@pytest.mark.parametrize("syn_retries, linear, syns, etimedout", [
    # ip-sysctl.rst, tcp_syn_retries: "Default value is 6, which corresponds to 67seconds (with
    # tcp_syn_linear_timeouts = 4) till the last retransmission ... the final timeout for an
    # active TCP connection attempt will happen after 131seconds."  tcp_syn_linear_timeouts:
    # "SYN RTOs to be: 1, 1, 1, 1, 1, 2, 4, ..."  Linux 6.18: SYNs at 0, 1.01, 2.04, 3.06, 4.09,
    # 5.11, 7.13, 11.22, 19.41, 35.54, 69.59; ETIMEDOUT at 135.1 s.
    (6, 4, [0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67], 131),
    # Linux 6.18: SYNs at 0 .. 11.29, ETIMEDOUT at 19.48 s
    (3, 4, [0, 1, 2, 3, 4, 5, 7, 11], 19),
    # the classic schedule (pre-6.? kernels): 1, 3, 7, 15, 31, 63 -> 127 s.
    # Linux 6.18 with tcp_syn_linear_timeouts=0: last SYN at 64.15, ETIMEDOUT at 129.7 s
    (6, 0, [0, 1, 3, 7, 15, 31, 63], 127),
    # Linux 6.18: SYNs at 0, 1.03, 3.05, 7.08; ETIMEDOUT at 15.28 s
    (3, 0, [0, 1, 3, 7], 15),
])
def test_syn_retransmissions_and_connect_etimedout(syn_retries, linear, syns, etimedout):
    n = Net(delay=0.005)
    n.c.sysctl_set("net.ipv4.tcp_syn_retries", syn_retries)
    n.c.sysctl_set("net.ipv4.tcp_syn_linear_timeouts", linear)
    n.link.ab.set(loss=1.0)
    cs = n.c.socket()
    with pytest.raises(OSError) as ei:
        cs.connect(("10.0.0.2", 80))
    assert ei.value.errno == errno.ETIMEDOUT
    assert n.now() == etimedout
    assert client_times(n) == syns
    assert all(s.flags == "S" and s.seq == 0 for s in n.segs)
    retrans = len(syns) - 1
    # Linux 6.18's nstat after the default case: TcpRetransSegs 10, TcpExtTCPTimeouts 11,
    # TcpExtTCPSynRetrans 10, TcpExtTCPAbortOnTimeout 1, TcpAttemptFails 1,
    # TcpExtTcpTimeoutRehash 10 (and 7/8/7/1/1/7 for tcp_syn_retries=3)
    assert mib(n.c, "TcpRetransSegs", "TcpExtTCPSynRetrans", "TcpExtTCPTimeouts",
               "TcpExtTCPAbortOnTimeout", "TcpAttemptFails", "TcpExtTcpTimeoutRehash") == {
        "TcpRetransSegs": retrans, "TcpExtTCPSynRetrans": retrans,
        "TcpExtTCPTimeouts": retrans + 1, "TcpExtTCPAbortOnTimeout": 1, "TcpAttemptFails": 1,
        "TcpExtTcpTimeoutRehash": retrans}


def test_syn_sent_netstat_timer_counts_retransmits():
    n = Net(delay=0.005)
    n.link.ab.set(loss=1.0)
    cs = n.c.socket()
    cs.setblocking(False)
    assert cs.connect_ex(("10.0.0.2", 80)) == errno.EINPROGRESS
    n.w.run_until(4.5)
    assert timer_col(n.c) == ["on (0.50/4/0)"]      # 4 linear retransmits, next at 5 s
    n.w.run_until(6.0)
    assert timer_col(n.c) == ["on (1.00/5/0)"]      # backoff starts: 5 -> 7


# ---- SYN-ACK retransmission ---------------------------------------------------------------------

def test_synack_retransmissions_then_request_dropped():
    n = Net(delay=0.005)
    ls = n.listener()
    n.link.ba.set(loss=1.0)                          # SYN-ACKs never arrive
    cs = n.c.socket()
    cs.setblocking(False)
    cs.connect_ex(("10.0.0.2", 80))
    n.link.ab.set(loss=1.0)                          # ... and the client's SYN retries are lost
    n.w.run_until(0.5)
    assert timer_col(n.s)[1:] == ["on (0.50/0/0)"]
    n.w.run_until(2.0)
    assert timer_col(n.s)[1:] == ["on (1.00/1/0)"]
    n.w.run_until(63.004)
    assert timer_col(n.s)[1:] == ["on (0.00/5/0)"]          # LISTEN + SYN_RECV
    n.w.run_until(63.006)
    assert len(netstat_napo(n.s, header=False)) == 1      # the request is gone at 63.005
    n.run_for(100)
    # tcp_synack_retries=5 (ip-sysctl.rst: "Default value is 5, which corresponds to 31seconds
    # till the last retransmission with the current initial RTO of 1second. With this the
    # final timeout for a passive TCP connection will happen after 63seconds.")
    assert [r6(s.t) for s in n.segs if s.host == "server"] == [
        0.005, 1.005, 3.005, 7.005, 15.005, 31.005]
    assert all(s.flags == "S." for s in n.segs if s.host == "server")
    assert mib(n.s, "TcpRetransSegs", "TcpExtTCPSynRetrans") == {
        "TcpRetransSegs": 5, "TcpExtTCPSynRetrans": 5}
    assert ls is not None


# ---- data retransmission, tcp_retries2, TCP_USER_TIMEOUT ---------------------------------------

def test_model_timeout_figures():
    # ip-sysctl.rst, tcp_retries2: "The default value of 15 yields a hypothetical timeout of
    # 924.6 seconds and is a lower bound for the effective timeout."
    assert tcp_model_timeout(15, 200_000) == 924_600
    assert tcp_model_timeout(3, 200_000) == 3_000
    assert tcp_model_timeout(8, 200_000) == 102_200        # orphans: tcp_orphan_retries 0 -> 8
    assert tcp_model_timeout(6, 1_000_000) == 127_000      # SYN_SENT base: 1 s


def _blackholed_send(retries2: int | None = None):
    n = Net(delay=0.005)
    if retries2 is not None:
        n.c.sysctl_set("net.ipv4.tcp_retries2", retries2)
    cs, ss, ls = established(n)
    assert cs.sk.srtt_us == 80_000 and cs.sk.icsk_rto == 210_000   # measured on the SYN-ACK
    n.link.ab.set(loss=1.0)
    t0 = n.now()
    cs.sendall(b"x")
    with pytest.raises(OSError) as ei:
        cs.recv(10)
    assert ei.value.errno == errno.ETIMEDOUT       # reported to the application
    return n, cs, t0


def test_retransmissions_double_to_120s_and_abort_at_retries2_15():
    n, cs, t0 = _blackholed_send()
    times = client_times(n, t0)
    # a tail loss probe first (issue #8: 2*srtt + rto_min for one segment out, capped by the
    # RTO: 0.21), then RTOs doubling from the measured 210 ms, capped at TCP_RTO_MAX = 120 s.
    # Linux 6.18 over a 10 ms RTT (KernelRelay): 0, 0.214 (TLP), 0.431, 0.867, 1.731, 3.458.
    assert times == [0, 0.21, 0.42, 0.84, 1.68, 3.36, 6.72, 13.44, 26.88, 53.76, 107.52, 215.04,
                     335.04, 455.04, 575.04, 695.04, 815.04]
    gaps = [r6(b - a) for a, b in zip(times, times[1:], strict=False)]
    assert gaps == [0.21, 0.21, 0.42, 0.84, 1.68, 3.36, 6.72, 13.44, 26.88, 53.76, 107.52,
                    120, 120, 120, 120, 120]
    # "TCP will effectively time out at the first RTO which exceeds the hypothetical timeout"
    # (ip-sysctl.rst), counted from the first RTO retransmission (Linux's retrans_stamp; the
    # probe does not start it): 0.42 + 924.6 = 925.02 -> the RTO at 935.04 gives up, no RST.
    assert r6(n.now() - t0) == 935.04
    assert all(s.flags == "P." and s.len == 1 for s in n.segs if s.host == "client")
    assert mib(n.c, "TcpRetransSegs", "TcpExtTCPTimeouts", "TcpExtTCPAbortOnTimeout",
               "TcpOutRsts", "TcpExtTCPLossProbes") == {
        "TcpRetransSegs": 16, "TcpExtTCPTimeouts": 16, "TcpExtTCPAbortOnTimeout": 1,
        "TcpOutRsts": 0, "TcpExtTCPLossProbes": 1}
    assert cs.sk.state == 7                     # TCP_CLOSE


def test_abort_at_retries2_3():
    # model timeout 3.0 s from the first RTO retransmission (0.42, after the TLP at 0.21): the
    # RTO at 3.36 (2.94 s later) still retransmits, the one at 6.72 gives up. Linux 6.18 does
    # the same (its 4 RTO retransmissions follow a tail loss probe; ETIMEDOUT 6.86 s after the
    # send, its timers landing ~2% late).
    n, cs, t0 = _blackholed_send(3)
    assert client_times(n, t0) == [0, 0.21, 0.42, 0.84, 1.68, 3.36]
    assert r6(n.now() - t0) == 6.72
    assert mib(n.c, "TcpRetransSegs", "TcpExtTCPTimeouts", "TcpExtTCPAbortOnTimeout",
               "TcpExtTcpTimeoutRehash") == {
        "TcpRetransSegs": 5, "TcpExtTCPTimeouts": 5, "TcpExtTCPAbortOnTimeout": 1,
        "TcpExtTcpTimeoutRehash": 4}


def test_retries1_negative_advice():
    # tcp_retries1=3: after the model's 3.0 s of retransmission tcp_write_timeout gives the
    # route negative advice (__dst_negative_advice); the 3.36 s RTO is 2.94 s after the first
    # RTO retransmission (0.42, after the TLP), the 6.72 s one is past it.
    n = Net(delay=0.005)
    cs, ss, ls = established(n)
    n.link.ab.set(loss=1.0)
    t0 = n.now()
    cs.sendall(b"x")
    n.w.run_until(t0 + 3.37)
    assert not cs.sk.pending_events & 1
    n.w.run_until(t0 + 6.73)
    assert cs.sk.pending_events & 1
    assert cs.sk.state == 1                     # still ESTABLISHED: only advice


def test_netstat_on_timer_counts_retransmits():
    n = Net(delay=0.005)
    cs, ss, ls = established(n)
    n.link.ab.set(loss=1.0)
    t0 = n.now()
    cs.sendall(b"x")
    n.w.run_until(t0 + 2.0)           # TLP at .21, RTOs at .42, .84, 1.68; next 3.36
    assert timer_col(n.c) == ["on (1.36/3/0)"]


def test_tcp_user_timeout_clamps_the_rto_and_aborts():
    # TCP_USER_TIMEOUT=5000 ms, counted from the first RTO retransmission (0.42; the TLP at
    # 0.21 does not start retrans_stamp): the RTO that would fire at 6.72 is clamped to 5.42
    # (tcp_clamp_rto_to_user_timeout).
    # Linux 6.18: ETIMEDOUT 5.58 s after the send (first retransmission after a TLP at 0.41).
    n = Net(delay=0.005)
    cs, ss, ls = established(n)
    cs.setsockopt(IPPROTO_TCP, TCP_USER_TIMEOUT, 5000)
    assert cs.getsockopt(IPPROTO_TCP, TCP_USER_TIMEOUT) == 5000
    n.link.ab.set(loss=1.0)
    t0 = n.now()
    cs.sendall(b"x")
    with pytest.raises(OSError) as ei:
        cs.recv(10)
    assert ei.value.errno == errno.ETIMEDOUT
    assert client_times(n, t0) == [0, 0.21, 0.42, 0.84, 1.68, 3.36]
    assert r6(n.now() - t0) == 5.42
    assert n.c.mib["TcpExtTCPAbortOnTimeout"] == 1


# ---- keepalive --------------------------------------------------------------------------------

def _keepalive(n: Net, idle=None, intvl=None, cnt=None):
    cs, ss, ls = established(n)                 # t = 15 ms; the client last heard at 10 ms
    cs.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1)
    if idle:
        cs.setsockopt(IPPROTO_TCP, TCP_KEEPIDLE, idle)
    if intvl:
        cs.setsockopt(IPPROTO_TCP, TCP_KEEPINTVL, intvl)
    if cnt:
        cs.setsockopt(IPPROTO_TCP, TCP_KEEPCNT, cnt)
    return cs, ss


def test_keepalive_defaults_7200_75_9():
    n = Net(delay=0.005)
    cs, ss = _keepalive(n)
    n.link.ba.set(loss=1.0)                      # the peer's answers are lost
    n.w.run_until(1.015)
    assert timer_col(n.c) == ["keepalive (7199.00/0/0)"]
    n.w.run_until(7490.365)                      # 4 probes out, the 5th due at 7500.015
    assert timer_col(n.c) == ["keepalive (9.65/0/4)"]
    with pytest.raises(OSError) as ei:
        cs.recv(10)
    assert ei.value.errno == errno.ETIMEDOUT
    # the timer was armed by SO_KEEPALIVE at 15 ms: probes at 7200 s and every 75 s after,
    # RST + ETIMEDOUT when the 9th is unanswered (7200 + 9 * 75 = 7875)
    probes = [s for s in n.segs if s.host == "client" and s.flags == "."]
    assert [r6(s.t) for s in probes] == [r6(7200.015 + 75 * k) for k in range(9)]
    snd_una = cs.sk.snd_una
    assert all(s.len == 0 and s.raw_seq == (snd_una - 1) & 0xFFFFFFFF for s in probes)
    rst = [s for s in n.segs if s.host == "client" and "R" in s.flags]
    assert [(r6(s.t), s.flags, s.raw_seq) for s in rst] == [(7875.015, "R.", snd_una)]
    assert n.now() == pytest.approx(7875.015)
    # Linux 6.18's nstat after a 3-probe keepalive abort: TcpExtTCPKeepAlive 3,
    # TcpExtTCPAbortOnTimeout 1, TcpOutRsts 1
    assert mib(n.c, "TcpExtTCPKeepAlive", "TcpExtTCPAbortOnTimeout", "TcpOutRsts") == {
        "TcpExtTCPKeepAlive": 9, "TcpExtTCPAbortOnTimeout": 1, "TcpOutRsts": 1}


def test_keepalive_per_socket_overrides():
    # TCP_KEEPIDLE 2 / TCP_KEEPINTVL 1 / TCP_KEEPCNT 3. Setting TCP_KEEPIDLE re-arms the timer
    # for idle - (time since the last segment): 15 ms + 1.995 s = 2.010.
    # Linux 6.18 (same options): probes 2.03, 3.05, 4.08 s after the last segment received,
    # RST 5.11 s, ETIMEDOUT.
    n = Net(delay=0.005)
    n.c.sysctl_set("net.ipv4.tcp_keepalive_time", 60)     # overridden by the socket
    cs, ss = _keepalive(n, 2, 1, 3)
    n.link.ba.set(loss=1.0)
    with pytest.raises(OSError) as ei:
        cs.recv(10)
    assert ei.value.errno == errno.ETIMEDOUT
    assert [(r6(s.t), s.flags, s.len) for s in n.segs if s.host == "client"] == [
        (2.01, ".", 0), (3.01, ".", 0), (4.01, ".", 0), (5.01, "R.", 0)]
    assert n.c.mib["TcpExtTCPKeepAlive"] == 3


def test_keepalive_sysctls():
    n = Net(delay=0.005)
    for k, v in (("tcp_keepalive_time", 30), ("tcp_keepalive_intvl", 5),
                 ("tcp_keepalive_probes", 2)):
        n.c.sysctl_set(f"net.ipv4.{k}", v)
    cs, ss = _keepalive(n)
    n.link.ba.set(loss=1.0)
    with pytest.raises(OSError):
        cs.recv(10)
    assert client_times(n) == [30.015, 35.015, 40.015]
    assert [s.flags for s in n.segs if s.host == "client"] == [".", ".", "R."]


def test_keepalive_answered_probes_keep_the_connection():
    n = Net(delay=0.005)
    cs, ss = _keepalive(n, 10, 5, 2)
    n.run_for(100)
    # answered probes reset the count (tcp_ack: icsk_probes_out = 0); the next probe comes
    # keepalive_time after the answer (10 ms after each probe)
    assert client_times(n)[:3] == [10.01, 20.02, 30.03]
    assert cs.sk.state == 1
    assert ss.sk.state == 1


def test_any_received_segment_resets_the_idle_timer():
    n = Net(delay=0.005)
    cs, ss = _keepalive(n)
    n.w.run_until(3000)
    ss.sendall(b"hi")                           # reaches the client at 3000.005
    assert cs.recv(10) == b"hi"
    n.link.ba.set(loss=1.0)
    n.cap.clear()
    n.w.run_until(9000)
    assert client_times(n) == []                # the 7200.015 expiry found only 4200 s idle
    n.w.run_until(10300)
    assert client_times(n, flags=".")[:2] == [10200.005, 10275.005]


# ---- closing states -----------------------------------------------------------------------------

def test_orphaned_fin_wait1_gives_up_after_orphan_retries():
    # tcp_orphan_retries=0 means 8 while the RTO is below 120 s (tcp_orphan_retries()): the
    # model's 102.2 s from the first RTO retransmission (0.232) ends at the RTO of 107.347,
    # which kills the orphan silently (no RST). With two segments out ("z" and FIN) the tail
    # loss probe comes 2*srtt + 2 ms after the send. Linux 6.18 over a 10 ms RTT
    # (KernelRelay): TLP 0.028, RTOs 0.244, 0.684, 1.548, 3.276 ...; no RST; nstat
    # TcpExtTCPAbortOnTimeout 1, TcpOutRsts 0.
    n = Net(delay=0.005)
    cs, ss, ls = established(n)
    n.link.ab.set(loss=1.0)
    t0 = n.now()
    cs.sendall(b"z")
    cs.close()
    n.run_for(200)
    assert client_times(n, t0) == [0, 0, 0.022, 0.232, 0.652, 1.492, 3.172, 6.532, 13.252,
                                   26.692, 53.572]
    assert "0.015000 client ESTABLISHED->FIN_WAIT1" in n.state_lines()
    assert n.state_lines()[-1] == "107.347000 client FIN_WAIT1->CLOSE"
    assert not any("R" in s.flags for s in n.segs)
    assert mib(n.c, "TcpExtTCPAbortOnTimeout", "TcpOutRsts") == {
        "TcpExtTCPAbortOnTimeout": 1, "TcpOutRsts": 0}


def test_orphan_retries_2():
    # tcp_orphan_retries=2: model 1.4 s from 0.232 (after the TLP at 0.022); the RTO at 1.492
    # (1.26 s) still retransmits, the one at 3.172 kills.
    n = Net(delay=0.005)
    n.c.sysctl_set("net.ipv4.tcp_orphan_retries", 2)
    cs, ss, ls = established(n)
    n.link.ab.set(loss=1.0)
    t0 = n.now()
    cs.sendall(b"z")
    cs.close()
    n.run_for(20)
    assert client_times(n, t0) == [0, 0, 0.022, 0.232, 0.652, 1.492]
    assert n.state_lines()[-1] == "3.187000 client FIN_WAIT1->CLOSE"


@pytest.mark.parametrize("fin_timeout, gone", [
    (60, 60.025),
    (5, 5.025),
    # tcp_fin_timeout > 60: tcp_close arms the keepalive timer for fin_timeout - 60, then
    # tcp_keepalive_timer hands the socket to a mini socket for another fin_timeout - 60.
    # Linux 6.18 with tcp_fin_timeout=70: the FIN_WAIT2 socket is gone after 20.5 s.
    (70, 20.025),
])
def test_fin_wait2_orphan_timeout(fin_timeout, gone):
    n = Net(delay=0.005)
    n.c.sysctl_set("net.ipv4.tcp_fin_timeout", fin_timeout)
    cs, ss, ls = established(n)
    cs.close()                                   # FIN at 15 ms, acked at 25 ms
    n.w.run_until(0.065)
    (line,) = netstat_napo(n.c, header=False)
    assert " FIN_WAIT2 " in line
    if fin_timeout <= 60:
        assert line.endswith(f"timewait ({fin_timeout - 0.04:.2f}/0/0)")
    else:
        assert line.endswith(f"keepalive ({fin_timeout - 60 - 0.04:.2f}/0/0)")
    # Linux counts TcpExtTW when the mini socket is scheduled, not when it expires
    # (Linux 6.18: TcpExtTW 1 right after close() with tcp_fin_timeout=5)
    assert n.c.mib["TcpExtTW"] == (1 if fin_timeout <= 60 else 0)
    n.w.run_until(gone - 0.0005)
    assert len(netstat_napo(n.c, header=False)) == 1
    n.w.run_until(gone + 0.0005)
    assert netstat_napo(n.c, header=False) == []
    assert n.c.mib["TcpExtTW"] == 1
    assert [s.flags for s in n.segs if s.host == "client"] == ["F."]   # no RST


def test_time_wait_lasts_60s():
    n = Net(delay=0.005)
    cs, ss, ls = established(n)
    cs.close()
    n.run_for(0.1)
    assert ss.recv(10) == b""
    ss.close()                                   # FIN at 115 ms; TIME_WAIT from 120 ms
    n.w.run_until(0.220)
    (line,) = netstat_napo(n.c, header=False)
    assert " TIME_WAIT " in line and line.endswith("timewait (59.90/0/0)")
    assert n.c.mib["TcpExtTW"] == 1
    n.w.run_until(60.1199)
    assert len(netstat_napo(n.c, header=False)) == 1
    n.w.run_until(60.1201)
    assert netstat_napo(n.c, header=False) == []


def test_last_ack_retransmits_fin_and_time_wait_reacks_restarting_60s():
    n = Net(delay=0.005)
    cs, ss, ls = established(n)
    cs.close()
    n.run_for(0.1)
    n.link.ab.set(loss=1.0)                      # the client's ACKs of the server's FIN are lost
    ss.close()                                   # FIN at 115 ms
    n.w.run_until(0.6)
    n.link.ab.set(loss=0.0)
    n.run_for(120)
    assert n.lines() == [
        "0.015000 client F. seq 1 ack 1 len 0",
        "0.020000 server . seq 1 ack 2 len 0",
        "0.115000 server F. seq 1 ack 2 len 0",   # LAST_ACK
        "0.120000 client . seq 2 ack 2 len 0",    # lost; TIME_WAIT starts
        "0.325000 server F. seq 1 ack 2 len 0",   # tail loss probe (capped by the RTO)
        "0.330000 client . seq 2 ack 2 len 0",    # TIME_WAIT re-ACK (lost)
        "0.535000 server F. seq 1 ack 2 len 0",   # RTO 210 ms after the probe
        "0.540000 client . seq 2 ack 2 len 0",    # re-ACK (lost)
        "0.955000 server F. seq 1 ack 2 len 0",   # backoff: 420 ms
        "0.960000 client . seq 2 ack 2 len 0",    # re-ACK, TIME_WAIT restarts: 60.96
    ]
    assert n.state_lines()[-2:] == ["0.965000 server LAST_ACK->CLOSE",
                                    "60.960000 client TIME_WAIT->CLOSE"]
    assert mib(n.s, "TcpExtTCPTimeouts", "TcpRetransSegs", "TcpExtTCPLossProbes") == {
        "TcpExtTCPTimeouts": 2, "TcpRetransSegs": 3, "TcpExtTCPLossProbes": 1}


def test_close_wait_lasts_until_the_application_closes():
    n = Net(delay=0.005)
    cs, ss, ls = established(n)
    cs.close()
    n.run_for(10_000)
    (line,) = [x for x in netstat_napo(n.s, header=False) if "CLOSE_WAIT" in x]
    assert line.endswith("off (0.00/0/0)")
    assert ss.recv(10) == b""
    ss.close()
    n.run_for(1)
    # the client's orphaned FIN_WAIT2 expired long ago (60 s): its host answers with a RST
    assert n.lines()[-2:] == ["10000.015000 server F. seq 1 ack 2 len 0",
                              "10000.020000 client R seq 2 ack 0 len 0"]
    assert n.state_lines()[-2:] == ["10000.015000 server CLOSE_WAIT->LAST_ACK",
                                    "10000.025000 server LAST_ACK->CLOSE"]


def test_abort_on_close_with_unread_data():
    n = Net(delay=0.005)
    cs, ss, ls = established(n)
    cs.sendall(b"unread")
    n.run_for(0.1)
    ss.close()
    assert [s.flags for s in n.segs if s.host == "server"][-1] == "R."
    assert n.s.mib["TcpExtTCPAbortOnClose"] == 1


# ---- zero-window probe ----------------------------------------------------------------------------

def test_zero_window_probes_back_off_to_120s():
    n = Net(delay=0.005)
    ls = n.s.socket()
    ls.setsockopt(SOL_SOCKET, SO_RCVBUF, 4096)
    ls.bind(("0.0.0.0", 80))
    ls.listen(5)
    cs = n.c.socket()
    cs.connect(("10.0.0.2", 80))
    ss, _ = ls.accept()
    cs.setblocking(False)
    for _ in range(10):
        try:
            cs.send(b"z" * 10000)
        except BlockingIOError:
            pass
        n.run_for(0.5)
    assert ss.sk.rcv_wnd == 0 or True
    n.cap.clear()
    n.run_for(1200)
    probes = [s for s in n.segs if s.host == "client"]
    assert probes and all(s.flags == "." and s.len == 0
                          and s.raw_seq == (cs.sk.snd_una - 1) & 0xFFFFFFFF for s in probes)
    times = [s.t for s in probes]
    gaps = [r6(b - a) for a, b in zip(times, times[1:], strict=False)]
    # tcp_ack_probe re-arms the timer when the zero-window ACK arrives (10 ms after the
    # probe) with base << backoff; tcp_probe0_when caps it at TCP_RTO_MAX
    waits = [r6(g - 0.010) for g in gaps]
    for a, b in zip(waits, waits[1:], strict=False):
        assert b == min(r6(2 * a), 120)
    assert waits[-1] == 120
    assert n.c.mib["TcpExtTCPWinProbe"] >= len(probes)
    assert timer_col(n.c)[0].startswith("probe (")
    assert cs.sk.state == 1                      # answered probes never time out


# ---- delayed ACK ----------------------------------------------------------------------------------

def test_quick_acks_at_start_then_delayed_ack_40ms():
    n = Net(delay=0.005)
    # the sender's tail loss probes (2*srtt + 2 ms with two segments out, shorter than the
    # 40 ms delayed ACK) would add segments and immediate ACKs; this test is about the receiver
    n.c.sysctl_set("net.ipv4.tcp_early_retrans", 0)
    cs, ss, ls = established(n)
    cs.setsockopt(IPPROTO_TCP, 1, 1)             # TCP_NODELAY
    t0 = n.now()
    for i in range(40):                          # 100 bytes every 25 ms
        n.w.run_until(t0 + 0.025 * i)
        cs.send(b"x" * 100)
    n.run_for(1)
    acks = [s for s in n.segs if s.host == "server"]
    arrivals = [r6(s.t + 0.005) for s in n.segs if s.host == "client"]
    assert len(arrivals) == 40
    # quick ACK mode at the start (tcp_incr_quickack, 16 at most): ACKed on arrival
    quick = [a for a in acks if r6(a.t) in arrivals]
    assert len(quick) == 16 and [r6(a.t) for a in quick] == arrivals[:16]
    # then the delayed-ACK timer: each ACK leaves TCP_ATO_MIN = 40 ms after the first segment
    # it covers arrived (ato is bounded by max(srtt, 40 ms) = 40 ms on a 10 ms RTT)
    acked = 16
    for a in acks[16:]:
        first = arrivals[acked]
        assert r6(a.t - first) == 0.040
        acked = a.ack // 100
    assert acked == 40
    assert n.s.mib["TcpExtDelayedACKs"] == len(acks) - 16
