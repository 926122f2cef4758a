"""tcpdive's own packetdrill scripts for transmit paths whose wire the Linux corpus checks:
retransmission of whole TSO skbs with PSH (``__tcp_retransmit_skb``), collapsing on
retransmit (``tcp_retrans_try_collapse``), a qdisc that drops every packet (``tc qdisc ...
pfifo limit 0``: NET_XMIT_DROP and TCP_RESOURCE_PROBE_INTERVAL) and the tcp_info
chronographs. Expectations are derived from the Linux 6.18 source (see each script's
comments); all run segment by segment (--strict_segments)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpdive.packetdrill.runner import _UNSET, _tc_qdisc, run_script

SCRIPTS = Path(__file__).parent / "scripts" / "xmit"


@pytest.mark.parametrize("name", sorted(p.name for p in SCRIPTS.glob("*.pkt")))
def test_xmit_script_passes(name: str) -> None:
    res = run_script(str(SCRIPTS / name), strict_segments=True)
    assert res.verdict == "PASS", f"{res.reason}\n{res.details}"


def test_tc_qdisc_commands() -> None:
    assert _tc_qdisc("tc qdisc add dev tun0 root pfifo limit 0") == 0
    assert _tc_qdisc("tc qdisc replace dev tun0 root pfifo limit 7") == 7
    assert _tc_qdisc("tc qdisc add dev tun0 root pfifo") == 500     # tun's txqueuelen
    assert _tc_qdisc("tc qdisc delete dev tun0 root") is None
    assert _tc_qdisc("tc qdisc del dev tun0 root") is None
    assert _tc_qdisc("tc qdisc replace dev tun0 root fq") is _UNSET
    assert _tc_qdisc("tc qdisc add dev eth0 root pfifo limit 0") is _UNSET


def test_retransmission_is_one_gso_packet_on_a_tso_device() -> None:
    # tso-skb-retransmit.pkt with tun0 doing TSO: each skb leaves as one packet, PSH on it
    # when it has more than one segment (__tcp_transmit_skb), first sends and resends alike
    from tcpdive.net.netns import NETIF_F_HW_CSUM, NETIF_F_TSO
    from tcpdive.packetdrill.parser import RUN_ALL_IPV4_DEFINES, parse_script
    from tcpdive.packetdrill.runner import Runner

    text = (SCRIPTS / "tso-skb-retransmit.pkt").read_text()
    first, rest = text.split("   +0 write(4, ..., 10000) = 10000\n")
    sends, rest = rest.split("\n\n", 1)
    resends, rest = rest.split(" +.05 < . 1:1(0) ack 10001", 1)
    head, resends = resends.split("   +0 > . 1001:2001", 1)
    text = (first + "   +0 write(4, ..., 10000) = 10000\n"
            + "".join(f"   +0 > P. {a}:{a + 2000}(2000) ack 1\n" for a in range(1, 10001, 2000))
            + "\n" + head
            + "   +0 > . 1001:2001(1000) ack 1\n   +0 > . 2001:3001(1000) ack 1\n"
            + "   +0 > P. 4001:6001(2000) ack 1\n   +0 > . 6001:7001(1000) ack 1\n\n"
            + " +.05 < . 1:1(0) ack 10001" + rest)
    script = parse_script(text, str(SCRIPTS / "tso-skb-retransmit-gso.pkt"),
                          dict(RUN_ALL_IPV4_DEFINES))
    runner = Runner(script, strict_segments=True)
    runner.dev.set_features(NETIF_F_TSO | NETIF_F_HW_CSUM)
    try:
        runner.run()
    finally:
        runner.loop.close()
