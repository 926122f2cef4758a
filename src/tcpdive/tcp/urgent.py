"""TCP urgent data ("out-of-band", MSG_OOB) as Linux keeps it (RFC 9293 3.8.5, RFC 6093).

Receive side (tcp_input.c ``tcp_urg`` / ``tcp_check_urg``): a segment with URG moves the
urgent mark ``tp->urg_seq`` to the byte the pointer names; ``net.ipv4.tcp_stdurg`` = 0 (the
default, BSD's reading) takes the pointer as one past the urgent byte, 1 as the byte itself.
``tp->urg_data`` is ``TCP_URG_NOTYET`` until that byte arrives, then ``TCP_URG_VALID | byte``,
then ``TCP_URG_READ`` once ``recv(MSG_OOB)`` took it. Without SO_OOBINLINE the byte stays in
the receive queue but a normal read steps over it (``tcp_recvmsg_locked``); a read never
crosses the mark in one call, whatever SO_OOBINLINE says. SIGURG (``sk_send_sigurg``) is not
modelled: tcpdive has no processes to signal.

Send side (tcp.c ``tcp_mark_urg``, tcp_output.c ``__tcp_transmit_skb``): ``send(MSG_OOB)``
sets ``tp->snd_up`` to the end of the data written; every segment sent while the mark is ahead
of it carries URG and the distance to the mark (capped as Linux caps it at 0xFFFF).

tcpdive's one knowing difference: ``snd_up`` is not dragged along with ``snd_una`` on every
ACK (Linux does it in ``tcp_clean_rtx_queue`` to keep ``tcp_urg_mode`` false); a mark behind
``snd_una`` means the same thing as Linux's ``snd_up == snd_una``, so ``tcp_urg_mode`` below
tests ``snd_up > snd_una`` and the per-ACK path stays untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import EAGAIN, EINVAL, ENOTCONN, oserror
from ..packet.tcp import URG
from . import sock as S

if TYPE_CHECKING:
    from ..skb import SKB
    from .sock import TcpSock

# tp->urg_data states (include/net/tcp.h)
TCP_URG_VALID = 0x0100
TCP_URG_NOTYET = 0x0200
TCP_URG_READ = 0x0400

MSG_PEEK = 0x2


# ---- receive side: tcp_input.c --------------------------------------------------------------

def tcp_check_urg(sk: TcpSock, skb: SKB) -> None:
    """A segment with URG: maybe a new urgent mark (``tcp_check_urg``)."""
    ptr = skb.urg_ptr
    if ptr and not sk.net.sysctl.tcp_stdurg:
        ptr -= 1                                   # BSD: the pointer is one past the byte
    ptr += skb.seq
    if sk.copied_seq > ptr:                        # already seen and read
        return
    if ptr < sk.rcv_nxt:                           # do not replay an old pointer
        return
    if sk.urg_data and ptr <= sk.urg_seq:          # a newer (or the same) mark is known
        return
    # sk_send_sigurg(sk) would signal the owner here: no signals in tcpdive
    if (sk.urg_seq == sk.copied_seq and sk.urg_data and not sk.urginline
            and sk.copied_seq != sk.rcv_nxt):
        # the reader sits on the old urgent byte: step over it before the mark moves on
        sk.copied_seq += 1
        _rcv_queue_skip(sk, 1)
    sk.urg_data = TCP_URG_NOTYET
    sk.urg_seq = ptr
    sk.pred_flags = 0                              # header prediction off


def tcp_urg(sk: TcpSock, skb: SKB) -> None:
    """Step 6 of segment processing, "check the URG bit" (``tcp_urg``): a new pointer, and the
    urgent byte itself once a segment carries it.

    Linux indexes the byte from the TCP header (``urg_seq - seq + doff*4 - syn`` < skb->len),
    so a mark up to a header's length *before* the segment reads a header byte; tcpdive only
    takes the byte from the payload.
    """
    if skb.flags & URG:
        tcp_check_urg(sk, skb)
    if sk.urg_data == TCP_URG_NOTYET:
        off = sk.urg_seq - skb.seq
        data = skb.data
        if 0 <= off < len(data):
            sk.urg_data = TCP_URG_VALID | data[off]
            if not sk.dead:
                S.sk_wake(sk)                       # sk->sk_data_ready


def _rcv_queue_skip(sk: TcpSock, n: int) -> None:
    """Drop ``n`` bytes from the head of the receive queue (the urgent byte's hole)."""
    q = sk.receive_queue
    off = sk.rcv_queue_off
    while n and q:
        take = min(n, len(q[0]) - off)
        n -= take
        sk.rcv_queue_bytes -= take
        off += take
        if off == len(q[0]):
            q.popleft()
            off = 0
    sk.rcv_queue_off = off
    if not sk.rcv_queue_bytes:
        sk.receive_queue = ()


# ---- reading: tcp.c ---------------------------------------------------------------------------

def tcp_recv_urg(sk: TcpSock, n: int, flags: int) -> bytes:
    """recv(MSG_OOB) (``tcp_recv_urg``): the urgent byte once; EINVAL when there is none (or it
    is inline, or already read); b"" after EOF; EAGAIN while it has not arrived (never blocks).

    ``n`` == 0 returns b"" with the byte left unread only under MSG_PEEK: Linux reports
    MSG_TRUNC then and, without MSG_PEEK, still marks the byte read.
    """
    urg = sk.urg_data
    if sk.urginline or not urg or urg == TCP_URG_READ:
        raise oserror(EINVAL, "no urgent data to read")
    if sk.state == S.TCP_CLOSE and not sk.done:
        raise oserror(ENOTCONN)
    if urg & TCP_URG_VALID:
        if not flags & MSG_PEEK:
            sk.urg_data = TCP_URG_READ
        return bytes((urg & 0xFF,)) if n > 0 else b""
    if sk.state == S.TCP_CLOSE or sk.sk_shutdown & S.RCV_SHUTDOWN:
        return b""
    raise oserror(EAGAIN, "urgent data not yet arrived")


def tcp_urg_mark(sk: TcpSock, n: int, flags: int) -> tuple[int, int]:
    """The urgent-data part of ``tcp_recvmsg_locked`` ("are we at urgent data?"), run before a
    read while ``urg_data`` is set: at the mark, without SO_OOBINLINE, step over the urgent byte
    (``urg_hole``); then stop the read at the mark if it lies ahead. Returns the byte count to
    read and the hole a MSG_PEEK read must skip (the byte is only consumed without MSG_PEEK).
    """
    hole = 0
    if (sk.urg_seq == sk.copied_seq and not sk.urginline and sk.rcv_queue_bytes
            and sk.urg_seq < sk.rcv_nxt):
        if flags & MSG_PEEK:
            hole = 1
        else:
            sk.copied_seq += 1
            _rcv_queue_skip(sk, 1)
            tcp_urg_passed(sk)
    left = sk.urg_seq - (sk.copied_seq + hole)
    if 0 < left < n:
        n = left
    return n, hole


def tcp_urg_passed(sk: TcpSock) -> None:
    """The reader went past the mark: forget it, maybe re-enable the fast path (the
    ``skip_copy`` step of ``tcp_recvmsg_locked``)."""
    if sk.urg_data and sk.copied_seq > sk.urg_seq:
        from .input import tcp_fast_path_check  # input imports this module

        sk.urg_data = 0
        tcp_fast_path_check(sk)


def tcp_inq(sk: TcpSock) -> int:
    """SIOCINQ / FIONREAD (``tcp_inq``): readable bytes, only up to a pending urgent mark."""
    if sk.state in (S.TCP_SYN_SENT, S.TCP_SYN_RECV):
        return 0
    if (sk.urginline or not sk.urg_data or sk.urg_seq < sk.copied_seq
            or sk.urg_seq >= sk.rcv_nxt):
        answ = sk.rcv_nxt - sk.copied_seq
        if answ and sk.done:
            answ -= 1                               # the FIN is not data
        return answ
    return sk.urg_seq - sk.copied_seq


def tcp_atmark(sk: TcpSock) -> int:
    """SIOCATMARK (``tcp_ioctl``): 1 while the next byte to read is the urgent mark."""
    return int(bool(sk.urg_data) and sk.urg_seq == sk.copied_seq)


def tcp_poll_urg(sk: TcpSock, target: int) -> tuple[int, bool]:
    """The urgent part of ``tcp_poll``: at the mark (not inline) POLLIN needs one more byte
    than SO_RCVLOWAT (the urgent byte is not readable data); POLLPRI while a byte waits."""
    urg = sk.urg_data
    if sk.urg_seq == sk.copied_seq and not sk.urginline:
        target += 1
    return target, bool(urg & TCP_URG_VALID)


# ---- send side: tcp.c / tcp_output.c ------------------------------------------------------

def tcp_urg_mode(sk: TcpSock) -> bool:
    """Urgent data is outstanding (``tcp_urg_mode``: snd_una != snd_up, see the module note)."""
    return sk.snd_up > sk.snd_una


def tcp_urg_ptr(sk: TcpSock, seq: int) -> int:
    """The urgent pointer of a segment starting at ``seq`` sent in urgent mode, or -1 for no
    URG (``__tcp_transmit_skb``): the distance to ``snd_up`` when it fits in 16 bits, else
    0xFFFF if ``seq + 0xFFFF`` is beyond ``snd_nxt``."""
    up = sk.snd_up
    if up < seq + 0x10000:
        return up - seq
    if seq + 0xFFFF > sk.snd_nxt:
        return 0xFFFF
    return -1

