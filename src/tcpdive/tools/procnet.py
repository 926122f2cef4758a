"""``/proc/net/tcp`` and ``/proc/net/tcp6`` of one host, as text, exactly as Linux 6.x prints them.

The walk is netstat.py's (``tcp_rows``: listeners first, then the established hash with request
and TIME_WAIT socks); each row is printed the way ``tcp4_seq_show`` prints it
(net/ipv4/tcp_ipv4.c ``get_tcp4_sock`` / ``get_openreq4`` / ``get_timewait4_sock``)::

      sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
       0: 0100A8C0:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 ...

- addresses are the ``__be32`` printed with ``%08X`` on a little-endian machine (192.168.0.1 is
  ``0100A8C0``), ports in host order with ``%04X``; ``st`` is the state number in hex;
- ``tr`` is the timer (0 none, 1 retransmit / loss probe / RACK reordering, 2 keepalive
  (``sk_timer``), 3 TIME_WAIT, 4 zero-window probe), ``tm->when`` its time left and ``rto`` /
  ``ato`` in clock ticks of USER_HZ = 100 (``jiffies_delta_to_clock_t``, never negative);
- every line is padded with spaces to 149 characters (``seq_setwidth(seq, TMPSZ - 1)`` +
  ``seq_pad``); /proc/net/tcp6 lists IPv6 sockets only, so here it is its header alone.

Fields with no simulated counterpart are stable stand-ins: ``uid`` 0 (every simulated program
runs as root), an inode number given to each socket file the first time it is listed (per
host, from 21000), the
kernel pointer as an unprivileged reader sees it with kptr_restrict (``0000000000000000``),
and a reference count modelled on Linux's: one for the file (or accept queue) of a socket
that is not orphaned, one per pending timer, one per request sock for its listener; 3 for a
TIME_WAIT sock (bind bucket, established hash, timer), 0 printed for a request sock.
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any

from ..tcp import sock as S
from ..tcp.minisocks import RequestSock, TimewaitSock
from .netstat import tcp_rows

TCP4_HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
               "   uid  timeout inode")
TCP6_HEADER = ("  sl  " "local_address                         " "remote_address                        "
               "st tx_queue rx_queue tr tm->when retrnsmt" "   uid  timeout inode")
TMPSZ = 150                      # net/ipv4/tcp_ipv4.c: each line is TMPSZ - 1 wide, then '\n'
KPTR = "0000000000000000"        # %pK as kptr_restrict shows it to an unprivileged reader
TW_REFCNT = 3                    # inet_twsk_hashdance_schedule: bhash + ehash + timer

PROC_NET_TCP = "/proc/net/tcp"
PROC_NET_TCP6 = "/proc/net/tcp6"

FIRST_INODE = 21000             # each host numbers its socket files from here, as listed
_inodes: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_next_inode: weakref.WeakKeyDictionary[Any, itertools.count] = weakref.WeakKeyDictionary()


def _be32(addr: int) -> str:
    """A network-order address as ``%08X`` prints it on little-endian x86."""
    return f"{int.from_bytes(addr.to_bytes(4, 'big'), 'little'):08X}"


def _clock_t(us: int) -> int:
    """``jiffies_delta_to_clock_t``: 1/100 s ticks of a duration, 0 if negative."""
    return us // 10_000 if us > 0 else 0


def _inode(sk: Any) -> int:
    """``sock_i_ino``: the socket file's inode, 0 for an orphan or an unaccepted child."""
    f = getattr(sk, "socket", None)
    if f is None or getattr(sk, "dead", False):
        return 0
    ino = _inodes.get(f)
    if ino is None:
        counter = _next_inode.get(sk.net)
        if counter is None:
            counter = _next_inode[sk.net] = itertools.count(FIRST_INODE)
        ino = _inodes[f] = next(counter)
    return ino


def _refcnt(sk: S.TcpSock) -> int:
    """``sk_refcnt`` as Linux would hold it: the file's (or accept queue's) reference unless
    the socket is orphaned, one per pending timer (``sk_reset_timer`` holds the socket), and
    for a listener one per request sock (``reqsk_alloc`` holds its listener)."""
    n = 0 if sk.dead else 1
    if sk.state == S.TCP_LISTEN:
        return n + sk.syn_queue_len
    for t in (sk.retransmit_timer, sk.delack_timer, sk.keepalive_timer):
        if t.pending:
            n += 1
    return n


def get_tcp4_sock(sk: S.TcpSock, i: int, row: Any, now: int) -> str:
    """One full socket's line (``get_tcp4_sock``)."""
    state = sk.state
    if state == S.TCP_LISTEN:
        rx_queue = len(sk.accept_queue or ())
        last = 0                                  # fastopenq.max_qlen: no TCP_FASTOPEN here
    else:
        rx_queue = max(sk.rcv_nxt - sk.copied_seq, 0)
        last = -1 if sk.snd_ssthresh >= S.TCP_INFINITE_SSTHRESH else sk.snd_ssthresh
    when = _clock_t(row.expires_us - now) if row.timer else 0
    pingpong = 1 if sk.ack_pingpong >= S.TCP_PINGPONG_THRESH else 0
    return (f"{i:4d}: {_be32(sk.rcv_saddr)}:{sk.sport:04X} {_be32(sk.daddr)}:{sk.dport:04X} "
            f"{state:02X} {(sk.write_seq - sk.snd_una) & 0xFFFFFFFF:08X}:{rx_queue:08X} "
            f"{row.timer:02X}:{when:08X} {sk.icsk_retransmits:08X} {0:5d} "
            f"{sk.icsk_probes_out:8d} {_inode(sk)} {_refcnt(sk)} {KPTR} "
            f"{_clock_t(sk.icsk_rto)} {_clock_t(sk.ack_ato)} "
            f"{(sk.ack_quick << 1) | pingpong} {sk.snd_cwnd} {last}")


def get_openreq4(req: RequestSock, i: int, now: int) -> str:
    """A request sock's line (``get_openreq4``): SYN_RECV, its SYN-ACK timer, no inode."""
    when = _clock_t(req.timer.expires - now) if req.timer.pending else 0
    return (f"{i:4d}: {_be32(req.saddr)}:{req.sport:04X} {_be32(req.daddr)}:{req.dport:04X} "
            f"{S.TCP_SYN_RECV:02X} {0:08X}:{0:08X} {1:02X}:{when:08X} {req.num_timeout:08X} "
            f"{0:5d} {0:8d} {0} {0} {KPTR}")


def get_timewait4_sock(tw: TimewaitSock, i: int, now: int) -> str:
    """A TIME_WAIT (or orphaned FIN_WAIT2) mini socket's line (``get_timewait4_sock``)."""
    when = _clock_t(tw.timer.expires - now) if tw.timer.pending else 0
    return (f"{i:4d}: {_be32(tw.rcv_saddr or tw.saddr)}:{tw.sport:04X} "
            f"{_be32(tw.daddr)}:{tw.dport:04X} {tw.substate:02X} {0:08X}:{0:08X} "
            f"{3:02X}:{when:08X} {0:08X} {0:5d} {0:8d} {0} {TW_REFCNT} {KPTR}")


def _pad(line: str) -> str:
    """``seq_pad``: spaces up to TMPSZ - 1 characters, then the newline."""
    return line.ljust(TMPSZ - 1) + "\n"


def proc_net_tcp(net: Any) -> str:
    """The text of /proc/net/tcp for one host (``tcp4_seq_show`` over ``tcp_seq_next``)."""
    now = net.clock.now_us()
    out = [_pad(TCP4_HEADER)]
    for i, row in enumerate(tcp_rows(net)):
        sk = row.sk
        if isinstance(sk, TimewaitSock):
            out.append(_pad(get_timewait4_sock(sk, i, now)))
        elif isinstance(sk, RequestSock):
            out.append(_pad(get_openreq4(sk, i, now)))
        else:
            out.append(_pad(get_tcp4_sock(sk, i, row, now)))
    return "".join(out)


def proc_net_tcp6(net: Any) -> str:
    """The text of /proc/net/tcp6: tcpdive has no IPv6 sockets, so the header alone
    (``tcp6_seq_show`` prints it unpadded)."""
    return TCP6_HEADER + "\n"


PROC_FILES = {PROC_NET_TCP: proc_net_tcp, PROC_NET_TCP6: proc_net_tcp6}


def proc_file(net: Any, path: str) -> str | None:
    """Text of a /proc file this module knows (``/proc/net/tcp``, ``/proc/net/tcp6``), else None."""
    fn = PROC_FILES.get(path)
    return fn(net) if fn is not None else None


__all__ = ["proc_net_tcp", "proc_net_tcp6", "proc_file", "get_tcp4_sock", "get_openreq4",
           "get_timewait4_sock", "TCP4_HEADER", "TCP6_HEADER", "PROC_NET_TCP", "PROC_NET_TCP6",
           "PROC_FILES"]
