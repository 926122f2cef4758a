"""The kernel-side peer for bulk tests and benchmarks, run inside a namespace.

    ip netns exec NS python3 -m tcpdive.real.kpeer listen-sink  PORT
    ip netns exec NS python3 -m tcpdive.real.kpeer listen-source PORT NBYTES
    ip netns exec NS python3 -m tcpdive.real.kpeer connect-sink  HOST PORT
    ip netns exec NS python3 -m tcpdive.real.kpeer connect-source HOST PORT NBYTES

A listener prints ``READY`` once listening. At the end one JSON line: bytes, sha256, seconds
(first byte to last), and the kernel's TCP_INFO retransmits/segments.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import struct
import sys
import time
from collections.abc import Iterator

CHUNK = 1 << 20
_BLOCK: list[bytes] = []


def pattern(nbytes: int, seed: int = 7) -> Iterator[bytes]:
    """Deterministic payload in chunks of up to 1 MiB (each chunk a different rotation)."""
    if not _BLOCK:
        _BLOCK.append(random.Random(seed).randbytes(CHUNK))
    block = _BLOCK[0]
    i = 0
    left = nbytes
    while left > 0:
        r = (i * 7919) % CHUNK
        chunk = block[r:] + block[:r]
        if left < CHUNK:
            chunk = chunk[:left]
        left -= len(chunk)
        i += 1
        yield chunk


def pattern_sha256(nbytes: int) -> str:
    h = hashlib.sha256()
    for c in pattern(nbytes):
        h.update(c)
    return h.hexdigest()


_INFO = struct.Struct("=BBBBBBBBIIIIIIIIIIIIIIIIIIIIIIIIQQQQIIIIII")


def _info(s: socket.socket) -> dict:
    try:
        v = _INFO.unpack_from(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256))
        return {"total_retrans": v[31], "mss": v[10], "data_segs_out": v[-1]}
    except (OSError, struct.error):
        return {}


def sink(s: socket.socket) -> dict:
    h = hashlib.sha256()
    n = 0
    t0 = None
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while True:
        k = s.recv_into(buf)
        if not k:
            break
        if t0 is None:
            t0 = time.perf_counter()
        h.update(view[:k])
        n += k
    dt = time.perf_counter() - (t0 or time.perf_counter())
    return {"bytes": n, "sha256": h.hexdigest(), "seconds": dt, **_info(s)}


def source(s: socket.socket, nbytes: int) -> dict:
    h = hashlib.sha256()
    t0 = time.perf_counter()
    for c in pattern(nbytes):
        s.sendall(c)
        h.update(c)
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):        # wait for the peer's FIN: everything was delivered
        pass
    dt = time.perf_counter() - t0
    return {"bytes": nbytes, "sha256": h.hexdigest(), "seconds": dt, **_info(s)}


def main(argv: list[str]) -> int:
    mode = argv[0]
    if mode.startswith("listen"):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("0.0.0.0", int(argv[1])))
        ls.listen(8)
        print("READY", flush=True)
        s, _ = ls.accept()
        ls.close()
        res = sink(s) if mode == "listen-sink" else source(s, int(argv[2]))
    else:
        s = socket.create_connection((argv[1], int(argv[2])), timeout=30)
        s.settimeout(None)
        res = sink(s) if mode == "connect-sink" else source(s, int(argv[3]))
    s.close()
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
