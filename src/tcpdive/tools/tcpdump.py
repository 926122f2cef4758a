"""tcpdump text: one line per IPv4 datagram, as ``tcpdump -n -S -tt`` prints it.

    0.005000 IP 10.0.0.2.80 > 10.0.0.1.59436: Flags [S.], seq 3179645542, ack 271124994,
        win 65160, options [mss 1460,sackOK,TS val 3597810150 ecr 3669553640,nop,wscale 10],
        length 0                                                   (one line in reality)

Sequence numbers are absolute (``-S``); the timestamp is the virtual clock in seconds with
microseconds. TCP, UDP and ICMP are decoded as tcpdump does at default verbosity (plus the
first line of HTTP on ports 80/8080/3128); anything malformed ends in a ``[|tcp]``-style
truncation marker or tcpdump's own complaint, never an exception. A subscriber only: the core
never formats packets.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable
from typing import IO, Any

_IP = struct.Struct("!BBHHHBBHII")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")
_H = struct.Struct("!H")
_II = struct.Struct("!II")

# tcpdump's tcp_flag_values, in its order (print-tcp.c)
_FLAG_TOKENS = ((0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x10, "."), (0x20, "U"),
                (0x40, "E"), (0x80, "W"))

_HTTP_PORTS = frozenset((80, 8080, 3128))
_HTTP_CMDS = frozenset((b"OPTIONS", b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"TRACE",
                        b"CONNECT", b"PATCH", b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY",
                        b"MOVE", b"LOCK", b"UNLOCK", b"SEARCH"))


def _ip(a: int) -> str:
    return f"{a >> 24 & 255}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}"


def ts_str(now_us: int) -> str:
    """Virtual time as tcpdump -tt prints it: seconds.microseconds."""
    s, us = divmod(int(now_us), 1_000_000)
    return f"{s}.{us:06d}"


def tcp_flags_str(flags: int) -> str:
    """Flag letters in tcpdump's order (F S R P . U E W), 'none' if no flag is set."""
    s = "".join(ch for bit, ch in _FLAG_TOKENS if flags & bit)
    return s or "none"


def tcp_options_str(data: bytes, start: int, end: int) -> str:
    """Options as tcpdump prints them inside ``options [...]`` (absolute SACK edges)."""
    parts: list[str] = []
    i = start
    end = min(end, len(data))
    while i < end:
        kind = data[i]
        if kind == 0:
            parts.append("eol")
            break
        if kind == 1:
            parts.append("nop")
            i += 1
            continue
        if i + 1 >= end:
            parts.append("[|tcp]")
            break
        size = data[i + 1]
        if size < 2:
            parts.append(f"opt-{kind}:[bad opt]" if kind not in (2, 3, 4, 5, 8) else "[bad opt]")
            break
        if i + size > end:
            parts.append("[|tcp]")
            break
        body = data[i + 2:i + size]
        if kind == 2:
            parts.append(f"mss {_H.unpack(body)[0]}" if size == 4 else f"mss[len {size}]")
        elif kind == 3:
            parts.append(f"wscale {body[0]}" if size == 3 else f"wscale[len {size}]")
        elif kind == 4:
            parts.append("sackOK" if size == 2 else f"sackOK[len {size}]")
        elif kind == 5:
            n = size - 2
            if n % 8:
                parts.append("sack invalid sack")
            else:
                blocks = "".join("{{{}:{}}}".format(*_II.unpack_from(body, j)) for j in range(0, n, 8))
                parts.append(f"sack {n // 8} {blocks}")
        elif kind == 8:
            if size == 10:
                v, e = _II.unpack(body)
                parts.append(f"TS val {v} ecr {e}")
            else:
                parts.append(f"TS[len {size}]")
        elif kind == 19:
            parts.append("md5 " + ("valid" if size == 18 else "invalid"))
        elif kind == 34:
            parts.append("tfo cookiereq" if size == 2 else f"tfo cookie {body.hex()}")
        elif kind == 30:
            parts.append("mptcp")
        else:
            parts.append(f"opt-{kind}:{body.hex()}" if body else f"opt-{kind}:")
        i += size
    return ",".join(parts)


def _http(payload: bytes) -> str:
    """tcpdump's txtproto_print at default verbosity: ': HTTP: <first line>' or ': HTTP'."""
    line_end = payload.find(b"\r\n")
    first = payload if line_end < 0 else payload[:line_end]
    toks = first.split(b" ")
    known = bool(toks) and (
        toks[0] in _HTTP_CMDS
        or (toks[0].startswith(b"HTTP/") and len(toks) > 1 and len(toks[1]) == 3
            and toks[1].isdigit()))
    if not known or line_end < 0:
        return ": HTTP"
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in first)
    return f": HTTP: {text}"


def _tcp(data: bytes, off: int, plen: int, src: str, dst: str) -> str:
    avail = len(data) - off
    if avail < 4:
        return f"IP {src} > {dst}: [|tcp]"
    sport, dport = struct.unpack_from("!HH", data, off)
    head = f"IP {src}.{sport} > {dst}.{dport}: "
    if avail < 20 or plen < 20:
        return head + "[|tcp]"
    _, _, seq, ack, doff, flags, win, _check, urp = _TCP.unpack_from(data, off)
    hlen = (doff >> 4) * 4
    if hlen < 20:
        return head + f"tcp {max(plen - hlen, 0)} [bad hdr length {hlen} - too short, < 20]"
    out = [f"Flags [{tcp_flags_str(flags)}]"]
    if hlen > plen:
        return head + out[0] + f" [bad hdr length {hlen} - too long, > {plen}]"
    length = plen - hlen
    if length > 0 or flags & 0x07:           # SYN, FIN or RST carry a seq even when empty
        out.append(f"seq {seq}:{(seq + length) & 0xFFFFFFFF}" if length else f"seq {seq}")
    if flags & 0x10:
        out.append(f"ack {ack}")
    out.append(f"win {win}")
    if flags & 0x20:
        out.append(f"urg {urp}")
    if hlen > 20:
        if off + hlen > len(data):
            opts = tcp_options_str(data, off + 20, len(data))
            return head + ", ".join(out) + f", options [{opts}" + ("" if opts.endswith("[|tcp]") else "[|tcp]")
        out.append(f"options [{tcp_options_str(data, off + 20, off + hlen)}]")
    out.append(f"length {length}")
    line = head + ", ".join(out)
    if length and (sport in _HTTP_PORTS or dport in _HTTP_PORTS):
        line += _http(data[off + hlen:off + plen])
    return line


def _udp(data: bytes, off: int, plen: int, src: str, dst: str) -> str:
    if len(data) - off < 8 or plen < 8:
        if len(data) - off >= 4:
            sport, dport = struct.unpack_from("!HH", data, off)
            return f"IP {src}.{sport} > {dst}.{dport}: [|udp]"
        return f"IP {src} > {dst}: [|udp]"
    sport, dport, ulen, _ = _UDP.unpack_from(data, off)
    head = f"IP {src}.{sport} > {dst}.{dport}: "
    if ulen < 8:
        return head + f"UDP, bad length {ulen} < 8"
    if ulen > plen:
        return head + f"UDP, bad length {ulen} > {plen}"
    return head + f"UDP, length {ulen - 8}"


_UNREACH = {0: "net {} unreachable", 1: "host {} unreachable", 9: "net {} unreachable - admin prohibited",
            10: "host {} unreachable - admin prohibited", 13: "host {} unreachable - admin prohibited filter"}


def _icmp(data: bytes, off: int, plen: int, src: str, dst: str) -> str:
    head = f"IP {src} > {dst}: ICMP "
    if len(data) - off < 4 or plen < 4:
        return f"IP {src} > {dst}: [|icmp]"
    typ, code = data[off], data[off + 1]
    if typ in (0, 8):
        if len(data) - off < 8:
            return head + "[|icmp]"
        ident, seq = struct.unpack_from("!HH", data, off + 4)
        what = "echo reply" if typ == 0 else "echo request"
        return head + f"{what}, id {ident}, seq {seq}, length {plen}"
    if typ == 3:
        inner = off + 8
        if len(data) - inner < 20:
            return head + "[|icmp]"
        ihl = (data[inner] & 15) * 4
        iproto = data[inner + 9]
        idst = _ip(struct.unpack_from("!I", data, inner + 16)[0])
        if code == 3:
            if len(data) - inner < ihl + 4:
                return head + "[|icmp]"
            dport = _H.unpack_from(data, inner + ihl + 2)[0]
            pname = {6: "tcp", 17: "udp"}.get(iproto, f"proto-{iproto}")
            return head + f"{idst} {pname} port {dport} unreachable, length {plen}"
        if code == 2:
            return head + f"{idst} protocol {iproto} unreachable, length {plen}"
        if code == 4:
            mtu = _H.unpack_from(data, off + 6)[0]
            return head + f"{idst} unreachable - need to frag (mtu {mtu}), length {plen}"
        fmt = _UNREACH.get(code, "{} unreachable - #" + str(code))
        return head + fmt.format(idst) + f", length {plen}"
    if typ == 11:
        what = "in-transit" if code == 0 else "reassembly"
        return head + f"time exceeded {what}, length {plen}"
    if typ == 5:
        return head + f"redirect, length {plen}"
    if typ == 4:
        return head + f"source quench, length {plen}"
    return head + f"type-#{typ}, length {plen}"


def format_packet(data: bytes, now_us: int) -> str:
    """One tcpdump -n -S -tt line for an IPv4 datagram; never raises on malformed input."""
    ts = ts_str(now_us)
    try:
        return f"{ts} {_format(bytes(data))}"
    except Exception:                      # defensive: a decoder bug must not kill the capture
        return f"{ts} IP [|ip]"


def _format(data: bytes) -> str:
    n = len(data)
    if n < 1:
        return "IP [|ip]"
    ver = data[0] >> 4
    if ver == 6:
        return "IP6 [|ip6]"
    if ver != 4:
        return f"IP{ver} [|ip]" if n < 20 else f"IP bad-version {ver}"
    if n < 20:
        return "IP [|ip]"
    vihl, _tos, tot_len, _id, frag, _ttl, proto, _ck, saddr, daddr = _IP.unpack_from(data)
    ihl = (vihl & 15) * 4
    if ihl < 20:
        return f"IP bad-hlen {ihl}"
    src, dst = _ip(saddr), _ip(daddr)
    if tot_len < ihl:
        return f"IP {src} > {dst}: bad-len {tot_len}"
    prefix = ""
    if tot_len > n:
        prefix = f"truncated-ip - {tot_len - n} bytes missing! "
    plen = tot_len - ihl
    if frag & 0x1FFF:                       # a later fragment: no transport header here
        return f"IP {prefix}{src} > {dst}: ip-proto-{proto}"
    if ihl > n:
        return f"IP {src} > {dst}: [|ip]"
    if proto == 6:
        line = _tcp(data, ihl, plen, src, dst)
    elif proto == 17:
        line = _udp(data, ihl, plen, src, dst)
    elif proto == 1:
        line = _icmp(data, ihl, plen, src, dst)
    else:
        line = f"IP {src} > {dst}: ip-proto-{proto} {plen}"
    if prefix:
        line = "IP " + prefix + line[3:]
    return line


class TcpdumpPrinter:
    """A ``trace.packet`` subscriber printing tcpdump lines (and keeping them in ``lines``).

        p = TcpdumpPrinter(show_host=True).attach([client, server])

    ``direction`` picks 'out' (each packet once when every host is watched), 'in' or 'both';
    ``show_host`` prefixes the host name, like running tcpdump on several machines at once.
    ``out=None`` only collects.
    """

    def __init__(self, out: IO[str] | None = sys.stdout, direction: str = "out",
                 show_host: bool = False) -> None:
        if direction not in ("out", "in", "both"):
            raise ValueError(f"bad direction {direction!r}")
        self.out = out
        self.direction = direction
        self.show_host = show_host
        self.lines: list[str] = []
        self._nets: list[Any] = []

    def __call__(self, net: Any, dev: Any, data: bytes, direction: str, now_us: int) -> None:
        if self.direction != "both" and direction != self.direction:
            return
        line = format_packet(data, now_us)
        if self.show_host:
            line = f"{getattr(net, 'name', '?')} {line}"
        self.lines.append(line)
        if self.out is not None:
            print(line, file=self.out)

    def attach(self, net_or_nets: Any | Iterable[Any]) -> TcpdumpPrinter:
        nets = [net_or_nets] if hasattr(net_or_nets, "trace") else list(net_or_nets)
        for net in nets:
            net.trace.packet.attach(self)
            self._nets.append(net)
        return self

    def detach(self) -> None:
        for net in self._nets:
            net.trace.packet.detach(self)
        self._nets.clear()


__all__ = ["format_packet", "TcpdumpPrinter", "tcp_flags_str", "tcp_options_str", "ts_str"]
