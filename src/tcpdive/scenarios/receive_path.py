"""Scenario 2 — receive-path: fast path, slow path (out of order, odd flags), backlog, recv().

Article: STEP 2.2.2 (TCP receive): ``tcp_v4_rcv`` hands a segment to ``tcp_v4_do_rcv`` unless
the socket is owned by the user, in which case ``tcp_add_backlog`` queues it; in ESTABLISHED,
``tcp_rcv_established`` takes the fast path for expected in-order segments (straight to the
receive queue) and the slow path (``tcp_ack``, ``tcp_data_queue``, the out-of-order queue) for
anything unusual; ``recv()`` (``tcp_recvmsg``) then copies from the receive queue.

What differs: in a simulation a syscall takes no virtual time, so the scenario holds the socket
explicitly (``Socket.locked()``: ``lock_sock`` ... ``release_sock``, whose ``__release_sock``
feeds the backlog to ``tcp_v4_do_rcv``). Prequeue is gone since 4.14, as the article notes.
"""

from __future__ import annotations

from ..socket import SHUT_WR
from . import Options, Result, scenario
from ._common import Recorder, add_ladder, apply_sysctls, finish, make_world


@scenario("receive-path", "Fast path, slow path, out-of-order queue and the backlog, then recv()",
          "STEP 2.2.2 (tcp_v4_rcv, sock_owned_by_user/tcp_add_backlog, tcp_rcv_established fast/slow path)")
def run(opts: Options) -> Result:
    res = Result("receive-path", "The TCP receive path", __doc__ or "")
    w = make_world(opts)
    client = w.host("client", "192.168.106.1")
    server = w.host("server", "192.168.106.3")
    rec = Recorder(w, max_packets=60)
    drop_next = []

    def filt(pkt):
        off = (pkt[0] & 15) * 4
        plen = len(pkt) - off - (pkt[off + 12] >> 4) * 4
        if drop_next and plen == 1000:
            drop_next.pop()
            return False
        return True
    rec.link(client, server, delay=0.001, filter=filt)
    rec.watch(client, server)
    apply_sysctls(opts, client, server)
    paths: list[tuple[str, str]] = []
    phase = ["handshake"]
    accepted: list = []
    max_ofo = [0]

    def on_path(net, path, skb):
        if net is server and (skb.data or skb.flags & 1):
            paths.append((phase[0], " -> ".join(path)))
            if accepted and phase[0] == "out-of-order":
                max_ofo[0] = max(max_ofo[0], len(accepted[0].sk.ofo_queue or ()))
    server.trace.path.attach(on_path)
    ls = server.socket()
    ls.bind(("0.0.0.0", 80))
    ls.listen(8)
    c = client.socket()
    c.connect(("192.168.106.3", 80))
    s, _ = ls.accept()
    accepted.append(s)
    got = b""
    # 1. in order
    phase[0] = "in-order"
    for _ in range(3):
        c.sendall(b"a" * 200)
        w.run_for(0.05)
        got += s.recv(4096)
    # 2. out of order: the first of three segments is lost once
    phase[0] = "out-of-order"
    hp0 = server.mib["TcpExtTCPHPHits"]
    drop_next.append(1)
    c.sendall(b"b" * 1000)
    w.run_for(0.0001)
    c.sendall(b"c" * 1000)
    c.sendall(b"d" * 1000)
    w.run_for(0.01)
    ofo_len = max_ofo[0]              # deepest the out-of-order queue got before the hole filled
    w.run_for(2.0)
    got += s.recv(65536)
    # 3. owned by the application: backlog
    phase[0] = "owned by user"
    with s.locked():                          # lock_sock() ... release_sock()
        c.sendall(b"e" * 300)
        w.run_for(0.05)
        backlog = len(s.sk.backlog or [])
        before = s.sk.rcv_queue_bytes
        phase[0] = "release_sock"
    w.run_for(0.05)
    tail = s.recv(65536)
    # 4. odd flags: data with FIN (shutdown(SHUT_WR) right after send)
    phase[0] = "FIN flag"
    c.send(b"bye")
    c.shutdown(SHUT_WR)
    w.run_for(0.05)
    last = s.recv(100)
    res.section("Server: kernel functions each data segment went through (ftrace-like)",
                [f"{ph:>14}: {p}" for ph, p in paths])
    res.section("Counters (nstat)", [f"TcpExtTCPHPHits {server.mib['TcpExtTCPHPHits']}",
                                     f"TcpExtTCPOFOQueue {server.mib['TcpExtTCPOFOQueue']}",
                                     f"TcpExtTCPBacklogCoalesce {server.mib['TcpExtTCPBacklogCoalesce']}"])
    res.section("recv()", [f"in-order + out-of-order bytes read: {len(got)}",
                           f"after release_sock: {len(tail)} bytes ({tail[:10]!r}...)"])
    add_ladder(res, rec, "In order, one segment lost (the next ones go to the out-of-order queue), "
               "a segment while the socket is owned, then data + FIN")
    ino = [p for ph, p in paths if ph == "in-order"]
    ooo = [p for ph, p in paths if ph == "out-of-order"]
    urg = [p for ph, p in paths if ph == "FIN flag"]
    own = [p for ph, p in paths if ph == "release_sock"]
    res.check("in-order data takes the fast path: tcp_rcv_established(fast), counted in TcpExtTCPHPHits",
              ino and all("tcp_rcv_established(fast)" in p for p in ino) and hp0 >= 3, ino[0] if ino else "")
    res.check("segments after a hole take the slow path into the out-of-order queue",
              ofo_len >= 1 and any("(slow)" in p and "tcp_data_queue" in p for p in ooo)
              and server.mib["TcpExtTCPOFOQueue"] >= 1, f"ofo queue {ofo_len} skbs; " + (ooo[0] if ooo else ""))
    res.check("the retransmission fills the hole; recv() returns all bytes in order",
              got == b"a" * 600 + b"b" * 1000 + b"c" * 1000 + b"d" * 1000, f"{len(got)} bytes")
    res.check("a segment with FIN set leaves the fast path and reaches tcp_fin",
              urg and any("(slow)" in p for p in urg) and last == b"bye", urg[-1] if urg else "(none)")
    res.check("while the application owns the socket the segment goes to the backlog (tcp_add_backlog)",
              backlog == 1 and own and "tcp_add_backlog -> release_sock -> tcp_v4_do_rcv" in own[0], own[0] if own else "")
    res.check("release_sock processes the backlog; recv() then returns the data",
              tail == b"e" * 300 and before == 0, f"{len(tail)} bytes")
    finish(w)
    return res
