"""The send path as Linux 6.18 shapes it: TSO bursts and their PSH, size_goal skbs, the
send-buffer charge (skb truesize) and TCP_NOTSENT_LOWAT. Expected values were recorded from
the real kernel over a TUN device (see the scripts' comments)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpdive.packetdrill.runner import run_script
from tcpdive.tcp.output import (
    SKB_TRUESIZE_OVERHEAD,
    tcp_sndbuf_expand,
    tcp_wmem_queued,
    tcp_xmit_size_goal,
)

from .helpers import Net

SCRIPTS = Path(__file__).parent.parent / "packetdrill" / "scripts" / "send_path"
STRICT = {"tso-psh-pacing.pkt", "tso-psh-halfcwnd.pkt"}   # segment by segment


@pytest.mark.parametrize("name", sorted(p.name for p in SCRIPTS.glob("*.pkt")))
def test_send_path_script(name: str) -> None:
    res = run_script(str(SCRIPTS / name), strict_segments=name in STRICT)
    assert res.verdict == "PASS", f"{res.reason}\n{res.details}"


def _server_sock(n: Net):
    ls = n.listener(80)
    cs = n.c.socket()
    cs.connect(("10.0.0.2", 80))
    ss, _ = ls.accept()
    return cs, ss


def test_each_skb_is_charged_its_truesize() -> None:
    # Linux 6.18 (SO_MEMINFO): send 1 byte -> wmem_queued 833; then 1000 more -> 2665
    n = Net(delay=0.05)
    _cs, ss = _server_sock(n)
    sk = ss.sk
    ss.send(b"x")
    assert tcp_wmem_queued(sk) == 1 + SKB_TRUESIZE_OVERHEAD == 833
    ss.send(b"y" * 1000)
    assert tcp_wmem_queued(sk) == 1001 + 2 * SKB_TRUESIZE_OVERHEAD == 2665
    n.run_for(0.2)                               # all acked: nothing charged
    assert tcp_wmem_queued(sk) == 0


def test_size_goal_is_half_the_peer_window_in_whole_mss() -> None:
    n = Net(delay=0.005)
    _cs, ss = _server_sock(n)
    sk = ss.sk
    sk.max_window = 32896
    assert tcp_xmit_size_goal(sk, 1000, True) == 16000
    assert tcp_xmit_size_goal(sk, 1000, False) == 1000          # MSG_OOB
    sk.max_window = 1 << 20
    assert tcp_xmit_size_goal(sk, 1000, True) == 65000          # sk_gso_max_size 65343


def test_sndbuf_expand_counts_worst_case_skbs() -> None:
    # Linux 6.18 with tcp_wmem[1] = 16384, cwnd 10, cubic: 2 * 10 * (pow2(mss + 512) + 256)
    n = Net(delay=0.005)
    _cs, ss = _server_sock(n)
    sk = ss.sk
    for mss, want in ((500, 25600), (1000, 46080), (2000, 87040)):
        sk.sk_sndbuf = 16384
        sk.mss_clamp = sk.mss_cache = mss
        sk.snd_cwnd = 10
        tcp_sndbuf_expand(sk)
        assert sk.sk_sndbuf == want, mss


def test_sack_blocks_shrink_segments_without_runts() -> None:
    # Queued as 1448-byte skbs beyond the initial cwnd of 10; then a SACK block is to be
    # reported, so tcp_current_mss is 12 bytes smaller (NOP,NOP + 10). Linux cuts its TSO skbs
    # at multiples of that MSS and grows a short head from the next skb (tcp_grow_skb): the wire
    # is full 1436-byte segments and one tail, never 1436 + 12 pairs
    n = Net(delay=0.005)
    cs, ss, _ls = n.connect_pair()
    n.run_for(0.1)
    sk = cs.sk
    before = len(n.segs)
    cs.send(b"z" * (30 * 1448))
    assert len(sk.write_queue) == 20 and {len(s.data) for s in sk.write_queue} == {1448}
    sk.num_sacks = 1
    sk.selective_acks = [(sk.rcv_nxt + 1000, sk.rcv_nxt + 2000)]
    n.run_for(0.5)
    seen: set[int] = set()
    data = [s for s in n.segs[before:] if s.host == "client" and s.len
            and not (s.seq in seen or seen.add(s.seq))]          # first transmissions
    assert [s.len for s in data[10:]] == [1436] * 20 + [20 * 12]
    assert all("sack" in s.opts for s in data[10:])


def test_qdisc_drop_enters_cwr_and_probes() -> None:
    # tc qdisc ... pfifo limit 0: every packet is dropped at enqueue; __tcp_transmit_skb sees
    # NET_XMIT_DROP, calls tcp_enter_cwr (ssthresh = cwnd * 0.7 for CUBIC, CA state CWR) and
    # tcp_write_xmit stops; the probe timer retries every TCP_RESOURCE_PROBE_INTERVAL (500 ms)
    n = Net(delay=0.005)
    cs, ss, _ls = n.connect_pair()
    n.run_for(0.1)
    sk = cs.sk
    dev = n.dev(n.c)
    dev.set_qdisc(0)
    before = len(n.segs)
    cs.send(b"q" * 5000)
    assert sk.icsk_ca_state == 2 and sk.snd_ssthresh == 7      # TCP_CA_CWR; 10*717 >> 10
    assert dev.qdisc_drops == 1 and len(n.segs) == before and sk.packets_out == 0
    n.run_for(1.2)
    assert dev.qdisc_drops == 3                                     # at +0.5 s and +1.0 s
    dev.set_qdisc(None)
    n.run_for(0.6)
    assert ss.recv(10000) == b"q" * 5000
