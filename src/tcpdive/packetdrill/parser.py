"""Recursive-descent parser for packetdrill scripts (follows packetdrill's parser.y).

``parse_script(text)`` / ``parse_file(path)`` return an ``ast.Script``.  Syntax
errors and the semantic checks packetdrill makes while parsing (negative times,
inconsistent ``seq:end(len)``, ``<...>`` on inbound packets, missing inbound ``win``,
bad TCP flags, unpadded TCP options...) raise ``PacketdrillSyntaxError`` whose text
is ``path:line: parse error at 'tok': ...`` or ``path:line: semantic error: ...``.
No other exception type escapes.

``analyze_command(text)`` classifies backquoted shell commands and extracts the
sysctl writes they make.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import NoReturn

from .ast import (
    Action,
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
    Event,
    EventTime,
    Expr,
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
    Script,
    ShellEffects,
    ShellStep,
    SockaddrExpr,
    SockExtendedErrExpr,
    StringExpr,
    Syscall,
    SysctlSetting,
    TcpOption,
    TcpPacket,
    TimeKind,
    TimestampOption,
    UdpPacket,
    WordExpr,
    WScaleOption,
)
from .lexer import KEYWORDS, PacketdrillSyntaxError, Token, TokenKind, tokenize

__all__ = [
    "RUN_ALL_IPV4_DEFINES",
    "RUN_ALL_IPV6_DEFINES",
    "PacketdrillSyntaxError",
    "analyze_command",
    "parse_file",
    "parse_script",
    "parse_time_usecs",
]

# The -D symbols packetdrill's run_all.py passes for each IP variant.
RUN_ALL_IPV4_DEFINES: Mapping[str, str] = {
    # Linux 6.x's SipHash cookie for 192.0.2.1 -> 192.168.0.1 under defaults.sh's key
    # a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4 (the value upstream run_all.py passes)
    "TFO_COOKIE": "3021b9d889017eeb",
    "CMSG_LEVEL_IP": "SOL_IP",
    "CMSG_TYPE_RECVERR": "IP_RECVERR",
}
RUN_ALL_IPV6_DEFINES: Mapping[str, str] = {
    "TFO_COOKIE": "6aa6ae70c288023b",
    "CMSG_LEVEL_IP": "SOL_IPV6",
    "CMSG_TYPE_RECVERR": "IPV6_RECVERR",
}

_MAX_TCP_OPTION_BYTES = 40  # 60-byte TCP header minus the 20 fixed bytes
_VALID_TCP_FLAGS = frozenset(".FSRPEWAU01234567")
_ECN_TCP_FLAGS = frozenset("EWA")
_IP_ECN_WORDS = frozenset({"noecn", "ect0", "ect1", "ect01", "ce"})
_U8, _U16, _U20, _U32 = 0xFF, 0xFFFF, 0xFFFFF, 0xFFFFFFFF


def parse_time_usecs(text: str) -> int:
    """Seconds as written (``"0.100"``, ``".1"``, ``"2"``) to exact integer microseconds.

    packetdrill computes ``(s64)(secs * 1e6)`` in floating point; this is the exact
    decimal value truncated to the microsecond, which is what scripts mean.
    """
    negative = text.startswith("-")
    whole, _, frac = text.lstrip("-").partition(".")
    usecs = int(whole or "0") * 1_000_000 + int((frac + "000000")[:6])
    return -usecs if negative else usecs


class _Parser:
    """One parse of one script: the token list, a cursor and the error context."""

    __slots__ = ("tokens", "pos", "path", "defines", "stmt_start")

    def __init__(self, tokens: list[Token], path: str, defines: dict[str, str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.path = path
        self.defines = defines
        self.stmt_start = 0  # index of the first token of the statement being parsed

    # ------------------------------------------------------------------ token helpers

    def peek(self, ahead: int = 0) -> Token:
        """The token ``ahead`` positions after the cursor (EOF past the end)."""
        try:
            return self.tokens[self.pos + ahead]
        except IndexError:
            return self.tokens[-1]

    def advance(self) -> Token:
        """Consume and return the current token."""
        tok = self.tokens[self.pos]
        if tok.kind is not TokenKind.EOF:
            self.pos += 1
        return tok

    def at_punct(self, ch: str, ahead: int = 0) -> bool:
        """Is the token ``ahead`` the single character ``ch``?"""
        tok = self.peek(ahead)
        return tok.value == ch and tok.kind is TokenKind.PUNCT

    def at_word(self, word: str, ahead: int = 0) -> bool:
        """Is the token ``ahead`` the word (or keyword) ``word``?"""
        tok = self.peek(ahead)
        return tok.kind is TokenKind.WORD and tok.value == word

    def accept_punct(self, ch: str) -> bool:
        """Consume ``ch`` if it is next."""
        if self.at_punct(ch):
            self.pos += 1
            return True
        return False

    def expect_punct(self, ch: str) -> Token:
        """Consume ``ch`` or fail with a syntax error."""
        if not self.at_punct(ch):
            self.fail(f"expected '{ch}'")
        return self.advance()

    def expect_word(self, word: str) -> Token:
        """Consume the keyword ``word`` or fail."""
        if not self.at_word(word):
            self.fail(f"expected '{word}'")
        return self.advance()

    def expect_kind(self, kind: TokenKind, what: str) -> Token:
        """Consume a token of ``kind`` or fail, naming ``what`` was wanted."""
        if self.peek().kind is not kind:
            self.fail(f"expected {what}")
        return self.advance()

    def expect_int(self, what: str = "an integer") -> tuple[int, Token]:
        """Consume a decimal INTEGER and return its value and token."""
        tok = self.expect_kind(TokenKind.INTEGER, what)
        return int(tok.value), tok

    def expect_field(self, name: str) -> None:
        """Consume ``name =`` inside a struct literal."""
        self.expect_word(name)
        self.expect_punct("=")

    # ------------------------------------------------------------------ errors

    def fail(self, message: str) -> NoReturn:
        """Raise a syntax error at the current token, like packetdrill's yyerror().

        If a statement is cut short (the offending token is what starts the next
        event, on a later line), the error is reported at the end of the line where
        the statement stopped rather than on the following line.
        """
        tok = self.peek()
        if self.pos > self.stmt_start and _starts_event(tok):
            prev = self.tokens[self.pos - 1]
            if tok.line > prev.end_line:
                raise PacketdrillSyntaxError(
                    self.path, prev.end_line, f"parse error at end of line: {message}"
                )
        if tok.kind is TokenKind.EOF:
            line = self.tokens[self.pos - 1].end_line if self.pos > 0 else tok.line
            raise PacketdrillSyntaxError(self.path, line, f"parse error at end of file: {message}")
        near = tok.text
        if "\n" in near:
            near = near.split("\n", 1)[0] + "..."
        raise PacketdrillSyntaxError(self.path, tok.line, f"parse error at '{near}': {message}")

    def semantic(self, line: int, message: str) -> NoReturn:
        """Raise a packetdrill-style semantic error for ``line``."""
        raise PacketdrillSyntaxError(self.path, line, f"semantic error: {message}")

    def check_range(self, value: int, limit: int, tok: Token, message: str) -> int:
        """Fail with ``message`` unless ``0 <= value <= limit``."""
        if not 0 <= value <= limit:
            self.semantic(tok.line, message)
        return value

    # ------------------------------------------------------------------ script

    def script(self, external_defines: Mapping[str, str]) -> Script:
        """script: opt_options opt_init_command events opt_cleanup_command."""
        options = self.options()
        for opt in options:
            if opt.name == "define" and opt.value:
                name, _, value = opt.value.partition("=")
                self.defines[name] = value
        self.defines.update(external_defines)  # command-line -D wins, as in packetdrill
        self.substitute_defines()

        init = None
        if self.peek().kind is TokenKind.BACK_QUOTED:
            init = self.command()
        events: list[Event] = []
        cleanup = None
        while self.peek().kind is not TokenKind.EOF:
            self.stmt_start = self.pos
            if self.peek().kind is TokenKind.BACK_QUOTED and events:
                if self.peek(1).kind is not TokenKind.EOF:
                    self.fail("a command without a time must be the first or last line")
                cleanup = self.command()
                break
            events.append(self.event())
        if not events:
            self.stmt_start = self.pos
            self.fail("a script needs at least one timed event")
        return Script(
            path=self.path,
            options=tuple(options),
            init_command=init,
            events=tuple(events),
            cleanup_command=cleanup,
            defines=tuple(sorted(self.defines.items())),
        )

    def options(self) -> list[Option]:
        """options: (OPTION ['=' option_value])*."""
        result = []
        while self.peek().kind is TokenKind.OPTION:
            tok = self.advance()
            value = None
            if self.accept_punct("="):
                value = self.option_value()
            result.append(Option(tok.value, value, line=tok.line))
        return result

    def option_value(self) -> str:
        """option_value, including ``--define=NAME=value`` forms (kept as NAME=value)."""
        tok = self.peek()
        if tok.kind is TokenKind.WORD and self.at_punct("=", 1):
            self.pos += 2
            rhs = self.peek()
            if rhs.kind is TokenKind.WORD:
                self.advance()
                return f"{tok.value}={rhs.value}"
            if rhs.kind is TokenKind.STRING:
                self.advance()
                return f'{tok.value}="{rhs.value}"'
            if rhs.kind is TokenKind.BACK_QUOTED:
                self.advance()
                return f"{tok.value}=`{rhs.value}`"
            self.fail("expected a value after '='")
        if tok.kind in (
            TokenKind.INTEGER,
            TokenKind.HEX_INTEGER,
            TokenKind.FLOAT,
            TokenKind.WORD,
            TokenKind.STRING,
            TokenKind.IPV4_ADDR,
            TokenKind.IPV6_ADDR,
        ):
            self.advance()
            return tok.value
        self.fail("expected an option value")

    def substitute_defines(self) -> None:
        """Replace defined WORDs in the rest of the script, as lexer.l's word() does.

        ``SYM="v"`` yields a STRING, ``SYM=`v``` a command, anything else a WORD.
        """
        if not self.defines:
            return
        for i in range(self.pos, len(self.tokens)):
            tok = self.tokens[i]
            if tok.kind is not TokenKind.WORD or tok.value in KEYWORDS:
                continue
            value = self.defines.get(tok.value)
            if value is None:
                continue
            kind = TokenKind.WORD
            if len(value) >= 2 and value[0] == '"':
                kind, value = TokenKind.STRING, value[1:-1]
            elif len(value) >= 2 and value[0] == "`":
                kind, value = TokenKind.BACK_QUOTED, value[1:-1]
            self.tokens[i] = Token(kind, value, tok.text, tok.line, tok.end_line)

    def command(self) -> Command:
        """command_spec: BACK_QUOTED."""
        tok = self.advance()
        return Command(tok.value, line=tok.line)

    # ------------------------------------------------------------------ events

    def event(self) -> Event:
        """event: event_time action, with parser.y's checks on time kinds."""
        time = self.event_time()
        action = self.action()
        if time.end_usecs is not None and time.end_usecs < time.usecs:
            self.semantic(time.line, "time range is backwards")
        outbound_packet = (
            isinstance(action, TcpPacket | UdpPacket | IcmpPacket)
            and action.direction is Direction.OUTBOUND
        )
        if time.kind is TimeKind.ANY and not outbound_packet:
            self.semantic(time.line, "event time <star> can only be used with outbound packets")
        if time.kind in (TimeKind.ABSOLUTE_RANGE, TimeKind.RELATIVE_RANGE) and not outbound_packet:
            self.semantic(time.line, "event time range can only be used with outbound packets")
        return Event(time, action, line=time.line)

    def event_time(self) -> EventTime:
        """event_time: '+' time ['~' '+' time] | time ['~' time] | '*'."""
        tok = self.peek()
        if self.accept_punct("*"):
            return EventTime(TimeKind.ANY, line=tok.line)
        if self.accept_punct("+"):
            start = self.time()
            if self.accept_punct("~"):
                self.expect_punct("+")
                end = self.time()
                return EventTime(TimeKind.RELATIVE_RANGE, start, end, line=tok.line)
            return EventTime(TimeKind.RELATIVE, start, line=tok.line)
        if tok.kind in (TokenKind.INTEGER, TokenKind.FLOAT):
            start = self.time()
            if self.accept_punct("~"):
                end = self.time()
                return EventTime(TimeKind.ABSOLUTE_RANGE, start, end, line=tok.line)
            return EventTime(TimeKind.ABSOLUTE, start, line=tok.line)
        self.fail("expected an event time (e.g. 0, +0.1, *)")

    def time(self) -> int:
        """time: FLOAT | INTEGER seconds, non-negative, in microseconds."""
        tok = self.peek()
        if tok.kind not in (TokenKind.INTEGER, TokenKind.FLOAT):
            self.fail("expected a time in seconds")
        self.advance()
        usecs = parse_time_usecs(tok.value)
        if usecs < 0 or tok.value.startswith("-"):
            self.semantic(tok.line, "negative time")
        return usecs

    def action(self) -> Action:
        """action: packet_spec | syscall_spec | command_spec | code_spec."""
        tok = self.peek()
        if tok.kind is TokenKind.PUNCT and tok.value in "<>":
            return self.packet()
        if tok.kind is TokenKind.BACK_QUOTED:
            return self.command()
        if tok.kind is TokenKind.CODE:
            self.advance()
            return Code(tok.value, line=tok.line)
        if tok.kind in (TokenKind.WORD, TokenKind.ELLIPSIS):
            return self.syscall()
        self.fail("expected a packet, system call, `command` or %{ code }%")

    # ------------------------------------------------------------------ packets

    def packet(self) -> TcpPacket | UdpPacket | IcmpPacket:
        """packet_spec: direction [encapsulation...] opt_ip_info (udp | icmp | tcp) ..."""
        dtok = self.advance()
        direction = Direction.INBOUND if dtok.value == "<" else Direction.OUTBOUND
        encap = self.encapsulation()
        ip = self.opt_ip_info()
        if ip is not None and ip.ecn == "ect01" and direction is Direction.INBOUND:
            self.semantic(dtok.line, "[ect01] can only be used with outbound packets")
        if self.at_word("udp"):
            return self.udp_packet(direction, ip, encap, dtok)
        if self.at_word("icmp"):
            return self.icmp_packet(direction, ip, encap, dtok)
        return self.tcp_packet(direction, ip, encap, dtok)

    def encapsulation(self) -> tuple[IpEncap, ...]:
        """packet_prefix: zero or more ``ipv4|ipv6 [ip_info] SRC > DST:`` outer headers."""
        layers = []
        while True:
            tok = self.peek()
            if tok.kind is not TokenKind.WORD:
                break
            if tok.value in ("gre", "GREv0", "mpls"):
                self.fail(f"{tok.value} encapsulation is not supported")
            if tok.value not in ("ipv4", "ipv6"):
                break
            self.advance()
            ip = self.opt_ip_info()
            kind = TokenKind.IPV4_ADDR if tok.value == "ipv4" else TokenKind.IPV6_ADDR
            src = self.expect_kind(kind, f"an {tok.value} address").value
            self.expect_punct(">")
            dst = self.expect_kind(kind, f"an {tok.value} address").value
            self.expect_punct(":")
            layers.append(IpEncap(tok.value, src, dst, ip, line=tok.line))
        return tuple(layers)

    def opt_ip_info(self) -> IpInfo | None:
        """opt_ip_info: ['(' ip_info ')' | '[' ip_info ']']."""
        for open_, close in (("(", ")"), ("[", "]")):
            if self.at_punct(open_):
                tok = self.advance()
                info = self.ip_info(tok)
                self.expect_punct(close)
                return info
        return None

    def ip_info(self, open_tok: Token) -> IpInfo:
        """ip_info: tos_spec [',' flow_label] | flow_label | ttl INTEGER."""
        tok = self.peek()
        if self.at_word("ttl"):
            self.advance()
            ttl, itok = self.expect_int("a TTL")
            return IpInfo(ttl=self.check_range(ttl, _U8, itok, "ttl out of range"), line=tok.line)
        if self.at_word("flowlabel"):
            return IpInfo(flowlabel=self.flow_label(), line=tok.line)
        ecn = tos = None
        if tok.kind is TokenKind.WORD and tok.value in _IP_ECN_WORDS:
            self.advance()
            ecn = tok.value
        elif self.at_word("tos"):
            self.advance()
            htok = self.expect_kind(TokenKind.HEX_INTEGER, "a hex TOS value (0x..)")
            tos = self.check_range(int(htok.value, 16), _U8, htok, "tos out of range for 8 bits")
        else:
            self.fail("expected ECN (noecn, ect0, ect1, ect01, ce), tos, flowlabel or ttl")
        flowlabel = None
        if self.accept_punct(","):
            flowlabel = self.flow_label()
        return IpInfo(ecn=ecn, tos=tos, flowlabel=flowlabel, line=open_tok.line)

    def flow_label(self) -> int:
        """flow_label: flowlabel HEX_INTEGER (20 bits)."""
        self.expect_word("flowlabel")
        tok = self.expect_kind(TokenKind.HEX_INTEGER, "a hex flow label (0x..)")
        return self.check_range(int(tok.value, 16), _U20, tok, "flowlabel out of range for 20 bits")

    def opt_port_info(self) -> tuple[int | None, int | None]:
        """opt_port_info: [INTEGER '>' INTEGER]."""
        if self.peek().kind is TokenKind.INTEGER and self.at_punct(">", 1):
            src, stok = self.expect_int()
            self.advance()
            dst, dtok = self.expect_int("a destination port")
            self.check_range(src, _U16, stok, "src port out of range")
            self.check_range(dst, _U16, dtok, "dst port out of range")
            return src, dst
        return None, None

    def tcp_packet(
        self, direction: Direction, ip: IpInfo | None, encap: tuple[IpEncap, ...], dtok: Token
    ) -> TcpPacket:
        """tcp_packet_spec: ports flags seq [ack N] [win N] [urg N] [<options>]."""
        src_port, dst_port = self.opt_port_info()
        flags = self.tcp_flags()
        seq, end_seq, payload_len = self.seq()
        ack_seq = self.opt_keyword_int("ack", _U32, "TCP ack sequence number out of range")
        window = self.opt_keyword_int("win", _U16, "TCP window value out of range")
        urg_ptr = self.opt_keyword_int("urg", _U16, "urg_ptr value out of range")
        options: tuple[TcpOption, ...] | None = ()
        if self.at_punct("<"):
            options = self.tcp_options()
        if options is None and direction is Direction.INBOUND:
            self.semantic(dtok.line, "<...> for TCP options can only be used with outbound packets")
        if window is None and direction is Direction.INBOUND:
            self.semantic(dtok.line, "window must be specified for inbound packets")
        return TcpPacket(
            direction=direction,
            flags=flags,
            seq=seq,
            end_seq=end_seq,
            payload_len=payload_len,
            ack_seq=ack_seq,
            window=window,
            urg_ptr=urg_ptr,
            options=options,
            ip=ip,
            src_port=src_port,
            dst_port=dst_port,
            encap=encap,
            line=dtok.line,
        )

    def tcp_flags(self) -> str:
        """flags: WORD ['.'] | '.' | '-' (none) | [WORD] '.N' (AccECN ACE count N).

        Validated like tcp_packet.c: letters from ``.FSRPEWAU`` or one ACE digit 0-7.
        """
        tok = self.peek()
        if self.accept_punct("-"):
            return ""
        flags = ""
        if tok.kind is TokenKind.WORD:
            flags = self.advance().value
        nxt = self.peek()
        if nxt.kind is TokenKind.PUNCT and nxt.value == ".":
            self.advance()
            flags += "."
        elif nxt.kind is TokenKind.FLOAT and nxt.value.startswith("."):
            self.advance()
            flags += nxt.value
        if not flags:
            self.fail("expected TCP flags (e.g. S, S., P., F., R, .)")
        self.validate_tcp_flags(flags, tok)
        return flags

    def validate_tcp_flags(self, flags: str, tok: Token) -> None:
        """Reject unknown flag letters and ECN letters mixed with an ACE digit."""
        has_ecn = has_ace = False
        for ch in flags:
            if ch not in _VALID_TCP_FLAGS:
                self.semantic(tok.line, f"Invalid TCP flag: '{ch}'")
            if ch in _ECN_TCP_FLAGS:
                if has_ace:
                    self.semantic(tok.line, f"Conflicting TCP flag: '{ch}'")
                has_ecn = True
            if ch.isdigit():
                if has_ecn or has_ace:
                    self.semantic(tok.line, f"Conflicting TCP flag: '{ch}'")
                has_ace = True

    def seq(self) -> tuple[int, int, int]:
        """seq: INTEGER ':' INTEGER '(' INTEGER ')', with end == start + len."""
        start, stok = self.expect_int("a sequence number (start:end(len))")
        self.expect_punct(":")
        end, etok = self.expect_int("an end sequence number")
        self.expect_punct("(")
        length, ltok = self.expect_int("a payload length")
        self.expect_punct(")")
        self.check_range(start, _U32, stok, "TCP start sequence number out of range")
        self.check_range(end, _U32, etok, "TCP end sequence number out of range")
        self.check_range(length, _U16, ltok, "TCP payload size out of range")
        if end != start + length:
            self.semantic(stok.line, "inconsistent TCP sequence numbers and payload size")
        return start, end, length

    def opt_keyword_int(self, keyword: str, limit: int, message: str) -> int | None:
        """``keyword INTEGER`` if present (ack/win/urg), range-checked."""
        if not self.at_word(keyword):
            return None
        self.advance()
        value, tok = self.expect_int(f"an integer after '{keyword}'")
        return self.check_range(value, limit, tok, message)

    def tcp_options(self) -> tuple[TcpOption, ...] | None:
        """opt_tcp_options: '<' '...' '>' (None: unchecked) | '<' option {',' option} '>'."""
        open_tok = self.expect_punct("<")
        if self.peek().kind is TokenKind.ELLIPSIS:
            self.advance()
            self.expect_punct(">")
            return None
        options = [self.tcp_option()]
        while self.accept_punct(","):
            options.append(self.tcp_option())
        self.expect_punct(">")
        total = sum(opt.length for opt in options)
        if total > _MAX_TCP_OPTION_BYTES:
            self.semantic(open_tok.line, "TCP option list too long")
        if total % 4:
            self.semantic(
                open_tok.line,
                "TCP options are not padded correctly to ensure TCP header is a "
                f"multiple of 4 bytes: {total % 4} excess bytes",
            )
        return tuple(options)

    def tcp_option(self) -> TcpOption:
        """tcp_option: nop | eol | mss N | wscale N|* | sackOK | sack L:R... | TS val V ecr E
        | md5 HEX | FO [HEX] | FOEXP [HEX]."""
        tok = self.peek()
        name = tok.value if tok.kind is TokenKind.WORD else ""
        line = tok.line
        if name == "nop":
            self.advance()
            return NopOption(line=line)
        if name == "eol":
            self.advance()
            return EolOption(line=line)
        if name == "sackOK":
            self.advance()
            return SackPermittedOption(line=line)
        if name == "mss":
            self.advance()
            value, itok = self.expect_int("an MSS value")
            return MssOption(
                self.check_range(value, _U16, itok, "mss value out of range"), line=line
            )
        if name == "wscale":
            self.advance()
            if self.accept_punct("*"):
                return WScaleOption(None, line=line)
            value, itok = self.expect_int("a window scale shift")
            shift = self.check_range(value, _U8, itok, "window scale shift count out of range")
            return WScaleOption(shift, line=line)
        if name == "sack":
            self.advance()
            return SackOption(self.sack_blocks(), line=line)
        if name == "TS":
            return self.timestamp_option()
        if name == "md5":
            self.advance()
            return Md5Option(self.md5_digest(), line=line)
        if name in ("FO", "FOEXP"):
            self.advance()
            return FastOpenOption(
                self.fast_open_cookie(name == "FOEXP"), name == "FOEXP", line=line
            )
        self.fail("expected a TCP option (nop, eol, mss, wscale, sackOK, sack, TS, md5, FO, FOEXP)")

    def sack_blocks(self) -> tuple[tuple[int, int], ...]:
        """sack_block_list: one or more INTEGER ':' INTEGER."""
        blocks = []
        while True:
            left, ltok = self.expect_int("a SACK block (left:right)")
            self.expect_punct(":")
            right, rtok = self.expect_int("a SACK block right edge")
            self.check_range(left, _U32, ltok, "TCP SACK left sequence number out of range")
            self.check_range(right, _U32, rtok, "TCP SACK right sequence number out of range")
            blocks.append((left, right))
            if self.peek().kind is not TokenKind.INTEGER:
                return tuple(blocks)

    def timestamp_option(self) -> TimestampOption:
        """TS val INTEGER ecr INTEGER."""
        line = self.advance().line
        self.expect_word("val")
        val, vtok = self.expect_int("a TS val")
        self.expect_word("ecr")
        ecr, etok = self.expect_int("a TS ecr")
        self.check_range(val, _U32, vtok, "ts val out of range")
        self.check_range(ecr, _U32, etok, "ecr val out of range")
        return TimestampOption(val, ecr, line=line)

    def hex_blob(self) -> tuple[str, Token] | None:
        """hex_blob: WORD | INTEGER (digits kept as written), or None if absent."""
        tok = self.peek()
        if tok.kind is TokenKind.INTEGER or (
            tok.kind is TokenKind.WORD and tok.value not in KEYWORDS
        ):
            self.advance()
            return tok.value, tok
        return None

    def fast_open_cookie(self, exp: bool) -> str:
        """opt_tcp_fast_open_cookie, checked like parser.y new_tcp_fast_open_option()."""
        blob = self.hex_blob()
        if blob is None:
            return ""
        cookie, tok = blob
        if len(cookie) % 2:
            self.semantic(tok.line, "TCP fast open cookie has an odd number of digits")
        max_bytes = _MAX_TCP_OPTION_BYTES - (4 if exp else 2)
        if len(cookie) // 2 > max_bytes:
            self.semantic(
                tok.line,
                f"TCP fast open cookie of {len(cookie) // 2} bytes exceeds maximum "
                f"cookie length of {max_bytes} bytes",
            )
        if not _is_hex(cookie):
            self.semantic(tok.line, f"TCP fast open cookie '{cookie}' is not a valid hex string")
        return cookie.lower()

    def md5_digest(self) -> str:
        """md5 hex_blob: at most 16 bytes of hex."""
        blob = self.hex_blob()
        if blob is None:
            self.fail("expected an MD5 digest in hex")
        digest, tok = blob
        if len(digest) // 2 > 16:
            self.semantic(tok.line, "TCP MD5 digest longer than 16 bytes")
        if len(digest) % 2 or not _is_hex(digest):
            self.semantic(tok.line, "TCP MD5 digest is not a valid hex string")
        return digest.lower()

    def udp_packet(
        self, direction: Direction, ip: IpInfo | None, encap: tuple[IpEncap, ...], dtok: Token
    ) -> UdpPacket:
        """udp_packet_spec: udp [SRC>DST] '(' INTEGER ')'."""
        self.advance()
        if ip is not None and ip.ecn is not None:
            self.semantic(dtok.line, "ECN can only be used with TCP packets")
        src_port, dst_port = self.opt_port_info()
        self.expect_punct("(")
        length, ltok = self.expect_int("a UDP payload length")
        self.expect_punct(")")
        self.check_range(length, _U16, ltok, "UDP payload size out of range")
        return UdpPacket(direction, length, ip, src_port, dst_port, encap, line=dtok.line)

    def icmp_packet(
        self, direction: Direction, ip: IpInfo | None, encap: tuple[IpEncap, ...], dtok: Token
    ) -> IcmpPacket:
        """icmp_packet_spec: icmp TYPE [CODE] [mtu N] [id N] ['[' echoed ']']."""
        self.advance()
        type_tok = self.peek()
        if type_tok.kind is not TokenKind.WORD or type_tok.value in KEYWORDS:
            self.fail("expected an ICMP type (e.g. unreachable)")
        self.advance()
        code = None
        tok = self.peek()
        if tok.kind is TokenKind.WORD and tok.value not in KEYWORDS:
            code = self.advance().value
        mtu = self.opt_keyword_int("mtu", _U32, "ICMP MTU out of range")
        echo_id = self.opt_keyword_int("id", _U16, "invalid echo_id, must be between 0 and 65535")
        protocol, seq, length = "tcp", 0, 0
        if self.accept_punct("["):
            protocol, seq, length = self.icmp_echoed()
            self.expect_punct("]")
        return IcmpPacket(
            direction=direction,
            type=type_tok.value,
            code=code,
            mtu=mtu,
            echo_id=echo_id,
            echoed_protocol=protocol,
            echoed_seq=seq,
            echoed_payload_len=length,
            ip=ip,
            encap=encap,
            line=dtok.line,
        )

    def icmp_echoed(self) -> tuple[str, int, int]:
        """opt_icmp_echoed body: udp '(' N ')' | raw '(' N ')' | seq."""
        for proto in ("udp", "raw"):
            if self.at_word(proto):
                self.advance()
                self.expect_punct("(")
                length, _ = self.expect_int("a payload length")
                self.expect_punct(")")
                return proto, 0, length
        start, _end, length = self.seq()
        return "tcp", start, length

    # ------------------------------------------------------------------ system calls

    def syscall(self) -> Syscall:
        """syscall_spec: ['...' time] WORD '(' [args] ')' '=' expr [ERRNO note] [note]."""
        end_usecs = None
        if self.peek().kind is TokenKind.ELLIPSIS:
            self.advance()
            end_usecs = self.time()
        name_tok = self.expect_kind(TokenKind.WORD, "a system call name")
        self.expect_punct("(")
        args: list[Expr] = []
        if not self.at_punct(")"):
            args = self.expression_list()
        self.expect_punct(")")
        self.expect_punct("=")
        result = self.expression()
        errno = strerror = note = None
        tok = self.peek()
        if tok.kind is TokenKind.WORD and self.at_punct("(", 1):
            errno = self.advance().value
            strerror = self.note()
        if self.at_punct("("):
            note = self.note()
        return Syscall(
            name=name_tok.value,
            args=tuple(args),
            result=result,
            errno=errno,
            strerror=strerror,
            note=note,
            end_usecs=end_usecs,
            line=name_tok.line,
        )

    def note(self) -> str:
        """note: '(' words ')' -- any tokens, joined by single spaces."""
        open_tok = self.expect_punct("(")
        words = []
        while not self.at_punct(")"):
            tok = self.peek()
            if tok.kind is TokenKind.EOF:
                self.fail("expected ')' to close the note")
            words.append(self.advance().text)
        self.advance()
        if not words:
            self.semantic(open_tok.line, "empty note")
        return " ".join(words)

    def expression_list(self) -> list[Expr]:
        """expression_list: expression {',' expression}."""
        items = [self.expression()]
        while self.accept_punct(","):
            items.append(self.expression())
        return items

    def expression(self) -> Expr:
        """expression {'|' expression} (bitwise OR, left-associative)."""
        lhs = self.primary()
        while self.at_punct("|"):
            tok = self.advance()
            rhs = self.primary()
            lhs = BinaryExpr("|", lhs, rhs, line=tok.line)
        return lhs

    def primary(self) -> Expr:
        """One operand: ..., integers, words, strings, NAME=expr, [list], {struct}, inet_addr()."""
        tok = self.peek()
        kind = tok.kind
        if kind is TokenKind.ELLIPSIS:
            self.advance()
            return EllipsisExpr(line=tok.line)
        if kind is TokenKind.INTEGER:
            self.advance()
            return IntExpr(int(tok.value), line=tok.line)
        if kind is TokenKind.HEX_INTEGER:
            self.advance()
            return IntExpr(int(tok.value, 16), hex=True, line=tok.line)
        if kind is TokenKind.STRING:
            return self.string_expression()
        if kind is TokenKind.WORD:
            return self.word_expression()
        if self.at_punct("["):
            self.advance()
            items: list[Expr] = []
            if not self.at_punct("]"):
                items = self.expression_list()
            self.expect_punct("]")
            return ListExpr(tuple(items), line=tok.line)
        if self.at_punct("{"):
            return self.brace_expression()
        self.fail("expected an expression")

    def string_expression(self) -> StringExpr:
        """STRING {STRING} ['...']: adjacent strings concatenate."""
        first = self.advance()
        value = first.value
        while self.peek().kind is TokenKind.STRING:
            value += self.advance().value
        ellipsis = False
        if self.peek().kind is TokenKind.ELLIPSIS:
            self.advance()
            ellipsis = True
        return StringExpr(value, ellipsis, line=first.line)

    def word_expression(self) -> Expr:
        """WORD, ``WORD=expr``, ``inet_addr("a")`` or ``inet6_addr("a")``."""
        tok = self.advance()
        if tok.value in ("inet_addr", "inet6_addr") and self.at_punct("("):
            addr = self.address_call(tok)
            if tok.value == "inet_addr":
                return InAddrExpr(addr, line=tok.line)
            return In6AddrExpr(addr, line=tok.line)
        if self.accept_punct("="):
            return AssignExpr(tok.value, self.expression(), line=tok.line)
        return WordExpr(tok.value, line=tok.line)

    def address_call(self, tok: Token) -> str:
        """The ``("address")`` after inet_addr/inet6_addr, validated."""
        self.expect_punct("(")
        stok = self.expect_kind(TokenKind.STRING, "a quoted address")
        self.expect_punct(")")
        version = 4 if tok.value == "inet_addr" else 6
        if not _valid_ip(stok.value, version):
            self.semantic(stok.line, f"invalid IPv{version} address")
        return stok.value

    # ------------------------------------------------------------------ structs

    def brace_expression(self) -> Expr:
        """'{' ... '}': one of parser.y's struct forms, else a generic list."""
        open_tok = self.advance()
        tok = self.peek()
        if tok.kind is TokenKind.ELLIPSIS and self.at_punct(",", 1):
            return self.iovec(open_tok)
        struct = _STRUCT_BY_FIRST_FIELD.get(tok.value) if tok.kind is TokenKind.WORD else None
        if struct is not None and (self.at_punct("=", 1) or tok.value == "msg_name"):
            expr = struct(self, open_tok)
            self.expect_punct("}")
            return expr
        items = self.expression_list()
        self.expect_punct("}")
        return BraceExpr(tuple(items), line=open_tok.line)

    def iovec(self, open_tok: Token) -> IovecExpr:
        """iovec: '{' '...' ',' INTEGER '}'."""
        self.advance()
        self.advance()
        length, _ = self.expect_int("an iov_len")
        self.expect_punct("}")
        return IovecExpr(length, line=open_tok.line)

    def msghdr(self, open_tok: Token) -> MsghdrExpr:
        """msg_name(...)=..., msg_iov(N)=[...], msg_flags=expr [, msg_control=[...]]."""
        self.expect_word("msg_name")
        self.expect_punct("(")
        self.expect_kind(TokenKind.ELLIPSIS, "'...'")
        self.expect_punct(")")
        self.expect_punct("=")
        self.expect_kind(TokenKind.ELLIPSIS, "'...'")
        self.expect_punct(",")
        self.expect_word("msg_iov")
        self.expect_punct("(")
        iovlen, _ = self.expect_int("the iovec count")
        self.expect_punct(")")
        self.expect_punct("=")
        iov = self.array()
        self.expect_punct(",")
        self.expect_field("msg_flags")
        flags = self.expression()
        control = None
        if self.accept_punct(","):
            self.expect_field("msg_control")
            control = self.array()
        return MsghdrExpr(iovlen, iov, flags, control, line=open_tok.line)

    def array(self) -> ListExpr:
        """A ``[...]`` list, required at this point."""
        if not self.at_punct("["):
            self.fail("expected '['")
        expr = self.primary()
        assert isinstance(expr, ListExpr)
        return expr

    def sockaddr(self, open_tok: Token) -> SockaddrExpr:
        """sa_family=AF_*, sin_port=htons(N), sin_addr=inet_addr("a")."""
        self.expect_field("sa_family")
        family = self.expect_kind(TokenKind.WORD, "an address family").value
        self.expect_punct(",")
        self.expect_field("sin_port")
        self.expect_word("htons")
        self.expect_punct("(")
        port, ptok = self.expect_int("a port")
        self.expect_punct(")")
        self.check_range(port, _U16, ptok, "port out of range")
        self.expect_punct(",")
        self.expect_field("sin_addr")
        tok = self.peek()
        if not (self.at_word("inet_addr") or self.at_word("inet6_addr")):
            self.fail('expected inet_addr("...")')
        self.advance()
        self.expect_punct("(")
        stok = self.expect_kind(TokenKind.STRING, "a quoted address")
        self.expect_punct(")")
        version = 6 if family == "AF_INET6" else 4
        if family in ("AF_INET", "AF_INET6") and not _valid_ip(stok.value, version):
            self.semantic(tok.line, f"invalid IPv{version} address")
        return SockaddrExpr(family, port, stok.value, line=open_tok.line)

    def pollfd(self, open_tok: Token) -> PollfdExpr:
        """fd=expr, events=expr [, revents=expr]."""
        self.expect_field("fd")
        fd = self.expression()
        self.expect_punct(",")
        self.expect_field("events")
        events = self.expression()
        revents = None
        if self.accept_punct(","):
            self.expect_field("revents")
            revents = self.expression()
        return PollfdExpr(fd, events, revents, line=open_tok.line)

    def epoll_event(self, open_tok: Token) -> EpollEventExpr:
        """events=expr, (fd|ptr|u32|u64)=expr."""
        self.expect_field("events")
        events = self.expression()
        self.expect_punct(",")
        key_tok = self.peek()
        if key_tok.kind is not TokenKind.WORD or key_tok.value not in ("fd", "ptr", "u32", "u64"):
            self.fail("expected fd=, ptr=, u32= or u64=")
        self.advance()
        self.expect_punct("=")
        return EpollEventExpr(events, key_tok.value, self.expression(), line=open_tok.line)

    def linger(self, open_tok: Token) -> LingerExpr:
        """onoff=INTEGER, linger=INTEGER (l_onoff/l_linger accepted)."""
        first = self.advance().value
        self.expect_punct("=")
        onoff, _ = self.expect_int()
        self.expect_punct(",")
        self.expect_field("linger" if first == "onoff" else "l_linger")
        value, _ = self.expect_int()
        return LingerExpr(onoff, value, line=open_tok.line)

    def cmsg(self, open_tok: Token) -> CmsgExpr:
        """cmsg_level=expr, cmsg_type=expr, cmsg_data=expr."""
        self.expect_field("cmsg_level")
        level = self.expression()
        self.expect_punct(",")
        self.expect_field("cmsg_type")
        ctype = self.expression()
        self.expect_punct(",")
        self.expect_field("cmsg_data")
        return CmsgExpr(level, ctype, self.expression(), line=open_tok.line)

    def scm_timestamping(self, open_tok: Token) -> ScmTimestampingExpr:
        """scm_sec=INTEGER, scm_nsec=INTEGER."""
        self.expect_field("scm_sec")
        sec, _ = self.expect_int()
        self.expect_punct(",")
        self.expect_field("scm_nsec")
        nsec, _ = self.expect_int()
        return ScmTimestampingExpr(sec, nsec, line=open_tok.line)

    def sock_extended_err(self, open_tok: Token) -> SockExtendedErrExpr:
        """ee_errno, ee_origin, ee_type, ee_code, ee_info, ee_data (all expressions)."""
        values = []
        for i, name in enumerate(
            ("ee_errno", "ee_origin", "ee_type", "ee_code", "ee_info", "ee_data")
        ):
            if i:
                self.expect_punct(",")
            self.expect_field(name)
            values.append(self.expression())
        return SockExtendedErrExpr(*values, line=open_tok.line)


_STRUCT_BY_FIRST_FIELD = {
    "msg_name": _Parser.msghdr,
    "sa_family": _Parser.sockaddr,
    "fd": _Parser.pollfd,
    "events": _Parser.epoll_event,
    "onoff": _Parser.linger,
    "l_onoff": _Parser.linger,
    "cmsg_level": _Parser.cmsg,
    "scm_sec": _Parser.scm_timestamping,
    "ee_errno": _Parser.sock_extended_err,
}


def _starts_event(tok: Token) -> bool:
    """Could ``tok`` begin a new event (or end the script)?"""
    kind = tok.kind
    if kind is TokenKind.PUNCT:
        return tok.value in "+*"
    if kind in (TokenKind.INTEGER, TokenKind.FLOAT):
        return not tok.value.startswith("-")
    return kind in (TokenKind.EOF, TokenKind.BACK_QUOTED)


def _is_hex(text: str) -> bool:
    """True if every character is a hex digit."""
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _valid_ip(text: str, version: int) -> bool:
    """True if ``text`` is a literal address of the given IP version."""
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


# --------------------------------------------------------------------------- entry points


def parse_script(
    text: str, path: str = "<string>", defines: Mapping[str, str] | None = None
) -> Script:
    """Parse script ``text``; ``defines`` are ``-D NAME=value`` symbols (packetdrill -D)."""
    parser = _Parser(tokenize(text, path), path, {})
    try:
        return parser.script(defines or {})
    except RecursionError:
        line = parser.peek().line
        raise PacketdrillSyntaxError(path, line, "parse error: nested too deeply") from None


def parse_file(path: str | os.PathLike[str], defines: Mapping[str, str] | None = None) -> Script:
    """Read and parse a ``.pkt`` file (UTF-8; undecodable bytes are replaced)."""
    spath = os.fspath(path)
    try:
        with open(spath, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as e:
        raise PacketdrillSyntaxError(
            spath, 0, f"parse error opening script file: {e.strerror}"
        ) from e
    return parse_script(text, spath, defines)


# --------------------------------------------------------------------------- shell commands

_REDIRECT_FD = re.compile(r"(?<![^\s;|&])[0-9]+(?=>)")  # the "2" of "2>/dev/null"
_ARITH = re.compile(r"\$\(\(([^()]*(?:\([^()]*\)[^()]*)*)\)\)")
_SEPARATORS = frozenset({";", "&&", "||", "|", "&"})
_REDIRECTS = frozenset({">", ">>", "&>", "&>>", ">&", "<", ">|"})


def analyze_command(
    command: str, cwd: str | None = None, defaults_path: str | None = None
) -> ShellEffects:
    """Classify each simple command of a backquoted command and extract sysctl writes.

    Understands ``sysctl [-q] [-e] [-w] a.b=v ...``, ``[..]/set_sysctls.py
    /proc/sys/a/b=v ...``, ``echo v > /proc/sys/a/b``, ``.../defaults.sh``, the
    ``/tmp/sysctl_restore_${PPID}.sh`` restore script, ``ip tcp_metrics flush
    all`` and ``cat`` / ``grep`` of /proc/net/tcp{,6} (``procnet``: packetdrill/procshell.py);
    everything else is ``unsupported``.  Shell quoting, ``\\`` continuations,
    ``#`` comments, redirections and ``$((arithmetic))`` in values are handled.

    A defaults.sh step carries that file's own sysctl writes when it can be read:
    from ``cwd`` (the script's directory, where packetdrill runs commands) or else
    from ``defaults_path`` (scripts written for the upstream tree refer to a
    ``common/`` directory that may sit elsewhere here).
    """
    return ShellEffects(tuple(_analyze(command, cwd, defaults_path, depth=0)))


def _analyze(
    command: str, cwd: str | None, defaults_path: str | None, depth: int
) -> list[ShellStep]:
    """Steps of every line of ``command`` (``depth`` guards defaults.sh recursion)."""
    steps: list[ShellStep] = []
    text = command.replace("\\\r\n", " ").replace("\\\n", " ")
    for line in text.splitlines():
        for words, redirect, connector in _simple_commands(line):
            step = _classify(words, redirect, connector, cwd, defaults_path, depth)
            if step.kind == "procnet" and connector == "|" and (
                    not steps or steps[-1].kind != "procnet"):
                # a grep fed by a command tcpdive does not run (``nstat | grep X``)
                step = ShellStep("unsupported", step.text, connector=connector)
            steps.append(step)
    return steps


def _simple_commands(line: str) -> Iterable[tuple[list[str], str | None, str]]:
    """Split a shell line into (words, stdout redirect target, connector) per simple command."""
    lexer = shlex.shlex(_REDIRECT_FD.sub("", line), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: nothing we can interpret
        yield [line.strip()], None, ""
        return
    words: list[str] = []
    redirect: str | None = None
    connector = ""
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in _SEPARATORS:
            if words:
                yield words, redirect, connector
            words, redirect, connector = [], None, tok
        elif tok in _REDIRECTS:
            target = tokens[i + 1] if i + 1 < len(tokens) else ""
            if tok in (">", ">>", ">|") and target != "/dev/null":
                redirect = target
            i += 1
        else:
            words.append(tok)
        i += 1
    if words:
        yield words, redirect, connector


def _classify(
    words: list[str],
    redirect: str | None,
    connector: str,
    cwd: str | None,
    defaults_path: str | None,
    depth: int,
) -> ShellStep:
    """Turn one simple command into a ShellStep."""
    raw = shlex.join(words) + (f" > {redirect}" if redirect else "")
    prog = os.path.basename(words[0])
    args = words[1:]
    if prog == "sysctl":
        settings = _sysctl_args(args)
        if settings is not None:
            return ShellStep("sysctl", raw, settings, connector)
    elif prog == "set_sysctls.py":
        settings = _proc_sys_args(args)
        if settings is not None:
            return ShellStep("sysctl", raw, settings, connector)
    elif prog == "echo" and redirect is not None and args:
        step = _echo_redirect(args, redirect, raw, connector)
        if step is not None:
            return step
    elif prog == "defaults.sh" and not args:
        settings = _defaults_settings(words[0], cwd, defaults_path, depth)
        return ShellStep("defaults", raw, settings, connector)
    elif prog.startswith("sysctl_restore_") and prog.endswith(".sh") and not args:
        return ShellStep("restore", raw, connector=connector)
    elif prog == "ip" and args[:3] == ["tcp_metrics", "flush", "all"]:
        return ShellStep("tcp_metrics_flush", raw, connector=connector)
    elif prog in ("cat", "grep") and redirect is None:
        from .procshell import is_proc_read

        if is_proc_read(prog, args, connector == "|"):
            return ShellStep("procnet", raw, connector=connector)
    elif prog == "rm" and redirect is None:
        paths = _rm_args(args)
        if paths is not None:
            return ShellStep("rm", raw, connector=connector, argv=paths)
    elif prog == "dd" and redirect is None:
        spec = dd_spec(args)
        if spec is not None:
            return ShellStep("dd", raw, connector=connector, argv=(spec[0], str(spec[1])))
    return ShellStep("unsupported", raw, connector=connector)


def _tmp_file(path: str) -> bool:
    """A plain file name under /tmp: no globbing, no way out of /tmp, not /tmp itself."""
    return (path.startswith("/tmp/") and len(path) > 5 and not path.endswith("/")
            and ".." not in path.split("/") and not any(c in path for c in "*?[]{}~$`\\"))


def _rm_args(args: list[str]) -> tuple[str, ...] | None:
    """``rm -f FILE...`` with every FILE a plain /tmp file (None for anything else)."""
    paths = tuple(a for a in args if a != "-f")
    if len(paths) == len(args) or not paths or not all(_tmp_file(p) for p in paths):
        return None
    return paths


_DD_MULT = {"": 1, "c": 1, "w": 2, "b": 512, "kB": 1000, "K": 1024, "k": 1024, "MB": 1000 ** 2,
            "M": 1024 ** 2, "xM": 1024 ** 2, "GB": 1000 ** 3, "G": 1024 ** 3}


def _dd_number(text: str) -> int | None:
    m = re.fullmatch(r"([0-9]+)([a-zA-Z]*)", text)
    if m is None or m.group(2) not in _DD_MULT:
        return None
    return int(m.group(1)) * _DD_MULT[m.group(2)]


def dd_spec(args: list[str]) -> tuple[str, int] | None:
    """``dd if=/dev/zero of=/tmp/F bs=N count=N [status=...]`` -> (F, bytes written), the
    only dd tcpdive emulates (a file of zeroes, as packetdrill payloads are); None otherwise.
    Without conv=notrunc dd truncates F first, so F ends up holding exactly those bytes."""
    opts: dict[str, str] = {}
    for arg in args:
        key, eq, value = arg.partition("=")
        if not eq or key in opts:
            return None
        opts[key] = value
    if opts.pop("if", None) != "/dev/zero" or set(opts) - {"of", "bs", "count", "status"}:
        return None
    path = opts.get("of", "")
    bs = _dd_number(opts.get("bs", "512"))
    count = _dd_number(opts.get("count", ""))
    if not _tmp_file(path) or bs is None or count is None or bs <= 0:
        return None
    if opts.get("status", "none") not in ("none", "noxfer", "progress"):
        return None
    if bs * count > 1 << 30:
        return None
    return path, bs * count


def _sysctl_args(args: list[str]) -> tuple[SysctlSetting, ...] | None:
    """``sysctl`` arguments: flags -q/-e/-w, then name=value pairs (None if not all writes)."""
    settings = []
    for arg in args:
        if arg in ("-q", "-e", "-w", "-qw", "-wq", "-eq", "-qe"):
            continue
        name, eq, value = arg.partition("=")
        if not eq or not name or name.startswith("-"):
            return None
        settings.append(SysctlSetting(name.strip("/").replace("/", "."), _expand(value)))
    return tuple(settings) if settings else None


def _proc_sys_args(args: list[str]) -> tuple[SysctlSetting, ...] | None:
    """``set_sysctls.py /proc/sys/a/b=v ...`` arguments (None if any is not such a write)."""
    settings = []
    for arg in args:
        path, eq, value = arg.partition("=")
        name = _proc_sys_name(path)
        if not eq or name is None:
            return None
        settings.append(SysctlSetting(name, _expand(value)))
    return tuple(settings) if settings else None


def _proc_sys_name(path: str) -> str | None:
    """``/proc/sys/net/ipv4/tcp_sack`` -> ``net.ipv4.tcp_sack`` (None if not under /proc/sys)."""
    prefix = "/proc/sys/"
    if not path.startswith(prefix) or len(path) == len(prefix):
        return None
    return path[len(prefix) :].strip("/").replace("/", ".")


def _echo_redirect(args: list[str], target: str, raw: str, connector: str) -> ShellStep | None:
    """``echo V > /proc/sys/...`` (a sysctl) or ``> /sys/module/M/parameters/P``."""
    value = " ".join(a for a in args if a not in ("-n", "-e"))
    name = _proc_sys_name(target)
    if name is not None:
        return ShellStep("sysctl", raw, (SysctlSetting(name, _expand(value)),), connector)
    parts = target.strip("/").split("/")
    if len(parts) == 5 and parts[:2] == ["sys", "module"] and parts[3] == "parameters":
        setting = SysctlSetting(f"{parts[2]}.{parts[4]}", _expand(value))
        return ShellStep("module_param", raw, (setting,), connector)
    return None


def _expand(value: str) -> str:
    """Evaluate ``$((integer arithmetic))`` the way bash would; other text is kept."""

    def arith(m: re.Match[str]) -> str:
        try:
            return str(_eval_arith(m.group(1)))
        except (ValueError, ZeroDivisionError):
            return m.group(0)

    return _ARITH.sub(arith, value)


def _eval_arith(expr: str) -> int:
    """Evaluate + - * / % and parentheses over integers (bash semantics, no eval())."""
    tokens = re.findall(r"[0-9]+|[-+*/%()]", expr)
    if "".join(tokens) != re.sub(r"\s+", "", expr):
        raise ValueError(expr)
    pos = 0

    def atom() -> int:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError(expr)
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            value = add()
            if pos >= len(tokens) or tokens[pos] != ")":
                raise ValueError(expr)
            pos += 1
            return value
        if tok == "-":
            return -atom()
        if tok == "+":
            return atom()
        if tok.isdigit():
            return int(tok)
        raise ValueError(expr)

    def mul() -> int:
        nonlocal pos
        value = atom()
        while pos < len(tokens) and tokens[pos] in "*/%":
            op = tokens[pos]
            pos += 1
            rhs = atom()
            if op == "*":
                value *= rhs
            else:  # C semantics: truncate toward zero
                quotient = abs(value) // abs(rhs) * (1 if (value >= 0) == (rhs > 0) else -1)
                value = quotient if op == "/" else value - quotient * rhs
        return value

    def add() -> int:
        nonlocal pos
        value = mul()
        while pos < len(tokens) and tokens[pos] in "+-":
            op = tokens[pos]
            pos += 1
            value = value + mul() if op == "+" else value - mul()
        return value

    result = add()
    if pos != len(tokens):
        raise ValueError(expr)
    return result


def _defaults_settings(
    path: str, cwd: str | None, defaults_path: str | None, depth: int
) -> tuple[SysctlSetting, ...]:
    """The sysctl writes of a defaults.sh file, found via ``cwd`` or ``defaults_path``."""
    if depth > 2:
        return ()
    candidates = []
    if cwd is not None:
        candidates.append(os.path.normpath(os.path.join(cwd, path)))
    if defaults_path is not None:
        candidates.append(defaults_path)
    for full in candidates:
        try:
            with open(full, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        steps = _analyze(text, os.path.dirname(full), None, depth + 1)
        return tuple(s for step in steps if step.kind == "sysctl" for s in step.sysctls)
    return ()
