"""Classic Explicit Congestion Notification for TCP (RFC 3168) as Linux 6.18 does it.

The helpers of include/net/tcp_ecn.h, include/net/inet_ecn.h and the ECN parts of tcp_input.c
/ tcp_output.c, under their kernel names. Only RFC 3168 feedback: Accurate ECN (tcp_ecn 3..5,
the AE flag, the AccECN option) is not built, so the RFC 3168 mode is the only one and
``TCP_ECN_OK`` stands for Linux's ``tcp_ecn_mode_rfc3168()``. No congestion module here needs
ECN (``tcp_ca_needs_ecn``: DCTCP), and routes carry no ``ecn`` feature (``RTAX_FEATURE_ECN``).

State lives where Linux keeps it: ``sk.ecn_flags`` (``tp->ecn_flags``), the ECN bits of
``sk.tos`` (``inet_sk(sk)->tos``, set by ``INET_ECN_xmit`` for new data and cleared by
``INET_ECN_dontxmit`` for ACKs and retransmissions), ``req.ecn_ok`` (``inet_rsk(req)->ecn_ok``)
and ``sk.delivered_ce``. Every hook in the hot paths is behind one cheap test (``sk.ecn_flags``,
or the ECE / CWR bit of the segment), so a connection without ECN pays no more than that.

Negotiation (RFC 3168 6.1.1): an ECN-setup SYN carries ECE|CWR, the SYN-ACK ECE alone.
``net.ipv4.tcp_ecn`` = 1 asks on outgoing connections and accepts incoming ones, 2 (default)
only accepts, 0 neither; ``tcp_ecn_fallback`` drops ECE|CWR from a retransmitted SYN
(RFC 3168 6.1.1.1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..packet.ipv4 import (
    INET_ECN_CE,
    INET_ECN_ECT_0,
    INET_ECN_ECT_1,
    INET_ECN_MASK,
    INET_ECN_NOT_ECT,
)
from ..packet.tcp import CWR, ECE, SYN
from .sock import ICSK_ACK_NOW

if TYPE_CHECKING:
    from ..skb import SKB
    from .minisocks import RequestSock
    from .sock import TcpSock

# tp->ecn_flags (include/net/tcp.h; 6.18's TCP_ECN_MODE_RFC3168 is 1 as TCP_ECN_OK was)
TCP_ECN_OK = 1
TCP_ECN_QUEUE_CWR = 2
TCP_ECN_DEMAND_CWR = 4
TCP_ECN_SEEN = 8

TCPHDR_SYN_ECN = SYN | ECE | CWR


# ---- inet_ecn.h: the socket's ECN codepoint -----------------------------------------------

def INET_ECN_xmit(sk: TcpSock) -> None:
    """Send with ECT(0) from now on (``INET_ECN_xmit``: ``inet->tos`` ECN bits := ECT(0))."""
    sk.tos = (sk.tos & ~INET_ECN_MASK) | INET_ECN_ECT_0


def INET_ECN_dontxmit(sk: TcpSock) -> None:
    """Send Not-ECT from now on (``INET_ECN_dontxmit``)."""
    sk.tos &= ~INET_ECN_MASK


# ---- handshake -------------------------------------------------------------------------------

def tcp_ecn_send_syn(sk: TcpSock, skb: SKB) -> None:
    """An active open asks for ECN with ECE|CWR on the SYN when ``tcp_ecn`` is 1
    (``tcp_ecn_send_syn``); the SYN itself stays Not-ECT (RFC 3168 6.1.1)."""
    sk.ecn_flags = 0
    if sk.net.sysctl.tcp_ecn == 1:
        skb.flags |= ECE | CWR
        sk.ecn_flags = TCP_ECN_OK


def tcp_ecn_clear_syn(sk: TcpSock, skb: SKB) -> None:
    """A retransmitted ECN-setup SYN goes without ECE|CWR when ``tcp_ecn_fallback`` is on
    (``tcp_ecn_clear_syn``, RFC 3168 6.1.1.1); ``ecn_flags`` is settled by the SYN-ACK."""
    if sk.net.sysctl.tcp_ecn_fallback:
        skb.flags &= ~(ECE | CWR)


def tcp_ecn_rcv_synack(sk: TcpSock, flags: int) -> None:
    """The SYN-ACK agrees to ECN only with ECE and without CWR (``tcp_ecn_rcv_synack``).

    6.18 reads the three AccECN flags here; with AccECN not requested, ECE alone (0b001 or,
    AE set, 0b101) keeps RFC 3168 ECN. A SYN-ACK echoing CWR would switch 6.18 to AccECN
    feedback, which tcpdive lacks: ECN is turned off instead (6.12's rule)."""
    if sk.ecn_flags & TCP_ECN_OK and (not flags & ECE or flags & CWR):
        sk.ecn_flags &= ~TCP_ECN_OK


def tcp_ecn_rcv_syn(sk: TcpSock, flags: int) -> None:
    """Simultaneous open: the crossing SYN must ask for ECN too (``tcp_ecn_rcv_syn``)."""
    if sk.ecn_flags & TCP_ECN_OK and (not flags & ECE or not flags & CWR):
        sk.ecn_flags &= ~TCP_ECN_OK


def tcp_ecn_send_synack(sk: TcpSock, flags: int) -> int:
    """Flags of the SYN-ACK a full socket sends in a simultaneous open (``tcp_ecn_send_synack``):
    never CWR, ECE only while ECN is on."""
    flags &= ~CWR
    if not sk.ecn_flags & TCP_ECN_OK:
        flags &= ~ECE
    return flags


def tcp_ecn_create_request(req: RequestSock, skb: SKB, listener: TcpSock) -> None:
    """A SYN with ECE|CWR gets ECN if ``tcp_ecn`` is not 0 and the SYN itself is Not-ECT
    (``tcp_ecn_create_request``; a SYN marked ECT is taken for a broken path). Linux also
    accepts an ECT SYN whose reserved/AE bits are set; tcpdive does not keep those bits."""
    req.ecn_ok = bool(skb.flags & ECE and skb.flags & CWR and listener.net.sysctl.tcp_ecn
                      and not skb.tos & INET_ECN_MASK)


def tcp_ecn_make_synack(req: RequestSock) -> int:
    """ECE on every SYN-ACK of an ECN request, retransmissions too (``tcp_ecn_make_synack``)."""
    return ECE if req.ecn_ok else 0


def tcp_ecn_openreq_child(child: TcpSock, req: RequestSock) -> None:
    """The child of an ECN request starts with ECN on (``tcp_ecn_openreq_child``)."""
    child.ecn_flags = TCP_ECN_OK if req.ecn_ok else 0


# ---- established: sending ---------------------------------------------------------------------

def tcp_ecn_send(sk: TcpSock, new_data: bool) -> int:
    """ECN state of a non-SYN segment about to leave (``tcp_ecn_send``); returns the TCP flags
    to add. New data goes ECT(0) and carries the queued CWR; pure ACKs and retransmissions go
    Not-ECT (RFC 3168 6.1.5); every segment echoes ECE while the peer owes us a CWR."""
    ecn_flags = sk.ecn_flags
    if not ecn_flags & TCP_ECN_OK:
        return 0
    bits = 0
    if new_data:
        sk.tos = (sk.tos & ~INET_ECN_MASK) | INET_ECN_ECT_0     # INET_ECN_xmit
        if ecn_flags & TCP_ECN_QUEUE_CWR:
            ecn_flags &= ~TCP_ECN_QUEUE_CWR
            sk.ecn_flags = ecn_flags
            bits = CWR
    else:
        sk.tos &= ~INET_ECN_MASK                                 # INET_ECN_dontxmit
    if ecn_flags & TCP_ECN_DEMAND_CWR:
        bits |= ECE
    return bits


def tcp_ecn_queue_cwr(sk: TcpSock) -> None:
    """The window was reduced: put CWR on the next new data segment (``tcp_ecn_queue_cwr``)."""
    if sk.ecn_flags & TCP_ECN_OK:
        sk.ecn_flags |= TCP_ECN_QUEUE_CWR


def tcp_ecn_withdraw_cwr(sk: TcpSock) -> None:
    """The reduction was undone: no CWR to send (``tcp_ecn_withdraw_cwr``)."""
    sk.ecn_flags &= ~TCP_ECN_QUEUE_CWR


# ---- established: receiving -------------------------------------------------------------------

def tcp_ecn_rcv_ecn_echo(sk: TcpSock, flags: int) -> bool:
    """Is this ACK an ECN-Echo (``tcp_ecn_rcv_ecn_echo``)? Never on a SYN."""
    return bool(flags & ECE and not flags & SYN and sk.ecn_flags & TCP_ECN_OK)


def tcp_ecn_accept_cwr(sk: TcpSock, skb: SKB) -> None:
    """CWR from the sender: stop echoing ECE; a data segment with CWR is ACKed at once, the
    sender's window may be down to one segment (``tcp_ecn_accept_cwr``, called from
    ``tcp_ack`` so that a CWR on a pure ACK counts too)."""
    if sk.ecn_flags & TCP_ECN_OK:
        sk.ecn_flags &= ~TCP_ECN_DEMAND_CWR
        if skb.seq != skb.end_seq:
            sk.ack_pending |= ICSK_ACK_NOW


def tcp_data_ecn_check(sk: TcpSock, skb: SKB) -> None:
    """The IP ECN field of an arriving data segment (``tcp_data_ecn_check``, was
    ``__tcp_ecn_check_ce``): CE makes us echo ECE until CWR (RFC 3168 6.1.3) and ACK quickly;
    ECT or CE marks ECN as seen; Not-ECT after ECT was seen is likely a retransmission, ACKed
    quickly too."""
    ecn_flags = sk.ecn_flags
    if not ecn_flags & TCP_ECN_OK:
        return
    field = skb.tos & INET_ECN_MASK
    if field == INET_ECN_NOT_ECT:
        if ecn_flags & TCP_ECN_SEEN:
            from .input import tcp_enter_quickack_mode  # input imports this module; rare path

            tcp_enter_quickack_mode(sk, 2)
        return
    if field == INET_ECN_CE and not ecn_flags & TCP_ECN_DEMAND_CWR:
        from .input import tcp_enter_quickack_mode

        tcp_enter_quickack_mode(sk, 2)
        ecn_flags |= TCP_ECN_DEMAND_CWR
    sk.ecn_flags = ecn_flags | TCP_ECN_SEEN


__all__ = [
    "TCP_ECN_OK", "TCP_ECN_QUEUE_CWR", "TCP_ECN_DEMAND_CWR", "TCP_ECN_SEEN", "INET_ECN_NOT_ECT",
    "INET_ECN_ECT_1", "INET_ECN_ECT_0", "INET_ECN_CE", "INET_ECN_MASK", "INET_ECN_xmit",
    "INET_ECN_dontxmit", "tcp_ecn_send_syn", "tcp_ecn_clear_syn", "tcp_ecn_rcv_synack",
    "tcp_ecn_rcv_syn", "tcp_ecn_send_synack", "tcp_ecn_create_request", "tcp_ecn_make_synack",
    "tcp_ecn_openreq_child", "tcp_ecn_send", "tcp_ecn_queue_cwr", "tcp_ecn_withdraw_cwr",
    "tcp_ecn_rcv_ecn_echo", "tcp_ecn_accept_cwr", "tcp_data_ecn_check",
]
