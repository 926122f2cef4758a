"""Close states line up with the kernel's own ``ss -tan`` at each step; keepalive both ways."""

from __future__ import annotations

import socket as pysocket
import time

from tcpdive.socket import SO_KEEPALIVE, SOL_SOCKET, TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL

from .conftest import needs_real, tap, unique_port, wait_until

pytestmark = needs_real


def _pair(stack):
    """A tcpdive client connected to a kernel listener in the namespace: (tcpdive, kernel)."""
    port = unique_port()
    ls = stack.ns.socket()
    ls.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
    ls.bind((stack.kernel_addr, port))
    ls.listen(4)
    ls.settimeout(10)
    c = stack.socket()
    c.settimeout(10)
    c.connect((stack.kernel_addr, port))
    k, _ = ls.accept()
    ls.close()
    return c, k, c.getsockname()


def _settle(stack, want_td: str | None, want_k: str | None, port: int) -> tuple:
    """Poll until both sides show the expected state for the connection (or time out)."""
    deadline = time.monotonic() + 10
    while True:
        td = [s[0] for s in stack.states() if s[1].endswith(f":{port}")]
        kk = [r["state"] for r in stack.ns.ss("-tan") if r["peer"].endswith(f":{port}")]
        got = (td[0] if td else None, kk[0] if kk else None)
        if got == (want_td, want_k) or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def test_tcpdive_closes_first(stack):
    c, k, (_, port) = _pair(stack)
    assert _settle(stack, "ESTABLISHED", "ESTAB", port) == ("ESTABLISHED", "ESTAB")
    c.close()
    assert _settle(stack, "FIN_WAIT2", "CLOSE-WAIT", port) == ("FIN_WAIT2", "CLOSE-WAIT")
    k.close()
    assert _settle(stack, "TIME_WAIT", None, port) == ("TIME_WAIT", None)


def test_kernel_closes_first(stack):
    c, k, (_, port) = _pair(stack)
    k.close()
    assert _settle(stack, "CLOSE_WAIT", "FIN-WAIT-2", port) == ("CLOSE_WAIT", "FIN-WAIT-2")
    assert c.recv(10) == b""          # EOF seen by the application
    c.close()
    assert _settle(stack, None, "TIME-WAIT", port) == (None, "TIME-WAIT")


def test_tcpdive_keepalive_probes_answered_by_kernel(stack):
    seen = tap(stack)
    c, k, (_, port) = _pair(stack)
    for opt, v in ((TCP_KEEPIDLE, 1), (TCP_KEEPINTVL, 1), (TCP_KEEPCNT, 2)):
        c.setsockopt(6, opt, v)
    c.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1)
    syn = next(t for d, t in list(seen) if d == "out" and t.flags & 0x02)

    def probes():
        return [t for d, t in list(seen) if d == "out" and t.dlen == 0 and t.seq == syn.seq
                and not t.flags & 0x02]

    # a third probe only comes if the first two were answered: unanswered, TCP_KEEPCNT=2
    # probes 1 s apart kill the connection instead
    wait_until(probes, lambda p: len(p) >= 3, timeout=15, what="tcpdive keepalive probes")
    answers = [t for d, t in list(seen) if d == "in" and t.dlen == 0 and t.ack == syn.seq + 1
               and t.flags == 0x10]
    assert len(answers) >= 2
    assert _settle(stack, "ESTABLISHED", "ESTAB", port) == ("ESTABLISHED", "ESTAB")
    assert any("keepalive" in ln for ln in stack.netstat(f":{port}", header=False))
    c.close()
    k.close()


def test_kernel_keepalive_probes_answered_by_tcpdive(stack):
    seen = tap(stack)
    c, k, (_, port) = _pair(stack)
    k.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_KEEPALIVE, 1)
    k.setsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_KEEPIDLE, 1)
    k.setsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_KEEPINTVL, 1)
    k.setsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_KEEPCNT, 2)
    synack = next(t for d, t in list(seen) if d == "in" and t.flags & 0x12 == 0x12)

    def probes():
        return [t for d, t in list(seen) if d == "in" and t.dlen == 0 and t.seq == synack.seq
                and not t.flags & 0x02]

    wait_until(probes, lambda p: len(p) >= 3, timeout=15, what="kernel keepalive probes")
    answers = [t for d, t in list(seen) if d == "out" and t.dlen == 0
               and t.ack == synack.seq + 1 and t.flags == 0x10]
    assert len(answers) >= 3                        # the handshake's final ACK + answers
    assert _settle(stack, "ESTABLISHED", "ESTAB", port) == ("ESTABLISHED", "ESTAB")
    assert "keepalive" in stack.ns.exec(["ss", "-tano"]).stdout
    assert k.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_ERROR) == 0
    c.close()
    k.close()
