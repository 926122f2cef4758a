"""/proc/net/tcp and /proc/net/tcp6 of a simulated host, checked to the byte against the format of
Linux 6.x's tcp4_seq_show (get_tcp4_sock, get_openreq4, get_timewait4_sock): LISTEN,
SYN_RECV, ESTABLISHED (with its timers and queues) and TIME_WAIT lines."""

from __future__ import annotations

from tcpdive.packet.ipv4 import IPPROTO_TCP, ip2int, ip_build
from tcpdive.packet.tcp import SYN, syn_options, tcp_build
from tcpdive.sim.world import World
from tcpdive.socket import SO_KEEPALIVE, SOL_SOCKET
from tcpdive.tools.procnet import proc_file, proc_net_tcp, proc_net_tcp6

from .test_netstat import make_world

HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
          "timeout inode")
HEADER6 = ("  sl  local_address                         remote_address                        "
           "st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
LISTEN_80 = ("   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0"
             "        0 21000 {ref} 0000000000000000 100 0 0 10 0")


def table(*lines: str) -> str:
    """seq_pad: every line, the header too, is 149 characters and a newline."""
    return "".join(ln.ljust(149) + "\n" for ln in (HEADER,) + lines)


def test_listener_line_and_header():
    w, c, s, ls = make_world()
    text = s.proc_net_tcp()
    assert text == table(LISTEN_80.format(ref=1))
    assert all(len(line) == 149 for line in text.splitlines())
    assert proc_net_tcp(s) == text == proc_file(s, "/proc/net/tcp")
    # an idle host: the header alone
    assert c.proc_net_tcp() == table()


def test_tcp6_is_its_header_only():
    w, c, s, ls = make_world()
    assert s.proc_net_tcp6() == proc_net_tcp6(s) == HEADER6 == proc_file(s, "/proc/net/tcp6")
    assert proc_file(s, "/proc/net/udp") is None


def test_syn_recv_line_counts_down_and_holds_the_listener():
    w, c, s, ls = make_world()
    dev = next(d for d in s.devices.values() if d.name.startswith("eth"))
    src, dst = ip2int("192.168.7.9"), ip2int("10.0.0.2")
    syn = tcp_build(src, dst, 40000, 80, 1, 0, SYN, 65535, syn_options(1460, True, None, 7))
    s.netif_receive(dev, ip_build(src, dst, IPPROTO_TCP, syn))
    # get_openreq4: SYN_RECV (03), timer 1 with the SYN-ACK timeout (1 s = 0x64 ticks),
    # num_timeout, no inode, 0 printed for the refcount; the request holds its listener
    req = ("   1: 0200000A:0050 0907A8C0:9C40 03 00000000:00000000 01:00000064 00000000     0"
           "        0 0 0 0000000000000000")
    assert s.proc_net_tcp() == table(LISTEN_80.format(ref=2), req)
    w.run_for(1.5)                    # SYN-ACK resent at 1 s, next at 3 s: 1.5 s = 0x96 left
    req = ("   1: 0200000A:0050 0907A8C0:9C40 03 00000000:00000000 01:00000096 00000001     0"
           "        0 0 0 0000000000000000")
    assert s.proc_net_tcp() == table(LISTEN_80.format(ref=2), req)


def test_established_lines_show_queues_and_timers():
    w, c, s, ls = make_world()
    cs = c.socket()
    cs.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1)
    cs.connect(("10.0.0.2", 80))
    ss, _ = ls.accept()
    cs.sendall(b"abc")
    # 3 bytes unacked, retransmit timer (1) at the RTO: 10 ms RTT -> 210 ms = 0x15 ticks;
    # references: the file, the retransmit timer, the keepalive timer
    assert c.proc_net_tcp() == table(
        "   0: 0100000A:E82C 0200000A:0050 01 00000003:00000000 01:00000015 00000000     0"
        "        0 21000 3 0000000000000000 21 0 0 10 -1")
    w.run_for(0.1)
    # acked: keepalive (2) due 7200 s after the handshake at 10 ms, read 105 ms later
    assert c.proc_net_tcp() == table(
        "   0: 0100000A:E82C 0200000A:0050 01 00000000:00000000 02:000AFC75 00000000     0"
        "        0 21000 2 0000000000000000 21 0 0 10 -1")
    # the server: the listener, then the child with 3 unread bytes (rx_queue), ato 40 ms,
    # quick-ack credits 15 (<< 1 = 30), cwnd 10, ssthresh still infinite (-1)
    assert s.proc_net_tcp() == table(
        LISTEN_80.format(ref=1),
        "   1: 0200000A:0050 0100000A:E82C 01 00000000:00000003 00:00000000 00000000     0"
        "        0 21001 1 0000000000000000 21 4 30 10 -1")


def test_time_wait_line():
    w, c, s, ls = make_world()
    seen = []
    c.trace.set_state.attach(
        lambda sk, old, new, now: seen.append(c.proc_net_tcp()) if new == 6 else None)
    cs = c.socket()
    cs.connect(("10.0.0.2", 80))
    ss, _ = ls.accept()
    cs.close()
    assert ss.recv(10) == b""
    ss.close()
    w.run_for(1.0)
    # get_timewait4_sock: substate 06, timer 3 with 60 s (0x1770 ticks) left, no inode,
    # the refcount Linux sets (bind bucket, established hash, timer)
    tw = ("   0: 0100000A:E82C 0200000A:0050 06 00000000:00000000 03:00001770 00000000     0"
          "        0 0 3 0000000000000000")
    assert seen == [table(tw)]
    assert c.proc_net_tcp() == table(tw.replace("03:00001770", "03:0000170C"))   # 59 s
    w.run_for(59.1)
    assert c.proc_net_tcp() == table()


def test_addresses_print_as_little_endian_words():
    w = World(seed=1)
    h = w.host("h", "192.168.0.1")
    w.link(h, w.host("peer", "192.168.0.2"))
    k = h.socket()
    k.bind(("192.168.0.1", 8080))
    k.listen(1)
    line = h.proc_net_tcp().splitlines()[1]
    assert line.startswith("   0: 0100A8C0:1F90 00000000:0000 0A ")
