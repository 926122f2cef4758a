"""The article's experiments as runnable, self-checking scenarios.

Each scenario builds a world, runs it in virtual time, collects evidence (packets, states,
netstat snapshots, counters) and checks its claims. ``REGISTRY`` maps names to scenarios.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Claim:
    """One statement the scenario checks, whether it held, and why we think so."""

    text: str
    ok: bool
    evidence: str = ""


@dataclass
class Result:
    """What a scenario run produced: claims, printable evidence sections, and raw data."""

    name: str
    title: str
    article: str
    claims: list[Claim] = field(default_factory=list)
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.claims) and bool(self.claims)

    def check(self, text: str, ok: bool, evidence: str = "") -> bool:
        self.claims.append(Claim(text, bool(ok), evidence))
        return bool(ok)

    def section(self, title: str, lines: list[str]) -> None:
        self.sections.append((title, list(lines)))


@dataclass
class Options:
    """Command-line knobs every scenario accepts."""

    sysctls: list[tuple[str, str]] = field(default_factory=list)
    pcap: str | None = None
    trace: bool = False
    seed: int = 1


@dataclass
class Scenario:
    name: str
    title: str
    article: str
    run: Callable[[Options], Result]


REGISTRY: dict[str, Scenario] = {}


def scenario(name: str, title: str, article: str) -> Callable[[Callable[[Options], Result]],
                                                                Callable[[Options], Result]]:
    """Register a scenario function under ``name``."""
    def deco(fn: Callable[[Options], Result]) -> Callable[[Options], Result]:
        REGISTRY[name] = Scenario(name, title, article, fn)
        return fn
    return deco


#: the issue's numbering (1-12, then later additions): the tour runs and reports them in this order
ORDER = ["handshake", "receive-path", "client-port-exhaustion", "connection-pool", "server-time-wait",
         "tw-recycle-nat", "tcp-keepalive", "zombie-connection", "http-vs-tcp-keepalive",
         "load-balancer-idle-timeout", "retransmission", "orphan-retries", "pmtu-blackhole",
         "bufferbloat"]


def load_all() -> dict[str, Scenario]:
    """Import every scenario module and return the registry in the article's (issue's) order."""
    import importlib

    for mod in ("handshake", "receive_path", "port_exhaustion", "connection_pool", "server_time_wait",
                "tw_recycle_nat", "keepalive", "zombie", "http_vs_tcp_keepalive", "lb_idle_timeout",
                "retransmission", "orphan_retries", "pmtu_blackhole", "bufferbloat"):
        importlib.import_module(f"{__name__}.{mod}")
    rank = {n: i for i, n in enumerate(ORDER)}
    ordered = sorted(REGISTRY, key=lambda n: rank.get(n, len(ORDER)))
    return {n: REGISTRY[n] for n in ordered}
