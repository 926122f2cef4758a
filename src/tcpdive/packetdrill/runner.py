"""Run packetdrill scripts against a fresh tcpdive host in virtual time (packetdrill's run.c).

The script plays the remote peer.  A ``Netns`` on a ``VirtualTimeLoop`` gets a ``tun0``
device whose transmit function captures every outbound datagram; inbound script packets
are injected with ``netif_receive`` at their scripted virtual times; system calls run
against the host's fd table as tasks on the loop, so a blocking call (``+0...0.1
read(...)``) sleeps in virtual time while the script moves on.  Verdicts follow
packetdrill: the same sequence-number mapping (run_packet.c / socket.h), the same timing
rules and tolerance (run.c ``verify_time``), the same outbound checks in the same order
and the same error texts where packetdrill has one.

    result = run_script("tcp/close/close-on-syn-sent.pkt")
    print(result.verdict, result.reason)
"""

from __future__ import annotations

import os
import struct
import textwrap
import time as _time
from dataclasses import dataclass, field
from typing import Any

from .. import errors as E
from ..epoll import EPOLL_CTL_DEL, Eventpoll, epoll_create, epoll_create1, epoll_ctl
from ..net.netns import NetDevice, Netns
from ..packet.ipv4 import ip2int
from ..sim.loop import VirtualTimeLoop
from ..socket import Socket
from ..socket import poll as sock_poll
from ..splice import HostFile, PipeFile, RegularFile, asendfile, asplice, do_pipe2
from ..tcp import sock as S
from .ast import (
    BinaryExpr,
    BraceExpr,
    CmsgExpr,
    Code,
    Command,
    Direction,
    EllipsisExpr,
    EpollEventExpr,
    Event,
    IcmpPacket,
    In6AddrExpr,
    IntExpr,
    IovecExpr,
    LingerExpr,
    ListExpr,
    MsghdrExpr,
    PollfdExpr,
    Script,
    SockaddrExpr,
    StringExpr,
    Syscall,
    TcpPacket,
    TimeKind,
    TimestampOption,
    UdpPacket,
    WordExpr,
    WScaleOption,
)
from .parser import RUN_ALL_IPV4_DEFINES, PacketdrillSyntaxError, analyze_command, parse_file
from .symbols import CODE_SYMBOLS, ERRNO, SYMBOLS
from .wire import ECN_BITS, LivePacket, build_tcp, encode_options, fmt_script_packet, tcp_flag_bits

__all__ = ["ScriptResult", "run_script", "run_paths", "collect_scripts", "skip_reason",
           "DEFAULT_DEFAULTS_PATH", "OUT_OF_SCOPE_DIRS"]

def _default_defaults_path() -> str | None:
    """shared/packetdrill/defaults.sh, the baseline every script's defaults.sh line maps to."""
    from . import corpus_root

    root = corpus_root()
    return str(root / "defaults.sh") if root is not None else None


DEFAULT_DEFAULTS_PATH = _default_defaults_path()
OUT_OF_SCOPE_DIRS = ("zerocopy", "timestamping")
DEFAULT_TOLERANCE_USECS = 4000
TOLERANCE_PERCENT = 12.5
VIRTUAL_LIMIT_US = 600 * 1_000_000          # no script event later than 10 virtual minutes
OUTBOUND_WAIT_US = 120 * 1_000_000          # how long past its time an outbound packet may come
WALL_LIMIT_S = 20.0

LOCAL_IP = "192.168.0.1"                    # packetdrill's --local_ip default
GATEWAY_IP = "192.168.0.2"                  # --gateway_ip
REMOTE_IP = "192.0.2.1"                     # --remote_ip
BIND_PORT = 8080                            # --bind_port
CONNECT_PORT = 8080                         # --connect_port
FIRST_EPHEMERAL_PORT = 48000                # the remote port packetdrill picks for SYNs it injects
TUN_TX_QUEUE_LEN = 500                      # tun's txqueuelen: pfifo's default limit

# shell steps that are no-ops for tcpdive: its tun0 does no TSO/GSO anyway
_NOOP_SHELL_PREFIXES = ("ethtool -K tun0",)
_UNSET = object()


def _tc_qdisc(text: str) -> int | None | object:
    """``tc qdisc add|replace|change dev tun0 root pfifo [limit N]`` -> N (the device's
    tx_queue_len when not given), ``tc qdisc del[ete] dev tun0 root`` -> None (the default
    qdisc again); ``_UNSET`` for any other command (other qdiscs, devices, handles)."""
    w = text.split()
    if w[:2] != ["tc", "qdisc"] or w[3:6] != ["dev", "tun0", "root"]:
        return _UNSET
    if w[2] in ("del", "delete") and len(w) == 6:
        return None
    if w[2] not in ("add", "replace", "change") or w[6:7] != ["pfifo"]:
        return _UNSET
    if len(w) == 7:
        return TUN_TX_QUEUE_LEN
    if len(w) == 9 and w[7] == "limit" and w[8].isdigit():
        return int(w[8])
    return _UNSET

def _ip_route(text: str) -> tuple[str, dict] | object:
    """``ip [-4] route add|change|replace|del DST [via GW] [dev DEV] [mtu [lock] N] [advmss N]
    [initcwnd N] [initrwnd N] [rto_min T] [quickack N]`` -> (cmd, args) for
    ``ip_route_modify``; ``_UNSET`` for anything else (other ip commands, IPv6, options
    tcpdive's routes do not have)."""
    w = text.split()
    if w[:1] != ["ip"] or "route" not in w[1:3]:
        return _UNSET
    from ..net.route import parse_ip_route

    try:
        return parse_ip_route(w)
    except OSError:
        return _UNSET


def _is_nstat(text: str) -> bool:
    """``nstat`` (delta counters since its last run; -n only updates the history)."""
    w = text.split()
    return bool(w) and w[0] == "nstat" and all(x in ("-n", "-s", "-z", "-a") for x in w[1:])


def _grep_pattern(text: str) -> str | None:
    """``grep PATTERN`` (a plain string) -> PATTERN."""
    w = text.split()
    if len(w) == 2 and w[0] == "grep" and w[1].replace("_", "").isalnum():
        return w[1]
    return None


# packetdrill socket.h states of the socket under test
SOCKET_INIT = "init"
SOCKET_LISTENING = "passive_listening"
SOCKET_PASSIVE_PACKET_RECEIVED = "passive_packet_received"
SOCKET_PASSIVE_SYNACK_SENT = "passive_synack_sent"
SOCKET_PASSIVE_SYNACK_ACKED = "passive_synack_acked"
SOCKET_ACTIVE_CONNECTING = "active_connecting"
SOCKET_ACTIVE_SYN_SENT = "active_syn_sent"
SOCKET_ACTIVE_SYN_ACKED = "active_syn_acked"

_O_RDWR = 2
_O_NONBLOCK = 0o4000
_TCP_INQ = 36
_TCP_CM_INQ = 36
_SO_ZEROCOPY = 60
_MSG_FASTOPEN = 0x20000000
_TCP_FASTOPEN_KEY = 33


# --------------------------------------------------------------------------- results


@dataclass
class ScriptResult:
    """The verdict on one script: PASS, FAIL (the stack deviated), ERROR (the runner could
    not run it) or SKIP (out of scope); ``reason`` is packetdrill-style, ``details`` the
    multi-line form (script and actual packet dumps)."""

    path: str
    verdict: str
    reason: str = ""
    details: str = ""
    wall_s: float = 0.0
    virtual_us: int = 0
    trace: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict == "PASS"

    def line(self) -> str:
        """One report line: ``PASS path`` / ``FAIL path: reason``."""
        if self.verdict == "PASS":
            return f"PASS  {self.path} ({self.wall_s:.2f}s)"
        return f"{self.verdict}  {self.path}: {self.reason}"


class _Stop(Exception):
    """Ends a script run with a verdict."""

    def __init__(self, verdict: str, reason: str, details: str = "") -> None:
        super().__init__(reason)
        self.verdict = verdict
        self.reason = reason
        self.details = details or reason


# --------------------------------------------------------------------------- helpers


def _secs(us: int) -> str:
    return f"{us / 1e6:.6f}"


def _errname(code: int) -> str:
    for name, v in ERRNO.items():
        if v == code:
            return name
    return str(code)


def _strerror(code: int) -> str:
    try:
        return E.strerror(code)
    except Exception:  # pragma: no cover - strerror never fails on Linux
        return str(code)


def collect_scripts(paths: list[str]) -> list[str]:
    """Expand directories into their ``.pkt`` files (sorted), keep files as given."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            found = []
            for root, _dirs, files in os.walk(p):
                found.extend(os.path.join(root, f) for f in files if f.endswith(".pkt"))
            out.extend(sorted(found))
        else:
            out.append(p)
    return out


def _unsupported_commands(script: Script, defaults_path: str | None) -> list[str]:
    """Shell steps of the script tcpdive cannot emulate (no-op ones filtered out)."""
    cmds = [script.init_command, script.cleanup_command]
    cmds += [e.action for e in script.events if isinstance(e.action, Command)]
    bad: list[str] = []
    for c in cmds:
        if c is None:
            continue
        eff = analyze_command(c.command, os.path.dirname(script.path), defaults_path)
        steps = eff.steps
        for i, step in enumerate(steps):
            if step.kind != "unsupported":
                continue
            text = step.text
            if (text.startswith(_NOOP_SHELL_PREFIXES) or _tc_qdisc(text) is not _UNSET
                    or _ip_route(text) is not _UNSET):
                continue
            if _is_nstat(text) or (i and _is_nstat(steps[i - 1].text) and step.connector == "|"
                                   and _grep_pattern(text) is not None):
                continue
            bad.append(text)
    return bad


def _is_ipv6(script: Script) -> bool:
    if (script.option("ip_version") or "ipv4") not in ("ipv4", "ipv4-mapped-ipv6"):
        return True
    for name in ("local_ip", "remote_ip"):
        v = script.option(name)
        if v and ":" in v:
            return True
    for e in script.events:
        a = e.action
        if isinstance(a, (TcpPacket, UdpPacket, IcmpPacket)) and any(
                enc.version == "ipv6" for enc in a.encap):
            return True
        if isinstance(a, IcmpPacket) and a.type == "packet_too_big":
            return True                     # ICMPv6 only: packetdrill rejects it for IPv4
        if isinstance(a, Syscall) and any(isinstance(x, In6AddrExpr) for x in a.args):
            return True
    return False


def skip_reason(path: str, script: Script | None, defaults_path: str | None) -> str | None:
    """Why a script is not run at all (out-of-scope tier, IPv6-only, unsupported shell)."""
    parts = os.path.normpath(path).split(os.sep)
    for d in OUT_OF_SCOPE_DIRS:
        if d in parts:
            return f"out of scope for now: {d}"
    if script is None:
        return None
    if _is_ipv6(script):
        return "IPv6-only script"
    bad = _unsupported_commands(script, defaults_path)
    if bad:
        return "unsupported shell command: " + "; ".join(bad)
    return None


# --------------------------------------------------------------------------- socket under test


class _Conn:
    """packetdrill's ``struct socket``: the socket under test with script and live
    addresses and ISNs, and the TS val map used to translate inbound TS ecr."""

    def __init__(self, sock: Socket | None) -> None:
        self.sock = sock
        self.state = SOCKET_INIT
        self.live_local = (0, 0)
        self.live_remote = (0, 0)
        self.script_local_isn = 0
        self.live_local_isn = 0
        self.script_remote_isn = 0
        self.live_remote_isn = 0
        self.ts_val_map: dict[int, int] = {}
        self.first_ts: tuple[int, int] | None = None     # (script val, live val)

    # socket.h: remote_seq_script_to_live_offset / local_seq_script_to_live_offset
    def remote_offset(self, syn: bool) -> int:
        return (self.live_remote_isn - self.script_remote_isn) if syn else self.live_remote_isn

    def local_offset(self, syn: bool) -> int:
        return (self.live_local_isn - self.script_local_isn) if syn else self.live_local_isn


class _Blocking:
    """A blocking system call in progress in the background."""

    def __init__(self, event: Event, call: Syscall, task: Any, start_us: int, end_us: int,
                 tol_delta: int) -> None:
        self.event = event
        self.call = call
        self.task = task
        self.start_us = start_us
        self.end_us = end_us
        self.tol_delta = tol_delta
        self.done_us: int | None = None


class _ScriptFailure(Exception):
    """A system call whose outcome differs from the script (turned into a FAIL)."""


# --------------------------------------------------------------------------- the runner


class Runner:
    """One script run: host, device, loop and packetdrill's run-time state."""

    def __init__(self, script: Script, *, tolerance_usecs: int | None = None,
                 strict_segments: bool = False, verbose: bool = False,
                 defaults_path: str | None = DEFAULT_DEFAULTS_PATH,
                 wall_limit_s: float = WALL_LIMIT_S) -> None:
        self.script = script
        self.path = script.path
        tol = script.option("tolerance_usecs")
        self.tolerance = (tolerance_usecs if tolerance_usecs is not None
                          else int(tol) if tol else DEFAULT_TOLERANCE_USECS)
        self.strict_segments = strict_segments or script.option("strict_segments") is not None
        tick = script.option("tcp_ts_tick_usecs")
        self.ts_tick_usecs = int(tick) if tick else 0
        self.ts_ecr_scaled = script.option("tcp_ts_ecr_scaled") is not None
        self.verbose = verbose
        self.defaults_path = defaults_path
        self.wall_limit_s = wall_limit_s
        self.local_ip = ip2int(script.option("local_ip") or LOCAL_IP)
        self.remote_ip = ip2int(script.option("remote_ip") or REMOTE_IP)
        self.trace: list[str] = []
        self.loop = VirtualTimeLoop()
        self.net = Netns(self.loop, name="packetdrill", seed=0)
        self.dev = NetDevice("tun0", mtu=1500, xmit=self._xmit)
        self.net.add_device(self.dev)
        self.net.add_addr("tun0", self.local_ip, 16)
        self.net.add_default_route("tun0", GATEWAY_IP)
        # netdev.c route_traffic_to_device: "ip route add REMOTE/32 dev tun0 via GATEWAY"
        self.net.add_route(self.remote_ip, 32, "tun0", GATEWAY_IP)
        self.captured: list[LivePacket] = []
        self.waiting = False
        self.conn: _Conn | None = None
        self.fds: dict[int, Socket] = {}
        # the host's files: what `rm -f /tmp/F` and `dd ... of=/tmp/F` leave behind, by path
        self.vfs: dict[str, bytearray] = {}
        self.nstat_history: dict[str, int] = {}
        self.inq: set[int] = set()          # ids of sockets with TCP_INQ on
        self.next_port = FIRST_EPHEMERAL_PORT
        self.blocking: _Blocking | None = None
        self.last_event_time: int | None = None
        self.last_event_inbound = False
        self.code: list[tuple[Code, dict[str, int]]] = []
        self.nstat_history: dict[str, int] = {}
        self.ip_id = 0
        self.t0 = 0.0

    # ---- device and clock -------------------------------------------------------------

    def _xmit(self, data: bytes, nexthop: int) -> None:
        pkt = LivePacket(self.loop.now_us(), data)
        self.captured.append(pkt)
        if self.verbose:
            self.trace.append(f"{_secs(pkt.time_us)} > {pkt.addr_str()} "
                              f"{pkt.flags_str()} seq {pkt.seq} ack {pkt.ack_seq} "
                              f"len {pkt.payload_len}")
        if self.waiting:
            self.loop.stop()

    def now(self) -> int:
        return self.loop.now_us()

    def _check_wall(self) -> None:
        if _time.monotonic() - self.t0 > self.wall_limit_s:
            raise _Stop("ERROR", f"{self.path}: wall-time limit of {self.wall_limit_s:.0f} s "
                                 f"exceeded at {_secs(self.now())} sec (virtual)")

    def advance(self, t_us: int) -> None:
        """Run the host until virtual time ``t_us`` (in steps, watching wall time)."""
        while self.now() < t_us:
            self._check_wall()
            step = min(t_us, self.now() + 1_000_000)
            self.loop.run_until_time(step)
            self._check_blocking_done()
        self.loop.run_until_time(self.now())
        self._check_blocking_done()

    # ---- tolerance ----------------------------------------------------------------------

    def _tolerance(self, script_us: int, last_us: int | None) -> int:
        tol = self.tolerance
        if last_us is not None:
            dyn = int(TOLERANCE_PERCENT / 100.0 * (script_us - last_us))
            if dyn > tol:
                tol = dyn
        return tol

    def verify_time(self, line: int, kind: TimeKind, script_us: int, end_us: int | None,
                    live_us: int, last_us: int | None, what: str, offset: int) -> str | None:
        """run.c ``verify_time``: None if on time, else packetdrill's error text."""
        if kind == TimeKind.ANY:
            return None
        tol = self._tolerance(script_us, last_us)
        if kind in (TimeKind.ABSOLUTE_RANGE, TimeKind.RELATIVE_RANGE):
            assert end_us is not None
            if live_us < script_us - tol or live_us > end_us + tol:
                if kind == TimeKind.ABSOLUTE_RANGE:
                    return (f"timing error: expected {what} in time range "
                            f"{_secs(script_us)}~{_secs(end_us)} sec but happened at "
                            f"{_secs(live_us)} sec")
                return (f"timing error: expected {what} in relative time range "
                        f"+{_secs(script_us - offset)}~+{_secs(end_us - offset)} sec but "
                        f"happened at {'+' if live_us >= offset else '-'}"
                        f"{_secs(abs(live_us - offset))} sec")
            return None
        if live_us < script_us - tol or live_us > script_us + tol:
            return (f"timing error: expected {what} at {_secs(script_us)} sec but happened "
                    f"at {_secs(live_us)} sec; tolerance {_secs(tol)} sec")
        return None

    # ---- main loop ------------------------------------------------------------------------

    def run(self) -> None:
        self.t0 = _time.monotonic()
        script = self.script
        if script.init_command is not None:
            self.run_command(script.init_command, script.init_command.line)
        if script.events and script.events[0].time.usecs != 0:
            raise _Stop("ERROR", f"{self.path}:{script.events[0].line}: first event "
                                 "should be at time 0")
        last_abs: int | None = None
        for ev in script.events:
            self._check_wall()
            self._check_blocking_done()
            t = ev.time
            inbound = isinstance(ev.action, (TcpPacket, UdpPacket, IcmpPacket)) and \
                ev.action.direction == Direction.INBOUND
            if t.is_relative:
                if self.last_event_inbound and inbound and self.last_event_time is not None:
                    offset = self.last_event_time
                else:
                    offset = self.now()
                start = t.usecs + offset
                end = (t.end_usecs + offset) if t.end_usecs is not None else None
            else:
                offset = 0
                if last_abs is not None and t.usecs < last_abs and self.last_event_time is not None:
                    raise _Stop("ERROR", f"{self.path}:{ev.line}: time goes backward in script "
                                         f"from {last_abs} usec to {t.usecs} usec")
                start = t.usecs
                end = t.end_usecs
                last_abs = t.usecs
            if start > VIRTUAL_LIMIT_US:
                raise _Stop("ERROR", f"{self.path}:{ev.line}: event at {_secs(start)} sec is past "
                                     f"the virtual-time limit of {VIRTUAL_LIMIT_US // 1_000_000} s")
            a = ev.action
            last_t = self.last_event_time
            if isinstance(a, TcpPacket):
                if a.direction == Direction.INBOUND:
                    self.wait_for_event(ev, start, last_t, "inbound packet")
                    self.inject_tcp(ev, a)
                else:
                    self.expect_tcp(ev, a, start, end, last_t, offset)
            elif isinstance(a, IcmpPacket) and a.direction == Direction.INBOUND:
                self.wait_for_event(ev, start, last_t, "inbound packet")
                self.inject_icmp(ev, a)
            elif isinstance(a, (UdpPacket, IcmpPacket)):
                raise _Stop("ERROR", f"{self.path}:{ev.line}: {type(a).__name__} "
                                     f"{a.direction.value} packets are not supported")
            elif isinstance(a, Syscall):
                self.wait_for_event(ev, start, last_t, "system call start")
                self.run_syscall(ev, a, start, offset)
            elif isinstance(a, Command):
                self.wait_for_event(ev, start, last_t, "command")
                self.run_command(a, ev.line)
            elif isinstance(a, Code):
                self.wait_for_event(ev, start, last_t, "data collection for code")
                self.gather_code(a)
            self.last_event_time = start
            self.last_event_inbound = inbound
        self._finish_blocking(final=True)
        if script.cleanup_command is not None:
            self.run_command(script.cleanup_command, script.cleanup_command.line)
        self.execute_code()

    def wait_for_event(self, ev: Event, start: int, last_t: int | None, what: str) -> None:
        """Advance to the event's time; fail if we are already past it (run.c)."""
        if self.now() < start:
            self.advance(start)
        else:
            self.loop.run_until_time(self.now())
            self._check_blocking_done()
        if ev.time.kind == TimeKind.ANY:
            return
        err = self.verify_time(ev.line, ev.time.kind, start, None if ev.time.kind not in (
            TimeKind.ABSOLUTE_RANGE, TimeKind.RELATIVE_RANGE) else start, self.now(), last_t,
            what, 0)
        if err:
            raise _Stop("FAIL", f"{self.path}:{ev.line}: {err}")

    # ---- shell commands and code --------------------------------------------------------

    def run_command(self, cmd: Command, line: int) -> None:
        """run.c run_command_event: ``system()`` the command; a non-zero exit fails the script.

        Steps run in order with ``&&`` / ``||`` obeyed; a pipeline of ``cat`` / ``grep`` of
        /proc/net/tcp{,6} is evaluated on this host's tables (packetdrill/procshell.py) and
        gives the exit status; every other step tcpdive emulates succeeds.
        """
        eff = analyze_command(cmd.command, os.path.dirname(self.path), self.defaults_path)
        steps = eff.steps
        status = 0
        i = 0
        while i < len(steps):
            j = i + 1
            while j < len(steps) and steps[j].connector == "|":
                j += 1
            pipeline = steps[i:j]
            first = steps[i]
            i = j
            if (first.connector == "&&" and status) or (first.connector == "||" and not status):
                continue
            if all(st.kind == "procnet" for st in pipeline):
                status = self._run_procnet(pipeline)
                continue
            if first.kind == "unsupported" and _is_nstat(first.text):
                status = self._run_nstat(pipeline)
                continue
            or_next = i < len(steps) and steps[i].connector == "||"
            status = self._run_steps(cmd, line, pipeline, or_next)
        if status:
            raise _Stop("FAIL", f"{self.path}:{line}: error executing `{cmd.command}` command: "
                                f"non-zero status {status}")

    def _run_procnet(self, pipeline) -> int:
        """A cat/grep pipeline over this host's /proc/net/tcp{,6}: its exit status."""
        import shlex

        from ..tools.procnet import proc_file
        from .procshell import run_pipeline

        status, out = run_pipeline([shlex.split(st.text) for st in pipeline],
                                   lambda path: proc_file(self.net, path))
        if self.verbose:
            self.trace.extend(out.splitlines())
        return status

    def _run_nstat(self, pipeline) -> int:
        """``nstat [| grep NAME]``: nstat prints the counters that changed since its last run
        and saves them; the status is grep's (1: no changed counter matches)."""
        mib = self.net.mib
        snap = self.nstat_history
        changed = [k for k, v in mib.items() if v != snap.get(k, 0)]
        self.nstat_history = dict(mib)
        if len(pipeline) > 1:
            pat = _grep_pattern(pipeline[1].text)
            if pat is not None and not any(pat in k for k in changed):
                return 1
        return 0

    def _run_steps(self, cmd: Command, line: int, steps, or_next: bool = False) -> int:
        """Emulate the steps of one pipeline; 1 if a sysctl write failed and ``|| ...``
        follows (the shell then runs that), else 0 or a _Stop."""
        for step in steps:
            if step.kind == "tcp_metrics_flush":
                from ..tcp.fastopen import tcp_metrics_flush_all

                tcp_metrics_flush_all(self.net)
                continue
            if step.kind == "unsupported":
                if step.text.startswith(_NOOP_SHELL_PREFIXES):
                    continue
                limit = _tc_qdisc(step.text)
                if limit is not _UNSET:
                    self.dev.set_qdisc(limit)          # type: ignore[arg-type]
                    continue
                route = _ip_route(step.text)
                if route is not _UNSET:
                    from ..net.route import ip_route_modify

                    rcmd, args = route                 # type: ignore[misc]
                    try:
                        ip_route_modify(self.net, rcmd, **args)
                    except OSError as e:
                        raise _Stop("ERROR", f"{self.path}:{line}: error executing command "
                                             f"'{step.text}': RTNETLINK answers: "
                                             f"{e.strerror}") from None
                    continue
                raise _Stop("ERROR", f"{self.path}:{line}: unsupported shell command: {step.text}")
            if step.kind == "rm":                      # rm -f /tmp/F...: unlink, keep open files
                for path in step.argv:
                    self.vfs.pop(path, None)
                continue
            if step.kind == "dd":                      # dd if=/dev/zero of=/tmp/F: N zeroes
                path, nbytes = step.argv[0], int(step.argv[1])
                data = self.vfs.setdefault(path, bytearray())
                data[:] = bytes(nbytes)               # O_TRUNC, then the blocks
                continue
            for s in step.sysctls if step.kind in ("sysctl", "defaults") else ():
                try:
                    self.net.sysctl.set(s.name, s.value)
                except OSError as e:
                    if e.errno == E.ENOENT and step.kind == "defaults":
                        continue          # a knob tcpdive does not have: defaults.sh ignores errors
                    if or_next:
                        return 1          # ``a || b``: a failed, so b runs
                    if e.errno == E.ENOENT and "2>" not in cmd.command and "-e" not in step.text:
                        raise _Stop("ERROR", f"{self.path}:{line}: {e.strerror or e}") from None
        return 0

    def gather_code(self, code: Code) -> None:
        """code.c: take a tcp_info snapshot of the socket under test now; run it at the end."""
        from ..tcp.sockopt import tcp_get_info

        info: dict[str, int] = {}
        conn = self.conn
        if conn is not None and conn.sock is not None and conn.sock.is_tcp:
            info = tcp_get_info(conn.sock.sk).as_dict()
        self.code.append((code, info))

    def execute_code(self) -> None:
        """Run every ``%{ }%`` snippet in order in one shared namespace (code.c)."""
        if not self.code:
            return
        ns: dict[str, Any] = {"__builtins__": __builtins__}
        ns.update(CODE_SYMBOLS)
        for code, info in self.code:
            ns.update(info)
            text = textwrap.dedent(code.text.replace("\\\n", " ")).strip()
            try:
                exec(compile(text, f"{self.path}:{code.line}", "exec"), ns)
            except Exception as e:  # the script's assertion failed
                msg = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                raise _Stop("FAIL", f"{self.path}:{code.line}: error in Python code -- {msg}") \
                    from None

    # ---- inbound packets -----------------------------------------------------------------

    def _conn_for_inbound(self, ev: Event, p: TcpPacket) -> _Conn:
        """run_packet.c find_or_create_socket_for_script_packet, inbound side."""
        conn = self.conn
        if p.syn and not p.ack and (conn is None or conn.state == SOCKET_LISTENING):
            new = _Conn(None)
            new.state = SOCKET_PASSIVE_PACKET_RECEIVED
            new.script_remote_isn = new.live_remote_isn = p.seq & 0xFFFFFFFF
            lport = conn.live_local[1] if conn is not None and conn.live_local[1] else BIND_PORT
            new.live_local = (self.local_ip, lport)
            new.live_remote = (self.remote_ip, self._ephemeral_port())
            new.listener = conn  # type: ignore[attr-defined]
            self.conn = new
            return new
        if conn is None:
            raise _Stop("ERROR", f"{self.path}:{ev.line}: error handling packet: no matching "
                                 "socket for script packet")
        return conn

    def _ephemeral_port(self) -> int:
        port = self.next_port
        self.next_port += 1
        return port

    def _map_ecr(self, ev: Event, conn: _Conn, ecr: int) -> int:
        live = conn.ts_val_map.get(ecr & 0xFFFFFFFF)
        if live is not None:
            return live
        if self.ts_ecr_scaled and conn.first_ts is not None:
            return (ecr - conn.first_ts[0] + conn.first_ts[1]) & 0xFFFFFFFF
        raise _Stop("FAIL", f"{self.path}:{ev.line}: error handling packet: unable to infer live "
                            f"TS ecr for script TS ecr {ecr};  no matching or preceding outbound "
                            "TS val")

    def inject_tcp(self, ev: Event, p: TcpPacket) -> None:
        conn = self._conn_for_inbound(ev, p)
        if conn.state == SOCKET_PASSIVE_SYNACK_SENT and p.ack:
            conn.state = SOCKET_PASSIVE_SYNACK_ACKED
        elif conn.state == SOCKET_ACTIVE_SYN_SENT and p.syn and p.ack:
            conn.state = SOCKET_ACTIVE_SYN_ACKED
            conn.script_remote_isn = conn.live_remote_isn = p.seq & 0xFFFFFFFF
        seq = (p.seq + conn.remote_offset(p.syn)) & 0xFFFFFFFF
        ack_off = conn.local_offset(p.syn)
        ack = ((p.ack_seq or 0) + ack_off) & 0xFFFFFFFF if p.ack else (p.ack_seq or 0)
        ecr = None
        opts = p.options or ()
        if p.ack:
            for o in opts:
                if isinstance(o, TimestampOption):
                    ecr = self._map_ecr(ev, conn, o.ecr)
        optbytes = encode_options(opts, ack_off, ecr)
        flags, ae = tcp_flag_bits(p)
        tos = 0
        ttl = 64
        if p.ip is not None:
            if p.ip.tos is not None:
                tos = p.ip.tos
            if p.ip.ecn is not None:
                tos = (tos & ~3) | ECN_BITS.get(p.ip.ecn, 0)
            if p.ip.ttl is not None:
                ttl = p.ip.ttl
        rip, rport = conn.live_remote
        lip, lport = conn.live_local
        sport = p.src_port if p.src_port is not None else rport
        dport = p.dst_port if p.dst_port is not None else lport
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        data = build_tcp(rip or self.remote_ip, lip or self.local_ip, sport, dport, seq, ack,
                         flags, ae, p.window or 0, p.urg_ptr or 0, optbytes, p.payload_len, tos,
                         ttl, self.ip_id)
        if self.verbose:
            self.trace.append(f"{_secs(self.now())} < {fmt_script_packet(p)}")
        self.net.netif_receive(self.dev, data)
        self.loop.run_until_time(self.now())
        self._check_blocking_done()

    def inject_icmp(self, ev: Event, p: IcmpPacket) -> None:
        """An ICMP error quoting one of our segments (seq mapped with our ISN)."""
        from ..packet.checksum import csum_fold, csum_partial
        from ..packet.ipv4 import ip_build

        conn = self.conn
        if conn is None:
            raise _Stop("ERROR", f"{self.path}:{ev.line}: no socket for ICMP packet")
        types = {"unreachable": 3, "source_quench": 4, "redirect": 5, "time_exceeded": 11,
                 "parameter_problem": 12}
        codes = {"net_unreachable": 0, "host_unreachable": 1, "protocol_unreachable": 2,
                 "port_unreachable": 3, "frag_needed": 4, "source_route_failed": 5,
                 "net_unknown": 6, "host_unknown": 7, "source_host_isolated": 8,
                 "net_prohibited": 9, "host_prohibited": 10, "net_unreachable_for_tos": 11,
                 "host_unreachable_for_tos": 12, "packet_filtered": 13,
                 "precedence_violation": 14, "precedence_cutoff": 15}
        t = p.type
        itype = int(t[5:]) if t.startswith("type_") else types.get(t)
        code = p.code or ""
        icode = int(code[5:]) if code.startswith("code_") else codes.get(code, 0)
        if itype is None:
            raise _Stop("ERROR", f"{self.path}:{ev.line}: unknown ICMP type {t}")
        lip, lport = conn.live_local
        rip, rport = conn.live_remote
        seq = (p.echoed_seq + conn.local_offset(False)) & 0xFFFFFFFF
        inner_tcp = struct.pack("!HHI", lport, rport, seq)
        inner = ip_build(lip, rip, 6, inner_tcp + bytes(12), 64, 0, 0, True)[:28]
        rest = (p.mtu or 0) & 0xFFFF
        hdr = struct.pack("!BBHHH", itype, icode, 0, 0, rest)
        body = hdr + inner
        csum = csum_fold(csum_partial(body, 0))
        body = body[:2] + csum.to_bytes(2, "big") + body[4:]
        data = ip_build(rip, lip, 1, body, 64, 0, 0, False)
        self.net.netif_receive(self.dev, data)
        self.loop.run_until_time(self.now())

    # ---- outbound packets ----------------------------------------------------------------

    def _matches_conn(self, conn: _Conn, pkt: LivePacket) -> bool:
        if not pkt.is_tcp:
            return False
        if (pkt.saddr, pkt.sport, pkt.daddr, pkt.dport) == (*conn.live_local, *conn.live_remote):
            return True
        # find_connect_for_live_packet: the SYN of a connect() teaches us the local port
        if (conn.state == SOCKET_ACTIVE_SYN_SENT and pkt.flags & 0x02 and not pkt.flags & 0x10
                and (pkt.daddr, pkt.dport) == conn.live_remote):
            conn.live_local = (pkt.saddr, pkt.sport)
            conn.live_local_isn = pkt.seq
            return True
        return False

    def sniff(self, ev: Event, conn: _Conn, deadline: int) -> LivePacket | None:
        """The next outbound packet of the socket under test (waiting in virtual time)."""
        while True:
            while self.captured:
                pkt = self.captured.pop(0)
                if self._matches_conn(conn, pkt):
                    return pkt
            if self.now() >= deadline:
                return None
            self._check_wall()
            self.waiting = True
            try:
                step = min(deadline, self.now() + 1_000_000)
                self.loop.run_until_time(step)
            finally:
                self.waiting = False
            self._check_blocking_done()

    def expect_tcp(self, ev: Event, p: TcpPacket, start: int, end: int | None,
                   last_t: int | None, offset: int) -> None:
        conn = self.conn
        if conn is None:
            raise _Stop("ERROR", f"{self.path}:{ev.line}: error handling packet: no matching "
                                 "socket for script packet")
        if p.syn and not p.ack and conn.state == SOCKET_ACTIVE_CONNECTING:
            conn.state = SOCKET_ACTIVE_SYN_SENT
            conn.script_local_isn = p.seq & 0xFFFFFFFF
        synack = conn.state == SOCKET_PASSIVE_PACKET_RECEIVED and p.syn and p.ack
        if synack:
            conn.script_local_isn = p.seq & 0xFFFFFFFF
        expected_len = p.payload_len
        latest = (end if end is not None else start)
        deadline = min(max(latest, self.now()) + OUTBOUND_WAIT_US, VIRTUAL_LIMIT_US)
        frags: list[LivePacket] = []
        got = 0
        where = f"{self.path}:{ev.line}: error handling packet: "
        while True:
            pkt = self.sniff(ev, conn, deadline)
            if pkt is None:
                if frags:
                    break
                raise _Stop("FAIL", where + f"timing error: expected outbound packet at "
                                            f"{_secs(start)} sec but none was sent by "
                                            f"{_secs(self.now())} sec",
                            where + f"no outbound packet by {_secs(self.now())} sec\n"
                            f"script packet: {_secs(start)} {fmt_script_packet(p)}")
            if synack and not frags:
                conn.state = SOCKET_PASSIVE_SYNACK_SENT
                conn.live_local_isn = pkt.seq
            if frags:
                err = self._fragment_mismatch(frags[-1], pkt, got, expected_len)
                if err:
                    raise _Stop("FAIL", where + err)
            frags.append(pkt)
            got += pkt.payload_len
            if got >= expected_len or self.strict_segments:
                break
        if got != expected_len:
            raise _Stop("FAIL", where + f"live packet payload: expected {expected_len} bytes vs "
                                        f"actual {got} bytes",
                        self._dump(where + f"live packet payload: expected {expected_len} bytes "
                                           f"vs actual {got} bytes", p, start, conn, frags[0]))
        self.verify_outbound(ev, conn, p, frags, start, end, last_t, offset)

    @staticmethod
    def _fragment_mismatch(prev: LivePacket, cur: LivePacket, got: int, expected: int) -> str:
        """run_packet.c verify_packet_fragments: may ``cur`` be aggregated after ``prev``?"""
        checks = (("tcp_data_offset", prev.doff, cur.doff),
                  ("tcp_syn", prev.flags & 2, cur.flags & 2),
                  ("tcp_rst", prev.flags & 4, cur.flags & 4),
                  ("tcp_ack", prev.flags & 0x10, cur.flags & 0x10),
                  ("tcp_seq", (prev.seq + prev.payload_len) & 0xFFFFFFFF, cur.seq),
                  ("tcp_ack_seq", prev.ack_seq, cur.ack_seq),
                  ("tcp_window", prev.window, cur.window))
        for name, exp, act in checks:
            if exp != act:
                return (f"aggregate candidate packet field {name}: expected: {exp} ({exp:#x}) "
                        f"vs actual: {act} ({act:#x})")
        if cur.payload_len < expected - got and cur.payload_len != prev.payload_len:
            return (f"fragment payload: expected {prev.payload_len} bytes vs actual "
                    f"{cur.payload_len} bytes; total payload: expected {expected} bytes vs "
                    f"actual {cur.payload_len + got} bytes")
        return ""

    def _dump(self, msg: str, p: TcpPacket, start: int, conn: _Conn, pkt: LivePacket) -> str:
        syn = bool(pkt.flags & 2)
        seq = (pkt.seq - conn.local_offset(syn)) & 0xFFFFFFFF
        ack = (pkt.ack_seq - conn.remote_offset(syn)) & 0xFFFFFFFF if pkt.flags & 0x10 else 0
        ts_val = None
        ts = pkt.ts()
        if ts is not None and conn.first_ts is not None:
            ts_val = (conn.first_ts[0] + (ts[0] - conn.first_ts[1])) & 0xFFFFFFFF
        actual = pkt.describe(seq, ack, ts_val, -conn.remote_offset(syn))
        return (f"{msg}\nscript packet: {_secs(start):>9} {fmt_script_packet(p)}\n"
                f"actual packet: {_secs(pkt.time_us):>9} {actual}")

    def verify_outbound(self, ev: Event, conn: _Conn, p: TcpPacket, frags: list[LivePacket],
                        start: int, end: int | None, last_t: int | None, offset: int) -> None:
        """run_packet.c verify_outbound_live_packet, checks in packetdrill's order."""
        # packet.c aggregate_packets: the headers (flags, ack, window, options) and the time
        # of the last fragment, the sequence number and CWR of the first
        pkt = frags[-1]
        flags = (pkt.flags & ~0x80) | (frags[0].flags & 0x80)
        syn = bool(pkt.flags & 2)
        where = f"{self.path}:{ev.line}: error handling packet: "
        # map_outbound_live_packet: TS val mapping
        script_ts = None
        if p.options:
            for o in p.options:
                if isinstance(o, TimestampOption):
                    script_ts = o
        live_ts = pkt.ts()
        mapped_ts_val = None
        if script_ts is not None and live_ts is not None:
            conn.ts_val_map[script_ts.val & 0xFFFFFFFF] = live_ts[0]
            if conn.first_ts is None:
                conn.first_ts = (script_ts.val & 0xFFFFFFFF, live_ts[0])
            mapped_ts_val = (conn.first_ts[0] + (live_ts[0] - conn.first_ts[1])) & 0xFFFFFFFF
        seq = (frags[0].seq - conn.local_offset(syn)) & 0xFFFFFFFF
        ack = ((pkt.ack_seq - conn.remote_offset(syn)) & 0xFFFFFFFF if pkt.flags & 0x10
               else pkt.ack_seq)

        def fail(msg: str) -> None:
            actual = pkt.describe(seq, ack, mapped_ts_val, -conn.remote_offset(syn),
                                  sum(f.payload_len for f in frags))
            details = (f"{where}{msg}\nscript packet: {_secs(start):>9} {fmt_script_packet(p)}\n"
                       f"actual packet: {_secs(pkt.time_us):>9} {actual}")
            raise _Stop("FAIL", f"{where}{msg} (script: {fmt_script_packet(p)}; actual: {actual})",
                        details)

        script_opt_len = sum(o.length for o in p.options) if p.options is not None else 0
        allowance = len(pkt.opt_bytes) if p.options is None else 0
        payload = sum(f.payload_len for f in frags)

        def field_(name: str, exp: int, act: int) -> None:
            if exp != act:
                fail(f"live packet field {name}: expected: {exp} ({exp:#x}) vs actual: {act} "
                     f"({act:#x})")

        # verify_ipv4
        field_("ipv4_version", 4, pkt.raw[0] >> 4)
        field_("ipv4_protocol", 6, pkt.protocol)
        field_("ipv4_header_length", 5, pkt.ihl)
        tot = 20 + 20 + script_opt_len + p.payload_len + allowance
        live_tot = pkt.tot_len + (payload - pkt.payload_len)
        field_("ipv4_total_length", tot, live_tot)
        ip = p.ip
        if ip is not None:
            ecn = pkt.tos & 3
            if ip.ecn == "ect01":
                if ecn not in (1, 2):
                    fail(f"live packet field ip_ecn: expected: 0x1 or 0x2 vs actual: {ecn:#x}")
            elif ip.ecn is not None:
                field_("ip_ecn", ECN_BITS[ip.ecn], ecn)
            if ip.tos is not None:
                field_("tos", ip.tos, pkt.tos)
            if ip.ttl is not None:
                field_("ttl", ip.ttl, pkt.ttl)
        # verify_tcp
        sflags, sae = tcp_flag_bits(p)
        field_("tcp_data_offset", (20 + script_opt_len + allowance) // 4, pkt.doff)
        field_("tcp_fin", sflags & 1, flags & 1)
        field_("tcp_syn", (sflags >> 1) & 1, (flags >> 1) & 1)
        field_("tcp_rst", (sflags >> 2) & 1, (flags >> 2) & 1)
        field_("tcp_psh", (sflags >> 3) & 1, (flags >> 3) & 1)
        field_("tcp_ack", (sflags >> 4) & 1, (flags >> 4) & 1)
        field_("tcp_urg", (sflags >> 5) & 1, (flags >> 5) & 1)
        if p.ace is not None:
            field_("tcp_ace", p.ace, (pkt.ae << 2) | ((flags >> 7) & 1) << 1 | ((flags >> 6) & 1))
        else:
            field_("tcp_ece", (sflags >> 6) & 1, (flags >> 6) & 1)
            field_("tcp_cwr", (sflags >> 7) & 1, (flags >> 7) & 1)
            field_("tcp_ae", sae, pkt.ae)
        field_("tcp_reserved_bits", 0, pkt.res)
        field_("tcp_seq", p.seq & 0xFFFFFFFF, seq)
        field_("tcp_ack_seq", (p.ack_seq or 0) & 0xFFFFFFFF, ack)
        if p.window is not None:
            field_("tcp_window", p.window, pkt.window)
        field_("tcp_urg_ptr", p.urg_ptr or 0, pkt.urg_ptr)
        # verify_outbound_live_tcp_options
        if p.options is not None:
            sopts = list(p.options)
            aopts = pkt.options
            for i in range(max(len(sopts), len(aopts))):
                if i >= len(sopts) or i >= len(aopts) or aopts[i].kind != sopts[i].kind:
                    fail("bad outbound TCP options")
                so, ao = sopts[i], aopts[i]
                if ao.kind in (0, 1):
                    continue
                if ao.kind == 8:
                    if self.ts_tick_usecs and mapped_ts_val is not None:
                        d = (live_ts[0] - ((script_ts.val - conn.first_ts[0] + conn.first_ts[1])
                                           & 0xFFFFFFFF)) & 0xFFFFFFFF  # type: ignore[union-attr,index]
                        if d >= 0x80000000:
                            d -= 0x100000000
                        if abs(d) * self.ts_tick_usecs > self.tolerance:
                            fail(f"bad outbound TCP timestamp value, tolerance {self.tolerance}")
                    continue
                if so.length != ao.length:
                    fail(f"bad lengths for outbound TCP option {so.kind}")
                if isinstance(so, WScaleOption) and so.shift is None:
                    continue
                sdata = encode_options((so,), -conn.remote_offset(syn))[2:] if ao.kind == 5 \
                    else encode_options((so,))[2:]
                adata = ao.data
                if ao.kind == 5:
                    sdata = encode_options((so,))[2:]
                    adata = bytearray(ao.data)
                    for j in range(0, len(adata) - 3, 4):
                        v = (int.from_bytes(adata[j:j + 4], "big") - conn.remote_offset(syn)) \
                            & 0xFFFFFFFF
                        adata[j:j + 4] = v.to_bytes(4, "big")
                    adata = bytes(adata)
                if sdata != adata:
                    fail(f"bad value outbound TCP option {so.kind}")
        # verify_time
        err = self.verify_time(ev.line, ev.time.kind, start, end, pkt.time_us, last_t,
                               "outbound packet", offset)
        if err:
            fail(err)
        if self.verbose:
            self.trace.append(f"{_secs(pkt.time_us)} > {fmt_script_packet(p)}  (ok)")

    # ---- system calls ----------------------------------------------------------------------

    def run_syscall(self, ev: Event, sc: Syscall, start: int, offset: int) -> None:
        if self.blocking is not None:
            self._finish_blocking(final=False)       # await_idle_thread
        if self.verbose:
            self.trace.append(f"{_secs(self.now())} {sc.name}()")
        task = self.loop.create_task(self._syscall(ev, sc))
        self.loop.run_until_time(self.now())
        if task.done():
            self._check_result(ev, sc, task, self.now())
            self._check_blocking_done()
            return
        if not sc.is_blocking:
            task.cancel()
            self.loop.run_until_time(self.now())
            raise _Stop("FAIL", f"{self.path}:{ev.line}: runtime error in {sc.name} call: "
                                "expected non-blocking system call but it blocked")
        end_us = sc.end_usecs + (offset if ev.time.kind == TimeKind.RELATIVE else 0)
        self.blocking = _Blocking(ev, sc, task, start, end_us, end_us - start)

        def done(_t: Any, b: _Blocking = self.blocking) -> None:
            b.done_us = self.loop.now_us()

        task.add_done_callback(done)

    def _check_blocking_done(self) -> None:
        b = self.blocking
        if b is None or not b.task.done():
            return
        self.blocking = None
        if b.done_us is None:
            b.done_us = self.now()
        self._check_result(b.event, b.call, b.task, b.done_us)
        err = self.verify_time(b.event.line, TimeKind.ABSOLUTE, b.end_us, None, b.done_us,
                               b.start_us, "system call return", 0)
        if err:
            raise _Stop("FAIL", f"{self.path}:{b.event.line}: {err}")

    def _finish_blocking(self, final: bool) -> None:
        """Wait for the background call to return (packetdrill's await_idle_thread)."""
        b = self.blocking
        if b is None:
            return
        limit = max(b.end_us + self._tolerance(b.end_us, b.start_us), self.now())
        if not final:
            limit = max(limit, self.now()) + OUTBOUND_WAIT_US
        limit = min(limit, VIRTUAL_LIMIT_US + OUTBOUND_WAIT_US)
        while not b.task.done() and self.now() < limit:
            self._check_wall()
            self.loop.run_until_time(min(limit, self.now() + 1_000_000))
        self.loop.run_until_time(self.now())
        if not b.task.done():
            b.task.cancel()
            self.blocking = None
            raise _Stop("FAIL", f"{self.path}:{b.event.line}: blocking {b.call.name} call "
                                f"expected to return at {_secs(b.end_us)} sec was still "
                                f"blocked at {_secs(self.now())} sec")
        self._check_blocking_done()

    def _check_result(self, ev: Event, sc: Syscall, task: Any, live_us: int) -> None:
        where = f"{self.path}:{ev.line}: runtime error in {sc.name} call: "
        exc = task.exception()
        if isinstance(exc, _Stop):
            raise exc
        if isinstance(exc, _ScriptFailure):
            raise _Stop("FAIL", where + str(exc))
        if exc is not None:
            raise _Stop("ERROR", where + f"{type(exc).__name__}: {exc}")
        ret, err = task.result()
        expected = self._expected_result(ev, sc)
        if expected is None:
            return
        if ret != expected:
            if ret < 0:
                raise _Stop("FAIL", where + f"Expected result {expected} but got {ret} with "
                                            f"errno {err} ({_strerror(err)})")
            raise _Stop("FAIL", where + f"Expected result {expected} but got {ret}")
        if ret < 0 and sc.errno is not None:
            want = ERRNO.get(sc.errno)
            if want is None:
                raise _Stop("ERROR", where + f"unknown errno {sc.errno}")
            if want != err:
                raise _Stop("FAIL", where + f"Expected errno {want} ({_strerror(want)}) but got "
                                            f"{err} ({_strerror(err)})")

    def _expected_result(self, ev: Event, sc: Syscall) -> int | None:
        r = sc.result
        if isinstance(r, EllipsisExpr):
            return None
        try:
            return self._int(r)
        except (KeyError, TypeError):
            raise _Stop("ERROR", f"{self.path}:{ev.line}: bad result expression {r!r}") from None

    # ---- argument helpers -------------------------------------------------------------

    def _int(self, e: Any) -> int:
        if isinstance(e, IntExpr):
            return e.value
        if isinstance(e, WordExpr):
            if e.name in SYMBOLS:
                return SYMBOLS[e.name]
            if e.name in ERRNO:
                return ERRNO[e.name]
            raise KeyError(e.name)
        if isinstance(e, BinaryExpr) and e.op == "|":
            return self._int(e.lhs) | self._int(e.rhs)
        if isinstance(e, ListExpr) and len(e.items) == 1:
            return self._int(e.items[0])
        raise TypeError(f"not an integer: {e!r}")

    def _file(self, e: Any) -> Any:
        """The open file behind a script fd (to_live_fd); EBADF if none."""
        fd = self._int(e)
        s = self.fds.get(fd)
        if s is None:
            s = self.net.files.files.get(fd)
        if s is None or s.closed:
            raise OSError(E.EBADF, "bad fd")
        return s

    def _sock(self, e: Any, not_sock: int = E.ENOTSOCK) -> Socket:
        """The socket behind a script fd: EBADF if none, ``not_sock`` for another file (an
        epoll fd: ENOTSOCK for socket calls, EINVAL for read/write)."""
        s = self._file(e)
        if not isinstance(s, Socket):
            raise OSError(not_sock, "not a socket")
        return s

    def _sockaddr(self, e: Any, default: tuple[int, int]) -> tuple[int, int]:
        if isinstance(e, SockaddrExpr):
            if e.family not in ("AF_INET",):
                raise OSError(E.EAFNOSUPPORT, e.family)
            return ip2int(e.addr), e.port
        return default

    @staticmethod
    def _is_null(e: Any) -> bool:
        return isinstance(e, WordExpr) and e.name == "NULL" or (
            isinstance(e, IntExpr) and e.value == 0)

    def _buf(self, e: Any, n: int) -> bytes:
        if self._is_null(e) and n > 0:
            raise OSError(E.EFAULT, "bad address")
        if isinstance(e, StringExpr) and not e.ellipsis:
            return e.value.encode()[:n].ljust(n, b"\0")
        return bytes(n)

    # ---- the calls ---------------------------------------------------------------------

    async def _syscall(self, ev: Event, sc: Syscall) -> tuple[int, int]:
        fn = getattr(self, "sys_" + sc.name, None)
        if fn is None:
            raise _Stop("ERROR", f"{self.path}:{ev.line}: unsupported system call {sc.name}()")
        try:
            ret = await fn(ev, sc, sc.args)
            return int(ret), 0
        except OSError as e:
            return -1, e.errno or 0
        except (TypeError, KeyError, IndexError) as e:
            raise _Stop("ERROR", f"{self.path}:{ev.line}: bad arguments to {sc.name}(): "
                                 f"{type(e).__name__}: {e}") from None

    async def sys_socket(self, ev: Event, sc: Syscall, a: tuple) -> int:
        family = 2 if isinstance(a[0], EllipsisExpr) else self._int(a[0])
        s = Socket(self.net, family, self._int(a[1]), self._int(a[2]))
        expected = self._expected_result(ev, sc)
        key = expected if expected is not None and expected >= 0 else s.fd
        self.fds[key] = s
        self.conn = _Conn(s)
        return key

    async def sys_bind(self, ev: Event, sc: Syscall, a: tuple) -> int:
        s = self._sock(a[0])
        addr = self._sockaddr(a[1], (self.local_ip, BIND_PORT))
        s.bind(addr)
        conn = self.conn
        if conn is not None and conn.sock is s:
            conn.live_local = (addr[0] or self.local_ip, s.sk.sport)
        return 0

    async def sys_listen(self, ev: Event, sc: Syscall, a: tuple) -> int:
        s = self._sock(a[0])
        s.listen(self._int(a[1]))
        conn = self.conn
        if conn is not None and conn.sock is s:
            conn.state = SOCKET_LISTENING
            if not conn.live_local[1]:
                conn.live_local = (self.local_ip, s.sk.sport)
        return 0

    async def sys_accept(self, ev: Event, sc: Syscall, a: tuple) -> int:
        s = self._sock(a[0])
        if s._would_block():
            ns = s._accept_now()
        else:
            try:
                ns = s._accept_now()
            except OSError as e:
                if e.errno != E.EAGAIN:
                    raise
                ns = await s._aaccept_wait()
        expected = self._expected_result(ev, sc)
        key = expected if expected is not None and expected >= 0 else ns.fd
        self.fds[key] = ns
        conn = self.conn
        sk = ns.sk
        if conn is not None and conn.sock is None and conn.live_remote[1] == sk.dport:
            conn.sock = ns
        return key

    async def sys_connect(self, ev: Event, sc: Syscall, a: tuple) -> int:
        s = self._sock(a[0])
        addr = self._sockaddr(a[1], (self.remote_ip, CONNECT_PORT))
        conn = self.conn
        if conn is not None and conn.sock is s and s.is_tcp and s.sk.state == S.TCP_CLOSE:
            conn.state = SOCKET_ACTIVE_CONNECTING
            conn.live_remote = addr
            if s.sk.sport:
                conn.live_local = (s.sk.saddr or self.local_ip, s.sk.sport)
        if s._connect_start(addr):
            return 0
        if s._would_block():
            raise OSError(E.EINPROGRESS, "in progress")
        await s._aconnect_wait()
        return 0

    async def _recv(self, s: Socket, n: int, flags: int) -> bytes:
        if not s.is_tcp:
            return s.recv(n, flags)
        try:
            data = s._recv_now(n, flags)
        except OSError as e:
            if e.errno != E.EAGAIN or s._would_block(flags) or flags & 0x1:   # MSG_OOB
                raise
            data = await s._arecv_wait(n, flags)
        if flags & 0x100 and 0 < len(data) < n:                     # MSG_WAITALL
            data += await s._arecv_all(n - len(data), flags)
        return data

    async def _send(self, s: Socket, data: bytes, flags: int,
                    addr: tuple | None = None) -> int:
        """tcp_sendmsg on a blocking socket copies everything, sleeping for buffer space."""
        if not s.is_tcp:
            return s.send(data, flags)
        if s._fastopen_send(flags):
            # tcp_sendmsg_fastopen: connect with data in the SYN, then the rest as below
            conn = self.conn
            if (conn is not None and conn.sock is s and s.sk.state == S.TCP_CLOSE
                    and addr is not None and addr[0] is not None):
                conn.state = SOCKET_ACTIVE_CONNECTING
                conn.live_remote = addr
            flags &= ~_MSG_FASTOPEN

            async def rest(view: memoryview) -> int:
                return await self._send(s, bytes(view), flags)

            return await s._asendmsg_fastopen(data, flags | _MSG_FASTOPEN, addr, rest)
        view = memoryview(data)
        sent = 0
        while True:
            try:
                n = s._send_now(view[sent:], flags) if len(view) > sent or sent == 0 else 0
            except OSError as e:
                if e.errno != E.EAGAIN or s._would_block(flags):
                    if sent:
                        return sent
                    raise
                await s._wait(s._send_ready, s.timeout)
                continue
            sent += n
            if sent >= len(view) or s._would_block(flags):
                return sent
            await s._wait(s._send_ready, s.timeout)

    def _check_efault(self, e: Any, n: int) -> None:
        if self._is_null(e) and n > 0:
            raise OSError(E.EFAULT, "bad address")

    async def sys_read(self, ev: Event, sc: Syscall, a: tuple) -> int:
        f = self._file(a[0])
        n = self._int(a[2])
        self._check_efault(a[1], n)
        if isinstance(f, HostFile):
            return len(await f.aread(n))                  # type: ignore[attr-defined]
        return len(await self._recv(self._sock(a[0], E.EINVAL), n, 0))

    async def sys_recv(self, ev: Event, sc: Syscall, a: tuple) -> int:
        s = self._sock(a[0])
        n = self._int(a[2])
        self._check_efault(a[1], n)
        return len(await self._recv(s, n, self._int(a[3])))

    async def sys_recvfrom(self, ev: Event, sc: Syscall, a: tuple) -> int:
        return await self.sys_recv(ev, sc, a)

    async def sys_write(self, ev: Event, sc: Syscall, a: tuple) -> int:
        f = self._file(a[0])
        n = self._int(a[2])
        if isinstance(f, HostFile):
            return await f.awrite(self._buf(a[1], n))     # type: ignore[attr-defined]
        return await self._send(self._sock(a[0], E.EINVAL), self._buf(a[1], n), 0)

    async def sys_send(self, ev: Event, sc: Syscall, a: tuple) -> int:
        s = self._sock(a[0])
        n = self._int(a[2])
        return await self._send(s, self._buf(a[1], n), self._int(a[3]))

    def _send_addr(self, e: Any) -> tuple | None:
        """The destination of sendto/sendmsg: ``...`` is the remote address, AF_UNSPEC
        a family-only sockaddr ((None, 0))."""
        if isinstance(e, WordExpr) and e.name == "AF_UNSPEC":
            return (None, 0)
        if e is None:
            return None
        return self._sockaddr(e, (self.remote_ip, CONNECT_PORT))

    async def sys_sendto(self, ev: Event, sc: Syscall, a: tuple) -> int:
        s = self._sock(a[0])
        n = self._int(a[2])
        flags = self._int(a[3])
        addr = self._send_addr(a[4]) if len(a) > 4 else None
        return await self._send(s, self._buf(a[1], n), flags, addr)

    def _iov_len(self, e: Any) -> int:
        if isinstance(e, ListExpr):
            return sum(i.length for i in e.items if isinstance(i, IovecExpr))
        return 0

    async def sys_writev(self, ev: Event, sc: Syscall, a: tuple) -> int:
        s = self._sock(a[0])
        return await self._send(s, bytes(self._iov_len(a[1])), 0)

    async def sys_readv(self, ev: Event, sc: Syscall, a: tuple) -> int:
        s = self._sock(a[0])
        return len(await self._recv(s, self._iov_len(a[1]), 0))

    async def sys_sendmsg(self, ev: Event, sc: Syscall, a: tuple) -> int:
        s = self._sock(a[0])
        m = a[1]
        n = self._iov_len(m.iov) if isinstance(m, MsghdrExpr) else 0
        flags = self._int(a[2]) & ~0x4000000            # MSG_ZEROCOPY: copied like a send
        addr = None
        if flags & _MSG_FASTOPEN and isinstance(m, MsghdrExpr):
            addr = (self.remote_ip, CONNECT_PORT)
        return await self._send(s, bytes(n), flags, addr)

    async def sys_recvmsg(self, ev: Event, sc: Syscall, a: tuple) -> int:
        s = self._sock(a[0])
        m = a[1]
        n = self._iov_len(m.iov) if isinstance(m, MsghdrExpr) else 0
        data = await self._recv(s, n, self._int(a[2]))
        if isinstance(m, MsghdrExpr) and m.control is not None:
            for c in m.control.items:
                if not isinstance(c, CmsgExpr):
                    continue
                lvl, typ = self._int(c.level), self._int(c.type)
                if (lvl, typ) == (6, _TCP_CM_INQ):
                    if id(s) not in self.inq:
                        raise _ScriptFailure("recvmsg: no TCP_CM_INQ cmsg (TCP_INQ is off)")
                    sk = s.sk
                    inq = sk.rcv_nxt - sk.copied_seq
                    if inq == 0 and sk.done:
                        inq = 1                                 # tcp_inq_hint
                    want = self._int(c.data)
                    if want != inq:
                        raise _ScriptFailure(f"Bad cmsg TCP_CM_INQ data: expected: {want} "
                                             f"actual: {inq}")
        return len(data)

    async def sys_close(self, ev: Event, sc: Syscall, a: tuple) -> int:
        fd = self._int(a[0])
        s = self._file(a[0])
        s.close()
        self.fds.pop(fd, None)
        return 0

    async def sys_shutdown(self, ev: Event, sc: Syscall, a: tuple) -> int:
        self._sock(a[0]).shutdown(self._int(a[1]))
        return 0

    async def sys_fcntl(self, ev: Event, sc: Syscall, a: tuple) -> int:
        s = self._file(a[0])
        cmd = self._int(a[1])
        if cmd == SYMBOLS["F_GETFL"]:
            if isinstance(s, HostFile):
                return (s.flags & 3) | (_O_NONBLOCK if s.nonblocking else 0)
            return _O_RDWR | (_O_NONBLOCK if getattr(s, "nonblocking", False) else 0)
        if cmd == SYMBOLS["F_SETFL"]:
            s.nonblocking = bool(self._int(a[2]) & _O_NONBLOCK)
            s.timeout = None
            return 0
        if cmd in (SYMBOLS["F_GETFD"], SYMBOLS["F_SETFD"]):
            return 0
        raise OSError(E.EINVAL, "fcntl cmd")

    def _optval(self, e: Any) -> Any:
        if isinstance(e, LingerExpr):
            return (e.onoff, e.linger)
        if isinstance(e, StringExpr):
            return e.value.encode()
        if isinstance(e, ListExpr) and len(e.items) == 1:
            return self._int(e.items[0])
        if isinstance(e, BraceExpr) and len(e.items) == 2:
            return (self._int(e.items[0]), self._int(e.items[1]))
        return self._int(e)

    async def sys_setsockopt(self, ev: Event, sc: Syscall, a: tuple) -> int:
        s = self._sock(a[0])
        level, opt = self._int(a[1]), self._int(a[2])
        if self._is_null(a[3]):
            raise OSError(E.EFAULT, "bad address")
        val = self._optval(a[3])
        if level == 6 and opt == _TCP_INQ and s.is_tcp:
            if val:
                self.inq.add(id(s))
            else:
                self.inq.discard(id(s))
            return 0
        if level == 1 and opt == _SO_ZEROCOPY and s.is_tcp and isinstance(val, int):
            return 0            # sock_setsockopt SO_ZEROCOPY: a flag; copies still happen
        if level == 6 and opt == _TCP_FASTOPEN_KEY and isinstance(a[3], StringExpr):
            import codecs

            raw = codecs.decode(a[3].value, "unicode_escape").encode("latin-1")
            optlen = self._int(a[4]) if len(a) > 4 else len(raw)
            val = raw[:optlen].ljust(optlen, b"\0")
        s.setsockopt(level, opt, val)
        return 0

    async def sys_getsockopt(self, ev: Event, sc: Syscall, a: tuple) -> int:
        s = self._sock(a[0])
        level, opt = self._int(a[1]), self._int(a[2])
        if level == 6 and opt == _TCP_INQ and s.is_tcp:
            val: Any = int(id(s) in self.inq)
        else:
            val = s.getsockopt(level, opt)
        want = a[3] if len(a) > 3 else None
        if isinstance(want, ListExpr) and len(want.items) == 1 and isinstance(val, int):
            exp = self._int(want.items[0])
            if (exp & 0xFFFFFFFF) != (val & 0xFFFFFFFF):
                raise _ScriptFailure(f"Bad getsockopt optval: expected: {exp} actual: {val}")
        elif isinstance(want, LingerExpr) and isinstance(val, bytes):
            onoff, secs = struct.unpack("ii", val[:8])
            if (onoff, secs) != (want.onoff, want.linger):
                raise _ScriptFailure(f"Bad getsockopt linger: expected: {{{want.onoff}, "
                                     f"{want.linger}}} actual: {{{onoff}, {secs}}}")
        elif isinstance(want, StringExpr) and isinstance(val, bytes):
            if val.rstrip(b"\0").decode() != want.value:
                raise _ScriptFailure(f"Bad getsockopt optval: expected: {want.value!r} "
                                     f"actual: {val!r}")
        return 0

    async def sys_ioctl(self, ev: Event, sc: Syscall, a: tuple) -> int:
        s = self._sock(a[0])
        req = self._int(a[1])
        val = s.ioctl(req)
        if len(a) > 2 and isinstance(a[2], ListExpr):
            exp = self._int(a[2])
            if exp != val:
                raise _ScriptFailure(f"Bad ioctl optval: expected: {exp} actual: {val}")
        return 0

    # ---- pipes, files, splice, sendfile ----------------------------------------------

    def _fd_list(self, e: Any, n: int) -> list[int]:
        if not isinstance(e, ListExpr) or len(e.items) != n:
            raise TypeError(f"expected a list of {n} fds: {e!r}")
        return [self._int(i) for i in e.items]

    async def sys_pipe(self, ev: Event, sc: Syscall, a: tuple) -> int:
        return await self.sys_pipe2(ev, sc, (a[0], IntExpr(0)))

    async def sys_pipe2(self, ev: Event, sc: Syscall, a: tuple) -> int:
        """pipe([r, w]) / pipe2([r, w], flags): the script's fd numbers name the two ends."""
        want = self._fd_list(a[0], 2)
        ends = do_pipe2(self.net, self._int(a[1]))
        for fd, f in zip(want, ends, strict=True):
            self.fds[fd] = f                              # type: ignore[assignment]
        return 0

    def _loff(self, e: Any) -> int | None:
        """A loff_t * argument: NULL, or [N]."""
        if self._is_null(e):
            return None
        return self._int(e)

    async def sys_splice(self, ev: Event, sc: Syscall, a: tuple) -> int:
        """splice(fd_in, off_in, fd_out, off_out, len, flags)."""
        f_in, f_out = self._file(a[0]), self._file(a[2])
        n, _, _ = await asplice(f_in, self._loff(a[1]), f_out, self._loff(a[3]),
                                self._int(a[4]), self._int(a[5]))
        return n

    async def sys_open(self, ev: Event, sc: Syscall, a: tuple) -> int:
        """open(path, flags[, mode]) on the run's files (what its shell commands created);
        other paths are read-only views of the real file, when one exists."""
        if not isinstance(a[0], StringExpr):
            raise TypeError("open() path must be a string")
        path = a[0].value
        flags = self._int(a[1])
        data = self.vfs.get(path)
        if data is None:
            if flags & 0o100:                                           # O_CREAT
                data = self.vfs[path] = bytearray()
            elif flags & 3 == 0 and os.path.isfile(path):                 # O_RDONLY
                with open(path, "rb") as fh:
                    data = bytearray(fh.read())
            else:
                raise OSError(E.ENOENT, path)
        elif flags & 0o100 and flags & 0o200:                           # O_CREAT|O_EXCL
            raise OSError(E.EEXIST, path)
        if flags & 0o1000 and flags & 3:                                # O_TRUNC, writable
            del data[:]
        f = RegularFile(self.net, path, data, flags)
        expected = self._expected_result(ev, sc)
        key = expected if expected is not None and expected >= 0 else f.fd
        self.fds[key] = f                                   # type: ignore[assignment]
        return key

    async def sys_sendfile(self, ev: Event, sc: Syscall, a: tuple) -> int:
        """sendfile(out_fd, in_fd, offset, count): offset NULL or [N]."""
        f_out, f_in = self._file(a[0]), self._file(a[1])
        n, _ = await asendfile(f_out, f_in, self._loff(a[2]), self._int(a[3]))
        return n

    async def sys_poll(self, ev: Event, sc: Syscall, a: tuple) -> int:
        items = [p for p in (a[0].items if isinstance(a[0], ListExpr) else ())
                 if isinstance(p, PollfdExpr)]
        timeout_ms = self._int(a[2])
        fds = [(self._int(p.fd), self._int(p.events)) for p in items]

        def check() -> list[tuple[int, int]]:
            out = []
            for fd, evm in fds:
                s = self.fds.get(fd) or self.net.files.files.get(fd)
                out.append(sock_poll(self.net, [(s.fd if s is not None else fd, evm)])[0])
            return out

        res = check()
        if not any(r for _, r in res) and timeout_ms != 0:
            loop = self.loop
            deadline = None if timeout_ms < 0 else loop.now_us() + timeout_ms * 1000
            while not any(r for _, r in res):
                if deadline is not None and loop.now_us() >= deadline:
                    break
                fut = loop.create_future()

                def wake(f: Any = fut) -> None:
                    if not f.done():
                        f.set_result(None)

                from ..tcp.sock import sk_add_waiter

                for fd, _e in fds:
                    s = self.fds.get(fd) or self.net.files.files.get(fd)
                    if s is not None and getattr(s, "is_tcp", False):
                        sk_add_waiter(s.sk, wake)
                    elif isinstance(s, PipeFile):
                        sk_add_waiter(s.pipe, wake)
                h = None
                if deadline is not None:
                    h = loop.call_at(deadline / 1e6, wake)
                await fut
                if h is not None:
                    h.cancel()
                res = check()
        for p, (_fd, got) in zip(items, res, strict=True):
            want = self._int(p.revents) if p.revents is not None else 0
            if want != got:
                raise _ScriptFailure(f"poll: expected revents {want:#x} for fd "
                                     f"{self._int(p.fd)} but got {got:#x}")
        return sum(1 for _, r in res if r)

    # ---- epoll (run_system_call.c syscall_epoll_*) -------------------------------------

    def _epoll_data(self, ev: EpollEventExpr, script_fd: int | None) -> tuple[str, int]:
        """The data union of an ``{events=..., fd|ptr|u32|u64=...}`` (get_epoll_event_from_expr):
        ``fd=`` names a script fd, mapped to its live fd (-1 if unknown)."""
        val = self._int(ev.value)
        if ev.key != "fd":
            return ev.key, val
        if script_fd is not None and val != script_fd:
            raise _ScriptFailure("wrong fd specified in epoll_event")
        f = self.fds.get(val) or self.net.files.files.get(val)
        return "fd", f.fd if f is not None and not f.closed else -1

    def _epoll_fd(self, ev: Event, sc: Syscall, fd: int) -> int:
        """Map the new epoll fd to the script's (run_syscall_epoll_create)."""
        expected = self._expected_result(ev, sc)
        key = expected if expected is not None and expected >= 0 else fd
        self.fds[key] = self.net.files.get(fd)
        return key

    async def sys_epoll_create(self, ev: Event, sc: Syscall, a: tuple) -> int:
        return self._epoll_fd(ev, sc, epoll_create(self.net, self._int(a[0])))

    async def sys_epoll_create1(self, ev: Event, sc: Syscall, a: tuple) -> int:
        return self._epoll_fd(ev, sc, epoll_create1(self.net, self._int(a[0])))

    async def sys_epoll_ctl(self, ev: Event, sc: Syscall, a: tuple) -> int:
        op, script_fd = self._int(a[1]), self._int(a[2])
        events, data = 0, None
        if isinstance(a[3], EpollEventExpr):
            events = self._int(a[3].events)
            data = self._epoll_data(a[3], script_fd)[1]
        elif op != EPOLL_CTL_DEL:
            raise OSError(E.EFAULT, "bad address")
        ep, tf = self._file(a[0]), self._file(a[2])
        epoll_ctl(self.net, ep.fd, op, tf.fd, events, data)
        return 0

    async def sys_epoll_wait(self, ev: Event, sc: Syscall, a: tuple) -> int:
        want = a[1]
        maxevents, timeout = self._int(a[2]), self._int(a[3])
        if maxevents <= 0:
            raise OSError(E.EINVAL, "maxevents")
        ep = self._file(a[0])
        if not isinstance(ep, Eventpoll):
            raise OSError(E.EINVAL, "not an epoll fd")
        res = await ep.aepoll_wait(maxevents, timeout)
        got_data, got_events = res[0] if res else (0, 0)
        if isinstance(want, EpollEventExpr):
            exp_events = self._int(want.events) & 0xFFFFFFFF
            if exp_events != got_events:
                raise _ScriptFailure("epoll_event->events does not match script: expected: "
                                     f"{exp_events:#x} actual: {got_events:#x}")
            kind, exp = self._epoll_data(want, None)
            mask = 0xFFFFFFFF if kind in ("fd", "u32") else (1 << 64) - 1
            if (exp & mask) != (got_data & mask):
                raise _ScriptFailure(f"epoll_event->data does not match script: expected: "
                                     f"{exp} actual: {got_data}")
        return len(res)


# --------------------------------------------------------------------------- entry points


def run_script(path: str, *, tolerance_usecs: int | None = None, strict_segments: bool = False,
               verbose: bool = False, defaults_path: str | None = DEFAULT_DEFAULTS_PATH,
               wall_limit_s: float = WALL_LIMIT_S,
               defines: dict[str, str] | None = None) -> ScriptResult:
    """Parse and run one script; never raises (a crash becomes an ERROR verdict)."""
    t0 = _time.perf_counter()
    if skip_reason(path, None, defaults_path):
        return ScriptResult(path, "SKIP", skip_reason(path, None, defaults_path) or "")
    try:
        script = parse_file(path, dict(RUN_ALL_IPV4_DEFINES, **(defines or {})))
    except PacketdrillSyntaxError as e:
        return ScriptResult(path, "ERROR", str(e), wall_s=_time.perf_counter() - t0)
    why = skip_reason(path, script, defaults_path)
    if why:
        return ScriptResult(path, "SKIP", why)
    runner = Runner(script, tolerance_usecs=tolerance_usecs, strict_segments=strict_segments,
                    verbose=verbose, defaults_path=defaults_path, wall_limit_s=wall_limit_s)
    try:
        runner.run()
        res = ScriptResult(path, "PASS")
    except _Stop as s:
        res = ScriptResult(path, s.verdict, s.reason.strip(), s.details.strip())
    except Exception as e:  # a bug in tcpdive or the runner: report, do not crash
        import traceback

        tb = traceback.extract_tb(e.__traceback__)
        where = f" at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno}" if tb else ""
        res = ScriptResult(path, "ERROR", f"internal error {type(e).__name__}: {e}{where}",
                           traceback.format_exc())
    finally:
        try:
            import asyncio

            for task in asyncio.all_tasks(runner.loop):
                task.cancel()
            runner.loop.run_until_time(runner.loop.now_us())
        except Exception:
            pass
        try:
            runner.loop.close()
        except Exception:
            pass
    res.wall_s = _time.perf_counter() - t0
    res.virtual_us = runner.loop.now_us()
    res.trace = runner.trace
    return res


def run_paths(paths: list[str], **kw: Any) -> list[ScriptResult]:
    """Run every script under ``paths`` (files or directories)."""
    return [run_script(p, **kw) for p in collect_scripts(paths)]


def summary(results: list[ScriptResult]) -> str:
    """``N passed, N failed, N skipped`` (failed counts FAIL and ERROR)."""
    passed = sum(r.verdict == "PASS" for r in results)
    skipped = sum(r.verdict == "SKIP" for r in results)
    failed = len(results) - passed - skipped
    return f"{passed} passed, {failed} failed, {skipped} skipped"
