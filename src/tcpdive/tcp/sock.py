"""``struct tcp_sock`` and friends: the per-connection state of tcp.c / tcp_input.c / tcp_output.c.

Sequence numbers are kept *unwrapped* inside the stack (plain Python ints that never wrap) and
masked to 32 bits only on the wire; incoming values are unwrapped against the nearest expected
value, which is exactly what Linux's ``before()``/``after()`` arithmetic decides. Times are
integer microseconds of the namespace's clock; jiffies-based values (RTO, timers) are rounded to
``HZ`` as Linux rounds them.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from ..ktime import KTimer

if TYPE_CHECKING:
    from ..net.netns import Netns

# ---- states (include/net/tcp_states.h) ---------------------------------------------------------
TCP_ESTABLISHED = 1
TCP_SYN_SENT = 2
TCP_SYN_RECV = 3
TCP_FIN_WAIT1 = 4
TCP_FIN_WAIT2 = 5
TCP_TIME_WAIT = 6
TCP_CLOSE = 7
TCP_CLOSE_WAIT = 8
TCP_LAST_ACK = 9
TCP_LISTEN = 10
TCP_CLOSING = 11
TCP_NEW_SYN_RECV = 12

STATE_NAMES = {
    TCP_ESTABLISHED: "ESTABLISHED", TCP_SYN_SENT: "SYN_SENT", TCP_SYN_RECV: "SYN_RECV",
    TCP_FIN_WAIT1: "FIN_WAIT1", TCP_FIN_WAIT2: "FIN_WAIT2", TCP_TIME_WAIT: "TIME_WAIT",
    TCP_CLOSE: "CLOSE", TCP_CLOSE_WAIT: "CLOSE_WAIT", TCP_LAST_ACK: "LAST_ACK",
    TCP_LISTEN: "LISTEN", TCP_CLOSING: "CLOSING", TCP_NEW_SYN_RECV: "NEW_SYN_RECV",
}
# ss(8) spells some states differently
SS_STATE_NAMES = {
    TCP_ESTABLISHED: "ESTAB", TCP_SYN_SENT: "SYN-SENT", TCP_SYN_RECV: "SYN-RECV",
    TCP_FIN_WAIT1: "FIN-WAIT-1", TCP_FIN_WAIT2: "FIN-WAIT-2", TCP_TIME_WAIT: "TIME-WAIT",
    TCP_CLOSE: "UNCONN", TCP_CLOSE_WAIT: "CLOSE-WAIT", TCP_LAST_ACK: "LAST-ACK",
    TCP_LISTEN: "LISTEN", TCP_CLOSING: "CLOSING", TCP_NEW_SYN_RECV: "SYN-RECV",
}


def TCPF(state: int) -> int:
    return 1 << state


# ---- constants (include/net/tcp.h, in microseconds where they are times) ------------------------
USEC = 1_000_000
MSEC = 1000
TCP_TIMEWAIT_LEN = 60 * USEC
TCP_FIN_TIMEOUT = TCP_TIMEWAIT_LEN
TCP_RTO_MAX = 120 * USEC
TCP_RTO_MIN = 200 * MSEC
TCP_TIMEOUT_INIT = 1 * USEC
TCP_TIMEOUT_FALLBACK = 3 * USEC
TCP_DELACK_MAX = 200 * MSEC
TCP_DELACK_MIN = 40 * MSEC
TCP_ATO_MIN = 40 * MSEC
TCP_RESOURCE_PROBE_INTERVAL = 500 * MSEC
TCP_SYNQ_INTERVAL = 200 * MSEC
TCP_KEEPALIVE_TIME = 7200 * USEC
TCP_PAWS_24DAYS = 60 * 60 * 24 * 24
TCP_PAWS_MSL = 60
TCP_PAWS_WINDOW = 1
TCP_INIT_CWND = 10
TCP_MAX_QUICKACKS = 16
TCP_PINGPONG_THRESH = 1
TCP_MSS_DEFAULT = 536
TCP_MIN_MSS = 88
TCP_MIN_SND_MSS = 48
MAX_TCP_WINDOW = 32767
TCP_MAX_WSCALE = 14
MAX_TCP_KEEPIDLE = 32767
MAX_TCP_KEEPINTVL = 32767
MAX_TCP_KEEPCNT = 127
MAX_TCP_SYNCNT = 127
TCP_INFINITE_SSTHRESH = 0x7FFFFFFF
TCP_RMEM_TO_WIN_SCALE = 8
TCP_DEFAULT_SCALING_RATIO = 1 << (TCP_RMEM_TO_WIN_SCALE - 1)
TCP_THIN_LINEAR_RETRIES = 6
TCP_MAX_REORDERING = 300
SK_MAX_PACING_RATE = (1 << 64) - 1    # ~0UL: sk_max_pacing_rate's default
GSO_LEGACY_MAX_SIZE = 65536           # sk_gso_max_size of a device without big TCP
SK_PACING_SHIFT = 10                   # sk_pacing_shift: ~1 ms of pacing rate per TSO skb
# sk_pacing_status (enum sk_pacing): NEEDED asks TCP to pace itself (no fq qdisc here)
SK_PACING_NONE = 0
SK_PACING_NEEDED = 1
SK_PACING_FQ = 2

# icsk_pending: which transmit-side timer is armed (inet_connection_sock.h)
ICSK_TIME_RETRANS = 1
ICSK_TIME_DACK = 2
ICSK_TIME_PROBE0 = 3
ICSK_TIME_LOSS_PROBE = 5
ICSK_TIME_REO_TIMEOUT = 6

# icsk_ack.pending bits
ICSK_ACK_SCHED = 1
ICSK_ACK_TIMER = 2
ICSK_ACK_PUSHED = 4
ICSK_ACK_PUSHED2 = 8
ICSK_ACK_NOW = 16
ICSK_ACK_NOMEM = 32

# sk_shutdown
RCV_SHUTDOWN = 1
SEND_SHUTDOWN = 2
SHUTDOWN_MASK = 3

# Nagle (tp->nonagle)
TCP_NAGLE_OFF = 1
TCP_NAGLE_CORK = 2
TCP_NAGLE_PUSH = 4

# congestion-avoidance states (icsk_ca_state)
TCP_CA_Open = 0
TCP_CA_Disorder = 1
TCP_CA_CWR = 2
TCP_CA_Recovery = 3
TCP_CA_Loss = 4


class TcpSock:
    """One full TCP socket (``struct tcp_sock`` with its ``inet_connection_sock`` and ``sock``)."""

    __slots__ = (
        # struct sock / inet_sock
        "net", "state", "saddr", "sport", "daddr", "dport", "sk_err", "sk_err_soft", "sk_shutdown",
        "dead", "keepopen", "linger", "lingertime", "sk_rcvbuf", "sk_sndbuf", "userlocks",
        "reuse", "reuseport", "socket", "wq", "ep_wq", "bound", "tos", "ttl", "pmtudisc", "owned_by_user", "backlog",
        "sk_rcvlowat", "sk_sndtimeo", "sk_rcvtimeo", "done", "bind_bucket", "bound_dev",
        "ehashed", "hash_key", "sk_wmem_queued", "inet_id", "rcv_saddr", "zapped",
        # listener (inet_connection_sock accept queue)
        "max_ack_backlog", "accept_queue", "syn_queue_len", "parent", "listen_hashed",
        "last_synq_overflow",   # us of the last SYN cookie sent (tcp_synq_overflow), or None
        # inet_connection_sock
        "icsk_rto", "icsk_backoff", "icsk_retransmits", "icsk_probes_out", "icsk_pending",
        "icsk_timeout", "icsk_ca_state", "icsk_user_timeout", "icsk_syn_retries",
        "ack_pending", "ack_quick", "ack_pingpong", "ack_ato", "ack_timeout", "ack_lrcvtime",
        "ack_rcv_mss", "ack_last_seg_size", "icsk_delack_max", "icsk_pmtu_cookie",
        "retransmit_timer", "delack_timer", "keepalive_timer",
        # tcp_sock: sequence space
        "iss", "irs", "snd_una", "snd_nxt", "snd_wnd", "max_window", "snd_wl1", "snd_up",
        "write_seq", "pushed_seq", "rcv_nxt", "copied_seq", "rcv_wup", "rcv_wnd",
        "window_clamp", "rcv_ssthresh", "urg_data", "urg_seq",
        # SOCK_URGINLINE (SO_OOBINLINE), inet->freebind (IP_FREEBIND)
        "urginline", "freebind",
        # options
        "mss_cache", "advmss", "user_mss", "mss_clamp", "tstamp_ok", "sack_ok", "wscale_ok",
        "snd_wscale", "rcv_wscale", "ts_recent", "ts_recent_stamp", "saw_tstamp",
        "rcv_tsval", "rcv_tsecr", "tsoffset", "tcp_header_len", "dsack", "duplicate_sack",
        "selective_acks", "num_sacks", "rx_opt_sack",
        # RTT / RTO
        "srtt_us", "mdev_us", "mdev_max_us", "rttvar_us", "rtt_seq", "retrans_stamp",
        "rcv_tstamp", "lsndtime", "tcp_mstamp", "total_retrans", "total_rto", "undo_marker",
        "rack_mstamp", "rack_rtt_us", "min_rtt_us", "rtt_min", "delivered_mstamp",
        # congestion control
        "snd_cwnd", "snd_ssthresh", "snd_cwnd_cnt", "snd_cwnd_stamp", "prior_cwnd",
        "packets_out", "retrans_out", "sacked_out", "lost_out", "ca", "ca_priv", "reordering",
        "high_seq", "prior_ssthresh", "undo_retrans", "is_cwnd_limited", "max_packets_out",
        "delivered", "delivered_ce", "app_limited", "prr_delivered", "prr_out", "dupacks", "frto",
        # queues
        "write_queue", "rtx_queue", "receive_queue", "rcv_queue_bytes", "rcv_queue_off",
        "ofo_queue", "ofo_bytes",
        # misc
        "nonagle", "linger2", "keepalive_time", "keepalive_intvl", "keepalive_probes",
        "bytes_acked", "bytes_received", "bytes_sent", "bytes_retrans", "segs_in", "segs_out",
        "data_segs_in", "data_segs_out", "fin_received", "syn_data", "repair", "thin_lto",
        "notsent_lowat", "defer_accept", "cork_pending", "rcv_rtt_us", "rcv_rtt_seq",
        "rcv_rtt_time", "rcvq_space", "rcvq_space_seq", "rcvq_space_time", "scaling_ratio",
        "chrono_start", "chrono_type", "busy_time", "rwnd_limited", "sndbuf_limited", "last_oow_ack_time",
        "pred_flags", "pending_events", "challenge_count", "open_time", "owner", "rack_reo_wnd",
        "tlp_high_seq", "tcp_usec_ts", "congestion_name", "ecn_flags", "snd_wnd_probe_stamp",
        "syn_opts", "rcv_mss_seen", "inq_peek", "probe0_backoff_max", "snd_sml",
        "icsk_probes_tstamp", "dup_ack_counter", "rx_opt_dsack_pending", "snd_cwnd_clamp",
        # loss recovery (tcp_recovery.c / tcp_input.c): RACK, TLP, SACK scoreboard, undo
        "tsorted", "rack_end_seq", "rack_advanced", "rack_reo_wnd_steps", "rack_dsack_seen",
        "rack_last_delivered", "rack_reo_wnd_persist", "tlp_retrans", "recv_sack_cache",
        "reord_seen", "dsack_dups", "snd_cwnd_used", "is_sack_reneg", "cwnd_usage_seq",
        "highest_sack_seq", "lost", "dsack_seen_flag", "tx_count",
        # pacing / TSO sizing (sk_pacing_rate, read by tcp_tso_autosize); internal pacing
        # (sk_pacing_status, tcp_wstamp_ns, the pacing hrtimer, made lazily) and SO_MAX_PACING_RATE
        "sk_pacing_rate", "sk_pacing_status", "sk_max_pacing_rate", "tcp_wstamp_ns",
        "pacing_timer",
        # delivery-rate sampling (tcp_rate.c): send phase start and the last reported sample
        "first_tx_mstamp", "rate_delivered", "rate_interval_us", "rate_app_limited",
        # Linux skb layout of the send queues (tcp_lskb in output.py), SOCK_NOSPACE
        "lskb", "sock_nospace",
        # TCP_MD5SIG keys (tcp/md5.py), None until the first key
        "md5sig_info",
        # the cached route (sk_dst_cache) with the rt_genid it was taken at and its path MTU
        # (dst_mtu, lowered by ICMP); MTU probing state (icsk_mtup + tp->mtu_probe), lazily
        "dst", "dst_genid", "dst_mtu", "mtup",
        # TCP Fast Open state (tcp/fastopen.py TfoSock), None until a TFO path needs it
        "tfo",
    )

    def __init__(self, net: Netns) -> None:
        sc = net.sysctl
        clock = net.clock
        self.net = net
        self.state = TCP_CLOSE
        self.saddr = self.daddr = 0
        self.rcv_saddr = 0
        self.sport = self.dport = 0
        self.sk_err = self.sk_err_soft = 0
        self.sk_shutdown = 0
        self.dead = False
        self.done = False
        self.keepopen = False
        self.linger = False
        self.lingertime = 0
        self.sk_rcvbuf = sc.tcp_rmem[1]
        self.sk_sndbuf = sc.tcp_wmem[1]
        self.userlocks = 0
        self.reuse = 0
        self.reuseport = False
        self.socket = None
        self.wq: list | None = None
        self.ep_wq: list | None = None      # epoll entries on sk_wq (epoll.py), kept across wakes
        self.bound = False
        self.bind_bucket = None
        self.bound_dev = None
        self.ehashed = False
        self.hash_key = None
        self.listen_hashed = False
        self.zapped = False
        self.tos = 0
        self.ttl = 0
        self.pmtudisc = 0 if sc.ip_no_pmtu_disc else 1   # IP_MTU_DISCOVER (inet_create)
        self.owned_by_user = False
        self.backlog = None
        self.sk_rcvlowat = 1
        self.sk_sndtimeo = self.sk_rcvtimeo = 0
        self.sk_wmem_queued = 0
        self.inet_id = 0
        self.max_ack_backlog = 0
        self.accept_queue = None
        self.syn_queue_len = 0
        self.last_synq_overflow = None
        self.parent = None
        self.icsk_rto = TCP_TIMEOUT_INIT
        self.icsk_backoff = 0
        self.icsk_retransmits = 0
        self.icsk_probes_out = 0
        self.icsk_pending = 0
        self.icsk_timeout = 0
        self.icsk_ca_state = TCP_CA_Open
        self.icsk_user_timeout = 0
        self.icsk_syn_retries = 0
        self.icsk_delack_max = TCP_DELACK_MAX
        self.icsk_pmtu_cookie = 0
        self.ack_pending = 0
        self.ack_quick = 0
        self.ack_pingpong = 0
        self.ack_ato = 0
        self.ack_timeout = 0
        self.ack_lrcvtime = 0
        self.ack_rcv_mss = TCP_MSS_DEFAULT
        self.ack_last_seg_size = 0
        self.retransmit_timer = KTimer(clock, _timer.tcp_write_timer, self)
        self.delack_timer = KTimer(clock, _timer.tcp_delack_timer, self)
        self.keepalive_timer = KTimer(clock, _timer.tcp_keepalive_timer, self)
        self.iss = self.irs = 0
        self.snd_una = self.snd_nxt = self.write_seq = self.pushed_seq = 0
        self.snd_wnd = self.max_window = 0
        self.snd_wl1 = self.snd_up = 0
        self.rcv_nxt = self.copied_seq = self.rcv_wup = 0
        self.rcv_wnd = 0
        self.window_clamp = 0
        self.rcv_ssthresh = 0
        self.urg_data = 0
        self.urg_seq = 0
        self.urginline = False
        self.freebind = False
        self.mss_cache = TCP_MSS_DEFAULT
        self.advmss = 0
        self.user_mss = 0
        self.mss_clamp = 536
        self.tstamp_ok = self.sack_ok = self.wscale_ok = False
        self.snd_wscale = self.rcv_wscale = 0
        self.ts_recent = 0
        self.ts_recent_stamp = 0
        self.saw_tstamp = False
        self.rcv_tsval = self.rcv_tsecr = 0
        self.tsoffset = 0
        self.tcp_header_len = 20
        self.dsack = 0
        self.duplicate_sack: tuple[int, int] | None = None
        self.selective_acks: list[tuple[int, int]] | tuple = ()
        self.num_sacks = 0
        self.rx_opt_sack = ()
        self.srtt_us = self.mdev_us = self.mdev_max_us = self.rttvar_us = 0
        self.rtt_seq = 0
        self.retrans_stamp = 0
        self.rcv_tstamp = self.lsndtime = 0
        self.tcp_mstamp = 0
        self.total_retrans = 0
        self.total_rto = 0
        self.undo_marker = 0
        self.undo_retrans = -1
        self.rack_mstamp = 0
        self.rack_rtt_us = 0
        self.rack_reo_wnd = 0
        self.min_rtt_us = 0
        self.rtt_min = None           # min-RTT filter: None, a lone sample's jiffy, or a Minmax
        self.delivered_mstamp = 0     # us of the last ACK that delivered data (tcp_rate_gen)
        self.sk_pacing_rate = SK_MAX_PACING_RATE  # sock_init_data: ~0UL until a rate is set
        self.sk_max_pacing_rate = SK_MAX_PACING_RATE
        self.sk_pacing_status = SK_PACING_NONE
        self.tcp_wstamp_ns = 0        # earliest departure time of the next skb (ns)
        self.pacing_timer = None      # KTimer, made when pacing first holds a packet back
        self.first_tx_mstamp = 0
        self.rate_delivered = self.rate_interval_us = 0
        self.rate_app_limited = False
        self.lskb = None
        self.sock_nospace = False
        self.md5sig_info = None
        self.dst = None
        self.dst_genid = -1
        self.dst_mtu = 0
        self.mtup = None
        self.tlp_high_seq = 0
        self.snd_cwnd = TCP_INIT_CWND
        self.snd_ssthresh = TCP_INFINITE_SSTHRESH
        self.snd_cwnd_cnt = 0
        self.snd_cwnd_stamp = 0
        self.prior_cwnd = 0
        self.prior_ssthresh = 0
        self.packets_out = self.retrans_out = self.sacked_out = self.lost_out = 0
        self.ca = None
        self.ca_priv = None
        self.congestion_name = sc.tcp_congestion_control
        self.reordering = sc.tcp_reordering
        self.high_seq = 0
        self.is_cwnd_limited = False
        self.max_packets_out = 0
        self.delivered = 0
        self.delivered_ce = 0       # delivered while the ACK echoed ECE (tcpi_delivered_ce)
        self.app_limited = 0xFFFFFFFF   # tcp_init_sock: ~0U, app-limited until the first sample
        self.prr_delivered = self.prr_out = 0
        self.dupacks = 0
        self.frto = False
        # queues start as the shared empty tuple and become deques on first use (an idle socket
        # stays small); code tests them for truth and appends through tcp_queue_* helpers
        self.write_queue: deque | tuple = ()
        self.rtx_queue: deque | tuple = ()
        self.receive_queue: deque | tuple = ()
        self.rcv_queue_bytes = 0
        self.rcv_queue_off = 0
        self.ofo_queue: list | tuple = ()
        self.ofo_bytes = 0
        self.nonagle = 0
        self.linger2 = 0
        self.keepalive_time = self.keepalive_intvl = self.keepalive_probes = 0
        self.bytes_acked = self.bytes_received = self.bytes_sent = self.bytes_retrans = 0
        self.segs_in = self.segs_out = self.data_segs_in = self.data_segs_out = 0
        self.fin_received = False
        self.syn_data = False
        self.repair = False
        self.thin_lto = False
        self.notsent_lowat = 0
        self.defer_accept = 0
        self.cork_pending = False
        self.rcv_rtt_us = 0
        self.rcv_rtt_seq = 0
        self.rcv_rtt_time = 0
        self.rcvq_space = 0
        self.rcvq_space_seq = 0
        self.rcvq_space_time = 0
        self.scaling_ratio = TCP_DEFAULT_SCALING_RATIO
        self.chrono_start = self.chrono_type = 0
        self.busy_time = self.rwnd_limited = self.sndbuf_limited = 0
        self.last_oow_ack_time = 0
        self.pred_flags = 0
        self.pending_events = 0
        self.challenge_count = 0
        self.open_time = clock.now_us()
        self.owner = None
        self.tcp_usec_ts = False
        self.ecn_flags = 0
        self.snd_wnd_probe_stamp = 0
        self.syn_opts = None
        self.rcv_mss_seen = 0
        self.inq_peek = 0
        self.probe0_backoff_max = 0
        self.snd_sml = 0
        self.snd_cwnd_clamp = 0xFFFFFFFF
        self.icsk_probes_tstamp = 0
        self.dup_ack_counter = 0
        self.rx_opt_dsack_pending = False
        self.tsorted: dict | None = None      # tsorted_sent_queue: unSACKed skbs by send time
        self.rack_end_seq = 0
        self.rack_advanced = False
        self.rack_reo_wnd_steps = 1
        self.rack_dsack_seen = False
        self.rack_last_delivered = 0
        self.rack_reo_wnd_persist = 0
        self.tlp_retrans = False
        self.recv_sack_cache: list = []
        self.reord_seen = 0
        self.dsack_dups = 0
        self.snd_cwnd_used = 0
        self.is_sack_reneg = False
        self.cwnd_usage_seq = 0
        self.highest_sack_seq = 0
        self.lost = 0
        self.dsack_seen_flag = False
        self.tx_count = 0           # orders transmissions within one clock tick (see recovery.py)
        self.tfo = None

    # ---- small helpers used everywhere --------------------------------------------------------

    def name(self) -> str:
        return STATE_NAMES.get(self.state, str(self.state))

    def tcp_packets_in_flight(self) -> int:
        """packets_out - left_out + retrans_out (``tcp_packets_in_flight``)."""
        return self.packets_out - (self.sacked_out + self.lost_out) + self.retrans_out

    def tcp_receive_window(self) -> int:
        """What is left of the window we last advertised (``tcp_receive_window``)."""
        win = self.rcv_wup + self.rcv_wnd - self.rcv_nxt
        return win if win > 0 else 0

    def in_pingpong_mode(self) -> bool:
        return self.ack_pingpong >= TCP_PINGPONG_THRESH

    def keepalive_time_when(self) -> int:
        """Idle time before the first keepalive probe, in us (``keepalive_time_when``)."""
        return self.keepalive_time or self.net.sysctl.tcp_keepalive_time * USEC

    def keepalive_intvl_when(self) -> int:
        return self.keepalive_intvl or self.net.sysctl.tcp_keepalive_intvl * USEC

    def keepalive_probes_n(self) -> int:
        return self.keepalive_probes or self.net.sysctl.tcp_keepalive_probes

    def tcp_fin_time(self) -> int:
        """FIN_WAIT2 lifetime for orphans in us (``tcp_fin_time``): linger2 or tcp_fin_timeout."""
        fin_timeout = self.linger2 if self.linger2 else self.net.sysctl.tcp_fin_timeout * USEC
        rto = self.icsk_rto
        if fin_timeout < (rto << 2) - (rto >> 1):
            fin_timeout = (rto << 2) - (rto >> 1)
        return fin_timeout

    def sock_owned(self) -> bool:
        return self.owned_by_user

    def __repr__(self) -> str:
        from ..packet.ipv4 import int2ip

        return (f"<TcpSock {int2ip(self.saddr)}:{self.sport} -> {int2ip(self.daddr)}:{self.dport}"
                f" {self.name()}>")


# wake-up keys (``wake_up_interruptible_poll(&wq->wait, key)``): what a wake-up is about
POLL_KEY_IN = 0x0C3     # EPOLLIN | EPOLLPRI | EPOLLRDNORM | EPOLLRDBAND (sock_def_readable)
POLL_KEY_OUT = 0x304    # EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND (sk_stream_write_space)
POLL_KEY_ERR = 0x008    # EPOLLERR (sock_def_error_report)


def sk_wake(sk, key: int = 0) -> None:
    """Wake everyone sleeping on the socket (``sk->sk_data_ready`` / ``sk_state_change`` /
    ``sk_write_space``). Blocking sleepers are one-shot; epoll entries (``ep_wq``) stay queued and
    get the ``key`` (0 = any event, as ``sk_state_change`` wakes), like ``ep_poll_callback``."""
    wq = sk.wq
    if wq:
        sk.wq = None
        for cb in wq:
            cb()
    ep = sk.ep_wq
    if ep:
        for epi in tuple(ep):
            epi.wake(key)


def sk_add_waiter(sk, cb) -> None:
    """Sleep on the socket's wait queue: ``cb()`` runs once at the next wake-up."""
    if sk.wq is None:
        sk.wq = [cb]
    else:
        sk.wq.append(cb)


def jiffies_round(us: int) -> int:
    """Round microseconds up to the jiffy, as ``usecs_to_jiffies`` does."""
    j = 1000  # USEC_PER_JIFFY at HZ=1000
    return -(-us // j) * j


def tcp_time_stamp_ts(sk: TcpSock) -> int:
    """The TS value clock (``tcp_time_stamp_ts``): milliseconds plus the connection's offset."""
    return (sk.net.clock.now_us() // 1000 + sk.tsoffset) & 0xFFFFFFFF


def wire32(x: int) -> int:
    return x & 0xFFFFFFFF


def unwrap(wire: int, ref: int) -> int:
    """The unwrapped value nearest ``ref`` whose low 32 bits are ``wire`` (``before``/``after``)."""
    d = (wire - ref) & 0xFFFFFFFF
    if d >= 0x80000000:
        d -= 0x100000000
    return ref + d


def ts_before(a: int, b: int) -> bool:
    """(s32)(a - b) < 0 for 32-bit timestamps."""
    return ((a - b) & 0xFFFFFFFF) >= 0x80000000


# timer.py imports this module (cycle): bound as a module, its handlers looked up at use
from . import timer as _timer  # noqa: E402
