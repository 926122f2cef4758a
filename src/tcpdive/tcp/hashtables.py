"""inet_hashtables.c: established (ehash), bind (bhash) and listening tables; port selection.

``inet_hash_connect`` picks an ephemeral port the way ``__inet_hash_connect`` does: a
per-destination offset into ip_local_port_range, even ports first (bind() prefers odd), skipping
ports that bind() owns, reusing a port only where the 4-tuple is free or a TIME_WAIT socket
``tcp_twsk_unique`` allows.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import TYPE_CHECKING

from ..errors import EADDRINUSE, EADDRNOTAVAIL, oserror
from ..packet.ipv4 import int2ip, ipv4_is_loopback
from .sock import TCP_LISTEN, TCP_TIME_WAIT

if TYPE_CHECKING:
    from ..net.netns import Netns

INET_TABLE_PERTURB_SIZE = 1 << 16


class BindBucket:
    """Owners of one local port (``inet_bind_bucket``). fastreuse < 0 marks connect()-made buckets.

    ``owners`` is a list while small (most ports have one or two owners, and a list is compact)
    and becomes an insertion-ordered dict when a listener's accepted children pile up, so that
    removing one stays O(1).
    """

    __slots__ = ("port", "owners", "fastreuse")
    _DICT_AT = 16

    def __init__(self, port: int, fastreuse: int) -> None:
        self.port = port
        self.owners: list | dict = []
        self.fastreuse = fastreuse

    def add(self, sk) -> None:
        owners = self.owners
        if type(owners) is list:
            owners.append(sk)
            if len(owners) >= self._DICT_AT:
                self.owners = dict.fromkeys(owners)
        else:
            owners[sk] = None

    def remove(self, sk) -> None:
        owners = self.owners
        if type(owners) is list:
            if sk in owners:
                owners.remove(sk)
        else:
            owners.pop(sk, None)

    def sole_owner(self, sk) -> bool:
        owners = self.owners
        return len(owners) == 1 and next(iter(owners)) is sk


class InetHashinfo:
    """The TCP tables of one namespace (``struct inet_hashinfo``)."""

    def __init__(self, net: Netns) -> None:
        self.net = net
        self.ehash: dict[tuple[int, int, int, int], object] = {}
        self.bhash: dict[int, BindBucket] = {}
        self.lhash: dict[int, list] = {}
        self.table_perturb = [net.rng.getrandbits(32) for _ in range(256)]
        self.secret = net.secret
        # bumped whenever an ehash entry or a bind bucket goes away (see inet_hash_connect)
        self.free_gen = 0
        self._full_passes: dict[tuple, int] = {}

    # ---- ehash -------------------------------------------------------------------------------

    def lookup_established(self, laddr: int, lport: int, raddr: int, rport: int):
        """Full, request or TIME_WAIT socket for a 4-tuple (``__inet_lookup_established``)."""
        return self.ehash.get((laddr, lport, raddr, rport))

    def ehash_insert(self, sk, key: tuple[int, int, int, int]) -> None:
        self.ehash[key] = sk
        sk.hash_key = key

    def ehash_remove(self, sk) -> None:
        key = sk.hash_key
        if key is not None and self.ehash.get(key) is sk:
            del self.ehash[key]
            self.free_gen += 1
        sk.hash_key = None

    # ---- listening ---------------------------------------------------------------------------

    def listen_hash(self, sk) -> None:
        self.lhash.setdefault(sk.sport, []).append(sk)
        sk.listen_hashed = True

    def listen_unhash(self, sk) -> None:
        lst = self.lhash.get(sk.sport)
        if lst and sk in lst:
            lst.remove(sk)
            if not lst:
                del self.lhash[sk.sport]
        sk.listen_hashed = False

    def lookup_listener(self, daddr: int, dport: int, saddr: int = 0, sport: int = 0):
        """Best listener for a destination (``__inet_lookup_listener``): exact address over wildcard;
        SO_REUSEPORT groups spread by a hash of the 4-tuple."""
        lst = self.lhash.get(dport)
        if not lst:
            return None
        if len(lst) == 1:                      # one listener on the port: no choice to make
            sk = lst[0]
            return sk if sk.rcv_saddr == daddr or not sk.rcv_saddr else None
        exact = [s for s in lst if s.rcv_saddr == daddr]
        cands = exact or [s for s in lst if s.rcv_saddr == 0]
        if not cands:
            return None
        if len(cands) > 1:
            h = hashlib.blake2b(f"{saddr}:{sport}:{daddr}:{dport}".encode(), key=self.secret,
                                digest_size=4).digest()
            return cands[int.from_bytes(h, "big") % len(cands)]
        return cands[0]

    # ---- bind --------------------------------------------------------------------------------

    def bind_conflict(self, sk, tb: BindBucket, relax: bool, reuseport_ok: bool) -> bool:
        """Would ``sk`` clash with the port's owners (``inet_csk_bind_conflict``)?"""
        for sk2 in tb.owners:
            if sk2 is sk:
                continue
            a1, a2 = sk.rcv_saddr, sk2.rcv_saddr
            if a1 and a2 and a1 != a2:
                continue
            st2 = sk2.state
            if sk.reuse and sk2.reuse and st2 != TCP_LISTEN:
                if not relax or (not reuseport_ok and sk.reuseport and sk2.reuseport):
                    return True
            elif (not reuseport_ok or not sk.reuseport or not sk2.reuseport):
                return True
            elif st2 != TCP_TIME_WAIT and getattr(sk2, "uid", 0) != getattr(sk, "uid", 0):
                return True
        return False

    def bind_add(self, sk, port: int, fastreuse: int = 0) -> BindBucket:
        tb = self.bhash.get(port)
        if tb is None:
            tb = self.bhash[port] = BindBucket(port, fastreuse)
        tb.add(sk)
        sk.sport = port
        sk.bind_bucket = tb
        return tb

    def bind_remove(self, sk) -> None:
        """Release the socket's hold on its port (``__inet_put_port``)."""
        tb = sk.bind_bucket
        if tb is None:
            return
        tb.remove(sk)
        sk.bind_bucket = None
        if not tb.owners and self.bhash.get(tb.port) is tb:
            del self.bhash[tb.port]
            self.free_gen += 1

    def get_port(self, sk, snum: int) -> None:
        """bind(): take ``snum`` or, for 0, an ephemeral port (``inet_csk_get_port``)."""
        if snum:
            tb = self.bhash.get(snum)
            if tb is not None and self.bind_conflict(sk, tb, True, True):
                raise oserror(EADDRINUSE, f"bind to {int2ip(sk.rcv_saddr)}:{snum}")
            self.bind_add(sk, snum, 0)
            if tb is not None and tb.fastreuse < 0:
                tb.fastreuse = 0
            return
        low, high = self.net.sysctl.ip_local_port_range
        remaining = high - low + 1
        rng = self.net.rng
        offset = rng.randrange(remaining) if remaining > 1 else 0
        # inet_csk_find_open_port prefers odd ports (connect() prefers even ones)
        for parity_pass in (0, 1):
            start = offset | 1 if parity_pass == 0 and remaining > 1 else offset & ~1
            for i in range(0, remaining, 2 if remaining > 1 else 1):
                port = low + (start + i) % remaining
                if parity_pass == 0 and port % 2 == 0 and remaining > 1:
                    continue
                if parity_pass == 1 and port % 2 == 1 and remaining > 1:
                    continue
                if port in self.net.sysctl_reserved_ports():
                    continue
                tb = self.bhash.get(port)
                if tb is None or not self.bind_conflict(sk, tb, False, False):
                    self.bind_add(sk, port, 0)
                    return
            if remaining <= 1:
                break
        raise oserror(EADDRINUSE, "no free local port for bind()")

    # ---- connect -----------------------------------------------------------------------------

    def port_offset(self, saddr: int, daddr: int, dport: int) -> int:
        """``secure_ipv4_port_ephemeral``: a keyed hash of the destination."""
        return _port_offset_hash(self.secret, saddr, daddr, dport)

    def check_established(self, sk, port: int, twp: bool = True) -> bool:
        """Is the 4-tuple free, or held by a TIME_WAIT socket we may reuse (``__inet_check_established``)?

        ``twp`` False is Linux's ``twp == NULL`` call from ``__inet_hash_connect`` for a socket that
        bind() gave its port: then ``tcp_twsk_unique`` takes over any TIME_WAIT that saw timestamps,
        whatever tcp_tw_reuse says (checked on Linux 6.18). A takeover counts TcpExtTWRecycled.
        """
        key = (sk.saddr, port, sk.daddr, sk.dport)
        other = self.ehash.get(key)
        if other is None:
            return True
        if getattr(other, "state", None) == TCP_TIME_WAIT and tcp_twsk_unique(sk, other, twp):
            self.net.mib["TcpExtTWRecycled"] += 1
            from .minisocks import inet_twsk_deschedule_put

            inet_twsk_deschedule_put(other)
            return True
        return False

    def inet_hash_connect(self, sk) -> None:
        """Pick the local port for connect() and hash the socket (``__inet_hash_connect``)."""
        net = self.net
        if sk.sport:
            # bound already: sole owner of the port -> hash at once; otherwise the 4-tuple must
            # be unique or held by a TIME_WAIT that tcp_twsk_unique(twp=NULL) lets us take
            tb = sk.bind_bucket
            if tb is not None and tb.sole_owner(sk):
                self.ehash_insert(sk, (sk.saddr, sk.sport, sk.daddr, sk.dport))
                return
            if not self.check_established(sk, sk.sport, False):
                raise oserror(EADDRNOTAVAIL, "4-tuple in use")
            self.ehash_insert(sk, (sk.saddr, sk.sport, sk.daddr, sk.dport))
            return
        low, high = net.sysctl.ip_local_port_range
        high += 1
        step = 2
        remaining = high - low
        if remaining > 1:
            remaining &= ~1
        port_offset = self.port_offset(sk.saddr, sk.daddr, sk.dport)
        index = port_offset & (len(self.table_perturb) - 1)
        offset = (self.table_perturb[index] + (port_offset >> 32)) % remaining
        offset &= ~1
        reserved = net.sysctl_reserved_ports()
        saddr, daddr, dport = sk.saddr, sk.daddr, sk.dport
        # Python speed-up, same choice as Linux: a parity pass that found every port blocked for
        # this destination is remembered until something is freed (a bucket or an ehash entry
        # goes away). Only without TIME_WAIT reuse, where a blocked port cannot become usable
        # by time alone.
        reuse = net.sysctl.tcp_tw_reuse
        if reuse == 2 and not (ipv4_is_loopback(daddr) or ipv4_is_loopback(saddr)):
            reuse = 0
        full = self._full_passes if not reuse else None
        bhash_get = self.bhash.get
        ehash = self.ehash
        for _parity in (0, 1):
            fkey = (saddr, daddr, dport, offset & 1, low, high, reserved)
            if full is not None and full.get(fkey) == self.free_gen:
                offset += 1
                if not (offset & 1) or remaining <= 1:
                    break
                continue
            port = low + offset
            i = 0
            while i < remaining:
                if port >= high:
                    port -= remaining
                if port not in reserved:
                    tb = bhash_get(port)
                    if tb is None:
                        self.bind_add(sk, port, -1)
                        self._hashed_ok(sk, index, i, step)
                        return
                    if tb.fastreuse < 0 and ((saddr, port, daddr, dport) not in ehash
                                             or self.check_established(sk, port)):
                        self.bind_add(sk, port, -1)
                        self._hashed_ok(sk, index, i, step)
                        return
                i += step
                port += step
            if full is not None:
                full[fkey] = self.free_gen
            offset += 1
            if not (offset & 1) or remaining <= 1:
                break
        raise oserror(EADDRNOTAVAIL, f"no free local port to {int2ip(sk.daddr)}:{sk.dport}")

    def _hashed_ok(self, sk, index: int, i: int, step: int) -> None:
        i = max(i, self.net.rng.randrange(8) * step)
        self.table_perturb[index] = (self.table_perturb[index] + i + step) & 0xFFFFFFFF
        self.ehash_insert(sk, (sk.saddr, sk.sport, sk.daddr, sk.dport))


@lru_cache(maxsize=1024)
def _port_offset_hash(secret: bytes, saddr: int, daddr: int, dport: int) -> int:
    """The keyed hash behind port_offset; a pure function, so kept for repeated destinations."""
    h = hashlib.blake2b(f"{saddr}:{daddr}:{dport}".encode(), key=secret, digest_size=8)
    return int.from_bytes(h.digest(), "big")


def tcp_twsk_unique(sk, tw, may_reuse: bool) -> bool:
    """May a new connection take over this TIME_WAIT 4-tuple (``tcp_twsk_unique``)?

    tcp_tw_reuse 1 allows it, 2 only for loopback, when the old connection had timestamps and
    tcp_tw_reuse_delay ms have passed since it entered TIME_WAIT. The new write_seq starts past
    the old one so old duplicates cannot land in the new sequence space.
    """
    net = sk.net
    reuse = net.sysctl.tcp_tw_reuse
    if reuse == 2:
        if not (ipv4_is_loopback(tw.daddr) or ipv4_is_loopback(tw.rcv_saddr)):
            reuse = 0
    # Linux tests tw_ts_recent_stamp != 0 ("the old connection saw timestamps"). The virtual
    # clock starts at 0, so a stamp taken in the first second is 0: use tstamp_ok, which implies
    # a stamp on any connection that got as far as TIME_WAIT.
    if not (tw.ts_recent_stamp or tw.tstamp_ok):
        return False
    if not may_reuse:
        # twp == NULL: a bind()-owned port; no tcp_tw_reuse / delay condition
        _twsk_take_seq(sk, tw)
        return True
    delay_ms = net.sysctl.tcp_tw_reuse_delay
    now_ms = net.clock.now_us() // 1000
    if reuse and now_ms > tw.entry_stamp_ms + delay_ms:
        sk.write_seq = (tw.snd_nxt + 65535 + 2) & 0xFFFFFFFF or 1
        sk.ts_recent = tw.ts_recent
        sk.ts_recent_stamp = tw.ts_recent_stamp
        return True
    return False


def _twsk_take_seq(sk, tw) -> None:
    """The new incarnation starts past the old one's sequence space (``tcp_twsk_unique``)."""
    sk.write_seq = (tw.snd_nxt + 65535 + 2) & 0xFFFFFFFF or 1
    sk.ts_recent = tw.ts_recent
    sk.ts_recent_stamp = tw.ts_recent_stamp
