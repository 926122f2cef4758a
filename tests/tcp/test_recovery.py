"""Loss recovery as Linux does it (issue #8): fast retransmit, limited transmit, SACK, PRR,
RACK-TLP, F-RTO / Eifel undo. Exact segment sequences on a 5 ms one-way link."""

from __future__ import annotations

import struct

from tcpdive.skb import SKB, TCPCB_LOST
from tcpdive.tcp.recovery import tcp_rack_detect_loss, tcp_tsorted_add
from tcpdive.tcp.sock import TCP_CA_Open
from tcpdive.tcp.sockopt import tcp_get_info

from .helpers import Net

MSS = 1448


def drop_first_tx(rel_seqs: set[int], base: int):
    """Link filter: drop the first transmission of the data segments at these relative seqs."""
    seen: set[int] = set()

    def flt(pkt: bytes) -> bool:
        ihl = (pkt[0] & 15) * 4
        seq = struct.unpack_from("!I", pkt, ihl + 4)[0]
        doff = (pkt[ihl + 12] >> 4) * 4
        if len(pkt) - ihl - doff:
            rel = (seq - base) & 0xFFFFFFFF
            if rel in rel_seqs and rel not in seen:
                seen.add(rel)
                return False
        return True
    return flt


def run(sack: bool, drop: list[int], nseg: int, until: float = 2.0):
    n = Net(delay=0.005)
    if not sack:
        for h in (n.c, n.s):
            h.sysctl_set("net.ipv4.tcp_sack", 0)
    cs, ss, ls = n.connect_pair()
    n.link.ab.filter = drop_first_tx({d * MSS for d in drop}, cs.sk.snd_nxt & 0xFFFFFFFF)
    n.cap.clear()
    t0 = n.now()
    cs.sendall(b"x" * MSS * nseg)
    n.run_for(until)
    got = b""
    while len(got) < MSS * nseg:
        got += ss.recv(1 << 20)
    assert got == b"x" * MSS * nseg
    return n, cs, t0


def client_data(n: Net, t0: float) -> list[tuple[float, int]]:
    return [(round(s.t - t0, 6), s.seq) for s in n.segs if s.host == "client" and s.len]


def test_fast_retransmit_on_third_dupack_with_limited_transmit_reno():
    # IW 10 leaves at 0; segment 2 (seq 2897) is lost. At 10 ms the ACKs arrive: the first
    # advances (slow start: 2 new segments), dupacks 1 and 2 each clock out one new segment
    # (limited transmit, RFC 3042: sacked_out lowers in-flight), the 3rd starts fast recovery
    # and the hole is retransmitted at once.
    n, cs, t0 = run(False, [2], 14)
    d = client_data(n, t0)
    assert d[:10] == [(0.0, 1 + i * MSS) for i in range(10)]
    assert d[10:] == [(0.01, 14481), (0.01, 15929), (0.01, 17377), (0.01, 18825), (0.01, 2897)]
    assert n.c.mib["TcpExtTCPRenoRecovery"] == 1 and n.c.mib["TcpRetransSegs"] == 1
    # without SACK Linux holds Recovery until something above high_seq is acked
    # (tcp_is_non_sack_preventing_reopen)
    assert cs.sk.icsk_ca_state == 3 and cs.sk.snd_una == cs.sk.high_seq


def test_fast_retransmit_with_sack_and_rack():
    n, cs, t0 = run(True, [2], 14)
    d = client_data(n, t0)
    assert d[10:] == [(0.01, 14481), (0.01, 15929), (0.01, 17377), (0.01, 18825), (0.01, 2897)]
    assert n.c.mib["TcpExtTCPSackRecovery"] == 1 and n.c.mib["TcpRetransSegs"] == 1
    # the retransmission, sent after the SACKed segments of the same burst, is not lost
    assert n.c.mib["TcpExtTCPLostRetransmit"] == 0
    # SACK blocks from the receiver: the out-of-order range, growing as segments arrive
    sacks = [s.opts for s in n.segs if s.host == "server" and "sack" in s.opts]
    assert sacks and all("sack 1 " in o for o in sacks)


def test_prr_cwnd_trajectory():
    # cwnd 46, two holes in the next flight, the sender has data queued and the receiver a big
    # window: RFC 6937 PRR sends ssthresh/prior_cwnd = 32/46 of what is delivered, so in-flight
    # slides from 45 down to ssthresh (32) over one RTT instead of halting, then cwnd = ssthresh
    n = Net(delay=0.005)
    n.c.sysctl_set("net.ipv4.tcp_slow_start_after_idle", 0)
    n.s.sysctl_set("net.ipv4.tcp_rmem", "4096 1048576 6291456")
    cs, ss, ls = n.connect_pair()
    traj = []
    n.c.trace.tcp_probe.attach(lambda sk, now: traj.append(
        (sk.icsk_ca_state, sk.snd_cwnd, sk.snd_ssthresh, sk.tcp_packets_in_flight(),
         sk.prr_delivered, sk.prr_out)))
    cs.sendall(b"x" * MSS * 30)
    n.run_for(1)
    n.link.ab.filter = drop_first_tx({35 * MSS, 39 * MSS}, (cs.sk.iss + 1) & 0xFFFFFFFF)
    traj.clear()
    cs.setblocking(False)
    cs.send(b"x" * MSS * 200)
    n.run_for(0.06)
    rec = [t[1:] for t in traj if t[0] == 3]
    assert cs.sk.prior_cwnd == 46 and all(t[1] == 32 for t in rec)   # 46 * 717 / 1024
    # (cwnd, ssthresh, in-flight, prr_delivered, prr_out) after each ACK
    assert rec[:8] == [(45, 32, 45, 1, 1), (44, 32, 44, 2, 2), (44, 32, 43, 3, 2),
                       (43, 32, 43, 4, 3), (43, 32, 42, 5, 3), (43, 32, 42, 6, 4),
                       (42, 32, 42, 7, 5), (42, 32, 41, 8, 5)]
    for _cwnd, ssthresh, _inflight, delivered, out in rec:
        assert out <= -(-delivered * ssthresh // 46) + 1        # proportional (+ the fast rexmit)
    assert rec[-1][2] <= 32 + 1
    end = max(i for i, t in enumerate(traj) if t[0] == 3)
    assert traj[end + 1][:3] == (0, 32, 32)                     # tcp_end_cwnd_reduction


def test_rack_marks_by_time():
    n = Net(delay=0.005)
    cs, ss, ls = n.connect_pair()
    sk = cs.sk
    sk.rtx_queue = __import__("collections").deque()
    sk.tsorted = {}
    skbs = []
    for i, t in enumerate([1000, 2000, 3000]):
        skb = SKB(100 + i * 10, 110 + i * 10, 0x10, b"x" * 10)
        skb.tstamp = t
        skb.tx_seq = i + 1
        sk.rtx_queue.append(skb)
        tcp_tsorted_add(sk, skb)
        skbs.append(skb)
    sk.packets_out = 3
    sk.reord_seen = 1                       # a reordering window of min_rtt/4 applies
    sk.min_rtt_us = 8000
    sk.srtt_us = 8000 << 3
    sk.rack_mstamp, sk.rack_end_seq, sk.rack_rtt_us = 3000, 3, 8000   # the third was delivered
    sk.tcp_mstamp = 10_500                  # 9.5 ms after the first: 8 ms RTT + 2 ms window not over
    # waits: first 8000 + 2000 - 9500 = 500 us, second 8000 + 2000 - 8500 = 1500 us
    assert tcp_rack_detect_loss(sk) == 1500
    assert not skbs[0].sacked & TCPCB_LOST
    sk.tcp_mstamp = 11_000
    tcp_rack_detect_loss(sk)
    assert skbs[0].sacked & TCPCB_LOST and not skbs[1].sacked & TCPCB_LOST
    assert sk.lost_out == 1


def test_tlp_repairs_tail_loss_at_2_srtt():
    # the last of 10 segments is lost: no dupacks follow. The ACK of the other nine (at 10 ms)
    # re-arms the probe timer with one segment out: 2*srtt + tcp_rto_min (the delayed-ACK
    # allowance) = 20 + 200 ms, capped by the RTO (210 ms from the first send); the probe resends the tail
    # at 0.22 s
    n, cs, t0 = run(True, [9], 10)
    d = client_data(n, t0)
    assert d[-1][1] == 1 + 9 * MSS
    assert d[-1][0] == 0.22
    assert n.c.mib["TcpExtTCPLossProbes"] == 1
    assert n.c.mib["TcpExtTCPTimeouts"] == 0
    # the ACK ends exactly at tlp_high_seq: not "after" it, so no CWR episode
    # (tcp_process_tlp_ack); cwnd is untouched
    assert n.c.mib["TcpExtTCPLossProbeRecovery"] == 0 and cs.sk.icsk_ca_state == TCP_CA_Open


def test_rto_undo_on_spurious_timeout_with_timestamps():
    # ACKs held up 600 ms: the loss probe and then the RTO fire (Loss, cwnd 1), then the
    # original ACKs arrive echoing timestamps older than the first RTO retransmission
    # (Eifel, tcp_packet_delayed): tcp_try_undo_loss restores cwnd and ssthresh
    n = Net(delay=0.005)
    n.c.sysctl_set("net.ipv4.tcp_slow_start_after_idle", 0)
    cs, ss, ls = n.connect_pair()
    cs.sendall(b"x" * MSS * 20)
    n.run_for(1)
    cwnd, ssthresh = cs.sk.snd_cwnd, cs.sk.snd_ssthresh
    n.link.ba.set(delay=0.6)
    cs.sendall(b"x" * MSS * 4)
    n.run_for(0.3)
    assert cs.sk.icsk_ca_state == 4 and cs.sk.snd_cwnd == 1          # TCP_CA_Loss
    assert n.c.mib["TcpExtTCPTimeouts"] == 1 and n.c.mib["TcpExtTCPLossProbes"] >= 1
    n.link.ba.set(delay=0.005)
    n.run_for(2)
    assert n.c.mib["TcpExtTCPLossUndo"] == 1
    assert cs.sk.snd_cwnd == cwnd and cs.sk.snd_ssthresh == ssthresh
    assert cs.sk.icsk_ca_state == TCP_CA_Open
    info = tcp_get_info(cs.sk)
    assert info.tcpi_ca_state == TCP_CA_Open and info.tcpi_snd_cwnd == cwnd


def test_ca_states_in_tcp_info_during_recovery():
    # a SACK recovery seen through tcp_info: Disorder on the first SACK, Recovery once RACK
    # marks the hole lost, Open again after it is repaired
    n = Net(delay=0.005)
    cs, ss, ls = n.connect_pair()
    seen = []
    n.c.trace.tcp_probe.attach(lambda sk, now: seen.append(tcp_get_info(sk).tcpi_ca_state))
    n.link.ab.filter = drop_first_tx({2 * MSS}, cs.sk.snd_nxt & 0xFFFFFFFF)
    cs.sendall(b"x" * MSS * 14)
    n.run_for(1)
    states = [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]
    assert states == [0, 1, 3, 0]      # Open, Disorder, Recovery, Open


def test_partial_sack_splits_an_skb_larger_than_mss():
    # an rtx skb of 3 MSS (queued before the MSS shrank): a SACK of its last two MSS splits it
    # on the MSS boundary and tags the right part (tcp_match_skb_to_sack + tcp_fragment)
    from collections import deque

    from tcpdive.tcp.input import SackState, tcp_sacktag_write_queue

    n = Net(delay=0.005)
    cs, ss, ls = n.connect_pair()
    sk = cs.sk
    mss = sk.mss_cache
    s0 = sk.snd_una
    big = SKB(s0, s0 + 3 * mss, 0x10, b"y" * 3 * mss)
    big.tstamp = big.first_tx = 1000
    big.tx_seq = 1
    sk.rtx_queue = deque([big])
    sk.tsorted = {}
    tcp_tsorted_add(sk, big)
    sk.packets_out = 1
    sk.snd_nxt = s0 + 3 * mss
    sk.tcp_mstamp = 5000
    sk.rx_opt_sack = [((s0 + mss) & 0xFFFFFFFF, (s0 + 3 * mss) & 0xFFFFFFFF)]
    flag = tcp_sacktag_write_queue(sk, s0, s0, SackState(sk.snd_nxt))
    assert flag & 0x20                                            # FLAG_DATA_SACKED
    assert [(s.seq - s0, s.end_seq - s0, s.sacked) for s in sk.rtx_queue] == [
        (0, mss, 0), (mss, 3 * mss, 1)]
    assert sk.packets_out == 2 and sk.sacked_out == 1
    assert list(sk.tsorted) == [big]                              # the SACKed part left it


def test_reordering_recoveries_are_undone_by_timestamps():
    # reordering only, no loss: a fast retransmit triggered by a late segment is undone when
    # the original's ACK echoes a timestamp older than the retransmission (Eifel,
    # tcp_try_undo_partial); the reordering seen raises tp->reordering (tcp_check_sack_reordering)
    from .test_stream_property import _stream, transfer

    w, link = transfer(3, _stream(1, 2_000_000), b"", loss=0, reorder=0.05, duplicate=0,
                       corrupt=0, client_first=True, sack=True)
    mib = w.hosts["client"].mib
    assert mib["TcpExtTCPSackRecovery"] >= 1
    assert mib["TcpExtTCPPartialUndo"] + mib["TcpExtTCPFullUndo"] + mib["TcpExtTCPDSACKUndo"] \
        == mib["TcpExtTCPSackRecovery"]
    assert mib["TcpExtTCPSACKReorder"] > 0
