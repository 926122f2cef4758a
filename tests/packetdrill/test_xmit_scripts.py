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
