"""RTT samples and the RTO as Linux 6.x takes them (tcp_clean_rtx_queue, tcp_ack_update_rtt,
tcp_rtt_tsopt_us): Karn's rule for ACK timing, the TS-ECR fallback, and the stale-echo sample
that Linux, too, takes from a dupack answering a spurious RTO retransmission."""

from __future__ import annotations

import struct
from collections import deque

import pytest

from tcpdive.skb import SKB, TCPCB_RETRANS
from tcpdive.tcp import rtt as R
from tcpdive.tcp.input import (
    FLAG_DATA_ACKED,
    FLAG_ORIG_SACK_ACKED,
    FLAG_RETRANS_DATA_ACKED,
    SackState,
    tcp_clean_rtx_queue,
)
from tcpdive.tcp.output import tcp_time_stamp_ts

from .helpers import Net

MSS = 1448


def _tcp(pkt: bytes) -> tuple[int, int, int]:
    """(seq, ack, payload length) of an IPv4/TCP packet."""
    ihl = (pkt[0] & 15) * 4
    seq, ack = struct.unpack_from("!II", pkt, ihl + 4)
    doff = (pkt[ihl + 12] >> 4) * 4
    return seq, ack, len(pkt) - ihl - doff


@pytest.fixture
def samples(monkeypatch):
    """Every sample fed to tcp_rtt_estimator, as (socket, us)."""
    got: list[tuple[object, int]] = []
    orig = R.tcp_rtt_estimator

    def spy(sk, mrtt_us):
        got.append((sk, mrtt_us))
        orig(sk, mrtt_us)
    monkeypatch.setattr(R, "tcp_rtt_estimator", spy)
    return got


def _lose_head(n: Net, cs, *, drop_first_ack: bool):
    """Send 3 segments without SACK; the first transmission of the first is lost, so two
    dupacks come back and the RTO retransmits it. Optionally the server's ACK for that
    retransmission is lost too."""
    base = cs.sk.snd_nxt & 0xFFFFFFFF
    seen = {"data": False, "ack": False}

    def ab(pkt: bytes) -> bool:
        seq, _, ln = _tcp(pkt)
        if ln and seq == base and not seen["data"]:
            seen["data"] = True
            return False
        return True

    def ba(pkt: bytes) -> bool:
        _, ack, ln = _tcp(pkt)
        if drop_first_ack and not ln and ack == (base + 3 * MSS) & 0xFFFFFFFF \
                and not seen["ack"]:
            seen["ack"] = True
            return False
        return True
    n.link.ab.filter = ab
    n.link.ba.filter = ba
    cs.sendall(b"x" * 3 * MSS)


def _nosack_pair():
    n = Net(delay=0.005)
    for h in (n.c, n.s):
        h.sysctl_set("net.ipv4.tcp_sack", 0)
    cs, ss, ls = n.connect_pair()
    n.run_for(1)
    return n, cs, ss


def test_karn_ack_of_retransmission_takes_the_tsecr_sample(samples):
    # The ACK that acks the RTO retransmission also acks two originals sent ~210 ms before.
    # Linux (tcp_clean_rtx_queue) takes no ACK-timing sample once FLAG_RETRANS_DATA_ACKED is
    # set, and falls back to now - TSecr: the receiver stored the retransmission's TSval
    # (seq <= rcv_wup), so the sample is the true 10 ms, not ~220 ms.
    n, cs, ss = _nosack_pair()
    sk = cs.sk
    rto0 = sk.icsk_rto
    samples.clear()
    _lose_head(n, cs, drop_first_ack=False)
    n.run_for(1)
    assert sk.snd_una == sk.snd_nxt and n.c.mib["TcpExtTCPTimeouts"] == 1
    mine = [us for s, us in samples if s is sk]
    assert mine == [10_000]
    assert sk.icsk_backoff == 0
    # Linux's arithmetic: srtt 10 ms stays, rttvar decays toward mdev_max (tcp_rto_min)
    assert sk.srtt_us >> 3 == 10_000 and sk.icsk_rto == rto0 == 210_000
    assert ss.recv(1 << 16) == b"x" * 3 * MSS


def test_stale_ts_recent_echo_of_a_spurious_rto_retransmission_is_sampled(samples):
    # As in Linux: the first RTO retransmission fills the hole and its ACK is lost. The second
    # (spurious) retransmission is old data below rcv_wup: tcp_sequence fails, tcp_send_dupack
    # answers with the ts_recent stored from the first retransmission (ts_recent is not updated
    # for a segment that fails tcp_sequence). The ACK acks only retransmitted data, so
    # tcp_ack_update_rtt takes now - TSecr: the backed-off RTO plus the path RTT. Linux 6.18
    # does the same; with 20 % loss each way this is how its RTO climbs toward TCP_RTO_MAX.
    n, cs, ss = _nosack_pair()
    sk = cs.sk
    samples.clear()
    rtx: list[float] = []
    n.c.trace.retransmit.attach(lambda s, skb, now: rtx.append(now))
    _lose_head(n, cs, drop_first_ack=True)
    n.run_for(2)
    assert sk.snd_una == sk.snd_nxt and n.c.mib["TcpExtTCPTimeouts"] == 2
    assert len(rtx) == 2 and rtx[1] - rtx[0] == 2 * 210_000       # backed off once
    mine = [us for s, us in samples if s is sk]
    assert mine == [2 * 210_000 + 10_000]                           # 430 ms, not 10 ms
    assert sk.icsk_backoff == 0
    # srtt 10 -> 10 + (430 - 10) / 8 = 62.5 ms; mdev 5 -> 5 + (420 - 5) / 4 = 108.75 ms,
    # rttvar = 4 * mdev = 435 ms: RTO = 62.5 + 435 = 497.5 -> 498 ms (jiffy rounding)
    assert sk.srtt_us >> 3 == 62_500 and sk.icsk_rto == 498_000
    assert ss.recv(1 << 16) == b"x" * 3 * MSS


def test_rtt_tsopt_us_ms_clock():
    n = Net(delay=0.005)
    cs, ss, ls = n.connect_pair()
    sk = cs.sk
    sk.rcv_tsecr = tcp_time_stamp_ts(sk)
    assert R.tcp_rtt_tsopt_us(sk, 1) == 1000            # this ms: one ms (tcp_ack_update_rtt)
    assert R.tcp_rtt_tsopt_us(sk, 0) == 0               # (tcp_rcv_rtt_measure_ts)
    sk.rcv_tsecr = (tcp_time_stamp_ts(sk) - 37) & 0xFFFFFFFF
    assert R.tcp_rtt_tsopt_us(sk, 1) == 37_000
    sk.rcv_tsecr = (tcp_time_stamp_ts(sk) - 2_147_483) & 0xFFFFFFFF   # >= INT_MAX / 1000 ms
    assert R.tcp_rtt_tsopt_us(sk, 1) == -1
    sk.rcv_tsecr = (tcp_time_stamp_ts(sk) + 5) & 0xFFFFFFFF           # echo from the future
    assert R.tcp_rtt_tsopt_us(sk, 1) == -1


@pytest.mark.parametrize("sack", [True, False], ids=["sack", "nosack"])
def test_clean_rtx_queue_karn_flags(sack):
    n = Net(delay=0.005)
    cs, ss, ls = n.connect_pair()
    sk = cs.sk
    sk.sack_ok = sack
    una = sk.snd_una
    head = SKB(una, una + 100, 0x10, b"a" * 100)
    head.tstamp, head.sacked, head.tx_seq = 500_000, TCPCB_RETRANS, 2   # retransmitted at 0.5 s
    orig = SKB(una + 100, una + 200, 0x10, b"b" * 100)
    orig.tstamp, orig.tx_seq = 100_000, 1                       # original, sent at 0.1 s
    sk.rtx_queue = deque([head, orig])
    sk.tsorted = None
    sk.packets_out = 2
    sk.retrans_out = 0
    sk.high_seq = una + 200
    sk.snd_una = una + 200
    sk.tcp_mstamp = 600_000
    flag, acked, seq_rtt, sack_rtt, ca_rtt = tcp_clean_rtx_queue(sk, una, una, SackState(una))
    assert acked == 2 and flag & FLAG_DATA_ACKED and flag & FLAG_RETRANS_DATA_ACKED
    assert (seq_rtt, sack_rtt, ca_rtt) == (-1, -1, -1)         # not 500 ms from the original
    # without SACK a cumulative ACK over a retransmission is no evidence the original arrived
    assert bool(flag & FLAG_ORIG_SACK_ACKED) == sack


def test_synack_echoing_the_first_syn_is_an_rtt_sample():
    # The first SYN-ACK is lost; the SYN is retransmitted at 1 s and the request socket answers
    # again, echoing the TSval of the first SYN (req->ts_recent). The ACK acks a retransmitted
    # SYN, so Karn leaves only the TS-ECR sample: 1 s + 10 ms. Linux 6.18 shows the same after
    # a lost SYN-ACK (ss: rtt:1013 rto:3040): the first sample sets srtt = m, rto = 3m.
    n = Net(delay=0.005)
    seen = {"synack": False}

    def ba(pkt: bytes) -> bool:
        ihl = (pkt[0] & 15) * 4
        if pkt[ihl + 13] & 0x12 == 0x12 and not seen["synack"]:
            seen["synack"] = True
            return False
        return True
    n.link.ba.filter = ba
    cs, ss, ls = n.connect_pair()
    sk = cs.sk
    assert n.c.mib["TcpExtTCPSynRetrans"] == 1
    assert sk.srtt_us >> 3 == 1_010_000 and sk.icsk_rto == 3_030_000
