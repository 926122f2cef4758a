"""connect(AF_UNSPEC) / tcp_disconnect: abort to a fresh CLOSE socket that can be used again.

Linux resets the estimator, congestion state, counters and rx_opt (so TCP_MAXSEG too), and a
reconnect's ISN continues past the old window (write_seq + max_window + 2).
"""

from __future__ import annotations

import errno

import pytest

from tcpdive.socket import IPPROTO_TCP, TCP_MAXSEG
from tcpdive.tcp.sock import STATE_NAMES

from .helpers import Net
from .test_states import established_pair


def test_disconnect_established_sends_rst_and_reconnect_continues_the_isn():
    n = Net(delay=0.005)
    cs, ss, ls = established_pair(n)
    cs.setsockopt(IPPROTO_TCP, TCP_MAXSEG, 1000)
    cs.sendall(b"x" * 3000)
    n.run_for(0.2)
    sk = cs.sk
    old_write_seq, max_window = sk.write_seq, sk.max_window
    assert sk.srtt_us and sk.bytes_acked == 3001      # the SYN counts, as in ss -ti
    n.cap.clear()
    cs.disconnect()
    assert STATE_NAMES[sk.state] == "CLOSE"
    n.run_for(0.1)
    assert n.lines() == ["0.215000 client R. seq 3001 ack 1 len 0"]
    assert ss.recv(4000) == b"x" * 3000     # data that arrived before the RST is still read
    with pytest.raises(ConnectionResetError):
        ss.recv(10)
    # everything the old connection learnt is gone, as tcp_disconnect leaves it
    assert (sk.srtt_us, sk.bytes_acked, sk.bytes_sent, sk.segs_out, sk.data_segs_out) == (0, 0, 0,
                                                                                      0, 0)
    assert (sk.snd_cwnd, sk.icsk_rto, sk.user_mss, sk.tstamp_ok, sk.dport) == (10, 1_000_000, 0,
                                                                             False, 0)
    assert sk.write_seq == (old_write_seq + max_window + 2) & 0xFFFFFFFF
    # the same socket connects again: ISN = old write_seq + max_window + 2, default MSS again
    ls2 = n.s.socket()
    ls2.bind(("0.0.0.0", 81))
    ls2.listen(5)
    n.cap.clear()
    cs.connect(("10.0.0.2", 81))
    syn = n.segs[0]
    assert syn.flags == "S" and syn.raw_seq == (old_write_seq + max_window + 2) & 0xFFFFFFFF
    assert syn.opts.startswith("mss 1460,")
    conn, _ = ls2.accept()
    cs.sendall(b"again")
    n.run_for(0.1)
    assert conn.recv(10) == b"again"


def test_disconnect_in_syn_sent_aborts_quietly_with_econnreset():
    n = Net(delay=0.005)
    cs = n.c.socket()
    cs.setblocking(False)
    with pytest.raises(BlockingIOError):
        cs.connect(("10.0.0.2", 80))        # nobody listens yet: SYN in flight
    n.cap.clear()
    cs.disconnect()
    n.run_for(0.1)
    # no RST for a peer that never answered; the pending error is ECONNRESET
    assert [s.flags for s in n.segs if s.host == "client"] == []
    assert STATE_NAMES[cs.sk.state] == "CLOSE"
    assert cs.getsockopt(1, 4) == errno.ECONNRESET       # SOL_SOCKET, SO_ERROR


def test_disconnect_listener_resets_unaccepted_children_and_can_listen_again():
    n = Net(delay=0.005)
    ls = n.listener(80)
    cs = n.c.socket()
    cs.connect(("10.0.0.2", 80))            # completes into the accept queue
    n.run_for(0.05)
    n.cap.clear()
    ls.disconnect()
    n.run_for(0.05)
    assert n.lines() == ["0.060000 server R. seq 1 ack 1 len 0"]
    with pytest.raises(ConnectionResetError):
        cs.recv(1)
    ls.listen(5)                             # a disconnected listener listens again
    c2 = n.c.socket()
    c2.connect(("10.0.0.2", 80))
    conn, peer = ls.accept()
    assert peer[0] == "10.0.0.1"



def test_ack_of_unsent_data_is_dropped_with_a_challenge_ack():
    """Linux 6.x tcp_ack: SEG.ACK > SND.NXT drops the segment and answers with a challenge ACK
    (RFC 5961 5.2, RFC 9293 3.10.7.4): its data and FIN are not taken."""
    from tcpdive.packet.ipv4 import ip2int, ip_build
    from tcpdive.packet.tcp import ACK, FIN, PSH, tcp_build

    n = Net(delay=0.005)
    cs, ss, ls = established_pair(n)
    cport = cs.getsockname()[1]
    ssk = ss.sk
    before = n.s.mib["TcpExtTCPChallengeACK"]
    # from the client's 4-tuple, in window, but acking 1000 bytes the server never sent
    seg = tcp_build(ip2int("10.0.0.1"), ip2int("10.0.0.2"), cport, 80, ssk.rcv_nxt,
                    ssk.snd_nxt + 1000, ACK | PSH | FIN, 502, b"", b"evil")
    n.s.netif_receive(n.dev(n.s), ip_build(ip2int("10.0.0.1"), ip2int("10.0.0.2"), 6, seg))
    n.run_for(0.05)
    assert n.s.mib["TcpExtTCPChallengeACK"] == before + 1
    assert n.lines() == ["0.015000 server . seq 1 ack 1 len 0"]    # ack = rcv_nxt: nothing taken
    assert STATE_NAMES[ssk.state] == "ESTABLISHED" and ssk.rcv_queue_bytes == 0
    cs.sendall(b"real")                                   # the real stream is untouched
    n.run_for(0.05)
    assert ss.recv(10) == b"real"


def test_too_old_ack_bound_is_bytes_acked_on_a_fresh_passive_socket():
    """RFC 5961 5.2 in Linux 6.x: an ACK below SND.UNA - min(max_window, bytes_acked) is too old.
    A passive socket that has sent nothing has bytes_acked 0, so even SND.UNA - 1 is challenged
    and its data dropped (packetdrill gro/gro-mss-option fails on Linux 6.18 for this)."""
    from tcpdive.packet.ipv4 import ip2int, ip_build
    from tcpdive.packet.tcp import ACK, tcp_build

    n = Net(delay=0.005)
    cs, ss, ls = established_pair(n)
    cport = cs.getsockname()[1]
    ssk = ss.sk
    assert ssk.bytes_acked == 0
    seg = tcp_build(ip2int("10.0.0.1"), ip2int("10.0.0.2"), cport, 80, ssk.rcv_nxt,
                    ssk.snd_una - 1, ACK, 502, b"", b"x" * 100)
    n.s.netif_receive(n.dev(n.s), ip_build(ip2int("10.0.0.1"), ip2int("10.0.0.2"), 6, seg))
    n.run_for(0.05)
    assert ssk.rcv_queue_bytes == 0
    assert [ln.split(" ", 1)[1] for ln in n.lines()] == ["server . seq 1 ack 1 len 0"]
