"""Small servers on tcpdive, written with ordinary asyncio streams (echo, HTTP/1.1, Redis RESP).

They run on the RealStack loop with :mod:`tcpdive.sim.aio` (the same streams API as in the
simulator). HTTP: ``GET /`` (a short page), ``GET /bytes/N`` (N pattern bytes, see
:mod:`tcpdive.real.kpeer`), ``POST /sha256`` (the body's sha256), keep-alive unless the client
says ``Connection: close`` or speaks HTTP/1.0. Redis: PING, ECHO, SET, GET, DEL, INCR, EXISTS,
DBSIZE, FLUSHALL, QUIT, CLIENT/COMMAND/HELLO (enough for redis-cli and redis-py).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from ..sim import aio
from .kpeer import pattern

__all__ = ["SERVERS", "start"]

DEFAULT_PORTS = {"echo": 7, "http": 80, "redis": 6379}


async def echo_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def http_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            parts = line.decode("latin-1").split()
            if len(parts) < 3:
                break
            method, path, version = parts[0], parts[1], parts[2]
            headers: dict[str, str] = {}
            while True:
                h = await reader.readline()
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            conn = headers.get("connection", "").lower()
            keep = (version == "HTTP/1.1" and conn != "close") or conn == "keep-alive"
            n = int(headers.get("content-length", "0") or 0)
            status = "200 OK"
            body: Any = None
            length = 0
            if method == "POST" and path == "/sha256":
                hsh = hashlib.sha256()
                left = n
                while left:
                    chunk = await reader.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    hsh.update(chunk)
                    left -= len(chunk)
                body = (hsh.hexdigest() + "\n").encode()
            else:
                if n:
                    await reader.readexactly(n)
                if path.startswith("/bytes/"):
                    length = int(path[7:])
                    body = pattern(length)
                elif path == "/":
                    body = b"hello from tcpdive\n"
                else:
                    status, body = "404 Not Found", b"not found\n"
            if isinstance(body, bytes):
                length = len(body)
            head = (f"HTTP/1.1 {status}\r\nServer: tcpdive\r\nContent-Length: {length}\r\n"
                    f"Content-Type: application/octet-stream\r\n"
                    f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n")
            writer.write(head.encode())
            if method != "HEAD":
                if isinstance(body, bytes):
                    writer.write(body)
                else:
                    for chunk in body:
                        writer.write(chunk)
                        await writer.drain()
            await writer.drain()
            if not keep:
                break
    except (OSError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


def _resp(v: Any) -> bytes:
    if v is None:
        return b"$-1\r\n"
    if isinstance(v, int):
        return b":%d\r\n" % v
    if isinstance(v, Exception):
        return b"-ERR " + str(v).encode() + b"\r\n"
    if isinstance(v, str):
        return b"+" + v.encode() + b"\r\n"
    if isinstance(v, list):
        return b"*%d\r\n" % len(v) + b"".join(_resp(x) for x in v)
    return b"$%d\r\n" % len(v) + v + b"\r\n"


async def _read_command(reader: asyncio.StreamReader) -> list[bytes] | None:
    line = await reader.readline()
    if not line:
        return None
    if not line.startswith(b"*"):
        return line.split()                            # inline command (telnet style)
    out = []
    for _ in range(int(line[1:])):
        ln = await reader.readline()
        size = int(ln[1:])
        out.append((await reader.readexactly(size + 2))[:-2])
    return out


def redis_handler_factory() -> Any:
    db: dict[bytes, bytes] = {}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                cmd = await _read_command(reader)
                if cmd is None:
                    break
                if not cmd:
                    continue
                name = cmd[0].upper()
                a = cmd[1:]
                if name == b"PING":
                    r: Any = a[0] if a else "PONG"
                elif name == b"ECHO":
                    r = a[0]
                elif name == b"SET":
                    db[a[0]] = a[1]
                    r = "OK"
                elif name == b"GET":
                    r = db.get(a[0])
                elif name == b"DEL":
                    r = sum(db.pop(k, None) is not None for k in a)
                elif name == b"EXISTS":
                    r = sum(k in db for k in a)
                elif name == b"INCR":
                    v = int(db.get(a[0], b"0")) + 1
                    db[a[0]] = b"%d" % v
                    r = v
                elif name == b"DBSIZE":
                    r = len(db)
                elif name == b"FLUSHALL":
                    db.clear()
                    r = "OK"
                elif name in (b"CLIENT", b"SELECT", b"READONLY"):
                    r = "OK"
                elif name == b"COMMAND":
                    r = []
                elif name == b"HELLO":
                    r = ValueError("unknown command 'HELLO'")
                elif name == b"QUIT":
                    writer.write(_resp("OK"))
                    break
                else:
                    r = ValueError(f"unknown command '{name.decode(errors='replace')}'")
                writer.write(_resp(r))
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            pass
        finally:
            writer.close()

    return handler


SERVERS = {"echo": lambda: echo_handler, "http": lambda: http_handler,
           "redis": redis_handler_factory}


async def start(stack: Any, kind: str, port: int | None = None) -> Any:
    """Start server ``kind`` on the stack (on its loop); returns the asyncio-style server."""
    handler = SERVERS[kind]()
    return await aio.start_server(handler, "0.0.0.0", port or DEFAULT_PORTS[kind], on=stack.net)
