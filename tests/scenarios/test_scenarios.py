"""Each of the article's experiments reproduces: every claim of every scenario holds."""

from __future__ import annotations

import pytest

from tcpdive.scenarios import Options, load_all

REG = load_all()
EXPECTED = ["handshake", "receive-path", "client-port-exhaustion", "connection-pool", "server-time-wait",
            "tw-recycle-nat", "tcp-keepalive", "zombie-connection", "http-vs-tcp-keepalive",
            "load-balancer-idle-timeout", "retransmission", "orphan-retries", "pmtu-blackhole",
            "bufferbloat"]
_CACHE: dict[str, object] = {}


def result(name: str):
    if name not in _CACHE:
        _CACHE[name] = REG[name].run(Options())
    return _CACHE[name]


def test_registry_has_the_issue_scenarios_in_order():
    assert list(REG) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_scenario_claims_hold(name):
    res = result(name)
    failed = [f"{c.text}: {c.evidence}" for c in res.claims if not c.ok]
    assert res.claims, "a scenario must check something"
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("name", EXPECTED[1:])
def test_scenario_cites_the_article_and_what_differs(name):
    res = result(name)
    assert "STEP" in REG[name].article
    assert "Article:" in res.article and "differs" in res.article


@pytest.mark.parametrize("name", EXPECTED[1:])
def test_scenario_has_evidence_and_a_ladder(name):
    res = result(name)
    assert res.sections
    ladders = res.data.get("ladders", [])
    assert ladders and any(lad["arrows"] for lad in ladders)


def test_netstat_snapshots_are_in_linux_format():
    res = result("server-time-wait")
    rows = [ln for _, lines in res.sections for ln in lines if " TIME_WAIT " in ln]
    assert rows
    assert rows[0].startswith("tcp        0      0 192.168.106.3:80 ")
    assert "timewait (" in rows[0]


def test_scenario_exit_status_from_cli(capsys):
    from tcpdive.cli import main

    assert main(["scenario", "orphan-retries"]) == 0
    out = capsys.readouterr().out
    assert "[PASS]" in out and "FIN_WAIT1" in out
