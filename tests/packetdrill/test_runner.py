"""The packetdrill runner: our own scripts that must PASS, and wrong ones that must FAIL
with packetdrill's message."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpdive.cli import main
from tcpdive.packetdrill.runner import run_script, summary

SCRIPTS = Path(__file__).parent / "scripts" / "runner"

PASSING = sorted(p.name for p in SCRIPTS.glob("pass_*.pkt"))

FAILING = {
    "fail_wrong_ack.pkt": ":7: error handling packet: live packet field tcp_ack_seq: "
                          "expected: 2 (0x2) vs actual: 1 (0x1)",
    "fail_wrong_option.pkt": ":7: error handling packet: live packet field ipv4_total_length: "
                             "expected: 52 (0x34) vs actual: 48 (0x30)",
    "fail_timing.pkt": ":7: error handling packet: timing error: expected outbound packet at "
                       "0.500000 sec but happened at 1.000000 sec; tolerance 0.062500 sec",
    "fail_syscall_errno.pkt": ":4: runtime error in connect call: Expected result 0 but got -1 "
                              "with errno 115 (Operation now in progress)",
    "fail_code_assert.pkt": ":5: error in Python code -- AssertionError: 10",
    "fail_blocked.pkt": ":5: runtime error in accept call: expected non-blocking system call "
                        "but it blocked",
    "fail_missing_packet.pkt": ":5: error handling packet: timing error: expected outbound "
                               "packet at 0.100000 sec but none was sent",
}


@pytest.mark.parametrize("name", PASSING)
def test_own_scripts_pass(name: str) -> None:
    res = run_script(str(SCRIPTS / name))
    assert res.verdict == "PASS", res.details


@pytest.mark.parametrize("name", sorted(FAILING))
def test_wrong_scripts_fail_with_the_right_message(name: str) -> None:
    res = run_script(str(SCRIPTS / name))
    assert res.verdict == "FAIL", res.details
    assert FAILING[name] in res.reason, res.reason


def test_every_fixture_is_covered() -> None:
    names = {p.name for p in SCRIPTS.glob("*.pkt")}
    assert names == set(PASSING) | set(FAILING)


def test_script_packet_dump_in_details() -> None:
    res = run_script(str(SCRIPTS / "fail_wrong_ack.pkt"))
    assert "script packet:  0.100000 S. 0:0(0) ack 2 <mss 1460>" in res.details
    assert "actual packet:  0.100000 S. 0:0(0) ack 1 win 65535 <mss 1460>" in res.details


def test_tolerance_flag_widens_timing() -> None:
    res = run_script(str(SCRIPTS / "fail_timing.pkt"), tolerance_usecs=600_000)
    assert res.verdict == "PASS", res.reason


def test_strict_segments_refuses_merging(tmp_path: Path) -> None:
    text = (SCRIPTS / "pass_passive_data_close.pkt").read_text()
    # the peer's MSS 1000 makes a 1500-byte write two segments; one scripted packet
    # of 1500 bytes matches them merged, but not with --strict_segments
    text = text.replace("   +0 write(4, ..., 50) = 50\n   +0 > P. 1:51(50) ack 101\n"
                        " +.01 < . 101:101(0) ack 51 win 257\n",
                        "   +0 write(4, ..., 1500) = 1500\n   +0 > P. 1:1501(1500) ack 101\n")
    text = text[:text.index("   +0 ioctl")]
    p = tmp_path / "merge.pkt"
    p.write_text(text)
    assert run_script(str(p)).verdict == "PASS"
    res = run_script(str(p), strict_segments=True)
    assert res.verdict == "FAIL"
    assert "live packet payload: expected 1500 bytes vs actual 1000 bytes" in res.reason


def test_skips_out_of_scope_and_unsupported(tmp_path: Path) -> None:
    d = tmp_path / "zerocopy"
    d.mkdir()
    (d / "x.pkt").write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    assert run_script(str(d / "x.pkt")).verdict == "SKIP"
    d = tmp_path / "fastopen"                  # in scope since TCP Fast Open exists
    d.mkdir()
    (d / "x.pkt").write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    assert run_script(str(d / "x.pkt")).verdict == "PASS"
    p = tmp_path / "shell.pkt"
    p.write_text("`ss -tn`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    res = run_script(str(p))
    assert res.verdict == "SKIP" and "unsupported shell command: ss -tn" in res.reason


def test_nstat_grep_checks_counter_changes(tmp_path: Path) -> None:
    """``nstat | grep NAME`` succeeds only if NAME changed since the previous nstat."""
    p = tmp_path / "nstat.pkt"
    p.write_text("`nstat > /dev/null`\n"
                 "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
                 "+0 `nstat | grep TcpExtTCPFastOpenActive > /dev/null`\n")
    res = run_script(str(p))
    assert res.verdict == "FAIL" and ":3: error executing `nstat | grep" in res.reason


def test_parse_error_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "bad.pkt"
    p.write_text("0 socket(..., SOCK_STREAM\n")
    assert run_script(str(p)).verdict == "ERROR"


def test_cli_reports_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["packetdrill", str(SCRIPTS / "pass_passive_data_close.pkt"),
               str(SCRIPTS / "fail_wrong_ack.pkt")])
    out = capsys.readouterr().out
    assert rc == 1
    assert "PASS  " in out and "FAIL  " in out
    assert out.strip().endswith("1 passed, 1 failed, 0 skipped")
    assert main(["packetdrill", *(str(SCRIPTS / n) for n in PASSING)]) == 0


def test_summary_counts() -> None:
    res = [run_script(str(SCRIPTS / n)) for n in PASSING]
    assert summary(res) == f"{len(PASSING)} passed, 0 failed, 0 skipped"
