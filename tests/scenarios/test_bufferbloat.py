"""bufferbloat: the numbers behind its claims (latency percentiles, queue, drops, CE, ss -ti)."""

from __future__ import annotations

import pytest

from tcpdive.scenarios import Options, bufferbloat, load_all
from tcpdive.tools.pcap import read_pcap

#: what fits in 20 Mbit/s with 1448 payload bytes per 1500-byte packet (timestamps on)
LINE_RATE = 20e6 * 1448 / 1500


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    pcap = tmp_path_factory.mktemp("bloat") / "bloat.pcap"
    res = load_all()["bufferbloat"].run(Options(pcap=str(pcap)))
    return res, pcap


@pytest.fixture(scope="module")
def res(run):
    return run[0]


def test_all_claims_hold(res):
    assert len(res.claims) == 7 and res.ok, [f"{c.text}: {c.evidence}" for c in res.claims if not c.ok]


def test_cubic_fills_the_deep_queue_without_a_single_drop(res):
    a = res.data["cases"]["cubic"]
    # hundreds of ms of queue, no loss yet: the 1000-packet buffer hides the congestion
    assert a["q_max"] > 400 and a["pipe"]["dropped_queue"] == 0 and a["total_retrans"] == 0
    assert a["p50"] > 150 and a["p99"] > 250 and a["srtt_ms"] > 250
    assert a["goodput"] == pytest.approx(LINE_RATE, rel=0.01)
    assert "cubic" in a["ss"][-1] and "rtt:" in a["ss"][-1]


def test_bbr_keeps_latency_near_the_base_rtt_at_the_same_throughput(res):
    a, b = res.data["cases"]["cubic"], res.data["cases"]["bbr"]
    assert b["q_max"] <= 20 and b["p99"] < 30 and b["p50"] < 25
    assert b["goodput"] == pytest.approx(a["goodput"], rel=0.01)
    line = b["ss"][-1]
    assert " bbr " in line and "bbr:(bw:19." in line and "mrtt:20.0" in line and "pacing_rate " in line
    assert b["pipe"]["dropped_queue"] == 0 and b["total_retrans"] == 0


def test_ecn_marks_instead_of_dropping(res):
    e = res.data["cases"]["ecn"]
    ce = e["pipe"]["ce_marked"]
    assert ce > 100 and e["server_ce"] == ce          # every mark reached the receiver's IP layer
    assert 0 < e["cwr"] < e["ece"]                    # one CWR per reduction, ECE until it arrives
    assert e["delivered_ce"] > ce                     # RFC 3168 feedback over-counts
    assert e["total_retrans"] == 0 and e["mib"]["TcpRetransSegs"] == 0
    # the marker drops only Not-ECT packets: pure ACKs (sport, dport, payload, ECN field)
    assert e["dropped"] and all(plen == 0 and ect == 0 for _t, _s, _d, plen, ect in e["dropped"])
    assert e["q_max"] <= bufferbloat.ECN_K + 1 and e["p99"] < 40
    line = e["ss"][-1]
    assert " ecn cubic " in line and "delivered_ce:" in line


def test_shallow_queue_trades_throughput_and_loss_for_latency(res):
    a, s = res.data["cases"]["cubic"], res.data["cases"]["shallow"]
    assert s["q_max"] <= bufferbloat.SHALLOW and s["p50"] < 25
    assert s["pipe"]["dropped_queue"] > 10 and s["total_retrans"] > 10
    assert s["goodput"] < 0.9 * a["goodput"]
    # the interactive flow loses requests too: its retransmissions show in its p99
    assert s["rr_retrans"] > 0 and s["p99"] > 100


def test_ladders_show_the_queueing_delay(res):
    lads = {lad["title"][:3]: lad for lad in res.data["ladders"]}
    assert set(lads) == {"(a)", "(b)", "(c)", "(d)"}
    for lad in lads.values():
        assert lad["arrows"] and lad["hosts"] == ["client", "server"]
    req = [a["t1"] - a["t0"] for a in lads["(a)"]["arrows"] if a["src"] == "client" and a["len"]]
    req_b = [a["t1"] - a["t0"] for a in lads["(b)"]["arrows"] if a["src"] == "client" and a["len"]]
    assert min(req) > 0.1 and max(req_b) < 0.02      # one way: hundreds of ms vs ~10 ms


def test_pcap_holds_case_a_once_per_packet(run):
    res, pcap = run
    cap = read_pcap(str(pcap))
    a = res.data["cases"]["cubic"]
    # leaving the client (its data and ACKs) and the server (its ACKs and answers)
    assert len(cap) > a["pipe"]["sent"]
    syns = [p for p in cap if p.data[33] & 0x02]
    assert len(syns) == 4                               # 2 SYNs, 2 SYN-ACKs: no duplicate hop


def test_trace_and_pcap_from_the_cli(monkeypatch, tmp_path, capsys):
    from tcpdive.cli import main

    # a short run: the claims need the full 6 s, the plumbing does not
    monkeypatch.setattr(bufferbloat, "DUR", 0.3)
    monkeypatch.setattr(bufferbloat, "WARM", 0.1)
    monkeypatch.setattr(bufferbloat, "LADDER_AT", 0.05)
    path = tmp_path / "b.pcap"
    main(["scenario", "bufferbloat", "--pcap", str(path), "--trace"])
    out = capsys.readouterr().out
    assert "  client  0.000000 IP 10.0.1.1." in out and ".5001: Flags [S]" in out
    assert "  server  0.0" in out and "Flags [S.]" in out
    assert "pcap written to" in out and len(read_pcap(str(path))) > 100
