"""Test harness: a two-host world whose every sent segment is captured and parsed.

    net = Net(delay=0.005)
    ...
    net.segs          # every segment any host sent, in send order
    net.lines()       # ["0.000000 client S seq 0 ack 0 len 0 win 64240 <mss 1460,...>", ...]
    net.states        # [(t, host, 'SYN_SENT', 'ESTABLISHED'), ...]

Sequence and ack numbers are relative like tcpdump's: per direction of a 4-tuple, relative to
the first sequence number seen in that direction (the ISN, when the flow starts with a SYN).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tcpdive.packet.ipv4 import int2ip, ip_parse
from tcpdive.packet.tcp import flags_str, options_str
from tcpdive.sim.world import World
from tcpdive.tcp.sock import STATE_NAMES

_HDR = struct.Struct("!HHIIBBHHH")


@dataclass
class Seg:
    t: float            # virtual seconds at send time
    host: str           # sending host's name
    src: str
    sport: int
    dst: str
    dport: int
    flags: str          # tcpdump letters: 'S', 'S.', '.', 'P.', 'F.', 'R.', 'R' ...
    seq: int            # relative
    ack: int            # relative (0 when ACK is not set)
    len: int
    win: int            # raw header window
    opts: str           # tcpdump option list
    raw_seq: int
    raw_ack: int

    def __str__(self) -> str:
        return (f"{self.t:.6f} {self.host} {self.flags} seq {self.seq} ack {self.ack} "
                f"len {self.len} win {self.win} <{self.opts}>")


class Capture:
    """Collects parsed segments (sent by any attached host) and state changes."""

    def __init__(self) -> None:
        self.segs: list[Seg] = []
        self.states: list[tuple[float, str, str, str]] = []
        self._base: dict[tuple, int] = {}

    def attach(self, host) -> None:
        host.trace.packet.attach(self._on_packet)
        host.trace.set_state.attach(
            lambda sk, o, n, now, h=host: self.states.append(
                (now / 1e6, h.name, STATE_NAMES.get(o, str(o)), STATE_NAMES.get(n, str(n)))))

    def _on_packet(self, net, dev, data, direction, now_us) -> None:
        if direction != "out":
            return
        reason, iph = ip_parse(data)
        if iph is None or iph.protocol != 6:
            return
        off = iph.ihl * 4
        sp, dp, seq, ack, doff, fl, win, _ck, _up = _HDR.unpack_from(data, off)
        hl = (doff >> 4) * 4
        key = (iph.saddr, sp, iph.daddr, dp)
        rkey = (iph.daddr, dp, iph.saddr, sp)
        if fl & 0x02 or key not in self._base:
            if fl & 0x02 or key not in self._base:
                self._base[key] = seq
        base = self._base[key]
        rbase = self._base.get(rkey)
        rel_ack = 0
        if fl & 0x10:
            rel_ack = (ack - rbase) & 0xFFFFFFFF if rbase is not None else ack
        self.segs.append(Seg(now_us / 1e6, net.name, int2ip(iph.saddr), sp, int2ip(iph.daddr), dp,
                             flags_str(fl), (seq - base) & 0xFFFFFFFF, rel_ack,
                             iph.tot_len - off - hl, win, options_str(data, off + 20, off + hl),
                             seq, ack))

    def lines(self, with_opts: bool = False) -> list[str]:
        out = []
        for s in self.segs:
            line = f"{s.t:.6f} {s.host} {s.flags} seq {s.seq} ack {s.ack} len {s.len}"
            if with_opts:
                line += f" <{s.opts}>"
            out.append(line)
        return out

    def state_lines(self) -> list[str]:
        return [f"{t:.6f} {h} {o}->{n}" for t, h, o, n in self.states]

    def clear(self) -> None:
        self.segs.clear()
        self.states.clear()


class Net:
    """World with a client (10.0.0.1) and a server (10.0.0.2) joined by one link, captured."""

    def __init__(self, delay: float = 0.005, seed: int = 1, **link_params) -> None:
        self.w = World(seed=seed)
        self.c = self.w.host("client", "10.0.0.1")
        self.s = self.w.host("server", "10.0.0.2")
        self.link = self.w.link(self.c, self.s, delay=delay, **link_params)
        self.cap = Capture()
        self.cap.attach(self.c)
        self.cap.attach(self.s)

    @property
    def segs(self) -> list[Seg]:
        return self.cap.segs

    @property
    def states(self):
        return self.cap.states

    def lines(self, with_opts: bool = False) -> list[str]:
        return self.cap.lines(with_opts)

    def state_lines(self) -> list[str]:
        return self.cap.state_lines()

    def now(self) -> float:
        return self.w.now()

    def run_for(self, seconds: float) -> None:
        self.w.run_for(seconds)

    def dev(self, host):
        return next(d for d in host.devices.values() if d.name.startswith("eth"))

    def listener(self, port: int = 80, backlog: int = 5):
        ls = self.s.socket()
        ls.bind(("0.0.0.0", port))
        ls.listen(backlog)
        return ls

    def connect_pair(self, port: int = 80):
        """Listen on the server, connect from the client, accept; returns (client, server) sockets."""
        ls = self.listener(port)
        cs = self.c.socket()
        cs.connect(("10.0.0.2", port))
        ss, _ = ls.accept()
        return cs, ss, ls


def tcp_sockets(host) -> list:
    """Every TCP socket (full, request or TIME_WAIT) in the host's established hash."""
    eh = host.tcp_hashinfo
    for name in ("ehash", "established"):
        t = getattr(eh, name, None)
        if t is not None:
            return list(t.values()) if isinstance(t, dict) else list(t)
    return []
