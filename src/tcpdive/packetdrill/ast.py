"""Parsed form of a packetdrill script (mirrors packetdrill's script.h / packet.h).

Every node carries ``line`` (1-based, the line packetdrill reports errors against);
it is excluded from equality so tests can compare structure alone.  Times are integer
microseconds.  Symbols (``AF_INET``, ``EINPROGRESS``...) stay names here; see
``symbols.py`` for their Linux values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, TypeAlias

__all__ = [
    "Action",
    "AssignExpr",
    "BinaryExpr",
    "BraceExpr",
    "CmsgExpr",
    "Code",
    "Command",
    "Direction",
    "EllipsisExpr",
    "EolOption",
    "EpollEventExpr",
    "Event",
    "EventTime",
    "Expr",
    "FastOpenOption",
    "IcmpPacket",
    "In6AddrExpr",
    "InAddrExpr",
    "IntExpr",
    "IovecExpr",
    "IpEncap",
    "IpInfo",
    "LingerExpr",
    "ListExpr",
    "Md5Option",
    "MsghdrExpr",
    "MssOption",
    "NopOption",
    "Option",
    "Packet",
    "PollfdExpr",
    "SackOption",
    "SackPermittedOption",
    "ShellEffects",
    "ShellStep",
    "ScmTimestampingExpr",
    "Script",
    "SockaddrExpr",
    "SockExtendedErrExpr",
    "SysctlSetting",
    "StringExpr",
    "Syscall",
    "TcpOption",
    "TcpPacket",
    "TimeKind",
    "TimestampOption",
    "UdpPacket",
    "WordExpr",
    "WScaleOption",
]


def _line() -> Any:
    """A ``line`` field: keyword-only, default 0, ignored by ``==``."""
    return field(default=0, compare=False, kw_only=True)


# --------------------------------------------------------------------------- timing


class TimeKind(Enum):
    """How an event's time is written (packetdrill's ``enum event_time_t``)."""

    ABSOLUTE = "absolute"  # 0.100
    RELATIVE = "relative"  # +0.1
    ANY = "any"  # *            (outbound packets only)
    ABSOLUTE_RANGE = "absolute_range"  # 0.100~0.200  (outbound packets only)
    RELATIVE_RANGE = "relative_range"  # +0.1~+0.2    (outbound packets only)


@dataclass(slots=True, frozen=True)
class EventTime:
    """Event start time in usecs; ``end_usecs`` is set only for the two range kinds."""

    kind: TimeKind
    usecs: int = 0
    end_usecs: int | None = None
    line: int = _line()

    @property
    def is_relative(self) -> bool:
        """True for ``+x``, ``+x~+y`` and ``*`` (all anchored at run time)."""
        return self.kind in (TimeKind.RELATIVE, TimeKind.RELATIVE_RANGE, TimeKind.ANY)


# --------------------------------------------------------------------------- expressions


@dataclass(slots=True, frozen=True)
class EllipsisExpr:
    """``...``: an argument or field whose value is not specified/checked."""

    line: int = _line()


@dataclass(slots=True, frozen=True)
class IntExpr:
    """An integer literal; ``hex`` records the ``0x`` spelling."""

    value: int
    hex: bool = False
    line: int = _line()


@dataclass(slots=True, frozen=True)
class WordExpr:
    """A bare symbol such as ``AF_INET``, ``NULL`` or a ``--define``d name."""

    name: str
    line: int = _line()


@dataclass(slots=True, frozen=True)
class StringExpr:
    """A "string" (adjacent strings concatenated); ``ellipsis`` for ``"abc"...``."""

    value: str
    ellipsis: bool = False
    line: int = _line()


@dataclass(slots=True, frozen=True)
class BinaryExpr:
    """``lhs | rhs`` (the only binary operator of the language), left-associative."""

    op: str
    lhs: Expr
    rhs: Expr
    line: int = _line()


@dataclass(slots=True, frozen=True)
class AssignExpr:
    """``name=value`` inside a generic ``{...}`` list (packetdrill's '=' binary)."""

    name: str
    value: Expr
    line: int = _line()


@dataclass(slots=True, frozen=True)
class ListExpr:
    """``[a, b, ...]``: an array, or a pointer to an int such as ``[1]``."""

    items: tuple[Expr, ...]
    line: int = _line()


@dataclass(slots=True, frozen=True)
class BraceExpr:
    """``{a, b, ...}`` that is not one of the known structs (packetdrill's sub_expr_list)."""

    items: tuple[Expr, ...]
    line: int = _line()


@dataclass(slots=True, frozen=True)
class InAddrExpr:
    """``inet_addr("192.0.2.1")``."""

    addr: str
    line: int = _line()


@dataclass(slots=True, frozen=True)
class In6AddrExpr:
    """``inet6_addr("2001:db8::1")``."""

    addr: str
    line: int = _line()


@dataclass(slots=True, frozen=True)
class SockaddrExpr:
    """``{sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.0.2.1")}``."""

    family: str
    port: int
    addr: str
    line: int = _line()


@dataclass(slots=True, frozen=True)
class IovecExpr:
    """``{..., len}``: one iovec; the base is always ``...`` (packetdrill supplies a buffer)."""

    length: int
    line: int = _line()


@dataclass(slots=True, frozen=True)
class MsghdrExpr:
    """``{msg_name(...)=..., msg_iov(N)=[...], msg_flags=F[, msg_control=[...]]}``."""

    iovlen: int
    iov: ListExpr
    flags: Expr
    control: ListExpr | None = None
    line: int = _line()


@dataclass(slots=True, frozen=True)
class PollfdExpr:
    """``{fd=F, events=E[, revents=R]}`` (revents absent means 0)."""

    fd: Expr
    events: Expr
    revents: Expr | None = None
    line: int = _line()


@dataclass(slots=True, frozen=True)
class EpollEventExpr:
    """``{events=E, fd=F}`` or with ``ptr=``/``u32=``/``u64=`` for the data union."""

    events: Expr
    key: str
    value: Expr
    line: int = _line()


@dataclass(slots=True, frozen=True)
class LingerExpr:
    """``{onoff=1, linger=0}`` (``l_onoff``/``l_linger`` accepted too)."""

    onoff: int
    linger: int
    line: int = _line()


@dataclass(slots=True, frozen=True)
class CmsgExpr:
    """``{cmsg_level=L, cmsg_type=T, cmsg_data=D}``."""

    level: Expr
    type: Expr
    data: Expr
    line: int = _line()


@dataclass(slots=True, frozen=True)
class ScmTimestampingExpr:
    """``{scm_sec=S, scm_nsec=N}``."""

    sec: int
    nsec: int
    line: int = _line()


@dataclass(slots=True, frozen=True)
class SockExtendedErrExpr:
    """``{ee_errno=.., ee_origin=.., ee_type=.., ee_code=.., ee_info=.., ee_data=..}``."""

    ee_errno: Expr
    ee_origin: Expr
    ee_type: Expr
    ee_code: Expr
    ee_info: Expr
    ee_data: Expr
    line: int = _line()


Expr: TypeAlias = (
    EllipsisExpr
    | IntExpr
    | WordExpr
    | StringExpr
    | BinaryExpr
    | AssignExpr
    | ListExpr
    | BraceExpr
    | InAddrExpr
    | In6AddrExpr
    | SockaddrExpr
    | IovecExpr
    | MsghdrExpr
    | PollfdExpr
    | EpollEventExpr
    | LingerExpr
    | CmsgExpr
    | ScmTimestampingExpr
    | SockExtendedErrExpr
)


# --------------------------------------------------------------------------- TCP options


@dataclass(slots=True, frozen=True)
class NopOption:
    """``nop`` (kind 1, one byte)."""

    kind: ClassVar[int] = 1
    line: int = _line()

    @property
    def length(self) -> int:
        """Bytes on the wire."""
        return 1


@dataclass(slots=True, frozen=True)
class EolOption:
    """``eol`` (kind 0, one byte)."""

    kind: ClassVar[int] = 0
    line: int = _line()

    @property
    def length(self) -> int:
        """Bytes on the wire."""
        return 1


@dataclass(slots=True, frozen=True)
class MssOption:
    """``mss N`` (kind 2)."""

    kind: ClassVar[int] = 2
    mss: int
    line: int = _line()

    @property
    def length(self) -> int:
        """Bytes on the wire."""
        return 4


@dataclass(slots=True, frozen=True)
class WScaleOption:
    """``wscale N`` (kind 3); ``shift`` None is ``wscale *`` (any shift)."""

    kind: ClassVar[int] = 3
    shift: int | None
    line: int = _line()

    @property
    def length(self) -> int:
        """Bytes on the wire."""
        return 3


@dataclass(slots=True, frozen=True)
class SackPermittedOption:
    """``sackOK`` (kind 4)."""

    kind: ClassVar[int] = 4
    line: int = _line()

    @property
    def length(self) -> int:
        """Bytes on the wire."""
        return 2


@dataclass(slots=True, frozen=True)
class SackOption:
    """``sack L:R L:R ...`` (kind 5); blocks are script-space sequence numbers."""

    kind: ClassVar[int] = 5
    blocks: tuple[tuple[int, int], ...]
    line: int = _line()

    @property
    def length(self) -> int:
        """Bytes on the wire."""
        return 2 + 8 * len(self.blocks)


@dataclass(slots=True, frozen=True)
class TimestampOption:
    """``TS val V ecr E`` (kind 8)."""

    kind: ClassVar[int] = 8
    val: int
    ecr: int
    line: int = _line()

    @property
    def length(self) -> int:
        """Bytes on the wire."""
        return 10


@dataclass(slots=True, frozen=True)
class Md5Option:
    """``md5 <hex digest>`` (kind 19); ``digest`` is the hex text as written."""

    kind: ClassVar[int] = 19
    digest: str
    line: int = _line()

    @property
    def length(self) -> int:
        """Bytes on the wire (packetdrill sizes it from the digest given)."""
        return 2 + len(self.digest) // 2

    @property
    def digest_bytes(self) -> bytes:
        """The digest as bytes."""
        return bytes.fromhex(self.digest)


@dataclass(slots=True, frozen=True)
class FastOpenOption:
    """``FO [cookie]`` (kind 34) or ``FOEXP [cookie]`` (kind 254, magic 0xF989)."""

    cookie: str
    exp: bool = False
    line: int = _line()

    EXP_MAGIC: ClassVar[int] = 0xF989

    @property
    def kind(self) -> int:
        """34 for RFC 7413 TFO, 254 for the experimental option."""
        return 254 if self.exp else 34

    @property
    def length(self) -> int:
        """Bytes on the wire."""
        return (4 if self.exp else 2) + len(self.cookie) // 2

    @property
    def cookie_bytes(self) -> bytes:
        """The cookie as bytes (empty for a cookie request)."""
        return bytes.fromhex(self.cookie)


TcpOption: TypeAlias = (
    NopOption
    | EolOption
    | MssOption
    | WScaleOption
    | SackPermittedOption
    | SackOption
    | TimestampOption
    | Md5Option
    | FastOpenOption
)


# --------------------------------------------------------------------------- packets


class Direction(Enum):
    """``<`` injected into the stack, ``>`` expected out of it."""

    INBOUND = "<"
    OUTBOUND = ">"


@dataclass(slots=True, frozen=True)
class IpInfo:
    """``[ect0]``, ``(tos 0x10)``, ``[ttl 64]``, ``(flowlabel 0x1)``... as in parser.y ip_info.

    ``ecn`` is one of ``noecn``, ``ect0``, ``ect1``, ``ect01`` (either ECT), ``ce``;
    a field left None is not checked on outbound packets.
    """

    ecn: str | None = None
    tos: int | None = None
    flowlabel: int | None = None
    ttl: int | None = None
    line: int = _line()


@dataclass(slots=True, frozen=True)
class IpEncap:
    """An outer header prefix: ``ipv4 [ip_info] SRC > DST:`` (or ``ipv6``)."""

    version: str
    src: str
    dst: str
    ip: IpInfo | None = None
    line: int = _line()


@dataclass(slots=True, frozen=True)
class TcpPacket:
    """``< S. 0:0(0) ack 1 win 65535 <mss 1460,...>`` (parser.y tcp_packet_spec).

    ``flags`` is the flag string as written (``"S."``, ``"FP."``, ``""`` for ``-``);
    ``ack_seq`` None means no ``ack`` clause (the field is 0 on the wire);
    ``window`` None means not given (allowed only outbound: window not checked);
    ``options`` None means ``<...>`` (outbound only: options not checked), ``()``
    means no options at all.
    """

    direction: Direction
    flags: str
    seq: int
    end_seq: int
    payload_len: int
    ack_seq: int | None = None
    window: int | None = None
    urg_ptr: int | None = None
    options: tuple[TcpOption, ...] | None = ()
    ip: IpInfo | None = None
    src_port: int | None = None
    dst_port: int | None = None
    encap: tuple[IpEncap, ...] = ()
    line: int = _line()

    def has_flag(self, flag: str) -> bool:
        """True if the one-character flag (``S F R P . E W A U``) is in the spec."""
        return flag in self.flags

    @property
    def syn(self) -> bool:
        """SYN flag."""
        return "S" in self.flags

    @property
    def fin(self) -> bool:
        """FIN flag."""
        return "F" in self.flags

    @property
    def rst(self) -> bool:
        """RST flag."""
        return "R" in self.flags

    @property
    def psh(self) -> bool:
        """PSH flag."""
        return "P" in self.flags

    @property
    def ack(self) -> bool:
        """ACK flag (``.``)."""
        return "." in self.flags

    @property
    def urg(self) -> bool:
        """URG flag."""
        return "U" in self.flags

    @property
    def ace(self) -> int | None:
        """AccECN ACE count when written as a digit 0-7, else None."""
        for ch in self.flags:
            if ch.isdigit():
                return int(ch)
        return None

    @property
    def ece(self) -> bool:
        """ECE flag (``E``, or bit 0 of an ACE digit)."""
        ace = self.ace
        return bool(ace & 1) if ace is not None else "E" in self.flags

    @property
    def cwr(self) -> bool:
        """CWR flag (``W``, or bit 1 of an ACE digit)."""
        ace = self.ace
        return bool(ace & 2) if ace is not None else "W" in self.flags

    @property
    def ae(self) -> bool:
        """AE flag (``A``, or bit 2 of an ACE digit)."""
        ace = self.ace
        return bool(ace & 4) if ace is not None else "A" in self.flags


@dataclass(slots=True, frozen=True)
class UdpPacket:
    """``< udp (100)`` or ``< udp 8080>53 (100)``."""

    direction: Direction
    payload_len: int
    ip: IpInfo | None = None
    src_port: int | None = None
    dst_port: int | None = None
    encap: tuple[IpEncap, ...] = ()
    line: int = _line()


@dataclass(slots=True, frozen=True)
class IcmpPacket:
    """``< icmp unreachable frag_needed mtu 1200 [1:1461(1460)]``.

    ``type``/``code`` are packetdrill's names (``unreachable``, ``host_unreachable``,
    ``type_3``/``code_4`` forms); they depend on the IP version and are resolved by
    the runner.  ``echoed_protocol`` is ``tcp`` (default), ``udp`` or ``raw``;
    ``echoed_seq`` is the script-space TCP sequence in the echoed header.
    """

    direction: Direction
    type: str
    code: str | None = None
    mtu: int | None = None
    echo_id: int | None = None
    echoed_protocol: str = "tcp"
    echoed_seq: int = 0
    echoed_payload_len: int = 0
    ip: IpInfo | None = None
    encap: tuple[IpEncap, ...] = ()
    line: int = _line()


Packet: TypeAlias = TcpPacket | UdpPacket | IcmpPacket


# --------------------------------------------------------------------------- events


@dataclass(slots=True, frozen=True)
class Syscall:
    """``[...END] name(args) = result [ERRNO (strerror)] [(note)]``.

    ``end_usecs`` is set for blocking calls written ``+0...0.100 read(...)``; it is in
    the same time base as the event's start (relative to the same anchor when the
    event time is relative).
    """

    name: str
    args: tuple[Expr, ...]
    result: Expr
    errno: str | None = None
    strerror: str | None = None
    note: str | None = None
    end_usecs: int | None = None
    line: int = _line()

    @property
    def is_blocking(self) -> bool:
        """True when the call has a ``...end`` time."""
        return self.end_usecs is not None


@dataclass(slots=True, frozen=True)
class Command:
    """A backquoted shell command; ``command`` is the raw text between backquotes."""

    command: str
    line: int = _line()


@dataclass(slots=True, frozen=True)
class Code:
    """A ``%{ python }%`` snippet, evaluated against tcp_info at its event time."""

    text: str
    line: int = _line()


Action: TypeAlias = TcpPacket | UdpPacket | IcmpPacket | Syscall | Command | Code


@dataclass(slots=True, frozen=True)
class Event:
    """One timed line of the script; ``line`` is the line of its time stamp."""

    time: EventTime
    action: Action
    line: int = _line()


@dataclass(slots=True, frozen=True)
class Option:
    """``--name=value`` or ``--name`` (value None) from the top of the script."""

    name: str
    value: str | None = None
    line: int = _line()


@dataclass(slots=True, frozen=True)
class Script:
    """A whole parsed script (parser.y: ``opt_options opt_init_command events opt_cleanup_command``).

    ``init_command`` is an untimed backquoted command before the first event (usually
    ``defaults.sh``); ``cleanup_command`` an untimed one after the last (usually the
    sysctl restore).  ``defines`` are the ``-D``/``--define`` symbols in effect.
    """

    path: str
    options: tuple[Option, ...]
    init_command: Command | None
    events: tuple[Event, ...]
    cleanup_command: Command | None = None
    defines: tuple[tuple[str, str], ...] = ()

    def option(self, name: str, default: str | None = None) -> str | None:
        """The value of the last ``--name[=value]`` option ("" for a bare flag)."""
        value = default
        for opt in self.options:
            if opt.name == name:
                value = opt.value if opt.value is not None else ""
        return value


# --------------------------------------------------------------------------- shell commands


@dataclass(slots=True, frozen=True)
class SysctlSetting:
    """One ``name=value`` write; ``name`` is dotted (``net.ipv4.tcp_sack``)."""

    name: str
    value: str


@dataclass(slots=True, frozen=True)
class ShellStep:
    """One simple command of a backquoted command line, classified.

    ``kind`` is ``sysctl`` (sysctl -w/-q, set_sysctls.py, ``echo v > /proc/sys/...``),
    ``defaults`` (common/defaults.sh; its settings are in ``sysctls`` when the file
    could be read), ``restore`` (``/tmp/sysctl_restore_${PPID}.sh``),
    ``tcp_metrics_flush``, ``module_param`` (``echo v > /sys/module/M/parameters/P``,
    named ``M.P``), ``procnet`` (``cat`` / ``grep`` of /proc/net/tcp{,6}, run by the runner
    on the host's tables), ``rm`` (``rm -f /tmp/...``: ``argv`` holds the paths), ``dd``
    (``dd if=/dev/zero of=/tmp/... bs=N count=N``: ``argv`` holds the path and the byte
    count, see ``parser.dd_spec``) or ``unsupported``.  ``connector`` is the shell
    operator that joined it to the previous step (``""``, ``;``, ``&&``, ``||``, ``|``,
    ``&``).
    """

    kind: str
    text: str
    sysctls: tuple[SysctlSetting, ...] = ()
    connector: str = ""
    argv: tuple[str, ...] = ()


@dataclass(slots=True, frozen=True)
class ShellEffects:
    """What a backquoted command does, step by step (see ``parser.analyze_command``)."""

    steps: tuple[ShellStep, ...]

    @property
    def sysctls(self) -> tuple[SysctlSetting, ...]:
        """Every sysctl write in order (defaults.sh's included), later ones win."""
        return tuple(
            s for step in self.steps if step.kind in ("sysctl", "defaults") for s in step.sysctls
        )

    @property
    def unsupported(self) -> tuple[str, ...]:
        """Text of each step the runner cannot emulate."""
        return tuple(step.text for step in self.steps if step.kind == "unsupported")

    @property
    def runs_defaults(self) -> bool:
        """True if the command runs common/defaults.sh."""
        return any(step.kind == "defaults" for step in self.steps)
