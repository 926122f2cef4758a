"""pcap sink: a ``net.trace.packet`` subscriber that writes classic libpcap files.

    pcap = PcapWriter("run.pcap")          # LINKTYPE_RAW: each record is one IPv4 datagram
    pcap.attach([client, server])          # 'out' on every host: each packet exactly once
    ... run the world ...
    pcap.close()

Timestamps are the virtual clock's microseconds, so Wireshark shows the simulated timeline
(0.000000, 0.005000, ...). The core never formats or writes anything; this module only listens.
``read_pcap`` reads such files back (classic pcap, either byte order, us or ns resolution).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

LINKTYPE_RAW = 101           # raw IPv4/IPv6, no link header (DLT_RAW as written to files)
LINKTYPE_ETHERNET = 1

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
_GLOBAL_HDR = struct.Struct("<IHHiIII")   # magic, major, minor, thiszone, sigfigs, snaplen, linktype
_REC_HDR = struct.Struct("<IIII")         # ts_sec, ts_usec, incl_len, orig_len

_DIRECTIONS = ("out", "in", "both")


class PcapWriter:
    """Writes classic pcap (v2.4, microsecond timestamps, little-endian) from trace events.

    ``path_or_file`` is a path (opened, and closed by ``close``) or a binary file object (left
    open). With ``LINKTYPE_ETHERNET`` a dummy Ethernet header (type IPv4) is prepended.
    """

    def __init__(self, path_or_file: str | Any, linktype: int = LINKTYPE_RAW,
                 snaplen: int = 65535) -> None:
        if isinstance(path_or_file, (str, bytes)) or hasattr(path_or_file, "__fspath__"):
            self._f: IO[bytes] = open(path_or_file, "wb")  # closed in close()
            self._own = True
        else:
            self._f = path_or_file
            self._own = False
        self.linktype = linktype
        self.snaplen = snaplen
        self.count = 0
        self.closed = False
        self._subs: list[tuple[Any, Any]] = []
        self._f.write(_GLOBAL_HDR.pack(PCAP_MAGIC_US, 2, 4, 0, 0, snaplen, linktype))

    # ---- writing ------------------------------------------------------------------------------

    def write(self, data: bytes, now_us: int) -> None:
        """Append one record: ``data`` (an IPv4 datagram) seen at virtual time ``now_us``."""
        if self.closed:
            return
        if self.linktype == LINKTYPE_ETHERNET:
            data = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + bytes(data)
        orig = len(data)
        incl = min(orig, self.snaplen)
        if now_us < 0:
            now_us = 0
        sec, usec = divmod(int(now_us), 1_000_000)
        f = self._f
        f.write(_REC_HDR.pack(sec & 0xFFFFFFFF, usec, incl, orig))
        f.write(bytes(data[:incl]))
        self.count += 1

    # ---- subscribing --------------------------------------------------------------------------

    def attach(self, net_or_nets: Any | Iterable[Any], direction: str = "out") -> PcapWriter:
        """Subscribe to ``trace.packet`` of one host or many; ``direction`` 'out'|'in'|'both'.

        For a world whose hosts are all captured, 'out' records every packet once (at send
        time); 'in' records it at arrival time (lost packets never appear).
        """
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {_DIRECTIONS}, not {direction!r}")
        nets = [net_or_nets] if hasattr(net_or_nets, "trace") else list(net_or_nets)
        for net in nets:
            if direction == "both":
                def fn(net_, dev, data, d, now, _w=self.write):
                    _w(data, now)
            else:
                def fn(net_, dev, data, d, now, _w=self.write, _want=direction):
                    if d == _want:
                        _w(data, now)
            net.trace.packet.attach(fn)
            self._subs.append((net, fn))
        return self

    def detach(self) -> None:
        """Stop listening on every host this writer was attached to."""
        for net, fn in self._subs:
            net.trace.packet.detach(fn)
        self._subs.clear()

    def flush(self) -> None:
        if not self.closed:
            self._f.flush()

    def close(self) -> None:
        """Detach, flush, and close the file if this writer opened it."""
        if self.closed:
            return
        self.detach()
        self._f.flush()
        if self._own:
            self._f.close()
        self.closed = True

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class PcapRecord:
    ts_us: int
    data: bytes
    orig_len: int


@dataclass
class PcapFile:
    """What ``read_pcap`` returns: the global header fields and the records."""

    linktype: int
    snaplen: int
    version: tuple[int, int]
    packets: list[PcapRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.packets)

    def __iter__(self) -> Iterator[PcapRecord]:
        return iter(self.packets)

    def __getitem__(self, i: int) -> PcapRecord:
        return self.packets[i]


def read_pcap(path_or_file: str | Any) -> PcapFile:
    """Read a classic pcap file (any byte order; us or ns timestamps, returned as us).

    Raises ``ValueError`` on a bad magic number or a truncated record.
    """
    if isinstance(path_or_file, (str, bytes)) or hasattr(path_or_file, "__fspath__"):
        with open(path_or_file, "rb") as f:
            buf = f.read()
    else:
        buf = path_or_file.read()
    if len(buf) < 24:
        raise ValueError("pcap: file shorter than the global header")
    for endian in ("<", ">"):
        magic = struct.unpack_from(endian + "I", buf)[0]
        if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            break
    else:
        raise ValueError(f"pcap: bad magic {buf[:4].hex()}")
    ns = magic == PCAP_MAGIC_NS
    _, major, minor, _, _, snaplen, linktype = struct.unpack_from(endian + "IHHiIII", buf)
    out = PcapFile(linktype & 0xFFFF, snaplen, (major, minor))
    rec = struct.Struct(endian + "IIII")
    off = 24
    n = len(buf)
    while off < n:
        if off + 16 > n:
            raise ValueError(f"pcap: truncated record header at offset {off}")
        sec, frac, incl, orig = rec.unpack_from(buf, off)
        off += 16
        if off + incl > n:
            raise ValueError(f"pcap: truncated record data at offset {off}")
        ts = sec * 1_000_000 + (frac // 1000 if ns else frac)
        out.packets.append(PcapRecord(ts, buf[off:off + incl], orig))
        off += incl
    return out


__all__ = ["PcapWriter", "PcapFile", "PcapRecord", "read_pcap", "LINKTYPE_RAW",
           "LINKTYPE_ETHERNET"]
