"""Tracepoints: every packet, state change, timer and drop is an event subscribers may watch.

Shaped like Linux's tracepoints (``sock:inet_sock_set_state``, ``tcp:tcp_probe``,
``tcp:tcp_retransmit_skb``, ``skb:kfree_skb``...). The core only emits; pcap, tcpdump lines,
ladders and plots are subscribers. An unwatched tracepoint costs one list truth-test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Tracepoint:
    """One event kind; ``subs`` is falsy while nobody listens, so emitters test it first."""

    __slots__ = ("name", "subs", "doc")

    def __init__(self, name: str, doc: str = "") -> None:
        self.name = name
        self.subs: list[Callable[..., Any]] = []
        self.doc = doc

    def attach(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Subscribe ``fn``; returns it so it can be used as a decorator and detached later."""
        self.subs.append(fn)
        return fn

    def detach(self, fn: Callable[..., Any]) -> None:
        if fn in self.subs:
            self.subs.remove(fn)

    def emit(self, *args: Any) -> None:
        for fn in self.subs:
            fn(*args)


class Tracepoints:
    """The tracepoints of one network namespace (host). Arguments of each are in its doc."""

    __slots__ = ("packet", "set_state", "tcp_probe", "retransmit", "send_reset", "receive_reset",
                 "timer", "drop", "path", "syscall", "__dict__")

    def __init__(self) -> None:
        self.packet = Tracepoint("net:packet", "(net, dev, data: bytes, dir: 'in'|'out', now_us)")
        self.set_state = Tracepoint("sock:inet_sock_set_state", "(sk, oldstate, newstate, now_us)")
        self.tcp_probe = Tracepoint("tcp:tcp_probe", "(sk, now_us) after each ACK processed")
        self.retransmit = Tracepoint("tcp:tcp_retransmit_skb", "(sk, skb, now_us)")
        self.send_reset = Tracepoint("tcp:tcp_send_reset", "(net, saddr, sport, daddr, dport, reason)")
        self.receive_reset = Tracepoint("tcp:tcp_receive_reset", "(sk, now_us)")
        self.timer = Tracepoint("timer:tcp", "(sk, what: str, event: 'start'|'expire'|'stop', when_us)")
        self.drop = Tracepoint("skb:kfree_skb", "(net, data_or_skb, reason: str, now_us)")
        self.path = Tracepoint("ftrace:path", "(net, path: list[str], skb) kernel functions a packet took")
        self.syscall = Tracepoint("syscalls:sys_enter", "(net, name, args, result)")

    def all(self) -> list[Tracepoint]:
        return [getattr(self, n) for n in Tracepoints.__slots__ if n != "__dict__"]
