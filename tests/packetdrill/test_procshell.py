"""Shell commands a packetdrill script points at /proc/net/tcp{,6}: classified, evaluated on the
simulated host's tables with GNU grep's output and exit status, and a failing one fails the
script as packetdrill's ``system()`` check does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpdive.packetdrill import corpus_root
from tcpdive.packetdrill.parser import analyze_command
from tcpdive.packetdrill.procshell import posix_to_python, run_pipeline
from tcpdive.packetdrill.runner import run_script

SCRIPTS = Path(__file__).parent / "scripts" / "procnet"
MD5_SCRIPT = (corpus_root() or Path("/nonexistent")) / "tcp" / "md5" / "md5-only-on-client-ack.pkt"

FILES = {
    "/proc/net/tcp": "  sl  local_address\n   0: 0100A8C0:1F90 00000000:0000 0A 00\n"
                     "   1: 0100A8C0:1F90 010200C0:BB80 03 00\n",
    "/proc/net/tcp6": "  sl  local_address                         remote_address\n",
}


def run(*cmds: str) -> tuple[int, str]:
    import shlex

    return run_pipeline([shlex.split(c) for c in cmds], FILES.get)


def test_grep_output_and_status_are_gnu_greps():
    # two files: each line prefixed by its file name
    assert run('grep " 0A " /proc/net/tcp /proc/net/tcp6') == (
        0, "/proc/net/tcp:   0: 0100A8C0:1F90 00000000:0000 0A 00\n")
    assert run('grep " 0A " /proc/net/tcp /proc/net/tcp6', 'grep ":1F90"') == (
        0, "/proc/net/tcp:   0: 0100A8C0:1F90 00000000:0000 0A 00\n")
    assert run('grep " 0A " /proc/net/tcp', 'grep ":0050"') == (1, "")
    assert run("grep -c 1F90 /proc/net/tcp /proc/net/tcp6") == (
        0, "/proc/net/tcp:2\n/proc/net/tcp6:0\n")
    assert run("grep -c nothing /proc/net/tcp") == (1, "0\n")
    assert run("grep -q 1F90 /proc/net/tcp") == (0, "")
    assert run("grep -v 1F90 /proc/net/tcp") == (0, "  sl  local_address\n")
    assert run("grep -hn ' 0A ' /proc/net/tcp /proc/net/tcp6") == (
        0, "2:   0: 0100A8C0:1F90 00000000:0000 0A 00\n")
    assert run("grep -i LOCAL_ADDRESS /proc/net/tcp6")[0] == 0
    assert run("grep -w 0A /proc/net/tcp")[0] == 0 and run("grep -w A /proc/net/tcp")[0] == 1
    assert run("grep -e 0A -e 03 /proc/net/tcp")[1].count("\n") == 2
    assert run("cat /proc/net/tcp6") == (0, FILES["/proc/net/tcp6"])
    assert run("cat /proc/net/tcp /proc/net/tcp6", "grep -c sl") == (0, "2\n")


def test_basic_and_extended_regular_expressions():
    assert posix_to_python(r"\(0A\|03\) 00$", False) == "(0A|03) 00$"
    assert posix_to_python("a+(b)", False) == r"a\+\(b\)"
    assert posix_to_python("a+(b)", True) == "a+(b)"
    assert posix_to_python("[[:xdigit:]]\\{8\\}", False) == "[0-9A-Fa-f]{8}"
    assert run(r'grep "\(0A\|03\) 00$" /proc/net/tcp')[1].count("\n") == 2
    assert run("grep -E ' (0A|03) 00$' /proc/net/tcp")[1].count("\n") == 2
    assert run("grep -F '.*' /proc/net/tcp")[0] == 1


def test_commands_are_classified():
    eff = analyze_command('grep " 0A " /proc/net/tcp /proc/net/tcp6 | grep ":1F90"')
    assert [(s.kind, s.connector) for s in eff.steps] == [("procnet", ""), ("procnet", "|")]
    assert eff.unsupported == ()
    for cmd in ("cat /etc/passwd", "grep x", "grep x /proc/net/udp", "grep --color x /proc/net/tcp",
                "grep x /proc/net/tcp > /tmp/out", "ss -tn | grep x"):
        assert analyze_command(cmd).unsupported, cmd
    # a grep fed by a command tcpdive does not run is not one it can evaluate either
    assert [s.kind for s in analyze_command("ss -tn | grep x").steps] == ["unsupported"] * 2


def test_script_reading_proc_net_tcp_passes():
    res = run_script(str(SCRIPTS / "pass_proc_net_tcp.pkt"))
    assert res.verdict == "PASS", res.details


def test_failing_shell_command_fails_the_script():
    res = run_script(str(SCRIPTS / "fail_grep_no_match.pkt"))
    assert res.verdict == "FAIL", res.details
    assert res.reason.endswith(""":6: error executing `grep " 0A " /proc/net/tcp | grep ":0050"` """
                               "command: non-zero status 1"), res.reason


@pytest.mark.skipif(not MD5_SCRIPT.is_file(), reason="packetdrill corpus not present")
def test_linux_md5_script_passes_and_drops_the_signed_acks():
    res = run_script(str(MD5_SCRIPT), verbose=True)
    assert res.verdict == "PASS", res.details
    # the listener (refcount 2: the request holds it) as grep printed it
    assert any(line.startswith("/proc/net/tcp:   0: 0100A8C0:1F90 00000000:0000 0A ")
               and " 2 0000000000000000 100 0 0 10 0" in line for line in res.trace)
