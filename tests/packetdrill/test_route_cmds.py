"""The runner's ``ip route`` emulation: scripts change the route to the remote address (as
packetdrill's tun setup adds it: 192.0.2.1/32 via 192.168.0.2 dev tun0) with metrics, and the
stack under test uses them; what tcpdive's routes cannot express is skipped, a failing command
is an error as packetdrill reports one."""

from __future__ import annotations

from pathlib import Path

from tcpdive.packetdrill.runner import run_script

ROUTE_SCRIPT = """\
--strict_segments
`ip route change 192.0.2.1 via 192.168.0.2 dev tun0 advmss 700 initcwnd 4 initrwnd 3`

    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0

  +.1 < S 0:0(0) win 50000 <mss 1000,nop,wscale 0>
   +0 > S. 0:0(0) ack 1 win 2100 <mss 700,nop,wscale 10>
   +0 < . 1:1(0) ack 1 win 50000
   +0 accept(3, ..., ...) = 4

   +0 write(4, ..., 10000) = 10000
   +0 > . 1:1001(1000) ack 1
   +0 > P. 1001:2001(1000) ack 1
   +0 > . 2001:3001(1000) ack 1
   +0 > P. 3001:4001(1000) ack 1
  +.1 < . 1:1(0) ack 4001 win 50000
"""


def test_route_metrics_reach_the_socket_under_test(tmp_path: Path) -> None:
    # advmss 700 -> the SYN-ACK's MSS; initrwnd 3 -> window 3 * 700; initcwnd 4 -> a first
    # flight of 4 (two TSO-sized bursts of cwnd/2, PSH on the last of each)
    p = tmp_path / "route.pkt"
    p.write_text(ROUTE_SCRIPT)
    res = run_script(str(p))
    assert res.verdict == "PASS", res.details
    # without the route change: MSS 1460, window 64240, ten segments
    p.write_text(ROUTE_SCRIPT.replace(" advmss 700 initcwnd 4 initrwnd 3", ""))
    res = run_script(str(p))
    assert res.verdict == "FAIL"
    assert ("live packet field tcp_window: expected: 2100 (0x834) vs actual: 64240 (0xfaf0)"
            in res.reason)
    assert "actual: S. 0:0(0) ack 1 win 64240 <mss 1460,nop,wscale 10>" in res.reason


def test_failing_and_unsupported_route_commands(tmp_path: Path) -> None:
    p = tmp_path / "missing.pkt"
    p.write_text("`ip route change 198.51.100.7 dev tun0 mtu 1400`\n"
                 "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    res = run_script(str(p))
    assert res.verdict == "ERROR"
    assert "RTNETLINK answers: No such file or directory" in res.reason
    p = tmp_path / "v6.pkt"
    p.write_text("`ip -6 route change 2001:db8::1 dev tun0 mtu 1400`\n"
                 "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    res = run_script(str(p))
    assert res.verdict == "SKIP" and "unsupported shell command: ip -6 route" in res.reason
    p = tmp_path / "del.pkt"
    p.write_text("`ip route del 192.0.2.1/32; ip route add 192.0.2.0/24 via 192.168.0.2 "
                 "dev tun0 rto_min 20ms quickack 1`\n"
                 "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    assert run_script(str(p)).verdict == "PASS"
