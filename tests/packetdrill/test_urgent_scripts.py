"""tcpdive's own packetdrill scripts for urgent data (MSG_OOB), pipes, splice() and sendfile(),
and the runner's emulation of the only shell commands those need (``rm -f /tmp/F``,
``dd if=/dev/zero of=/tmp/F``). Expectations follow Linux 6.18's tcp_input.c / tcp.c /
tcp_output.c / fs/splice.c (see each script's comments); all run with --strict_segments."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpdive.packetdrill.parser import analyze_command, dd_spec, parse_script
from tcpdive.packetdrill.runner import run_script, skip_reason

SCRIPTS = Path(__file__).parent / "scripts" / "urgent"


@pytest.mark.parametrize("name", sorted(p.name for p in SCRIPTS.glob("*.pkt")))
def test_urgent_script_passes(name: str) -> None:
    res = run_script(str(SCRIPTS / name), strict_segments=True)
    assert res.verdict == "PASS", f"{res.reason}\n{res.details}"


def test_file_commands_are_classified_and_nothing_else() -> None:
    eff = analyze_command("/bin/rm -f /tmp/a /tmp/b; dd if=/dev/zero of=/tmp/a bs=1K count=3 "
                          "status=none")
    assert [(s.kind, s.argv) for s in eff.steps] == [
        ("rm", ("/tmp/a", "/tmp/b")), ("dd", ("/tmp/a", "3072"))]
    assert eff.unsupported == ()
    for bad in ("rm -rf /tmp/a", "rm /tmp/a", "rm -f /etc/passwd", "rm -f /tmp/../etc/x",
                "rm -f /tmp/*", "rm -f /tmp/", "dd if=/dev/urandom of=/tmp/a bs=1 count=1",
                "dd if=/dev/zero of=/etc/a bs=1 count=1", "dd if=/dev/zero of=/tmp/a bs=1",
                "dd if=/dev/zero of=/tmp/a bs=1 count=1 seek=4", "dd if=/dev/zero bs=1 count=1",
                "rm -f /tmp/a > /tmp/log"):
        assert [s.kind for s in analyze_command(bad).steps] == ["unsupported"], bad
    assert dd_spec(["if=/dev/zero", "of=/tmp/x", "count=2"]) == ("/tmp/x", 1024)   # bs 512


def test_other_shell_commands_still_skip_the_script() -> None:
    text = "`rm -rf /tmp/x`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
    script = parse_script(text, "x.pkt")
    assert skip_reason("x.pkt", script, None) == "unsupported shell command: rm -rf /tmp/x"


def test_dd_makes_the_file_the_run_opens(tmp_path: Path) -> None:
    """The emulated dd leaves no file on the real disk: the path exists only in the run."""
    target = "/tmp/tcpdive-test-dd-only-in-the-run"
    script = tmp_path / "dd.pkt"
    script.write_text(
        f"`dd if=/dev/zero of={target} bs=7 count=1 status=none`\n"
        f"0 open(\"{target}\", O_RDONLY) = 3\n"
        "+0 read(3, ..., 100) = 7\n"
        f"+0 `rm -f {target}`\n"
        f"+0 open(\"{target}\", O_RDONLY) = -1 ENOENT (No such file or directory)\n"
        "+0 read(3, ..., 100) = 0\n")
    res = run_script(str(script))
    assert res.verdict == "PASS", f"{res.reason}\n{res.details}"
    assert not Path(target).exists()
