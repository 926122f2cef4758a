"""The socket buffer: one TCP segment and its control block (``struct sk_buff`` + ``tcp_skb_cb``)."""

from __future__ import annotations

# tcp_skb_cb.sacked bits (include/net/tcp.h)
TCPCB_SACKED_ACKED = 0x01
TCPCB_SACKED_RETRANS = 0x02
TCPCB_LOST = 0x04
TCPCB_TAGBITS = 0x07
TCPCB_REPAIRED = 0x10
TCPCB_EVER_RETRANS = 0x80
TCPCB_RETRANS = TCPCB_SACKED_RETRANS | TCPCB_EVER_RETRANS


def byte_view(data) -> memoryview:
    """A flat view of unsigned bytes on a user buffer (what copy_from_iter walks).

    Casts only when needed: slicing a cast view copies byte by byte on PyPy.
    """
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


class SKB:
    """A segment in a queue. ``seq``/``end_seq`` count SYN and FIN like ``TCP_SKB_CB``.

    Send side: ``data`` is the payload, ``tstamp`` the last transmit time (``skb_mstamp_ns``, here
    in microseconds), ``first_tx`` the first. Receive side: header fields and parsed options.
    Unused slots cost nothing. A received GSO/GRO skb carries ``gso_size`` (payload per wire
    segment; 0: a plain segment) and ``gso_segs`` (``skb_shinfo``).
    """

    __slots__ = ("seq", "end_seq", "ack_seq", "flags", "data", "window", "tstamp", "first_tx",
                 "sacked", "retrans", "opts", "saddr", "daddr", "sport", "dport", "path",
                 "tos", "ttl", "doff", "raw", "urg_ptr", "eor", "delivered", "tx_app_limited",
                 "tx_seq", "gso_size", "gso_segs",
                 # tcp_skb_cb.tx (tcp_rate_skb_sent): delivery state when last sent
                 "tx_first_tx_mstamp", "tx_delivered_mstamp")

    def __init__(self, seq: int, end_seq: int, flags: int, data: bytes = b"") -> None:
        self.seq = seq
        self.end_seq = end_seq
        self.flags = flags
        self.data = data
        self.sacked = 0
        self.retrans = 0
        self.tstamp = 0
        self.path = None
        self.gso_size = 0
        self.tx_delivered_mstamp = 0

    @property
    def len(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        from .packet.tcp import flags_str

        return f"<SKB {flags_str(self.flags)} {self.seq}:{self.end_seq}({len(self.data)})>"
