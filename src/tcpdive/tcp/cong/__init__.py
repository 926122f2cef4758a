"""Pluggable congestion control shaped like Linux's ``struct tcp_congestion_ops``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..sock import TcpSock

# cwnd events (enum tcp_ca_event)
CA_EVENT_TX_START = 0
CA_EVENT_CWND_RESTART = 1
CA_EVENT_COMPLETE_CWR = 2
CA_EVENT_LOSS = 3
CA_EVENT_ECN_NO_CE = 4
CA_EVENT_ECN_IS_CE = 5


class TcpCongestionOps:
    """Base algorithm: subclasses override what Linux's ops table would fill in."""

    name = "base"
    #: ``.cong_control(sk, ack, flag, rs)``: when set, tcp_cong_control hands cwnd and pacing
    #: to it with the ACK's rate sample instead of PRR / cong_avoid (BBR)
    cong_control = None

    def init(self, sk: TcpSock) -> None:
        """Per-socket setup (``.init``)."""

    def release(self, sk: TcpSock) -> None:
        """Per-socket teardown (``.release``)."""

    def ssthresh(self, sk: TcpSock) -> int:
        """New slow-start threshold on loss (``.ssthresh``)."""
        raise NotImplementedError

    def cong_avoid(self, sk: TcpSock, ack: int, acked: int) -> None:
        """Grow cwnd for ``acked`` newly acknowledged packets (``.cong_avoid``)."""
        raise NotImplementedError

    def set_state(self, sk: TcpSock, new_state: int) -> None:
        """Told when icsk_ca_state changes (``.set_state``)."""

    def cwnd_event(self, sk: TcpSock, event: int) -> None:
        """Told of events such as TX start after idle or loss (``.cwnd_event``)."""

    def pkts_acked(self, sk: TcpSock, acked: int, rtt_us: int) -> None:
        """Told of each ACK's packets and RTT sample (``.pkts_acked``)."""

    def undo_cwnd(self, sk: TcpSock) -> int:
        """cwnd to return to after a spurious loss (``.undo_cwnd``; Reno's: max(cwnd, prior))."""
        return max(sk.snd_cwnd, sk.prior_cwnd)


_REGISTRY: dict[str, type[TcpCongestionOps]] = {}


def tcp_register_congestion_control(ops: type[TcpCongestionOps]) -> type[TcpCongestionOps]:
    """Make an algorithm selectable by name (``tcp_register_congestion_control``)."""
    _REGISTRY[ops.name] = ops
    return ops


def tcp_ca_find(name: str) -> type[TcpCongestionOps] | None:
    _load_builtin()
    return _REGISTRY.get(name)


def available() -> list[str]:
    _load_builtin()
    return list(_REGISTRY)


def _load_builtin() -> None:
    if "reno" not in _REGISTRY:
        from . import bbr, cubic, reno  # noqa: F401


def tcp_init_congestion_control(sk: TcpSock) -> None:
    """Attach the socket's algorithm (``tcp_init_congestion_control``)."""
    cls = tcp_ca_find(sk.congestion_name) or tcp_ca_find("reno")
    assert cls is not None
    sk.ca = cls()
    sk.ca.init(sk)


def tcp_is_cwnd_limited(sk: TcpSock) -> bool:
    """Was the sender limited by cwnd rather than by the application (``tcp_is_cwnd_limited``)?"""
    if sk.is_cwnd_limited:
        return True
    if sk.snd_cwnd < sk.snd_ssthresh:
        return sk.snd_cwnd < 2 * sk.max_packets_out
    return False


def tcp_slow_start(sk: TcpSock, acked: int) -> int:
    """Exponential growth up to ssthresh; returns the acked count left over (``tcp_slow_start``)."""
    cwnd = min(sk.snd_cwnd + acked, sk.snd_ssthresh)
    acked -= cwnd - sk.snd_cwnd
    sk.snd_cwnd = cwnd
    return acked


def tcp_cong_avoid_ai(sk: TcpSock, w: int, acked: int) -> None:
    """Additive increase: one packet per ``w`` acked (``tcp_cong_avoid_ai``)."""
    if sk.snd_cwnd_cnt >= w:
        sk.snd_cwnd_cnt = 0
        sk.snd_cwnd += 1
    sk.snd_cwnd_cnt += acked
    if sk.snd_cwnd_cnt >= w:
        delta = sk.snd_cwnd_cnt // w
        sk.snd_cwnd_cnt -= delta * w
        sk.snd_cwnd += delta
