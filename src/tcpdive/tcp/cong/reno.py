"""TCP Reno / NewReno congestion avoidance (``tcp_reno_*`` in tcp_cong.c)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import (
    TcpCongestionOps,
    tcp_cong_avoid_ai,
    tcp_is_cwnd_limited,
    tcp_register_congestion_control,
    tcp_slow_start,
)

if TYPE_CHECKING:
    from ..sock import TcpSock


@tcp_register_congestion_control
class Reno(TcpCongestionOps):
    """Slow start, then one packet per RTT; halve on loss."""

    name = "reno"

    def ssthresh(self, sk: TcpSock) -> int:
        """``tcp_reno_ssthresh``: half of cwnd, at least 2."""
        return max(sk.snd_cwnd >> 1, 2)

    def cong_avoid(self, sk: TcpSock, ack: int, acked: int) -> None:
        """``tcp_reno_cong_avoid``."""
        if not tcp_is_cwnd_limited(sk):
            return
        if sk.snd_cwnd < sk.snd_ssthresh:
            acked = tcp_slow_start(sk, acked)
            if not acked:
                return
        tcp_cong_avoid_ai(sk, sk.snd_cwnd, acked)
