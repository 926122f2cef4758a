"""Shared plumbing of the scenarios: wiring hosts, recording packets/states, report data.

A :class:`Recorder` subscribes to the hosts' tracepoints (the core only emits) and keeps what the
HTML report draws: ladder arrows (sender, receiver, send and arrival times, tcpdump-style label),
per-socket state timelines, and tcpdump lines for the text report.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from ..packet.ipv4 import int2ip
from ..packet.tcp import flags_str
from ..sim.world import Host, World
from ..tcp.sock import STATE_NAMES
from ..tools.netstat import netstat_napo
from . import Options, Result

_TCP4 = struct.Struct("!HHIIBBH")


def _at(t: float | None) -> str:
    """A virtual time for a claim's evidence: ``+107.52 s``, or ``never``."""
    return "never" if t is None else f"+{t:.2f} s"


def make_world(opts: Options) -> World:
    """A world seeded from the options; ``--pcap``/``--trace`` are honoured by its Recorder."""
    w = World(seed=opts.seed)
    w._tcpdive_opts = opts                   # type: ignore[attr-defined]
    return w


def apply_sysctls(opts: Options, *hosts: Host) -> None:
    for h in hosts:
        for k, v in opts.sysctls:
            h.sysctl.set(k, v)


class Recorder:
    """Packets (as ladder arrows and tcpdump lines) and socket state changes of some hosts."""

    def __init__(self, world: World, max_packets: int = 400) -> None:
        self.world = world
        self.peer: dict[tuple[str, str], tuple[str, float]] = {}
        self.addr_host: dict[int, str] = {}
        self.arrows: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self.states: list[tuple[float, str, str, str, str]] = []   # t, host, label, old, new
        self.max_packets = max_packets
        self.enabled = True
        self.hosts: list[str] = []
        self.packet_count = 0
        self.retransmits: list[tuple[float, str, int]] = []         # t, host, rto_us
        self._key_label: dict[int, str] = {}
        self.opts: Options | None = getattr(world, "_tcpdive_opts", None)
        self.pcap = None
        if self.opts is not None and self.opts.pcap and not getattr(self.opts, "_pcap_done", False):
            from ..tools.pcap import PcapWriter

            self.pcap = PcapWriter(self.opts.pcap)
            self.opts._pcap_done = True      # type: ignore[attr-defined]  # first world only
            world._tcpdive_pcap = self.pcap  # type: ignore[attr-defined]

    def link(self, a: Host, b: Host, delay: float = 0.0005, **kw: Any):
        """``world.link`` that also remembers which device leads to which host."""
        before_a, before_b = set(a.devices), set(b.devices)
        link = self.world.link(a, b, delay=delay, **kw)
        da = next(d for d in a.devices if d not in before_a)
        db = next(d for d in b.devices if d not in before_b)
        self.peer[(a.name, da)] = (b.name, delay)
        self.peer[(b.name, db)] = (a.name, delay)
        return link

    def watch(self, *hosts: Host, packets: bool = True, states: bool = True) -> None:
        for h in hosts:
            if h.name not in self.hosts:
                self.hosts.append(h.name)
            self.addr_host[h.primary_addr()] = h.name
            if packets:
                h.trace.packet.attach(self._on_packet)
            if self.pcap is not None:
                self.pcap.attach(h, direction="out")
            if self.opts is not None and self.opts.trace:
                from ..tools.tcpdump import format_packet

                def live(net, dev, data, d, now):
                    if d == "out":
                        print(f"{net.name:>8}  {format_packet(data, now)}")
                h.trace.packet.attach(live)
            if states:
                h.trace.set_state.attach(self._state_cb(h))
            h.trace.retransmit.attach(self._rtx_cb(h))

    def _on_packet(self, net, dev, data, direction, now) -> None:
        if direction != "out" or not self.enabled or data[9] != 6:
            return
        self.packet_count += 1
        if len(self.arrows) >= self.max_packets:
            return
        if dev.name == "lo":
            dst, delay = net.name, 0.0
        else:
            dst, delay = self.peer.get((net.name, dev.name), ("?", 0.0))
        off = (data[0] & 15) * 4
        sport, dport, seq, ack, doff, flags, win = _TCP4.unpack_from(data, off)
        plen = len(data) - off - (doff >> 4) * 4
        fl = flags_str(flags)
        label = f"[{fl}] seq {seq % 100000}" + (f" ack {ack % 100000}" if flags & 0x10 else "")
        if plen:
            label += f" len {plen}"
        t = now / 1e6
        from ..tools.tcpdump import format_packet

        line = f"{net.name:>8}  {format_packet(data, now)}"
        self.lines.append(line)
        self.arrows.append({"t0": t, "t1": t + delay, "src": net.name, "dst": dst, "flags": fl,
                            "label": label, "len": plen,
                            "ep": f"{int2ip(struct.unpack_from('!I', data, 12)[0])}:{sport} > "
                                  f"{int2ip(struct.unpack_from('!I', data, 16)[0])}:{dport}"})

    def _state_cb(self, h: Host):
        def cb(sk, old, new, now):
            if not self.enabled:
                return
            label = (f"{h.name} {int2ip(getattr(sk, 'saddr', 0))}:{getattr(sk, 'sport', 0)}"
                     f"-{int2ip(getattr(sk, 'daddr', 0))}:{getattr(sk, 'dport', 0)}")
            self.states.append((now / 1e6, h.name, label, STATE_NAMES.get(old, str(old)),
                                STATE_NAMES.get(new, str(new))))
        return cb

    def _rtx_cb(self, h: Host):
        def cb(sk, skb, now):
            self.retransmits.append((now / 1e6, h.name, getattr(sk, "icsk_rto", 0)))
        return cb

    def state_lines(self, host: str | None = None) -> list[str]:
        return [f"{t:11.6f} {label}  {old} -> {new}" for t, hn, label, old, new in self.states
                if host is None or hn == host]

    def timelines(self, limit: int = 12) -> list[dict[str, Any]]:
        """Per socket: its successive states with times, labelled by its final 4-tuple."""
        by: dict[str, list[tuple[float, str]]] = {}
        for t, _, label, _old, new in self.states:
            # ports are 0 before a SYN_SENT socket is hashed: fold such rows into the next label
            by.setdefault(label, []).append((t, new))
        out = []
        pending: list[tuple[float, str]] = []
        for label, evs in by.items():
            if ":0-" in label:
                pending.extend(evs)
                continue
            evs = sorted(pending + evs) if pending else evs
            pending = []
            out.append({"label": label, "events": evs})
        return out[:limit]

    def ladder(self, title: str = "", hosts: list[str] | None = None, limit: int = 60,
               select=None) -> dict[str, Any]:
        arrows = [a for a in self.arrows if select is None or select(a)][:limit]
        return {"title": title, "hosts": hosts or self.hosts, "arrows": arrows}


def snapshot(res: Result, title: str, host: Host, grep: str | None = None) -> list[str]:
    """A ``netstat -napo | grep`` snapshot in Linux's format, kept as a report section."""
    lines = netstat_napo(host, grep, header=True)
    t = host.clock.now_us() / 1e6
    res.section(f"{host.name}$ netstat -napo" + (f" | grep {grep}" if grep else "")
                + f"   (t = {t:.2f} s)  — {title}", lines)
    return lines


def count_state(host: Host, state: str, grep: str | None = None) -> int:
    return sum(1 for ln in netstat_napo(host, grep, header=False) if f" {state} " in ln)


def plot(res: Result, title: str, xlabel: str, ylabel: str,
         series: list[tuple[str, list[tuple[float, float]]]], kind: str = "line") -> None:
    """Add a plot (drawn as inline SVG by tools/report.py)."""
    res.data.setdefault("plots", []).append(
        {"title": title, "xlabel": xlabel, "ylabel": ylabel, "series": series, "kind": kind})


def add_ladder(res: Result, rec: Recorder, title: str, **kw: Any) -> None:
    res.data.setdefault("ladders", []).append(rec.ladder(title, **kw))


def add_timelines(res: Result, rec: Recorder, limit: int = 12, title: str = "") -> None:
    res.data.setdefault("timelines", []).append({"title": title, "rows": rec.timelines(limit),
                                                 "t_end": rec.world.now()})


def finish(w: World) -> None:
    """Cancel what is still running on the world's loop so nothing leaks past the scenario."""
    pcap = getattr(w, "_tcpdive_pcap", None)
    if pcap is not None:
        pcap.close()
    loop = w.loop
    loop.set_exception_handler(lambda _loop, _ctx: None)
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        try:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        except Exception:                    # pragma: no cover - best effort cleanup
            pass


def sampler(w: World, every: float, fn, out: list[tuple[float, float]]):
    """Sample ``fn()`` every ``every`` virtual seconds into ``out`` (a plot series)."""
    def tick():
        out.append((w.now(), float(fn())))
        w.loop.call_later(every, tick)
    w.loop.call_later(0, tick)
