"""Tests for the packetdrill script lexer/parser, shell-command analysis and symbol table."""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcpdive.packetdrill import corpus_root
from tcpdive.packetdrill.ast import (
    AssignExpr,
    BinaryExpr,
    BraceExpr,
    CmsgExpr,
    Code,
    Command,
    Direction,
    EllipsisExpr,
    EolOption,
    EpollEventExpr,
    EventTime,
    FastOpenOption,
    IcmpPacket,
    In6AddrExpr,
    InAddrExpr,
    IntExpr,
    IovecExpr,
    IpEncap,
    IpInfo,
    LingerExpr,
    ListExpr,
    Md5Option,
    MsghdrExpr,
    MssOption,
    NopOption,
    Option,
    PollfdExpr,
    SackOption,
    SackPermittedOption,
    ScmTimestampingExpr,
    SockaddrExpr,
    SockExtendedErrExpr,
    StringExpr,
    Syscall,
    SysctlSetting,
    TcpPacket,
    TimeKind,
    TimestampOption,
    UdpPacket,
    WordExpr,
    WScaleOption,
)
from tcpdive.packetdrill.lexer import PacketdrillSyntaxError, TokenKind, tokenize
from tcpdive.packetdrill.parser import (
    RUN_ALL_IPV4_DEFINES,
    analyze_command,
    parse_file,
    parse_script,
    parse_time_usecs,
)
from tcpdive.packetdrill.symbols import CODE_SYMBOLS, ERRNO, SYMBOLS, resolve, resolve_int

HERE = Path(__file__).parent
SCRIPTS = HERE / "scripts"
CORPUS_ROOT = corpus_root() or Path("/nonexistent/shared/packetdrill")
CORPUS = CORPUS_ROOT / "tcp"
CORPUS_FILES = sorted(CORPUS.rglob("*.pkt")) if CORPUS.is_dir() else []
NO_CORPUS = "Linux packetdrill corpus not found (../shared/packetdrill beside the repo)"

# Corpus scripts that cannot be parsed, with the reason (none at present).
CORPUS_XFAIL: dict[str, str] = {}

IN, OUT = Direction.INBOUND, Direction.OUTBOUND
REL, ABS = TimeKind.RELATIVE, TimeKind.ABSOLUTE


def parse(text: str, **kw) -> object:
    """Parse ``text`` (a script body) with path ``t.pkt``."""
    return parse_script(text, "t.pkt", **kw)


def event(line: str, **kw):
    """Parse a one-event script and return its Event."""
    (ev,) = parse(line, **kw).events
    return ev


def action(line: str, **kw):
    """Parse a one-event script and return its action."""
    return event(line, **kw).action


def syscall_arg(args: str):
    """The single argument expression of ``0 f(<args>) = 0``."""
    (arg,) = action(f"0 f({args}) = 0").args
    return arg


def syntax_error(text: str) -> PacketdrillSyntaxError:
    """The error raised when parsing ``text``."""
    with pytest.raises(PacketdrillSyntaxError) as info:
        parse(text)
    return info.value


@functools.cache
def parsed_corpus_script(path: Path):
    """A corpus script parsed with run_all.py's IPv4 defines (cached across tests)."""
    return parse_file(path, RUN_ALL_IPV4_DEFINES)


def walk(node):
    """Yield every AST node reachable from ``node``."""
    if isinstance(node, tuple):
        for item in node:
            yield from walk(item)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        yield node
        for f in dataclasses.fields(node):
            yield from walk(getattr(node, f.name))


# --------------------------------------------------------------------------- corpus


@pytest.mark.skipif(not CORPUS_FILES, reason=NO_CORPUS)
@pytest.mark.parametrize(
    "path", CORPUS_FILES, ids=[str(p.relative_to(CORPUS)) for p in CORPUS_FILES]
)
def test_corpus_script_parses(path: Path) -> None:
    rel = str(path.relative_to(CORPUS))
    if rel in CORPUS_XFAIL:
        pytest.xfail(CORPUS_XFAIL[rel])
    script = parsed_corpus_script(path)
    assert script.events
    # packetdrill's run-time rule: the first event is at time 0 (written 0 or +0).
    assert script.events[0].time.usecs == 0


@pytest.mark.skipif(not CORPUS_FILES, reason=NO_CORPUS)
def test_corpus_parse_count(capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    parsed = failed = 0
    for path in CORPUS_FILES:
        try:
            parse_file(path, RUN_ALL_IPV4_DEFINES)
            parsed += 1
        except PacketdrillSyntaxError:
            failed += 1
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(
            f"\npacketdrill corpus: parsed {parsed}/{len(CORPUS_FILES)} scripts in {elapsed:.2f}s"
        )
    assert parsed == len(CORPUS_FILES) - len(CORPUS_XFAIL)


@pytest.mark.skipif(not CORPUS_FILES, reason=NO_CORPUS)
def test_corpus_symbols_all_resolve() -> None:
    """Every symbol used as a syscall argument/result and every errno has a Linux value."""
    unknown = set()
    for path in CORPUS_FILES:
        for ev in parsed_corpus_script(path).events:
            if not isinstance(ev.action, Syscall):
                continue
            if ev.action.errno is not None and ev.action.errno not in ERRNO:
                unknown.add(ev.action.errno)
            for node in walk((ev.action.args, ev.action.result)):
                if (
                    isinstance(node, WordExpr)
                    and node.name not in SYMBOLS
                    and node.name not in ERRNO
                ):
                    unknown.add(node.name)
    assert not unknown


@pytest.mark.skipif(not CORPUS_FILES, reason=NO_CORPUS)
def test_corpus_tfo_cookie_needs_define() -> None:
    """Without run_all.py's -D TFO_COOKIE=... the scripts using it fail like packetdrill."""
    path = CORPUS / "fastopen" / "server" / "basic-rw.pkt"
    with pytest.raises(PacketdrillSyntaxError, match="TFO_COOKIE' is not a valid hex string"):
        parse_file(path)


# --------------------------------------------------------------------------- own fixtures


def test_fixture_passive_open_structure() -> None:
    script = parse_file(SCRIPTS / "passive_open.pkt")
    assert script.options == (Option("tolerance_usecs", "5000"),)
    assert script.option("tolerance_usecs") == "5000"
    assert script.option("mss") is None
    assert script.init_command == Command("sysctl -q net.ipv4.tcp_sack=1 net.ipv4.tcp_timestamps=0")
    assert script.init_command.line == 4
    assert script.cleanup_command == Command("echo done")
    assert script.cleanup_command.line == 28
    lines = " ".join(str(ev.line) for ev in script.events)
    assert lines == "7 8 9 10 13 14 15 16 19 20 21 24 25 26"
    kinds = [type(ev.action).__name__ for ev in script.events]
    assert kinds == ["Syscall"] * 4 + ["TcpPacket"] * 3 + ["Syscall"] * 2 + ["TcpPacket"] * 2 + [
        "Syscall",
        "TcpPacket",
        "Code",
    ]


def test_fixture_passive_open_events() -> None:
    ev = parse_file(SCRIPTS / "passive_open.pkt").events
    assert ev[4].time == EventTime(REL, 100_000)
    assert ev[4].action == TcpPacket(
        IN,
        "S",
        0,
        0,
        0,
        window=4000,
        options=(MssOption(1000), SackPermittedOption(), NopOption(), NopOption()),
    )
    assert ev[5].action == TcpPacket(
        OUT,
        "S.",
        0,
        0,
        0,
        ack_seq=1,
        options=(MssOption(1460), NopOption(), NopOption(), SackPermittedOption()),
    )
    assert ev[8].time == EventTime(REL, 0)
    assert ev[8].action == Syscall(
        "read", (IntExpr(4), EllipsisExpr(), IntExpr(500)), IntExpr(500), end_usecs=50_000
    )
    assert ev[8].action.is_blocking
    assert ev[9].action == TcpPacket(IN, "P.", 1, 501, 500, ack_seq=1, window=4000)
    assert ev[10].time == EventTime(TimeKind.RELATIVE_RANGE, 0, 40_000)
    assert ev[11].time == EventTime(ABS, 400_000)
    assert ev[12].time == EventTime(TimeKind.ANY)
    assert ev[13].action == Code("assert tcpi_state == TCP_FIN_WAIT1, tcpi_state")


def test_fixture_syscall_forms() -> None:
    calls = [ev.action for ev in parse_file(SCRIPTS / "syscall_forms.pkt").events]
    assert calls[0].args == (
        WordExpr("AF_INET"),
        BinaryExpr("|", WordExpr("SOCK_STREAM"), WordExpr("SOCK_NONBLOCK")),
        IntExpr(0),
    )
    assert calls[2].args[3] == LingerExpr(1, 0)
    assert calls[3].args[1] == SockaddrExpr("AF_INET", 8080, "192.0.2.1")
    assert (calls[3].result, calls[3].errno, calls[3].strerror) == (
        IntExpr(-1),
        "EINPROGRESS",
        "Operation now in progress",
    )
    assert calls[4].args[0] == ListExpr(
        (PollfdExpr(IntExpr(3), WordExpr("POLLOUT"), WordExpr("POLLOUT")),)
    )
    assert calls[5].args[3] == EpollEventExpr(
        BinaryExpr("|", WordExpr("EPOLLIN"), WordExpr("EPOLLET")), "fd", IntExpr(3)
    )
    assert calls[6].args[1] == ListExpr((IovecExpr(10), IovecExpr(20)))
    assert calls[7].args[1] == MsghdrExpr(1, ListExpr((IovecExpr(100),)), IntExpr(0))
    assert calls[8].args[1] == StringExpr("hello world")
    assert calls[9].args[1] == StringExpr("abc", ellipsis=True)
    assert calls[10].args[3] == BraceExpr(
        (AssignExpr("tcpi_state", IntExpr(1)), AssignExpr("tcpi_rto", IntExpr(200000)))
    )
    assert calls[10].args[4] == ListExpr((IntExpr(16, hex=True),))
    ee = SockExtendedErrExpr(
        WordExpr("ENOMSG"),
        WordExpr("SO_EE_ORIGIN_ZEROCOPY"),
        IntExpr(0),
        WordExpr("SO_EE_CODE_ZEROCOPY_COPIED"),
        IntExpr(0),
        IntExpr(1),
    )
    assert calls[11].args[1] == MsghdrExpr(
        1,
        ListExpr((IovecExpr(0),)),
        WordExpr("MSG_ERRQUEUE"),
        ListExpr((CmsgExpr(WordExpr("SOL_IP"), WordExpr("IP_RECVERR"), ee),)),
    )
    assert calls[11].line == 13
    assert calls[11].args[1].control.items[0].data.line == 18
    assert calls[12].args[1].control.items[0].data == ScmTimestampingExpr(0, 1000)
    assert (calls[13].note, calls[13].errno) == ("clean", None)


# --------------------------------------------------------------------------- timing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", EventTime(ABS, 0)),
        ("1", EventTime(ABS, 1_000_000)),
        ("0.100", EventTime(ABS, 100_000)),
        (".5", EventTime(ABS, 500_000)),
        ("2.000001", EventTime(ABS, 2_000_001)),
        ("+0", EventTime(REL, 0)),
        ("+.1", EventTime(REL, 100_000)),
        ("+0.035", EventTime(REL, 35_000)),
        ("+3", EventTime(REL, 3_000_000)),
        ("*", EventTime(TimeKind.ANY)),
        ("0.100~0.200", EventTime(TimeKind.ABSOLUTE_RANGE, 100_000, 200_000)),
        ("+.1~+.25", EventTime(TimeKind.RELATIVE_RANGE, 100_000, 250_000)),
    ],
)
def test_event_times(text: str, expected: EventTime) -> None:
    assert event(f"{text} > . 1:1(0) ack 1").time == expected


def test_time_conversion_is_exact() -> None:
    assert parse_time_usecs("0.29") == 290_000
    assert parse_time_usecs("0.0000019") == 1  # truncated to the microsecond
    assert parse_time_usecs("12") == 12_000_000
    assert [parse_time_usecs(f"0.{n:03d}") for n in range(1000)] == [n * 1000 for n in range(1000)]


def test_blocking_syscall_times() -> None:
    ev = event("+0.1...0.250 accept(3, ..., ...) = 4")
    assert ev.time == EventTime(REL, 100_000)
    assert ev.action.end_usecs == 250_000
    ev = event("0...0 read(4, ..., 10) = 10")
    assert (ev.time, ev.action.end_usecs) == (EventTime(ABS, 0), 0)
    assert action("0 close(3) = 0").end_usecs is None


def test_event_line_is_the_time_line() -> None:
    script = parse("// c\n\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\n  +0\n  close(3) = 0\n")
    assert [ev.line for ev in script.events] == [3, 5]
    assert script.events[1].action.line == 6


# --------------------------------------------------------------------------- TCP packets


@pytest.mark.parametrize(
    "flags",
    ["S", "S.", ".", "F", "F.", "R", "R.", "P", "P.", "FP.", "SF.", "SEW", "SE.", "E.", "U.", "W."],
)
def test_tcp_flags(flags: str) -> None:
    pkt = action(f"0 > {flags} 1:1(0)")
    assert pkt.flags == flags
    assert pkt.syn == ("S" in flags) and pkt.fin == ("F" in flags) and pkt.rst == ("R" in flags)
    assert pkt.psh == ("P" in flags) and pkt.ack == ("." in flags) and pkt.urg == ("U" in flags)
    assert pkt.ece == ("E" in flags) and pkt.cwr == ("W" in flags) and not pkt.ae


def test_tcp_no_flags_dash() -> None:
    pkt = action("0 < - 1:1001(1000) win 20000")
    assert pkt.flags == "" and not (pkt.syn or pkt.ack)


def test_tcp_ace_flags() -> None:
    pkt = action("0 > S.5 0:0(0) ack 1")
    assert (pkt.flags, pkt.ace, pkt.ece, pkt.cwr, pkt.ae) == ("S.5", 5, True, False, True)
    assert action("0 > .2 1:1(0) ack 1").flags == ".2"


def test_tcp_packet_fields() -> None:
    pkt = action("+0 < P. 1001:2001(1000) ack 5 win 257 urg 3")
    assert pkt == TcpPacket(IN, "P.", 1001, 2001, 1000, ack_seq=5, window=257, urg_ptr=3)
    assert pkt.options == ()
    pkt = action("+0 > . 1:1(0) ack 2001")
    assert (pkt.ack_seq, pkt.window, pkt.urg_ptr, pkt.options) == (2001, None, None, ())


def test_tcp_large_sequence_numbers_are_kept_as_written() -> None:
    """Script seq/ack are script-space: the runner offsets them by the ISNs."""
    pkt = action("0 < S. 4294967000:4294967000(0) ack 4294967295 win 65535")
    assert (pkt.seq, pkt.end_seq, pkt.ack_seq) == (4294967000, 4294967000, 4294967295)


def test_tcp_ports() -> None:
    pkt = action("0 < 5000>8080 S 0:0(0) win 100")
    assert (pkt.src_port, pkt.dst_port) == (5000, 8080)


def test_tcp_options_every_form() -> None:
    def options(text: str):
        return action(f"0 > S. 0:0(0) ack 1 <{text}>").options

    assert options("mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7") == (
        MssOption(1460),
        SackPermittedOption(),
        TimestampOption(100, 0),
        NopOption(),
        WScaleOption(7),
    )
    assert options("nop,nop,sack 1:1001 2001:3001 4001:5001") == (
        NopOption(),
        NopOption(),
        SackOption(((1, 1001), (2001, 3001), (4001, 5001))),
    )
    assert options("mss 1000,eol,eol,eol,eol") == (MssOption(1000),) + (EolOption(),) * 4
    assert options("FO abcd1234,nop,nop,FOEXP 0011223344556677") == (
        FastOpenOption("abcd1234"),
        NopOption(),
        NopOption(),
        FastOpenOption("0011223344556677", exp=True),
    )
    assert options("FO,nop,nop") == (FastOpenOption(""), NopOption(), NopOption())
    assert options("md5 000102030405060708090A0B0C0D0E0F,nop,nop") == (
        Md5Option("000102030405060708090a0b0c0d0e0f"),
        NopOption(),
        NopOption(),
    )


def test_tcp_option_wire_details() -> None:
    opts = action("0 > S 0:0(0) <FOEXP aabbccdd,FO 11223344,md5 00ff,wscale *,nop,nop,nop>").options
    assert [o.kind for o in opts] == [254, 34, 19, 3, 1, 1, 1]
    assert [o.length for o in opts] == [8, 6, 4, 3, 1, 1, 1]
    assert opts[0].cookie_bytes == bytes.fromhex("aabbccdd")
    assert opts[2].digest_bytes == b"\x00\xff"
    assert opts[3] == WScaleOption(None)
    assert FastOpenOption.EXP_MAGIC == 0xF989


def test_tcp_any_options() -> None:
    assert action("0 > S. 0:0(0) ack 1 <...>").options is None


def test_tcp_options_line_numbers() -> None:
    pkt = action("0 > S 0:0(0) <mss 1460,\n nop,\n nop, sackOK>")
    assert [o.line for o in pkt.options] == [1, 2, 3, 3]


@pytest.mark.parametrize(
    ("spec", "info"),
    [
        ("[ect0]", IpInfo(ecn="ect0")),
        ("[ect1]", IpInfo(ecn="ect1")),
        ("[ce]", IpInfo(ecn="ce")),
        ("[noecn]", IpInfo(ecn="noecn")),
        ("[ect01]", IpInfo(ecn="ect01")),
        ("(tos 0x10)", IpInfo(tos=0x10)),
        ("[ttl 64]", IpInfo(ttl=64)),
        ("(flowlabel 0x12345)", IpInfo(flowlabel=0x12345)),
        ("[ect0, flowlabel 0x1]", IpInfo(ecn="ect0", flowlabel=1)),
    ],
)
def test_ip_info(spec: str, info: IpInfo) -> None:
    assert action(f"0 > {spec} . 1:1(0) ack 1").ip == info


def test_ip_encapsulation() -> None:
    pkt = action("0 < ipv4 192.0.2.2 > 192.168.0.1: S 0:0(0) win 100")
    assert pkt.encap == (IpEncap("ipv4", "192.0.2.2", "192.168.0.1"),)
    pkt = action("0 > ipv6 (tos 0x4) 2001:db8::2 > fd::1: . 1:1(0) ack 1")
    assert pkt.encap == (IpEncap("ipv6", "2001:db8::2", "fd::1", IpInfo(tos=4)),)


def test_udp_packets() -> None:
    assert action("0 < udp (100)") == UdpPacket(IN, 100)
    assert action("0 > (tos 0x8) udp 53>4000 (12)") == UdpPacket(OUT, 12, IpInfo(tos=8), 53, 4000)


def test_icmp_packets() -> None:
    assert action("0 < icmp unreachable [5000:6000(1000)]") == IcmpPacket(
        IN, "unreachable", echoed_seq=5000, echoed_payload_len=1000
    )
    assert action("0 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]") == IcmpPacket(
        IN, "unreachable", "frag_needed", mtu=1200, echoed_seq=1, echoed_payload_len=1460
    )
    assert action("0 < icmp unreachable host_unreachable") == IcmpPacket(
        IN, "unreachable", "host_unreachable"
    )
    assert action("0 < icmp echo_reply id 7 [udp (8)]") == IcmpPacket(
        IN, "echo_reply", echo_id=7, echoed_protocol="udp", echoed_payload_len=8
    )


# --------------------------------------------------------------------------- system calls


@pytest.mark.parametrize(
    ("text", "expr"),
    [
        ("7", IntExpr(7)),
        ("-1", IntExpr(-1)),
        ("0x7fffffff", IntExpr(0x7FFFFFFF, hex=True)),
        ("...", EllipsisExpr()),
        ("NULL", WordExpr("NULL")),
        ("MSG_DONTWAIT", WordExpr("MSG_DONTWAIT")),
        (
            "POLLIN|POLLOUT|POLLRDHUP",
            BinaryExpr(
                "|", BinaryExpr("|", WordExpr("POLLIN"), WordExpr("POLLOUT")), WordExpr("POLLRDHUP")
            ),
        ),
        ('"/tmp/testfile"', StringExpr("/tmp/testfile")),
        ('"a\\"b"', StringExpr('a\\"b')),
        ("[1]", ListExpr((IntExpr(1),))),
        ("[]", ListExpr(())),
        ("[5, 6]", ListExpr((IntExpr(5), IntExpr(6)))),
        ("[IP_PMTUDISC_DONT]", ListExpr((WordExpr("IP_PMTUDISC_DONT"),))),
        ('inet_addr("192.0.2.1")', InAddrExpr("192.0.2.1")),
        ('inet6_addr("2001:db8::1")', In6AddrExpr("2001:db8::1")),
        ("{l_onoff=1, l_linger=5}", LingerExpr(1, 5)),
        ("{fd=4, events=POLLIN}", PollfdExpr(IntExpr(4), WordExpr("POLLIN"))),
        ("{events=0, ptr=0}", EpollEventExpr(IntExpr(0), "ptr", IntExpr(0))),
        ("{events=EPOLLOUT, u64=9}", EpollEventExpr(WordExpr("EPOLLOUT"), "u64", IntExpr(9))),
        ("{..., 1000}", IovecExpr(1000)),
        ("{1, 2}", BraceExpr((IntExpr(1), IntExpr(2)))),
        ("x=A|B", AssignExpr("x", BinaryExpr("|", WordExpr("A"), WordExpr("B")))),
        (
            '{sa_family=AF_INET6, sin_port=htons(80), sin_addr=inet_addr("::1")}',
            SockaddrExpr("AF_INET6", 80, "::1"),
        ),
    ],
)
def test_syscall_argument_forms(text: str, expr) -> None:
    assert syscall_arg(text) == expr


def test_syscall_no_arguments_and_results() -> None:
    call = action("0 getpid() = 1234")
    assert (call.name, call.args, call.result) == ("getpid", (), IntExpr(1234))
    assert action("0 f(1) = ...").result == EllipsisExpr()
    assert action("0 f(1) = 0x10").result == IntExpr(16, hex=True)


@pytest.mark.parametrize(
    ("tail", "errno", "strerror", "note"),
    [
        (
            "= -1 EINPROGRESS (Operation now in progress)",
            "EINPROGRESS",
            "Operation now in progress",
            None,
        ),
        (
            "= -1 EAGAIN (Resource temporarily unavailable)",
            "EAGAIN",
            "Resource temporarily unavailable",
            None,
        ),
        (
            "= -1 ETIMEDOUT (Connection Timed Out) (flaky)",
            "ETIMEDOUT",
            "Connection Timed Out",
            "flaky",
        ),
        ("= 0 (a note with ack and win words)", None, None, "a note with ack and win words"),
    ],
)
def test_syscall_errno_and_notes(tail: str, errno, strerror, note) -> None:
    call = action(f"0 connect(3, ..., ...) {tail}")
    assert (call.errno, call.strerror, call.note) == (errno, strerror, note)


def test_syscall_errno_on_a_continuation_line() -> None:
    call = action(
        "0 recvmsg(3, {msg_name(...)=...,\n msg_iov(1)=[{...,0}],\n msg_flags=0}, 0)\n = -1 EAGAIN (x)"
    )
    assert (call.line, call.result.line, call.errno) == (1, 4, "EAGAIN")


# --------------------------------------------------------------------------- commands, code, options


def test_commands_and_code() -> None:
    script = parse(
        "`init one\ninit two`\n0 `sysctl -q net.ipv4.tcp_ecn=1`\n+0 %{\nx = 1\nassert x\n}%\n`cleanup`\n"
    )
    assert script.init_command == Command("init one\ninit two")
    assert script.events[0].action == Command("sysctl -q net.ipv4.tcp_ecn=1")
    assert script.events[1].action == Code("\nx = 1\nassert x\n")
    assert script.events[1].line == 4
    assert script.cleanup_command == Command("cleanup")
    assert script.cleanup_command.line == 8


def test_code_block_strips_blanks_and_tabs_only() -> None:
    assert action("0 %{ \t print(1) \t}%") == Code("print(1)")


def test_options_forms() -> None:
    script = parse(
        "--tolerance_usecs=10000\n--strict_segments\n--ip_version=ipv6\n--local_ip=fd::1\n"
        "--remote_ip=192.0.2.1\n--tcp_ts_ecr_scaled // comment\n--define=X=Y\n"
        '--define=S="a b"\n0 close(3) = 0\n'
    )
    assert script.options == (
        Option("tolerance_usecs", "10000"),
        Option("strict_segments"),
        Option("ip_version", "ipv6"),
        Option("local_ip", "fd::1"),
        Option("remote_ip", "192.0.2.1"),
        Option("tcp_ts_ecr_scaled"),
        Option("define", "X=Y"),
        Option("define", 'S="a b"'),
    )
    assert script.option("strict_segments") == ""
    assert [o.line for o in script.options] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_defines_substitution() -> None:
    script = parse(
        '--define=LEVEL=SOL_TCP\n--define=GREETING="hi"\n0 setsockopt(3, LEVEL, TCP_NODELAY, [1], 4) = 0\n'
        "+0 write(3, GREETING, 2) = 2\n"
    )
    assert script.events[0].action.args[1] == WordExpr("SOL_TCP")
    assert script.events[1].action.args[1] == StringExpr("hi")
    assert dict(script.defines) == {"LEVEL": "SOL_TCP", "GREETING": '"hi"'}


def test_external_defines_and_cookie() -> None:
    defines = {"TFO_COOKIE": "de4f234f0f433a55", "CMSG_LEVEL_IP": "SOL_IP", "CMD": "`ls`"}
    script = parse(
        "0 < S 0:10(10) win 100 <mss 1460,sackOK,nop,nop,FOEXP TFO_COOKIE>\n"
        "+0 f(CMSG_LEVEL_IP) = 0\n+0 CMD\n",
        defines=defines,
    )
    assert script.events[0].action.options[-1] == FastOpenOption("de4f234f0f433a55", exp=True)
    assert script.events[1].action.args == (WordExpr("SOL_IP"),)
    assert script.events[2].action == Command("ls")


def test_defines_never_replace_keywords() -> None:
    pkt = action("0 < . 1:1(0) ack 1 win 5", defines={"ack": "nope", "win": "nope"})
    assert (pkt.ack_seq, pkt.window) == (1, 5)


def test_command_line_defines_override_script_defines() -> None:
    script = parse("--define=A=B\n0 f(A) = 0\n", defines={"A": "C"})
    assert script.events[0].action.args == (WordExpr("C"),)


# --------------------------------------------------------------------------- sysctl extraction


def test_analyze_sysctl_forms() -> None:
    effects = analyze_command(
        "sysctl -q net.ipv4.tcp_sack=0 net.ipv4.tcp_dsack=0\n"
        "sysctl -w net/ipv4/tcp_ecn=1\n"
        "sysctl -e -q net.ipv4.tcp_min_tso_segs=2 > /dev/null 2>&1\n"
        "../common/set_sysctls.py /proc/sys/net/ipv4/tcp_timestamps=0 \\\n"
        '    /proc/sys/net/ipv4/tcp_wmem="4096 50000 4194304"\n'
        "echo 3 > /proc/sys/net/ipv4/tcp_reordering   # comment\n"
        'sysctl -q net.ipv4.tcp_rmem="4096 540000 $((15*1024*1024))"\n'
    )
    assert effects.sysctls == (
        SysctlSetting("net.ipv4.tcp_sack", "0"),
        SysctlSetting("net.ipv4.tcp_dsack", "0"),
        SysctlSetting("net.ipv4.tcp_ecn", "1"),
        SysctlSetting("net.ipv4.tcp_min_tso_segs", "2"),
        SysctlSetting("net.ipv4.tcp_timestamps", "0"),
        SysctlSetting("net.ipv4.tcp_wmem", "4096 50000 4194304"),
        SysctlSetting("net.ipv4.tcp_reordering", "3"),
        SysctlSetting("net.ipv4.tcp_rmem", "4096 540000 15728640"),
    )
    assert [s.kind for s in effects.steps] == ["sysctl"] * 6
    assert effects.unsupported == ()


def test_analyze_other_commands() -> None:
    effects = analyze_command(
        "tc qdisc delete dev tun0 root 2>/dev/null ; ip tcp_metrics flush all &> /dev/null\n"
        "/tmp/sysctl_restore_${PPID}.sh\n"
        "echo 3 > /sys/module/tcp_cubic/parameters/hystart_detect\n"
        "nstat | grep TcpExtOutOfWindowIcmps > /dev/null\n"
        "sysctl net.ipv4.tcp_sack\n"
    )
    assert [(s.kind, s.connector) for s in effects.steps] == [
        ("unsupported", ""),
        ("tcp_metrics_flush", ";"),
        ("restore", ""),
        ("module_param", ""),
        ("unsupported", ""),
        ("unsupported", "|"),
        ("unsupported", ""),
    ]
    assert effects.steps[3].sysctls == (SysctlSetting("tcp_cubic.hystart_detect", "3"),)
    assert effects.unsupported == (
        "tc qdisc delete dev tun0 root",
        "nstat",
        "grep TcpExtOutOfWindowIcmps",
        "sysctl net.ipv4.tcp_sack",
    )
    assert effects.sysctls == ()


def test_analyze_defaults_script(tmp_path: Path) -> None:
    common = tmp_path / "common"
    common.mkdir()
    (common / "defaults.sh").write_text(
        "#!/bin/bash\n# baseline\nsysctl -q net.ipv4.tcp_sack=1\nip tcp_metrics flush all\n"
        'sysctl -q net.ipv4.tcp_wmem="4096 $((256*1024)) 4194304"\n'
    )
    (tmp_path / "sub").mkdir()
    effects = analyze_command(
        "../common/defaults.sh\nsysctl -q net.ipv4.tcp_sack=0", cwd=str(tmp_path / "sub")
    )
    assert effects.runs_defaults
    assert effects.sysctls == (
        SysctlSetting("net.ipv4.tcp_sack", "1"),
        SysctlSetting("net.ipv4.tcp_wmem", "4096 262144 4194304"),
        SysctlSetting("net.ipv4.tcp_sack", "0"),
    )
    missing = analyze_command("../../common/defaults.sh", cwd=str(tmp_path / "sub"))
    assert missing.runs_defaults and missing.sysctls == ()
    fallback = analyze_command(
        "../../common/defaults.sh",
        cwd=str(tmp_path / "sub"),
        defaults_path=str(common / "defaults.sh"),
    )
    assert len(fallback.sysctls) == 2


@pytest.mark.skipif(not CORPUS_FILES, reason=NO_CORPUS)
def test_analyze_corpus_defaults() -> None:
    script = parse_file(CORPUS / "blocking" / "blocking-read.pkt")
    effects = analyze_command(script.init_command.command, cwd=str(CORPUS / "blocking"))
    values = dict((s.name, s.value) for s in effects.sysctls)
    assert values["net.ipv4.tcp_rmem"] == "4096 540000 15728640"
    assert values["net.ipv4.tcp_congestion_control"] == "cubic"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 write(4, ..., 10\n+0 close(4) = 0\n",
            2,
            "parse error at end of line: expected ')'",
        ),
        ("0 close(3) = 0\n+0 bogus\n", 2, "parse error at end of line: expected '('"),
        (
            "0 close(3) = 0\nfoo bar\n",
            2,
            "parse error at 'foo': expected an event time (e.g. 0, +0.1, *)",
        ),
        (
            "0 > S 0:0(0) <mss 1460,bogus 3>\n",
            1,
            "parse error at 'bogus': expected a TCP option "
            "(nop, eol, mss, wscale, sackOK, sack, TS, md5, FO, FOEXP)",
        ),
        ("0 > Q 0:0(0)\n", 1, "semantic error: Invalid TCP flag: 'Q'"),
        ("0 > E.5 0:0(0)\n", 1, "semantic error: Conflicting TCP flag: '5'"),
        (
            "0 close(3) = 0\n\n\n+0 < S 0:10(0) win 1\n",
            4,
            "semantic error: inconsistent TCP sequence numbers and payload size",
        ),
        (
            "0 close(3) = 0\n+0 < . 1:1(0) ack 1\n",
            2,
            "semantic error: window must be specified for inbound packets",
        ),
        (
            "0 close(3) = 0\n+0 < . 1:1(0) ack 1 win 1 <...>\n",
            2,
            "semantic error: <...> for TCP options can only be used with outbound packets",
        ),
        (
            "0 close(3) = 0\n* close(4) = 0\n",
            2,
            "semantic error: event time <star> can only be used with outbound packets",
        ),
        (
            "0 close(3) = 0\n+1~+2 < . 1:1(0) win 1\n",
            2,
            "semantic error: event time range can only be used with outbound packets",
        ),
        ("0 close(3) = 0\n0.2~0.1 > . 1:1(0)\n", 2, "semantic error: time range is backwards"),
        ("0 close(3) = 0\n+-1 close(3) = 0\n", 2, "semantic error: negative time"),
        (
            "0 > S 0:0(0) <mss 1460,nop>\n",
            1,
            "semantic error: TCP options are not padded correctly to ensure TCP header is a multiple of 4 bytes: 1 excess bytes",
        ),
        (
            "0 > S 0:0(0) <FO 123>\n",
            1,
            "semantic error: TCP fast open cookie has an odd number of digits",
        ),
        ("0 > S 0:0(0) <mss 70000>\n", 1, "semantic error: mss value out of range"),
        ("0 < . 1:1(0) win 65536\n", 1, "semantic error: TCP window value out of range"),
        (
            "0 < [ect01] . 1:1(0) win 1\n",
            1,
            "semantic error: [ect01] can only be used with outbound packets",
        ),
        (
            '0 connect(3, {sa_family=AF_INET, sin_port=htons(1), sin_addr=inet_addr("1.2.3")}, 16) = 0\n',
            1,
            "semantic error: invalid IPv4 address",
        ),
        ('0 write(3, "abc, 3) = 3\n', 1, "parse error at '\"': unterminated string"),
        (
            "`defaults.sh`\n",
            1,
            "parse error at end of file: a script needs at least one timed event",
        ),
        (
            "0 close(3) = 0\n`x`\n+0 close(4) = 0\n",
            2,
            "parse error at '`x`': a command without a time must be the first or last line",
        ),
        ("0 close(3) = 0\n/* open\n", 2, "parse error at '/*': unterminated comment"),
        ("0 close(3) = 0\n+0 %{ x = 1\n", 2, "parse error at '%{': unterminated %{ code }% block"),
        ("0 > gre: S 0:0(0)\n", 1, "parse error at 'gre': gre encapsulation is not supported"),
    ],
)
def test_syntax_errors(text: str, line: int, message: str) -> None:
    err = syntax_error(text)
    assert (err.line, err.message) == (line, message)
    assert str(err) == f"t.pkt:{line}: {message}"


def test_error_inside_multiline_struct_points_at_the_bad_field() -> None:
    err = syntax_error(
        "0 recvmsg(3, {msg_name(...)=...,\n  msg_iovec(1)=[{..., 0}],\n  msg_flags=0}, 0) = 0\n"
    )
    assert (err.line, err.message) == (2, "parse error at 'msg_iovec': expected 'msg_iov'")


def test_missing_file_is_a_packetdrill_error(tmp_path: Path) -> None:
    with pytest.raises(PacketdrillSyntaxError, match="parse error opening script file"):
        parse_file(tmp_path / "nope.pkt")


_ALPHABET = st.sampled_from(
    list('0123456789+-*.~:<>()[]{},=|"`%/ \n\tSFRPEWabcdefxyz_')
    + ["...", "//", "/*", "*/", "%{", "}%"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ALPHABET, max_size=60).map("".join))
def test_random_text_raises_only_syntax_errors(text: str) -> None:
    try:
        parse(text)
    except PacketdrillSyntaxError as err:
        assert err.path == "t.pkt" and err.line >= 0


_VALID = (SCRIPTS / "syscall_forms.pkt").read_text() + (SCRIPTS / "passive_open.pkt").read_text()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(_VALID) - 1), st.integers(1, 8), st.text(max_size=4))
def test_mutated_script_raises_only_syntax_errors(start: int, length: int, insert: str) -> None:
    text = _VALID[:start] + insert + _VALID[start + length :]
    try:
        parse(text)
    except PacketdrillSyntaxError:
        pass


# --------------------------------------------------------------------------- lexer


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("+0...0.100", [("PUNCT", "+"), ("INTEGER", "0"), ("ELLIPSIS", "..."), ("FLOAT", "0.100")]),
        (
            "1:1001(1000)",
            [
                ("INTEGER", "1"),
                ("PUNCT", ":"),
                ("INTEGER", "1001"),
                ("PUNCT", "("),
                ("INTEGER", "1000"),
                ("PUNCT", ")"),
            ],
        ),
        ("192.0.2.1", [("IPV4_ADDR", "192.0.2.1")]),
        ("fd3d:fa7b:d17d::0", [("IPV6_ADDR", "fd3d:fa7b:d17d::0")]),
        ("2001:DB8::1", [("IPV6_ADDR", "2001:DB8::1")]),
        (
            "0aabbccdd0 1234 0x1f 0x1fz",
            [
                ("WORD", "0aabbccdd0"),
                ("INTEGER", "1234"),
                ("HEX_INTEGER", "0x1f"),
                ("WORD", "0x1fz"),
            ],
        ),
        ("--mss=1000", [("OPTION", "mss"), ("PUNCT", "="), ("INTEGER", "1000")]),
        ("-1 -.5 x-1", [("INTEGER", "-1"), ("FLOAT", "-.5"), ("WORD", "x"), ("INTEGER", "-1")]),
        ("a // c\nb /* c\nc */ d", [("WORD", "a"), ("WORD", "b"), ("WORD", "d")]),
    ],
)
def test_lexer(text: str, tokens: list[tuple[str, str]]) -> None:
    got = [(t.kind.name, t.value) for t in tokenize(text)]
    assert got[-1] == ("EOF", "")
    assert got[:-1] == tokens


def test_lexer_lines() -> None:
    toks = tokenize("a\n/* x\ny */ b `c\nd` e")
    assert [(t.value, t.line, t.end_line) for t in toks if t.kind is not TokenKind.EOF] == [
        ("a", 1, 1),
        ("b", 3, 3),
        ("c\nd", 3, 4),
        ("e", 4, 4),
    ]


# --------------------------------------------------------------------------- symbols


def test_symbol_values() -> None:
    assert resolve("SOL_SOCKET") == 1 and resolve("SO_REUSEADDR") == 2
    assert resolve("IPPROTO_TCP") == 6 and resolve("TCP_NODELAY") == 1
    assert resolve("O_NONBLOCK") == 0o4000 and resolve("F_GETFL") == 3
    assert resolve("MSG_DONTWAIT") == 0x40 and resolve("MSG_FASTOPEN") == 0x20000000
    assert resolve("EPOLLET") == 1 << 31 and resolve("POLLRDHUP") == 0x2000
    assert resolve("SIOCINQ") == 0x541B and resolve("TCP_INQ") == resolve("TCP_CM_INQ") == 36
    assert resolve("EINPROGRESS") == 115 and ERRNO["EAGAIN"] == 11
    assert CODE_SYMBOLS["TCP_CA_Recovery"] == 3 and CODE_SYMBOLS["TCP_CLOSE_WAIT"] == 8
    with pytest.raises(KeyError):
        resolve("NOT_A_SYMBOL")


def test_resolve_int() -> None:
    assert resolve_int(syscall_arg("O_RDWR|O_NONBLOCK")) == 2 | 0o4000
    assert resolve_int(syscall_arg("0x10")) == 16
    with pytest.raises(TypeError):
        resolve_int(syscall_arg("[1]"))
