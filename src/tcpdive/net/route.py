"""Route metrics (``RTAX_*``) and the ``ip route add|change|replace|del`` command.

Linux keeps per-route metrics in the FIB entry (``fib_info->fib_metrics``, filled by
``ip_metrics_convert`` from the RTA_METRICS netlink attribute iproute2 builds). A socket reads
them through its cached dst (``__sk_dst_get``): ``dst_mtu`` / ``dst_metric_advmss`` at connect
and SYN time, ``RTAX_INITCWND`` / ``RTAX_INITRWND`` when the window is chosen, ``RTAX_RTO_MIN``
and ``RTAX_QUICKACK`` per packet (``tcp_rto_min``, ``tcp_in_quickack_mode``). A route change
bumps the namespace's ``rt_genid`` (``rt_cache_flush``): cached dsts become stale and a socket
takes the new route at its next transmission (``__sk_dst_check`` in ``ip_queue_xmit``).

Units as the kernel stores them: ``mtu``/``advmss`` bytes, ``initcwnd``/``initrwnd`` segments,
``rto_min`` milliseconds (``dst_metric_rtt`` turns it into jiffies; tcpdive's HZ is 1000).
"""

from __future__ import annotations

import math
from errno import EEXIST, EINVAL, ENODEV
from typing import TYPE_CHECKING

from ..errors import oserror
from ..packet.ipv4 import ip2int

if TYPE_CHECKING:
    from .netns import Netns, Route

# include/uapi/linux/rtnetlink.h: RTAX_* (the lock bitmap is 1 << RTAX_x)
RTAX_LOCK = 1
RTAX_MTU = 2
RTAX_ADVMSS = 8
RTAX_INITCWND = 11
RTAX_INITRWND = 14
RTAX_QUICKACK = 15
RTAX_RTO_MIN = 13

IP_MAX_MTU = 0xFFFF            # include/net/ip.h
IPV4_MAX_PMTU = 65535
IP_RT_MIN_ADVMSS = 256         # net.ipv4.route.min_adv_mss default (ip_rt_min_advmss)

METRIC_NAMES = ("mtu", "mtu_lock", "advmss", "initcwnd", "initrwnd", "rto_min", "quickack")


def dst_mtu(route: Route) -> int:
    """Path MTU of a route (``ipv4_mtu``): a learned PMTU (the route is then an
    :class:`RtException`, see below), else its ``mtu`` metric, else the device's, at most
    IP_MAX_MTU."""
    mtu = route.mtu or route.dev.mtu
    return mtu if mtu < IP_MAX_MTU else IP_MAX_MTU


def dst_metric_advmss(route: Route) -> int:
    """MSS to advertise over a route (``dst_metric_advmss``): the ``advmss`` metric, else
    ``ipv4_default_advmss``: dst_mtu - 40, at least ip_rt_min_advmss (256), at most 65495."""
    if route.advmss:
        return route.advmss
    advmss = max(dst_mtu(route) - 40, IP_RT_MIN_ADVMSS)
    return min(advmss, IPV4_MAX_PMTU - 40)


def dst_mtu_locked(route: Route) -> bool:
    """``ip_mtu_locked``: ``mtu lock N`` -- no PMTU discovery over this route (DF off,
    ICMP fragmentation-needed ignored)."""
    return bool(route.locks & (1 << RTAX_MTU))


def metrics_convert(mtu: int = 0, mtu_lock: bool = False, advmss: int = 0, initcwnd: int = 0,
                    initrwnd: int = 0, rto_min: float = 0, quickack: int = 0) -> dict[str, int]:
    """Check and store metrics as ``ip_metrics_convert`` does: advmss at most 65495, mtu at
    most 65520, quickack 0 or 1 (iproute2 refuses other values: EINVAL here), ``rto_min`` in
    seconds rounded up to whole milliseconds (iproute2 ``get_time_rtt``). Returns Route slots."""
    for name, v in (("mtu", mtu), ("advmss", advmss), ("initcwnd", initcwnd),
                    ("initrwnd", initrwnd), ("quickack", quickack)):
        if not isinstance(v, int) or v < 0 or v > 0xFFFFFFFF:
            raise oserror(EINVAL, f"invalid {name} metric {v!r}")
    if quickack not in (0, 1):
        raise oserror(EINVAL, "quickack must be 0 or 1")
    if rto_min < 0:
        raise oserror(EINVAL, "rto_min must be >= 0")
    if mtu_lock and not mtu:
        raise oserror(EINVAL, "mtu lock needs a value")
    rto_ms = math.ceil(rto_min * 1000 - 1e-9) if rto_min else 0
    locks = 0
    if mtu_lock:
        locks |= 1 << RTAX_MTU
    if rto_ms:
        locks |= 1 << RTAX_RTO_MIN          # iproute2 always locks rto_min
    return {"mtu": min(mtu, 65535 - 15), "advmss": min(advmss, 65535 - 40),
            "initcwnd": initcwnd, "initrwnd": initrwnd, "rto_min": rto_ms,
            "quickack": quickack, "locks": locks}


# ---- the PMTU exception cache (fib_nh_exception) ---------------------------------------------
#
# An ICMP fragmentation-needed (or a socket's own EMSGSIZE path) lowers the path MTU toward one
# destination, not for the whole prefix: Linux keeps it as a nexthop exception (``struct
# fib_nh_exception``: fnhe_daddr, fnhe_pmtu, fnhe_mtu_locked, fnhe_expires) on the nexthop of
# the route used, and binds it to the rtable a lookup for that address returns (``rt_pmtu``,
# ``dst.expires``). Every socket toward the destination, and every later connection, sees it;
# after net.ipv4.route.mtu_expires (600 s) it is gone and the route's MTU is back. A value
# below net.ipv4.route.min_pmtu (552) is raised to it and the MTU *locked*: DF is no longer set
# and further ICMPs are ignored until it expires.
#
# Here the exception is an ``RtException``: a copy of the FIB entry with ``mtu`` = the learned
# PMTU (and RTAX_MTU locked if so), returned by ``Netns.fib_lookup`` for that one address, so
# every reader of the route (dst_mtu, dst_metric_advmss, ip_dont_fragment, sk_dst_set) sees it.
# It belongs to its FIB entry (``base``): a route change drops it, as a new fib_info has no
# exceptions. Creating or expiring one bumps rt_genid, which makes sockets re-read their dst
# (Linux marks the nexthop's cached routes DST_OBSOLETE_KILL).


class RtException:
    """Marker base so ``isinstance`` checks read well; the real class is made per Route type
    in :func:`_exception_class` (Route has __slots__)."""


_EXC_CLASS: list = []


def _exception_class():
    if not _EXC_CLASS:
        from .netns import Route

        class _RtException(Route, RtException):
            """An rtable bound to a nexthop exception: ``base`` is the FIB entry, ``mtu`` the
            learned PMTU (``rt_pmtu``), ``expires`` in us (``dst.expires``)."""

            __slots__ = ("base", "expires", "pmtu", "mtu_locked")

        _EXC_CLASS.append(_RtException)
    return _EXC_CLASS[0]


def fnhe_route(base: Route, pmtu: int, locked: bool, expires: int) -> Route:
    """The rtable for one destination with its exception bound (``rt_bind_exception``)."""
    cls = _exception_class()
    r = cls.__new__(cls)
    for k in ("dst", "plen", "mask", "dev", "gw", "src", "advmss", "initcwnd", "initrwnd",
              "rto_min", "quickack"):
        setattr(r, k, getattr(base, k))
    r.base = base
    r.pmtu = pmtu
    r.mtu = pmtu
    r.mtu_locked = locked
    r.locks = base.locks | ((1 << RTAX_MTU) if locked else 0)
    r.expires = expires
    return r


def ip_dst_mtu_maybe_forward(net: Netns, route: Route) -> int:
    """MTU for a forwarded packet (``ip_dst_mtu_maybe_forward(dst, true)``): the route's
    ``mtu`` metric, else the device's -- not a learned PMTU, unless ip_forward_use_pmtu is set
    or the route's MTU is locked."""
    base = route.base if isinstance(route, RtException) else route
    if isinstance(route, RtException) and (net.sysctl.ip_forward_use_pmtu or route.mtu_locked):
        if net.clock.now_us() < route.expires:
            return min(route.pmtu, IP_MAX_MTU)
    mtu = base.mtu or base.dev.mtu
    return mtu if mtu < IP_MAX_MTU else IP_MAX_MTU


def __ip_rt_update_pmtu(net: Netns, daddr: int, mtu: int) -> Route | None:
    """Learn ``mtu`` toward ``daddr`` (``__ip_rt_update_pmtu`` -> ``update_or_create_fnhe``).

    Ignored over an ``mtu lock`` route or when it would raise the MTU. Below
    net.ipv4.route.min_pmtu it becomes min(old, min_pmtu) and locked. An unchanged value is
    only refreshed in the second half of its life. Returns the route now used toward
    ``daddr`` (``inet_csk_update_pmtu``'s dst), or None without one."""
    route = net.fib_lookup(daddr)
    if route is None:
        return None
    if route.locks & (1 << RTAX_MTU):
        return route                               # ip_mtu_locked
    old_mtu = dst_mtu(route)
    if old_mtu < mtu:
        return route
    sc = net.sysctl
    lock = False
    if mtu < sc.min_pmtu:
        lock = True
        mtu = min(old_mtu, sc.min_pmtu)
    now = net.clock.now_us()
    life = sc.mtu_expires * 1_000_000
    is_exc = isinstance(route, RtException)
    if is_exc and route.pmtu == mtu and not lock and now < route.expires - life // 2:
        return route
    base = route.base if is_exc else route
    exc = fnhe_route(base, mtu, lock, now + max(life, 1))
    net.fnhe_insert(daddr, exc)
    return exc


ip_rt_update_pmtu = __ip_rt_update_pmtu      # callable from class bodies (no name mangling)


def ip_route_get(net: Netns, dst: str | int) -> str:
    """``ip route get DST`` as iproute2 prints it: the route, and on a ``cache`` line the
    learned PMTU with its remaining lifetime (``rt_fill_info``: RTA_CACHEINFO expires in
    whole seconds, RTAX_MTU from rt_pmtu, ``lock`` if locked). RTNETLINK's ENETUNREACH
    without a route."""
    from errno import ENETUNREACH

    from ..packet.ipv4 import int2ip

    d = ip2int(dst) if isinstance(dst, str) else dst
    route = net.fib_lookup(d)
    if route is None:
        raise oserror(ENETUNREACH, "RTNETLINK answers: Network is unreachable")
    src = net.inet_select_addr(route, d)
    if route.dev is net.lo:
        return f"local {int2ip(d)} dev lo src {int2ip(src)} uid 0\n    cache <local>"
    head = int2ip(d) + (f" via {int2ip(route.gw)}" if route.gw else "")
    head += f" dev {route.dev.name} src {int2ip(src)} uid 0"
    cache = "    cache"
    metrics = []
    if isinstance(route, RtException):
        left = route.expires - net.clock.now_us()
        if left > 0:
            cache += f" expires {left // 1_000_000}sec"
        metrics.append(("mtu lock " if route.mtu_locked else "mtu ") + str(route.pmtu))
    elif route.mtu:
        metrics.append(("mtu lock " if route.locks & (1 << RTAX_MTU) else "mtu ") + str(route.mtu))
    if route.advmss:
        metrics.append(f"advmss {route.advmss}")
    return head + "\n" + " ".join([cache] + metrics)


# ---- ip route ... ---------------------------------------------------------------------------

def _time_ms(text: str) -> int:
    """iproute2 ``get_time_rtt``: N, N.Nms, Ns -- milliseconds, rounded up."""
    t = text.lower()
    scale = 1.0
    for suffix, mult in (("msecs", 1.0), ("msec", 1.0), ("ms", 1.0), ("secs", 1000.0),
                         ("sec", 1000.0), ("s", 1000.0)):
        if t.endswith(suffix):
            t = t[: -len(suffix)]
            scale = mult
            break
    try:
        v = float(t) * scale
    except ValueError:
        raise oserror(EINVAL, f'"rto_min" value is invalid: {text}') from None
    if v < 0:
        raise oserror(EINVAL, f'"rto_min" value is invalid: {text}')
    return math.ceil(v - 1e-9)


def _uint(text: str, what: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise oserror(EINVAL, f'"{what}" value is invalid: {text}') from None
    if v < 0 or v > 0xFFFFFFFF:
        raise oserror(EINVAL, f'"{what}" value is invalid: {text}')
    return v


def parse_ip_route(argv: list[str]) -> tuple[str, dict]:
    """Parse ``ip [-4] route CMD DST[/PLEN] [via GW] [dev DEV] [src SRC] [metric...]``.

    CMD: add, change (chg), replace, del(ete). Metrics: ``mtu [lock] N``, ``advmss N``,
    ``initcwnd N``, ``initrwnd N``, ``rto_min TIME``, ``quickack 0|1``. Returns (cmd, kwargs
    for :func:`ip_route_modify`); anything else raises OSError(EINVAL).
    """
    w = list(argv)
    if w and w[0] == "ip":
        w = w[1:]
    if w and w[0] == "-4":
        w = w[1:]
    if not w or w[0] not in ("route", "r", "ro", "rou", "rout"):
        raise oserror(EINVAL, "not an ip route command")
    w = w[1:]
    if not w:
        raise oserror(EINVAL, "ip route: missing command")
    cmd = {"add": "add", "change": "change", "chg": "change", "replace": "replace",
           "del": "del", "delete": "del"}.get(w[0])
    if cmd is None:
        raise oserror(EINVAL, f'ip route: command "{w[0]}" not supported')
    args: dict = {"dst": None, "plen": 32, "dev": None, "gw": 0, "src": 0}
    metrics: dict = {}
    i = 1

    def nxt() -> str:
        nonlocal i
        i += 1
        if i >= len(w):
            raise oserror(EINVAL, "ip route: argument missing")
        return w[i]

    while i < len(w):
        tok = w[i]
        if tok == "via":
            args["gw"] = ip2int(nxt())
        elif tok in ("dev", "oif"):
            args["dev"] = nxt()
        elif tok == "src":
            args["src"] = ip2int(nxt())
        elif tok == "mtu":
            v = nxt()
            if v == "lock":
                metrics["mtu_lock"] = True
                v = nxt()
            metrics["mtu"] = _uint(v, "mtu")
        elif tok in ("advmss", "initcwnd", "initrwnd"):
            v = nxt()
            if v == "lock":                  # accepted; the lock bit changes nothing here
                v = nxt()
            metrics[tok] = _uint(v, tok)
        elif tok == "rto_min":
            metrics["rto_min"] = _time_ms(nxt()) / 1000
        elif tok == "quickack":
            metrics["quickack"] = _uint(nxt(), "quickack")
        elif tok in ("proto", "protocol", "scope", "metric", "priority", "preference", "table"):
            nxt()                            # accepted and ignored: one table, no priorities
        elif tok == "onlink":
            pass
        else:
            if tok == "to":
                tok = nxt()
            if args["dst"] is not None:
                raise oserror(EINVAL, f'ip route: unexpected "{tok}"')
            if tok == "default":
                args["dst"], args["plen"] = 0, 0
            else:
                addr, _, plen = tok.partition("/")
                try:
                    args["dst"] = ip2int(addr)
                    args["plen"] = int(plen) if plen else 32
                except (ValueError, OSError):
                    raise oserror(EINVAL, f'ip route: invalid prefix "{tok}"') from None
                if not 0 <= args["plen"] <= 32:
                    raise oserror(EINVAL, f'ip route: invalid prefix "{tok}"')
        i += 1
    if args["dst"] is None:
        raise oserror(EINVAL, "ip route: destination missing")
    args.update(metrics)
    return cmd, args


def ip_route_modify(net: Netns, cmd: str, dst: int, plen: int = 32, dev: str | None = None,
                    gw: int = 0, src: int = 0, **metrics) -> None:
    """Carry out a parsed ``ip route`` command on ``net`` (``inet_rtm_newroute`` /
    ``inet_rtm_delroute``): add fails with EEXIST on an existing prefix, change with ENOENT
    on a missing one, del with ESRCH; replace adds or replaces. A route needs a device:
    ``dev``, or the one the gateway is reached through (else ENODEV, as fib_check_nh)."""
    if cmd == "del":
        net.del_route(dst, plen)
        return
    if dev is None:
        r = net.fib_lookup(gw) if gw else None
        if r is None or r.dev is net.lo:
            raise oserror(ENODEV, "no device for the route")
        dev = r.dev.name
    if dev not in net.devices:
        raise oserror(ENODEV, f'Cannot find device "{dev}"')
    if cmd == "add":
        if net.find_route(dst, plen) is not None:
            raise oserror(EEXIST, "route exists")
        net.add_route(dst, plen, dev, gw, src, **metrics)
    elif cmd == "change":
        net.change_route(dst, plen, dev, gw, src, **metrics)
    else:
        net.replace_route(dst, plen, dev, gw, src, **metrics)


def ip_route(net: Netns, command: str | list[str]) -> None:
    """Run ``ip route ...`` (text or argv) against ``net``; OSError with Linux's errno."""
    argv = command.split() if isinstance(command, str) else list(command)
    cmd, kwargs = parse_ip_route(argv)
    ip_route_modify(net, cmd, **kwargs)


__all__ = ["RTAX_MTU", "RTAX_ADVMSS", "RTAX_INITCWND", "RTAX_INITRWND", "RTAX_RTO_MIN",
           "RTAX_QUICKACK", "IP_MAX_MTU", "dst_mtu", "dst_metric_advmss", "dst_mtu_locked",
           "metrics_convert", "parse_ip_route", "ip_route_modify", "ip_route", "RtException",
           "fnhe_route", "ip_dst_mtu_maybe_forward", "ip_route_get", "ip_rt_update_pmtu"]
