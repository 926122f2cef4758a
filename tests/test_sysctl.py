"""tcpdive.sysctl against Linux 6.18: defaults, /proc/sys write rules, sysctl(8) output and errors."""

from __future__ import annotations

import errno
import math
import os
import re
from pathlib import Path

import pytest

from tcpdive.ktime import HZ
from tcpdive.packetdrill import corpus_root
from tcpdive.sysctl import TABLE, Sysctl

# `sysctl -n` of every knob on a fresh Linux 6.18 namespace (nominal 8 GiB host where sized by RAM).
LINUX_6_18 = {
    # net/core/sock.c: rmem_max/wmem_max 4 MB ("net: set net.core.rmem_max and net.core.wmem_max
    # to 4 MB", 6.18), [rw]mem_default SK_[RW]MEM_DEFAULT = SKB_TRUESIZE(256) * 256; optmem_max
    # 128 KB; net/core/dev.c netdev_max_backlog; include/linux/socket.h SOMAXCONN (5.4+).
    "net.core.netdev_max_backlog": "1000",
    "net.core.optmem_max": "131072",
    "net.core.rmem_default": "212992",
    "net.core.rmem_max": "4194304",
    "net.core.somaxconn": "4096",
    "net.core.wmem_default": "212992",
    "net.core.wmem_max": "4194304",
    # net/ipv4/icmp.c icmp_sk_init(), af_inet.c inet_init_net() (port range, PROT_SOCK, IPDEFTTL),
    # devinet.c (ip_forward), ip_local_reserved_ports starts empty.
    "net.ipv4.icmp_echo_ignore_all": "0",
    "net.ipv4.icmp_echo_ignore_broadcasts": "1",
    "net.ipv4.icmp_ratelimit": "1000",
    "net.ipv4.icmp_ratemask": "6168",
    "net.ipv4.ip_autobind_reuse": "0",
    "net.ipv4.ip_default_ttl": "64",
    "net.ipv4.ip_dynaddr": "0",
    "net.ipv4.ip_forward": "0",
    "net.ipv4.ip_local_port_range": "32768\t60999",
    "net.ipv4.ip_local_reserved_ports": "",
    "net.ipv4.ip_forward_use_pmtu": "0",
    "net.ipv4.ip_no_pmtu_disc": "0",
    "net.ipv4.ip_nonlocal_bind": "0",
    "net.ipv4.route.min_pmtu": "552",
    "net.ipv4.route.mtu_expires": "600",
    "net.ipv4.ip_unprivileged_port_start": "1024",
    # Timers and retries: tcp_sk_init() with include/net/tcp.h TCP_KEEPALIVE_TIME (120 min),
    # TCP_KEEPALIVE_INTVL (75 s), TCP_KEEPALIVE_PROBES, TCP_SYN_RETRIES, TCP_SYNACK_RETRIES,
    # TCP_RETR1/2, TCP_FIN_TIMEOUT (= TCP_TIMEWAIT_LEN, 60 s); tcp_syn_linear_timeouts = 4 (6.5+);
    # tcp_tw_reuse = 2, tcp_tw_reuse_delay = 1 * MSEC_PER_SEC (6.14+); TCP_RTO_MIN (HZ/5),
    # TCP_RTO_MAX_SEC (tcp_rto_min_us 6.11+, tcp_rto_max_ms 6.15+); tcp_invalid_ratelimit HZ/2.
    "net.ipv4.tcp_keepalive_intvl": "75",
    "net.ipv4.tcp_keepalive_probes": "9",
    "net.ipv4.tcp_keepalive_time": "7200",
    "net.ipv4.tcp_retries1": "3",
    "net.ipv4.tcp_retries2": "15",
    "net.ipv4.tcp_orphan_retries": "0",
    "net.ipv4.tcp_syn_retries": "6",
    "net.ipv4.tcp_synack_retries": "5",
    "net.ipv4.tcp_syn_linear_timeouts": "4",
    "net.ipv4.tcp_fin_timeout": "60",
    "net.ipv4.tcp_tw_reuse": "2",
    "net.ipv4.tcp_tw_reuse_delay": "1000",
    "net.ipv4.tcp_rto_min_us": "200000",
    "net.ipv4.tcp_rto_max_ms": "120000",
    "net.ipv4.tcp_invalid_ratelimit": "500",
    "net.ipv4.tcp_thin_linear_timeouts": "0",
    # Sized from RAM (net/ipv4/tcp.c tcp_init(), tcp_init_mem(), tcp_ipv4.c tcp_set_hashinfo()):
    # ehash = RAM/128 KiB = 65536 buckets; tcp_rmem[2] = min(32 MB, RAM/128) (6.16+: 32 MB).
    "net.ipv4.tcp_max_orphans": "32768",
    "net.ipv4.tcp_max_tw_buckets": "32768",
    "net.ipv4.tcp_max_syn_backlog": "512",
    "net.ipv4.tcp_mem": "98304\t131072\t196608",
    "net.ipv4.tcp_rmem": "4096\t131072\t33554432",
    "net.ipv4.tcp_wmem": "4096\t16384\t4194304",
    # Options and loss recovery: tcp_sk_init().
    "net.ipv4.tcp_timestamps": "1",
    "net.ipv4.tcp_sack": "1",
    "net.ipv4.tcp_dsack": "1",
    "net.ipv4.tcp_fack": "0",
    "net.ipv4.tcp_window_scaling": "1",
    "net.ipv4.tcp_early_retrans": "3",
    "net.ipv4.tcp_recovery": "1",
    "net.ipv4.tcp_frto": "2",
    "net.ipv4.tcp_reordering": "3",
    "net.ipv4.tcp_max_reordering": "300",
    "net.ipv4.tcp_retrans_collapse": "1",
    "net.ipv4.tcp_slow_start_after_idle": "1",
    "net.ipv4.tcp_syncookies": "1",
    "net.ipv4.tcp_abort_on_overflow": "0",
    "net.ipv4.tcp_rfc1337": "0",
    "net.ipv4.tcp_stdurg": "0",
    "net.ipv4.tcp_workaround_signed_windows": "0",
    # ECN: tcp_sk_init() TCP_ECN_IN_ECN_OUT_NOECN, TCP_ACCECN_OPTION_FULL, TCP_ACCECN_OPTION_BEACON.
    "net.ipv4.tcp_ecn": "2",
    "net.ipv4.tcp_ecn_fallback": "1",
    "net.ipv4.tcp_ecn_option": "2",
    "net.ipv4.tcp_ecn_option_beacon": "3",
    # Windows, buffers, output path: tcp_sk_init(); TCP_BASE_MSS, TCP_MIN_SND_MSS,
    # TCP_PROBE_THRESHOLD, TCP_PROBE_INTERVAL; tcp_limit_output_bytes 4 MB.
    "net.ipv4.tcp_adv_win_scale": "1",
    "net.ipv4.tcp_app_win": "31",
    "net.ipv4.tcp_moderate_rcvbuf": "1",
    "net.ipv4.tcp_no_metrics_save": "0",
    "net.ipv4.tcp_no_ssthresh_metrics_save": "1",
    "net.ipv4.tcp_base_mss": "1024",
    "net.ipv4.tcp_min_snd_mss": "48",
    "net.ipv4.tcp_mtu_probing": "0",
    "net.ipv4.tcp_mtu_probe_floor": "48",
    "net.ipv4.tcp_probe_threshold": "8",
    "net.ipv4.tcp_probe_interval": "600",
    "net.ipv4.tcp_limit_output_bytes": "4194304",
    "net.ipv4.tcp_autocorking": "1",
    "net.ipv4.tcp_tso_win_divisor": "3",
    "net.ipv4.tcp_tso_rtt_log": "9",
    "net.ipv4.tcp_min_tso_segs": "2",
    "net.ipv4.tcp_pacing_ss_ratio": "200",
    "net.ipv4.tcp_pacing_ca_ratio": "120",
    "net.ipv4.tcp_notsent_lowat": "4294967295",
    "net.ipv4.tcp_min_rtt_wlen": "300",
    "net.ipv4.tcp_comp_sack_delay_ns": "1000000",
    "net.ipv4.tcp_comp_sack_nr": "44",
    "net.ipv4.tcp_comp_sack_slack_ns": "100000",
    "net.ipv4.tcp_backlog_ack_defer": "1",
    "net.ipv4.tcp_shrink_window": "0",
    "net.ipv4.tcp_pingpong_thresh": "1",
    "net.ipv4.tcp_challenge_ack_limit": "2147483647",
    # Fast Open: tcp_sk_init() TFO_CLIENT_ENABLE, blackhole timeout 0; no key set reads as zeros.
    "net.ipv4.tcp_fastopen": "1",
    "net.ipv4.tcp_fastopen_blackhole_timeout_sec": "0",
    "net.ipv4.tcp_fastopen_key": "00000000-00000000-00000000-00000000",
    # Congestion control: net/ipv4/tcp_cong.c, reno built in then cubic (CONFIG_DEFAULT_TCP_CONG).
    "net.ipv4.tcp_congestion_control": "cubic",
    "net.ipv4.tcp_available_congestion_control": "reno cubic",
    "net.ipv4.tcp_allowed_congestion_control": "reno cubic",
    # PLB and the rest: tcp_sk_init() (TCP_PLB_SCALE = 8 -> cong_thresh 128), zero-initialised
    # net->ipv4 fields, tcp_low_latency obsolete.
    "net.ipv4.tcp_plb_enabled": "0",
    "net.ipv4.tcp_plb_idle_rehash_rounds": "3",
    "net.ipv4.tcp_plb_rehash_rounds": "12",
    "net.ipv4.tcp_plb_suspend_rto_sec": "60",
    "net.ipv4.tcp_plb_cong_thresh": "128",
    "net.ipv4.tcp_child_ehash_entries": "0",
    "net.ipv4.tcp_early_demux": "1",
    "net.ipv4.tcp_fwmark_accept": "0",
    "net.ipv4.tcp_l3mdev_accept": "0",
    "net.ipv4.tcp_low_latency": "0",
    "net.ipv4.tcp_migrate_req": "0",
    "net.ipv4.tcp_reflect_tos": "0",
    # Not in Linux since 4.12: tcpdive's emulation for the article's NAT experiment.
    "net.ipv4.tcp_tw_recycle": "0",
}

EINVAL, ENOENT, EPERM = errno.EINVAL, errno.ENOENT, errno.EPERM


def setting_error(name: str, code: int) -> str:
    return f'sysctl: setting key "{name}": {os.strerror(code)}'


@pytest.fixture
def s() -> Sysctl:
    return Sysctl()


# -- defaults ------------------------------------------------------------------------------------


def test_table_is_exactly_the_documented_knobs() -> None:
    assert sorted(Sysctl.names()) == sorted(LINUX_6_18)


@pytest.mark.parametrize("name", sorted(LINUX_6_18))
def test_default_matches_linux_6_18(s: Sysctl, name: str) -> None:
    assert s.get(name) == LINUX_6_18[name]


def test_attributes_hold_values_in_the_shown_unit(s: Sysctl) -> None:
    assert s.tcp_keepalive_time == 7200 and s.tcp_fin_timeout == 60
    assert s.tcp_tw_reuse_delay == 1000 and s.tcp_invalid_ratelimit == 500
    assert s.ip_local_port_range == (32768, 60999)
    assert s.tcp_rmem == (4096, 131072, 33554432)
    assert s.tcp_congestion_control == "cubic"
    assert s.ip_local_reserved_ports == frozenset()
    assert not hasattr(s, "__dict__")


# -- sysctl -a | grep ------------------------------------------------------------------------------


def test_lines_keepalive_as_in_the_article(s: Sysctl) -> None:
    assert s.lines("keepalive") == [
        "net.ipv4.tcp_keepalive_intvl = 75",
        "net.ipv4.tcp_keepalive_probes = 9",
        "net.ipv4.tcp_keepalive_time = 7200",
    ]


def test_lines_retries_as_in_the_article(s: Sysctl) -> None:
    assert s.lines("retries") == [
        "net.ipv4.tcp_orphan_retries = 0",
        "net.ipv4.tcp_retries1 = 3",
        "net.ipv4.tcp_retries2 = 15",
        "net.ipv4.tcp_syn_retries = 6",
        "net.ipv4.tcp_synack_retries = 5",
    ]


def test_lines_is_sysctl_a_order_and_format(s: Sysctl) -> None:
    lines = s.lines()
    assert len(lines) == len(TABLE)
    assert [line.split(" = ")[0] for line in lines] == Sysctl.names()
    assert lines[0] == "net.core.netdev_max_backlog = 1000"
    assert "net.ipv4.ip_local_port_range = 32768\t60999" in lines
    ecn = [line for line in lines if line.startswith("net.ipv4.tcp_ecn")]
    assert ecn == ["net.ipv4.tcp_ecn = 2", "net.ipv4.tcp_ecn_fallback = 1",
                   "net.ipv4.tcp_ecn_option = 2", "net.ipv4.tcp_ecn_option_beacon = 3"]
    assert s.lines("no_such_knob") == []


def test_tw_recycle_is_a_marked_emulation(s: Sysctl) -> None:
    assert s.lines("tw_recycle") == ["net.ipv4.tcp_tw_recycle = 0"]
    assert s.doc("net.ipv4.tcp_tw_recycle").startswith(
        "tcpdive emulation of the pre-4.12 knob (removed from Linux in 4.12)")
    assert s.lines("tw_recycle", annotate=True) == [
        "net.ipv4.tcp_tw_recycle = 0  "
        "# tcpdive emulation of the pre-4.12 knob (removed from Linux in 4.12)"]
    assert s.set("net.ipv4.tcp_tw_recycle", "1") == "net.ipv4.tcp_tw_recycle = 1"
    assert s.tcp_tw_recycle == 1
    assert "emulation" not in s.doc("tcp_tw_reuse")


# -- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "net.ipv4.tcp_syn_retries", "net/ipv4/tcp_syn_retries", "/proc/sys/net/ipv4/tcp_syn_retries",
    "tcp_syn_retries", " net.ipv4.tcp_syn_retries ",
])
def test_name_forms(s: Sysctl, name: str) -> None:
    assert s.get(name) == "6"
    assert s.set(name, "3") == "net.ipv4.tcp_syn_retries = 3"
    assert s.tcp_syn_retries == 3


@pytest.mark.parametrize("name, path", [
    ("net.ipv4.tcp_foo", "/proc/sys/net/ipv4/tcp_foo"),
    ("net/ipv4/tcp_foo", "/proc/sys/net/ipv4/tcp_foo"),
    ("/proc/sys/net/ipv4/tcp_foo", "/proc/sys/net/ipv4/tcp_foo"),
    ("tcp_foo", "/proc/sys/tcp_foo"),
    ("net.ipv6.tcp_syn_retries", "/proc/sys/net/ipv6/tcp_syn_retries"),
    ("net.ipv4.tcp_fastopen_cookies", "/proc/sys/net/ipv4/tcp_fastopen_cookies"),
])
def test_unknown_name_is_enoent(s: Sysctl, name: str, path: str) -> None:
    message = f"sysctl: cannot stat {path}: No such file or directory"
    for call in (lambda: s.get(name), lambda: s.set(name, "1"), lambda: s.doc(name)):
        with pytest.raises(OSError) as e:
            call()
        assert (e.value.errno, e.value.strerror) == (ENOENT, message)


# -- writes that succeed -----------------------------------------------------------------------------


@pytest.mark.parametrize("name, value, shown", [
    ("tcp_tw_reuse", "1", "1"),
    ("tcp_tw_reuse", 0, "0"),
    ("tcp_tw_reuse", True, "1"),
    ("tcp_keepalive_time", "600", "600"),
    ("tcp_keepalive_time", "-5", "-5"),                  # proc_dointvec_jiffies takes negatives
    ("tcp_keepalive_time", str((2**31 - 1) // HZ), str((2**31 - 1) // HZ)),
    ("tcp_fin_timeout", "  30\n", "30"),
    ("tcp_syn_retries", "127", "127"),
    ("tcp_syn_linear_timeouts", "0", "0"),
    ("tcp_tw_reuse_delay", "60000", "60000"),
    ("tcp_timestamps", "2", "2"),
    ("tcp_syncookies", "2", "2"),
    ("tcp_ecn", "1", "1"),
    ("tcp_early_retrans", "4", "4"),
    ("tcp_adv_win_scale", "-31", "-31"),
    ("tcp_fastopen", "0x70403", str(0x70403)),           # base 0: hex
    ("tcp_fastopen", "-1", "-1"),
    ("tcp_retries2", "010", "8"),                         # base 0: octal
    ("tcp_notsent_lowat", "4294967295", "4294967295"),
    ("tcp_comp_sack_delay_ns", "18446744073709551615", "18446744073709551615"),
    ("tcp_rto_max_ms", "1000", "1000"),
    ("tcp_rto_min_us", "5000", "5000"),
    ("tcp_max_tw_buckets", "0", "0"),
    ("tcp_invalid_ratelimit", "0", "0"),
    ("icmp_ratelimit", "250", "250"),
    ("ip_default_ttl", "255", "255"),
    ("ip_forward", "1", "1"),
    ("somaxconn", "65535", "65535"),
    ("net.core.rmem_max", "2304", "2304"),
    ("net.core.wmem_max", "4608", "4608"),
    ("tcp_rmem", "4096 540000 15728640", "4096\t540000\t15728640"),
    ("tcp_wmem", (4096, 50000, 4194304), "4096\t50000\t4194304"),
    ("tcp_mem", "1 2 3", "1\t2\t3"),
    ("ip_local_port_range", "1024 65535", "1024\t65535"),
    ("ip_local_port_range", (40000, 40001), "40000\t40001"),
    ("ip_local_port_range", "32768 32768", "32768\t32768"),   # same parity: warning only
    ("ip_local_reserved_ports", "8080,9000-9002,9003,22", "22,8080,9000-9003"),
    ("ip_local_reserved_ports", "0-3,65535", "0-3,65535"),
    ("ip_local_reserved_ports", frozenset({5, 6, 9}), "5-6,9"),
    ("ip_local_reserved_ports", "", ""),
    ("ip_unprivileged_port_start", "0", "0"),
    ("tcp_congestion_control", "reno", "reno"),
    ("tcp_congestion_control", "cubic", "cubic"),
    ("tcp_allowed_congestion_control", "cubic", "cubic"),
    ("tcp_allowed_congestion_control", "cubic reno", "reno cubic"),
    ("tcp_allowed_congestion_control", "", ""),
    ("tcp_fastopen_key", "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4",
     "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4"),
    ("tcp_fastopen_key", "0x1-2-3-ABC,5-6-7-8", "00000001-00000002-00000003-00000abc,"
                                                "00000005-00000006-00000007-00000008"),
])
def test_good_values_round_trip(s: Sysctl, name: str, value: object, shown: str) -> None:
    line = s.set(name, value)  # type: ignore[arg-type]
    full = s.knob(name).name
    assert line.startswith(f"{full} = ")
    assert s.get(name) == shown
    assert f"{full} = {shown}" in s.lines()


def test_set_prints_the_value_as_given(s: Sysctl) -> None:
    assert s.set("net.ipv4.tcp_tw_reuse", "1") == "net.ipv4.tcp_tw_reuse = 1"
    assert s.set("net.ipv4.ip_local_port_range", "32768 32768") == \
        "net.ipv4.ip_local_port_range = 32768 32768"
    assert s.set("tcp_fastopen", " 0x70403 ") == "net.ipv4.tcp_fastopen = 0x70403"
    assert s.set("tcp_rmem", (1, 2, 3)) == "net.ipv4.tcp_rmem = 1 2 3"


def test_default_congestion_control_is_always_allowed(s: Sysctl) -> None:
    s.set("tcp_allowed_congestion_control", "cubic")
    s.set("tcp_congestion_control", "reno")
    assert s.get("tcp_allowed_congestion_control") == "reno cubic"


def test_port_range_and_unprivileged_start_bound_each_other(s: Sysctl) -> None:
    s.set("ip_unprivileged_port_start", "1")
    s.set("ip_local_port_range", "1 65535")
    assert s.ip_local_port_range == (1, 65535)
    with pytest.raises(OSError) as e:
        s.set("ip_unprivileged_port_start", "2")
    assert e.value.strerror == setting_error("net.ipv4.ip_unprivileged_port_start", EINVAL)
    assert s.ip_unprivileged_port_start == 1


# -- vector writes: what __do_proc_dointvec does with fewer or more fields -------------------------


def test_vector_fewer_fields_update_only_those(s: Sysctl) -> None:
    s.set("tcp_rmem", "8192")
    assert s.tcp_rmem == (8192, 131072, 33554432)
    s.set("ip_local_port_range", "40000")
    assert s.ip_local_port_range == (40000, 60999)


def test_vector_extra_fields_are_ignored(s: Sysctl) -> None:
    s.set("tcp_wmem", "1 2 3 4")
    assert s.tcp_wmem == (1, 2, 3)
    s.set("ip_local_port_range", "40000 50000 60000")
    assert s.ip_local_port_range == (40000, 50000)


def test_vector_fields_before_a_bad_one_are_kept(s: Sysctl) -> None:
    with pytest.raises(OSError):
        s.set("tcp_rmem", "8192 0 1")        # each field stored as it is converted
    assert s.tcp_rmem == (8192, 131072, 33554432)
    with pytest.raises(OSError):
        s.set("ip_local_port_range", "40000 x")   # ipv4_local_port_range parses into a copy
    assert s.ip_local_port_range == (32768, 60999)


# -- writes that fail ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, value, code", [
    # proc_dou8vec_minmax / proc_douintvec_minmax: out of range, negative, not a number
    ("tcp_tw_reuse", "3", EINVAL),
    ("tcp_tw_reuse", "-1", EINVAL),
    ("tcp_tw_reuse", "abc", EINVAL),
    ("tcp_tw_reuse", "", EINVAL),
    ("tcp_tw_reuse", "1x", EINVAL),
    ("tcp_tw_reuse", "1.0", EINVAL),
    ("tcp_tw_reuse", "+1", EINVAL),
    ("tcp_tw_reuse", "08", EINVAL),                      # octal has no 8
    ("tcp_syn_retries", "0", EINVAL),
    ("tcp_syn_retries", "128", EINVAL),
    ("tcp_syn_linear_timeouts", "128", EINVAL),
    ("tcp_retries2", "256", EINVAL),
    ("tcp_keepalive_probes", "-0", EINVAL),
    ("tcp_ecn", "3", EINVAL),                             # AccECN modes 3-5 are not in 6.18
    ("tcp_ecn_option", "3", EINVAL),
    ("tcp_ecn_option_beacon", "4", EINVAL),
    ("tcp_early_retrans", "5", EINVAL),
    ("tcp_app_win", "32", EINVAL),
    ("tcp_autocorking", "2", EINVAL),
    ("tcp_min_tso_segs", "0", EINVAL),
    ("tcp_pingpong_thresh", "0", EINVAL),
    ("icmp_echo_ignore_all", "2", EINVAL),
    ("ip_default_ttl", "0", EINVAL),
    ("ip_default_ttl", "256", EINVAL),
    ("tcp_tw_reuse_delay", "0", EINVAL),
    ("tcp_tw_reuse_delay", "60001", EINVAL),
    ("tcp_notsent_lowat", "4294967296", EINVAL),
    ("tcp_notsent_lowat", "-1", EINVAL),
    ("tcp_probe_interval", str((2**32 - 1) // HZ + 1), EINVAL),
    # proc_dointvec(_minmax)
    ("tcp_max_tw_buckets", "2147483648", EINVAL),
    ("tcp_max_tw_buckets", "-2147483649", EINVAL),
    ("tcp_max_tw_buckets", "99999999999999999999999", EINVAL),
    ("tcp_adv_win_scale", "32", EINVAL),
    ("tcp_adv_win_scale", "-32", EINVAL),
    ("tcp_pacing_ss_ratio", "1001", EINVAL),
    ("tcp_min_snd_mss", "47", EINVAL),
    ("tcp_mtu_probe_floor", "65536", EINVAL),
    ("tcp_min_rtt_wlen", "86401", EINVAL),
    ("tcp_rto_max_ms", "999", EINVAL),
    ("tcp_rto_max_ms", "120001", EINVAL),
    ("tcp_rto_min_us", "0", EINVAL),
    ("somaxconn", "-1", EINVAL),
    ("net.core.rmem_max", "2303", EINVAL),
    ("net.core.wmem_default", "4607", EINVAL),
    ("tcp_fastopen_blackhole_timeout_sec", "-1", EINVAL),
    ("ip_unprivileged_port_start", "65536", EINVAL),
    ("ip_unprivileged_port_start", "32769", EINVAL),     # above ip_local_port_range start
    # proc_dointvec_jiffies / _ms_jiffies
    ("tcp_keepalive_time", str((2**31 - 1) // HZ + 1), EINVAL),
    ("tcp_fin_timeout", "sixty", EINVAL),
    ("tcp_invalid_ratelimit", "-1", EINVAL),
    ("icmp_ratelimit", "2147483648", EINVAL),
    # vectors
    ("tcp_rmem", "0 87380 6291456", EINVAL),
    ("tcp_wmem", "4096 -1 4194304", EINVAL),
    ("tcp_rmem", "4096 abc", EINVAL),
    ("tcp_rmem", "   ", EINVAL),
    ("tcp_mem", "-1 2 3", EINVAL),
    ("tcp_mem", "1,2,3", EINVAL),
    # ip_local_port_range: each in 1..65535, low <= high, low >= ip_unprivileged_port_start
    ("ip_local_port_range", "60999 32768", EINVAL),
    ("ip_local_port_range", "0 60999", EINVAL),
    ("ip_local_port_range", "32768 65536", EINVAL),
    ("ip_local_port_range", "1023 60999", EINVAL),
    ("ip_local_port_range", "61000", EINVAL),             # low above the current high
    ("ip_local_port_range", "32768,60999", EINVAL),
    # proc_do_large_bitmap
    ("ip_local_reserved_ports", "65536", EINVAL),
    ("ip_local_reserved_ports", "10-5", EINVAL),
    ("ip_local_reserved_ports", "80, 443", EINVAL),
    ("ip_local_reserved_ports", "-80", EINVAL),
    ("ip_local_reserved_ports", "80 443", EINVAL),
    # strings
    ("tcp_congestion_control", "vegas", ENOENT),
    ("tcp_congestion_control", "CUBIC", ENOENT),
    ("tcp_congestion_control", "", ENOENT),
    ("tcp_allowed_congestion_control", "reno bbr", ENOENT),
    ("tcp_available_congestion_control", "reno", EPERM),
    ("tcp_fastopen_key", "", EINVAL),
    ("tcp_fastopen_key", "a1a1a1a1-b2b2b2b2-c3c3c3c3", EINVAL),
    ("tcp_fastopen_key", "a1-b2-c3-d4,zz", EINVAL),
    ("tcp_fastopen_key", "g1-b2-c3-d4", EINVAL),
])
def test_bad_values(s: Sysctl, name: str, value: str, code: int) -> None:
    knob = s.knob(name)
    before = getattr(s, knob.attr)
    with pytest.raises(OSError) as e:
        s.set(name, value)
    assert e.value.errno == code
    assert e.value.strerror == setting_error(knob.name, code)
    assert getattr(s, knob.attr) == before


def test_error_messages_are_the_ones_procps_prints(s: Sysctl) -> None:
    cases = [
        ("net.ipv4.tcp_tw_reuse", "3", EINVAL,
         'sysctl: setting key "net.ipv4.tcp_tw_reuse": Invalid argument'),
        ("net.ipv4.tcp_congestion_control", "vegas", ENOENT,
         'sysctl: setting key "net.ipv4.tcp_congestion_control": No such file or directory'),
        ("net.ipv4.tcp_available_congestion_control", "reno", EPERM,
         'sysctl: setting key "net.ipv4.tcp_available_congestion_control": '
         "Operation not permitted"),
    ]
    for name, value, code, message in cases:
        with pytest.raises(OSError) as e:
            s.set(name, value)
        assert e.value.args == (code, message)


# -- namespaces ------------------------------------------------------------------------------------


def test_copy_reset_as_dict(s: Sysctl) -> None:
    s.set("tcp_tw_reuse", "1")
    s.set("ip_local_port_range", "40000 50001")
    child = s.copy()
    assert child.as_dict() == s.as_dict()
    child.set("tcp_tw_reuse", "0")
    assert s.tcp_tw_reuse == 1
    assert list(s.as_dict()) == Sysctl.names()
    assert s.as_dict()["net.ipv4.ip_local_port_range"] == (40000, 50001)
    s.reset()
    assert s.as_dict() == Sysctl().as_dict()
    assert [s.get(n) for n in LINUX_6_18] == list(LINUX_6_18.values())


def test_constructor_applies_overrides() -> None:
    s = Sysctl(tcp_tw_reuse=1, ip_local_port_range="32768 32768")
    assert (s.tcp_tw_reuse, s.ip_local_port_range) == (1, (32768, 32768))
    with pytest.raises(OSError):
        Sysctl(tcp_tw_reuse=7)
    assert "tcp_tw_reuse=1" in repr(s)


def test_knob_rows_name_their_linux_handler() -> None:
    assert Sysctl.knob("tcp_keepalive_time").handler == "proc_dointvec_jiffies"
    assert Sysctl.knob("tcp_tw_reuse").handler == "proc_dou8vec_minmax"
    assert Sysctl.knob("tcp_tw_reuse_delay").handler == "proc_douintvec_minmax"
    assert Sysctl.knob("tcp_rmem").handler == "proc_dointvec_minmax"
    assert Sysctl.knob("tcp_mem").handler == "proc_doulongvec_minmax"
    assert Sysctl.knob("ip_local_reserved_ports").path == "/proc/sys/net/ipv4/ip_local_reserved_ports"
    assert all(k.doc and k.unit for k in TABLE)


# -- packetdrill's sysctl lines ----------------------------------------------------------------------

PACKETDRILL = corpus_root() or Path("/nonexistent")
_ASSIGN = re.compile(r'(/proc/sys/[\w/]+|net\.(?:ipv4|core)\.\w+)=("[^"]*"|[^\s`\\]+)')
# Google-internal knob; the scripts tolerate its absence (`... &> /dev/null || ip tcp_metrics flush`).
_NOT_IN_LINUX = {"tcp_fastopen_cookies"}


def _packetdrill_assignments() -> list[tuple[str, str]]:
    files = [PACKETDRILL / "defaults.sh", *sorted((PACKETDRILL / "tcp").rglob("*.pkt"))]
    out = []
    for f in files:
        for name, value in _ASSIGN.findall(f.read_text(errors="replace")):
            value = re.sub(r"\$\(\(([\d*]+)\)\)",
                           lambda m: str(math.prod(map(int, m.group(1).split("*")))), value)
            out.append((name, value.strip('"')))
    return out


@pytest.mark.skipif(not PACKETDRILL.is_dir(), reason="packetdrill corpus not present")
def test_packetdrill_sysctl_lines_apply() -> None:
    pairs = _packetdrill_assignments()
    assert ("net.ipv4.tcp_ecn_option", "2") in pairs
    s = Sysctl()
    for name, value in pairs:
        if name.rpartition(".")[2] in _NOT_IN_LINUX:
            with pytest.raises(OSError) as e:
                s.set(name, value)
            assert e.value.errno == ENOENT
            continue
        s.set(name, value)
        expected = value if "0x" not in value else str(int(value, 16))
        assert s.get(name) == "\t".join(expected.split()), (name, value)
