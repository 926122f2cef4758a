"""Link model: one-way pipes with a transmit queue, a rate, delay and netem-style impairments.

A :class:`Pipe` carries raw packets (``bytes``) one way. Its stages, in order:

1. ``filter`` (a firewall DROP rule): ``filter(pkt)`` returning False drops the packet;
2. transmit queue: drop-tail when ``queue_limit`` packets or ``queue_limit_bytes`` bytes are
   already waiting or being serialized; the wire serializes at ``rate_bps`` (a packet occupies
   it for ``len * 8 / rate_bps`` seconds; ``rate_bps=None`` means infinitely fast, no queue).
   With ``ecn_mark_threshold`` K, a step marker like ``tc red ... ecn`` with min = max = K
   (DCTCP's K): a packet finding K or more packets queued is CE-marked if it is ECN-capable
   (ECT(0) or ECT(1): the IP TOS byte and header checksum are rewritten, ``IP_ECN_set_ce``)
   and dropped if it is not; below K, or with K unset (None), nothing changes;
3. on the wire: ``loss`` (the packet still used the wire), ``corrupt`` (one bit flipped in a
   copy), ``duplicate`` (delivered twice, same instant);
4. propagation: ``delay`` plus uniform ``jitter`` in ``[-jitter, +jitter]`` (clamped at zero
   extra wait; like netem, jitter may reorder), plus ``reorder_delay`` for a ``reorder``
   fraction of packets so that later packets overtake them.

A GSO packet (:class:`~tcpdive.packet.gso.OffloadPacket`, sent by a TSO device) crosses whole,
as its segments back to back: it uses their serialization time, counts as that many packets in
the queue limit and the counters, and arrives when its last segment would. When the pipe impairs
per packet (filter, loss, corruption, duplication, reordering, jitter) or the queue cannot take
it all, it is cut into its wire segments first (``skb_gso_segment``) so each meets its own fate.

Each delivery is one scheduled loop callback. The pipe uses only ``loop.time()``/``loop.call_at``
so it also runs on a real asyncio loop; on a :class:`~tcpdive.sim.loop.VirtualTimeLoop` it uses the
integer-microsecond fast path (``now_us``/``call_at_us``). All randomness comes from the pipe's
``rng`` and is drawn only for impairments that are switched on, so runs replay exactly per seed.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

from ..packet.gso import OffloadPacket, gso_wire_len, skb_gso_segment
from ..packet.ipv4 import IP_ECN_set_ce

__all__ = ["Link", "Pipe"]

_US = 1_000_000
_BITS_US = 8 * _US  # bits per byte times microseconds per second

Deliver = Callable[[bytes], None]
Filter = Callable[[bytes], bool]

_PARAMS = (
    "delay",
    "rate_bps",
    "queue_limit",
    "queue_limit_bytes",
    "loss",
    "reorder",
    "reorder_delay",
    "duplicate",
    "corrupt",
    "jitter",
    "filter",
    "ecn_mark_threshold",
)
_COUNTERS = (
    "sent",
    "bytes",
    "delivered",
    "bytes_delivered",
    "dropped_filter",
    "dropped_queue",
    "dropped_loss",
    "duplicated",
    "corrupted",
    "reordered",
    "ce_marked",
)


def _prob(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return value


def _seconds_to_us(name: str, value: float) -> int:
    if value < 0:
        raise ValueError(f"{name} must be >= 0 seconds, got {value!r}")
    return round(value * _US)


class Pipe:
    """One direction of a link: filter, drop-tail transmit queue, serialization, impairments, delay.

    ``send(pkt)`` returns False if the packet was dropped locally (filter or full queue), True if
    it went onto the wire (it may still be lost). Counters: ``sent``/``bytes`` (offered),
    ``delivered``/``bytes_delivered`` (handed to ``deliver``, duplicates included),
    ``dropped_filter``, ``dropped_queue`` (drop-tail, and Not-ECT packets the ECN marker
    drops), ``dropped_loss``, ``duplicated``, ``corrupted``, ``reordered``, ``ce_marked``. Parameters are attributes and may be changed at any time.
    """

    __slots__ = (
        "loop",
        "deliver",
        "filter",
        "rng",
        "_qlimit",
        "_qlimit_bytes",
        "_ecn_k",
        "_qcheck",
        "_loss",
        "_reorder",
        "_duplicate",
        "_corrupt",
        "_delay",
        "_delay_us",
        "_jitter",
        "_jitter_us",
        "_reorder_delay",
        "_reorder_delay_us",
        "_rate_bps",
        "_tx_free",
        "_txq",
        "_txq_bytes",
        "_now_us",
        "_call_at_us",
        "_arrive_cb",
        "_arrive_gso_cb",
        *_COUNTERS,
    )

    def __init__(
        self,
        loop: Any,
        deliver: Deliver,
        *,
        delay: float = 0.0,
        rate_bps: float | None = None,
        queue_limit: int = 1000,
        queue_limit_bytes: int | None = None,
        loss: float = 0.0,
        reorder: float = 0.0,
        reorder_delay: float = 0.010,
        duplicate: float = 0.0,
        corrupt: float = 0.0,
        jitter: float = 0.0,
        filter: Filter | None = None,
        ecn_mark_threshold: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.loop = loop
        self.deliver = deliver
        self.rng = rng if rng is not None else random.Random(0)
        if hasattr(loop, "call_at_us") and hasattr(loop, "now_us"):
            self._now_us: Callable[[], int] = loop.now_us
            self._call_at_us: Callable[..., Any] = loop.call_at_us
        else:
            self._now_us = self._real_now_us
            self._call_at_us = self._real_call_at_us
        self._arrive_cb = self._arrive
        self._arrive_gso_cb = self._arrive_gso
        self._tx_free = 0.0  # when the wire finishes its current backlog (us)
        self._txq: deque[tuple[float, int]] = deque()  # (tx_done_us, size) per queued packet
        self._txq_bytes = 0
        for name in _COUNTERS:
            setattr(self, name, 0)
        self.filter = filter
        self._rate_bps: float | None = None
        self._ecn_k: int | None = None
        self.set(
            delay=delay,
            rate_bps=rate_bps,
            queue_limit=queue_limit,
            queue_limit_bytes=queue_limit_bytes,
            loss=loss,
            reorder=reorder,
            reorder_delay=reorder_delay,
            duplicate=duplicate,
            corrupt=corrupt,
            jitter=jitter,
            ecn_mark_threshold=ecn_mark_threshold,
        )

    # ----------------------------------------------------------- parameters

    def set(self, **params: Any) -> None:
        """Change impairment parameters (same names as the constructor), e.g. ``set(loss=0.1)``."""
        for name, value in params.items():
            if name not in _PARAMS:
                raise TypeError(f"unknown Pipe parameter {name!r}")
            setattr(self, name, value)

    @property
    def loss(self) -> float:
        """Probability that a packet is lost on the wire (after using its serialization time)."""
        return self._loss

    @loss.setter
    def loss(self, value: float) -> None:
        self._loss = _prob("loss", value)

    @property
    def reorder(self) -> float:
        """Probability that a packet is held back ``reorder_delay`` so later packets overtake it."""
        return self._reorder

    @reorder.setter
    def reorder(self, value: float) -> None:
        self._reorder = _prob("reorder", value)

    @property
    def duplicate(self) -> float:
        """Probability that a packet is delivered twice."""
        return self._duplicate

    @duplicate.setter
    def duplicate(self, value: float) -> None:
        self._duplicate = _prob("duplicate", value)

    @property
    def corrupt(self) -> float:
        """Probability that one random bit of a (copied) packet is flipped."""
        return self._corrupt

    @corrupt.setter
    def corrupt(self, value: float) -> None:
        self._corrupt = _prob("corrupt", value)

    @property
    def queue_limit(self) -> int:
        """Transmit queue limit in packets (waiting or being serialized); drop-tail beyond it."""
        return self._qlimit

    @queue_limit.setter
    def queue_limit(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"queue_limit must be >= 0, got {value!r}")
        self._qlimit = int(value)
        k = self._ecn_k
        self._qcheck = self._qlimit if k is None or k > self._qlimit else k

    @property
    def ecn_mark_threshold(self) -> int | None:
        """Queue length in packets from which ECT packets are CE-marked and Not-ECT packets
        dropped (a step AQM, DCTCP's K); None (the default) turns the marker off. Needs a
        ``rate_bps``: without one there is no queue."""
        return self._ecn_k

    @ecn_mark_threshold.setter
    def ecn_mark_threshold(self, value: int | None) -> None:
        if value is not None:
            if value < 1:
                raise ValueError(f"ecn_mark_threshold must be >= 1 or None, got {value!r}")
            value = int(value)
        self._ecn_k = value
        self.queue_limit = self._qlimit      # recompute the first queue test

    @property
    def queue_limit_bytes(self) -> int | None:
        """Optional transmit queue limit in bytes; None for no byte limit."""
        return self._qlimit_bytes

    @queue_limit_bytes.setter
    def queue_limit_bytes(self, value: int | None) -> None:
        if value is not None:
            if value < 0:
                raise ValueError(f"queue_limit_bytes must be >= 0, got {value!r}")
            value = int(value)
        self._qlimit_bytes = value

    @property
    def delay(self) -> float:
        """One-way propagation delay in seconds (applied after serialization)."""
        return self._delay

    @delay.setter
    def delay(self, value: float) -> None:
        self._delay_us = _seconds_to_us("delay", value)
        self._delay = value

    @property
    def jitter(self) -> float:
        """Delay variation in seconds: each packet gets uniform(-jitter, +jitter) extra delay."""
        return self._jitter

    @jitter.setter
    def jitter(self, value: float) -> None:
        self._jitter_us = _seconds_to_us("jitter", value)
        self._jitter = value

    @property
    def reorder_delay(self) -> float:
        """Extra hold-back in seconds for packets picked by ``reorder``."""
        return self._reorder_delay

    @reorder_delay.setter
    def reorder_delay(self, value: float) -> None:
        self._reorder_delay_us = _seconds_to_us("reorder_delay", value)
        self._reorder_delay = value

    @property
    def rate_bps(self) -> float | None:
        """Serialization rate in bits per second; None for an infinitely fast wire."""
        return self._rate_bps

    @rate_bps.setter
    def rate_bps(self, value: float | None) -> None:
        if value is not None:
            if not value > 0:
                raise ValueError(f"rate_bps must be > 0 or None, got {value!r}")
            value = float(value)
        self._rate_bps = value

    # -------------------------------------------------------------- sending

    def send(self, pkt: bytes) -> bool:
        """Offer one packet; False if dropped by the filter or a full queue, else True."""
        if type(pkt) is not bytes:
            if isinstance(pkt, OffloadPacket):
                if pkt.gso_size:
                    return self._send_gso(pkt)
                if self._corrupt:
                    pkt = skb_gso_segment(pkt)[0]  # checksum filled: corruption must show
            else:
                pkt = bytes(pkt)  # snapshot: the caller may reuse its buffer
        size = len(pkt)
        self.sent += 1
        self.bytes += size
        flt = self.filter
        if flt is not None and not flt(pkt):
            self.dropped_filter += 1
            return False
        now = self._now_us()
        rate = self._rate_bps
        if rate is None:
            t: float = now
        else:
            txq = self._txq
            self._txq_expire(now)
            limit_bytes = self._qlimit_bytes
            # _qcheck: queue_limit, or a lower ECN marking threshold (one test either way)
            if len(txq) >= self._qcheck or (
                limit_bytes is not None and self._txq_bytes + size > limit_bytes
            ):
                if len(txq) >= self._qlimit or (
                    limit_bytes is not None and self._txq_bytes + size > limit_bytes
                ):
                    self.dropped_queue += 1
                    return False
                marked = IP_ECN_set_ce(pkt)
                if marked is None:               # Not-ECT: dropped where ECT is marked
                    self.dropped_queue += 1
                    return False
                if marked is not pkt and type(pkt) is not bytes:
                    marked = type(pkt)(marked)   # a checksum-offload packet stays one
                pkt = marked
                self.ce_marked += 1
            start = self._tx_free
            if start < now:
                start = now
            t = start + size * _BITS_US / rate
            self._tx_free = t
            txq.append((t, size))
            self._txq_bytes += size

        rng = self.rng
        loss = self._loss
        if loss and rng.random() < loss:
            self.dropped_loss += 1
            return True
        p = self._corrupt
        if p and size and rng.random() < p:
            buf = bytearray(pkt)
            buf[rng.randrange(size)] ^= 1 << rng.randrange(8)
            pkt = bytes(buf)
            self.corrupted += 1
        when = t + self._delay_us
        j = self._jitter_us
        if j:
            when += rng.uniform(-j, j)
            if when < t:
                when = t
        p = self._reorder
        if p and rng.random() < p:
            when += self._reorder_delay_us
            self.reordered += 1
        when_us = when if type(when) is int else round(when)
        self._call_at_us(when_us, self._arrive_cb, pkt)
        p = self._duplicate
        if p and rng.random() < p:
            self.duplicated += 1
            self._call_at_us(when_us, self._arrive_cb, pkt)
        return True

    __call__ = send

    def _send_gso(self, pkt: OffloadPacket) -> bool:
        """A GSO packet: whole when nothing acts per packet, else as its segments."""
        n = pkt.gso_segs
        if (self.filter is not None or self._loss or self._corrupt or self._duplicate
                or self._reorder or self._jitter_us):
            ok = False
            for seg in skb_gso_segment(pkt):
                ok = self.send(seg) or ok
            return ok
        now = self._now_us()
        rate = self._rate_bps
        wire = gso_wire_len(pkt)
        if rate is None:
            t: float = now
        else:
            txq = self._txq
            self._txq_expire(now)
            limit_bytes = self._qlimit_bytes
            if len(txq) + n > self._qcheck or (
                limit_bytes is not None and self._txq_bytes + wire > limit_bytes
            ):
                ok = False
                for seg in skb_gso_segment(pkt):           # drop-tail or mark per segment
                    ok = self.send(seg) or ok
                return ok
            t = self._tx_free
            if t < now:
                t = now
            # the segments back to back, each its own queue entry
            full = (wire - len(pkt)) // (n - 1) + pkt.gso_size if n > 1 else wire
            for i in range(n):
                size = full if i < n - 1 else wire - full * (n - 1)
                t = t + size * _BITS_US / rate
                txq.append((t, size))
            self._txq_bytes += wire
            self._tx_free = t
        self.sent += n
        self.bytes += wire
        self._call_at_us(round(t + self._delay_us), self._arrive_gso_cb, pkt)
        return True

    def _arrive(self, pkt: bytes) -> None:
        self.delivered += 1
        self.bytes_delivered += len(pkt)
        self.deliver(pkt)

    def _arrive_gso(self, pkt: OffloadPacket) -> None:
        self.delivered += pkt.gso_segs if pkt.gso_size else 1
        self.bytes_delivered += gso_wire_len(pkt)
        self.deliver(pkt)

    # -------------------------------------------------------------- helpers

    def _real_now_us(self) -> int:
        return round(self.loop.time() * _US)

    def _real_call_at_us(self, when_us: int, callback: Callable[..., Any], *args: Any) -> None:
        self.loop.call_at(when_us / _US, callback, *args)

    def backlog(self) -> tuple[int, int]:
        """Packets and bytes in the transmit queue now (waiting or being serialized)."""
        self._txq_expire(self._now_us())
        return len(self._txq), self._txq_bytes

    def _txq_expire(self, now: int) -> None:
        """Forget what has finished serializing by ``now``."""
        txq = self._txq
        while txq and txq[0][0] <= now:
            self._txq_bytes -= txq.popleft()[1]

    def counters(self) -> dict[str, int]:
        """A snapshot of the counters."""
        return {name: getattr(self, name) for name in _COUNTERS}

    def reset_counters(self) -> None:
        """Zero the counters (the queue and packets in flight are unaffected)."""
        for name in _COUNTERS:
            setattr(self, name, 0)

    def __repr__(self) -> str:
        return (
            f"<Pipe delay={self._delay}s rate={self._rate_bps}bps loss={self._loss} "
            f"sent={self.sent} delivered={self.delivered}>"
        )


class Link:
    """A bidirectional link: ``ab`` carries A's packets to ``b_deliver``, ``ba`` B's to ``a_deliver``.

    ``params`` apply to both directions; ``ab_params``/``ba_params`` override per direction. With
    no ``rng`` each direction gets its own fixed-seed generator, so traffic one way does not shift
    the random draws of the other; an explicit ``rng`` is shared by both.
    """

    __slots__ = ("ab", "ba")

    def __init__(
        self,
        loop: Any,
        a_deliver: Deliver,
        b_deliver: Deliver,
        *,
        ab_params: dict[str, Any] | None = None,
        ba_params: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        pa = {**params, **(ab_params or {})}
        pb = {**params, **(ba_params or {})}
        pa.setdefault("rng", random.Random(0))
        pb.setdefault("rng", random.Random(1))
        self.ab = Pipe(loop, b_deliver, **pa)
        self.ba = Pipe(loop, a_deliver, **pb)

    def set(self, **params: Any) -> None:
        """Change parameters in both directions, e.g. ``link.set(loss=0.05)`` mid-run."""
        self.ab.set(**params)
        self.ba.set(**params)

    def send_from_a(self, pkt: bytes) -> bool:
        """A transmits ``pkt`` towards B."""
        return self.ab.send(pkt)

    def send_from_b(self, pkt: bytes) -> bool:
        """B transmits ``pkt`` towards A."""
        return self.ba.send(pkt)

    def __repr__(self) -> str:
        return f"<Link ab={self.ab!r} ba={self.ba!r}>"
