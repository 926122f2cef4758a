"""The tcpdive command: scenarios pass, bad input gives one-line errors, sysctl output."""

from __future__ import annotations

import subprocess
import sys

from tcpdive.cli import main
from tcpdive.scenarios import Options, load_all


def test_handshake_scenario_claims_hold(tmp_path):
    res = load_all()["handshake"].run(Options(pcap=str(tmp_path / "hs.pcap")))
    assert res.ok, [c for c in res.claims if not c.ok]
    assert len(res.claims) == 8
    flags = [p[2] for p in res.data["packets"]]
    # 3-way handshake, request, response (+FIN from the server closing first), last ACKs
    assert flags[:3] == ["S", "S.", "."]
    assert (tmp_path / "hs.pcap").stat().st_size > 24


def test_cli_scenario_exit_code_and_tour(capsys):
    assert main(["scenario", "handshake"]) == 0
    out = capsys.readouterr().out
    assert "[PASS] 3-way handshake: SYN, SYN-ACK, ACK" in out
    assert main(["tour", "-q", "--only", "handshake", "--report", ""]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out


def test_cli_unknown_scenario_one_line(capsys):
    assert main(["scenario", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tcpdive: unknown scenario 'nope'")


def test_cli_sysctl_list_and_bad_write(capsys):
    assert main(["sysctl", "keepalive"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "net.ipv4.tcp_keepalive_intvl = 75",
        "net.ipv4.tcp_keepalive_probes = 9",
        "net.ipv4.tcp_keepalive_time = 7200",
    ]
    assert main(["sysctl", "-w", "net.ipv4.tcp_tw_reuse=7"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == 'sysctl: setting key "net.ipv4.tcp_tw_reuse": Invalid argument'


def test_console_script_help_and_bad_argument():
    r = subprocess.run([sys.executable, "-m", "tcpdive.cli", "--help"], capture_output=True,
                       text=True, check=False)
    assert r.returncode == 0 and "tour" in r.stdout and "scenario" in r.stdout
    r = subprocess.run([sys.executable, "-m", "tcpdive.cli", "scenario", "handshake", "--sysctl",
                        "oops"], capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_real_has_a_proc_net_tcp_subcommand():
    from tcpdive.cli import build_parser

    args = build_parser().parse_args(["real", "proc-net-tcp", "--netns", "x"])
    assert (args.real_cmd, args.netns) == ("proc-net-tcp", "x")
