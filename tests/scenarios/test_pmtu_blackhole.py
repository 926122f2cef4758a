"""pmtu-blackhole: the numbers behind its claims (virtual clock, counters, ip route get)."""

from __future__ import annotations

import pytest

from tcpdive.scenarios import Options, load_all


@pytest.fixture(scope="module")
def res():
    return load_all()["pmtu-blackhole"].run(Options())


def test_all_claims_hold(res):
    assert len(res.claims) == 8 and res.ok, [c.text for c in res.claims if not c.ok]


def test_time_to_recover_on_the_virtual_clock(res):
    ttr = res.data["time_to_recover"]
    assert ttr["blackhole"] is None
    # (a) 20 ms RTT + the ICMP's 10 ms round trip to the tunnel: well under a second
    assert ttr["icmp"] == pytest.approx(0.17, abs=0.01)
    # (c2) no ICMP at all: faster than (a)
    assert ttr["mss-clamp"] == pytest.approx(0.12, abs=0.01)
    # (c1) black-hole detection needs the RTOs past tcp_retries1 (3): 0.24+0.48+0.96+1.92 s...
    assert 3.0 < ttr["mtu-probing"] < 10.0


def test_sections_show_ip_route_get_and_the_ss_timer(res):
    sec = dict(res.sections)
    route = sec["(a) server$ ip route get 10.0.1.1"]
    assert route == ["10.0.1.1 dev eth0 src 10.0.3.2 uid 0", "    cache expires 599sec mtu 1400"]
    ss = sec["(b) server$ ss -tanpoi | grep :80 (t = 20 s)"]
    assert len(ss) == 1 and "timer:(on," in ss[0]
    clamp = sec["(c2) gw$ iptables -t mangle -S"]
    assert clamp[1:] == ["0.005 s: mss 1460 -> 1360", "0.035 s: mss 1460 -> 1360"]


def test_registered_for_the_cli(capsys):
    from tcpdive.cli import main

    assert main(["scenario", "pmtu-blackhole"]) == 0
    assert "[PASS] (c2) MSS clamping" in capsys.readouterr().out
