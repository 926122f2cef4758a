"""Scenario 12 — orphan-retries: close() on a socket whose FIN is never acknowledged.

Article: STEP 3.4.1 (``tcp_orphan_retries``): for an orphaned FIN_WAIT1 socket
``tcp_write_timeout`` uses ``tcp_orphan_retries(sk, alive)``; the sysctl's default 0 means 8
retries while the RTO is below TCP_RTO_MAX ("alive"). A small value kills it sooner.

What differs: the give-up point is Linux's time-based ``retransmits_timed_out``
(``tcp_model_timeout`` of N backoffs from TCP_RTO_MIN, counted from the first RTO
retransmission), so "8 retries" means "~102 s worth of backoffs from 200 ms", and the count
follows from the measured RTO; and a tail loss probe (RFC 8985) goes out before the first RTO.
"""

from __future__ import annotations

from . import Options, Result, scenario
from ._common import Recorder, _at, add_ladder, apply_sysctls, finish, make_world, plot, snapshot


@scenario("orphan-retries", "FIN_WAIT1 retries with tcp_orphan_retries 0 (8 while alive) and 2",
          "STEP 3.4.1 (tcp_orphan_retries, tcp_write_timeout, TCP_RTO_MAX/TCP_RTO_MIN)")
def run(opts: Options) -> Result:
    res = Result("orphan-retries", "Orphaned FIN_WAIT1 retries", __doc__ or "")
    out = {}
    series = []
    for val in (0, 2):
        w = make_world(opts)
        a = w.host("server", "10.0.0.1")
        b = w.host("client", "10.0.0.2")
        rec = Recorder(w, max_packets=60)
        link = rec.link(a, b, delay=0.005)
        rec.watch(a, b)
        apply_sysctls(opts, a, b)
        a.sysctl.set("net.ipv4.tcp_orphan_retries", str(val))
        ls = a.socket()
        ls.bind(("0.0.0.0", 3306))
        ls.listen(8)
        c = b.socket()
        c.connect(("10.0.0.1", 3306))
        s, _ = ls.accept()
        c.sendall(b"ping")
        s.recv(10)
        w.run_for(1.0)
        link.ba.set(loss=1.0)            # nothing from the client arrives any more
        t0 = w.now()
        s.close()                        # orphan: FIN_WAIT1, FIN never ACKed
        w.run_for(0.6)
        snap = snapshot(res, f"tcp_orphan_retries={val}: just after close()", a, ":3306")
        w.run_for(400.0)
        end = snapshot(res, f"tcp_orphan_retries={val}: later", a, ":3306")
        rtx = [(t - t0, rto) for t, h, rto in rec.retransmits if h == "server"]
        died = next((t for t, h, lab, o, n in rec.states if h == "server" and o == "FIN_WAIT1" and n == "CLOSE"), None)
        out[val] = dict(n=len(rtx), died=(died - t0) if died else None, snap=snap, end=end,
                        tmo=a.mib["TcpExtTCPAbortOnTimeout"])
        res.section(f"tcp_orphan_retries={val}: FIN retransmissions", [
            f"#{i + 1}: t=+{t:.3f} s" for i, (t, _) in enumerate(rtx)] + [
            f"socket destroyed at t=+{out[val]['died']:.3f} s" if died else "socket not destroyed"])
        series.append((f"tcp_orphan_retries={val}", [(i + 1, t) for i, (t, _) in enumerate(rtx)]))
        add_ladder(res, rec, f"tcp_orphan_retries={val}: FIN, FIN, FIN ... then gone",
                   select=lambda x: x["src"] == "server" and "F" in x["flags"])
        finish(w)
    plot(res, "FIN retransmissions of the orphan", "retransmission #", "seconds after close()", series, kind="points")
    z, two = out[0], out[2]
    res.check("close(): the orphan sits in FIN_WAIT1 with its retransmit timer on",
              any("FIN_WAIT1" in ln and " on (" in ln for ln in z["snap"]),
              next((ln for ln in z["snap"] if "FIN_WAIT1" in ln), ""))
    res.check("tcp_orphan_retries=0 means 8 while alive: ~8 FIN retransmissions, then the socket dies",
              7 <= z["n"] <= 9 and z["died"] is not None, f"{z['n']} retransmissions, dead at {_at(z['died'])}")
    res.check("tcp_orphan_retries=2: gives up after a loss probe and ~2-3 RTO retransmissions "
              "(1.4 s of backoff), much sooner",
              2 <= two["n"] <= 4 and two["died"] is not None and two["died"] < z["died"] / 10,
              f"{two['n']} retransmissions, dead at {_at(two['died'])}")
    res.check("nothing left in netstat afterwards", not any("FIN_WAIT1" in ln for ln in z["end"] + two["end"]))
    return res
