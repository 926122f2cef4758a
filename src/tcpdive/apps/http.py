"""HTTP/1.1 like nginx (``keepalive_timeout``) and a curl-like one-shot client.

nginx: after a response, a keep-alive connection waits up to ``keepalive_timeout`` seconds for
the next request, then closes it (the server is the active closer and keeps TIME_WAIT);
``keepalive_timeout 0`` disables keep-alive: the response carries ``Connection: close`` and the
server closes right after it. ``so_keepalive`` (nginx's ``listen ... so_keepalive=idle:intvl:cnt``)
turns on TCP keepalive on accepted sockets.

curl: one request, read the response, close — the client closes first unless the server did.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..socket import IPPROTO_TCP, SO_KEEPALIVE, SOL_SOCKET, TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL

BODY = b"<html><body><h1>Welcome to tcpdive</h1></body></html>\n"


class HttpServer:
    """``server { listen PORT; keepalive_timeout N; }``."""

    def __init__(self, port: int = 80, keepalive_timeout: float = 75.0,
                 so_keepalive: tuple[int, int, int] | None = None, body: bytes = BODY) -> None:
        self.port = port
        self.keepalive_timeout = keepalive_timeout
        self.so_keepalive = so_keepalive
        self.body = body
        self.server: Any = None
        self.requests = 0
        self.closed_by_timeout = 0
        self.events: list[tuple[float, str]] = []

    async def start(self) -> HttpServer:
        self.server = await asyncio.start_server(self._client, "0.0.0.0", self.port, backlog=511)
        return self

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if self.so_keepalive and sock is not None:
            idle, intvl, cnt = self.so_keepalive
            sock.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1)
            sock.setsockopt(IPPROTO_TCP, TCP_KEEPIDLE, idle)
            sock.setsockopt(IPPROTO_TCP, TCP_KEEPINTVL, intvl)
            sock.setsockopt(IPPROTO_TCP, TCP_KEEPCNT, cnt)
        try:
            first = True
            while True:
                try:
                    if first or self.keepalive_timeout <= 0:
                        head = await reader.readuntil(b"\r\n\r\n")
                    else:
                        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                                      self.keepalive_timeout)
                except TimeoutError:
                    self.closed_by_timeout += 1
                    self.events.append((self._now(), "keepalive_timeout: server closes"))
                    break
                except (asyncio.IncompleteReadError, ConnectionError, OSError):
                    break
                first = False
                self.requests += 1
                close = self.keepalive_timeout <= 0 or b"connection: close" in head.lower()
                hdrs = (b"HTTP/1.1 200 OK\r\nServer: tcpdive\r\nContent-Type: text/html\r\n"
                        b"Content-Length: %d\r\n" % len(self.body))
                hdrs += b"Connection: close\r\n\r\n" if close else b"Connection: keep-alive\r\n\r\n"
                writer.write(hdrs + self.body)
                await writer.drain()
                if close:
                    break
        finally:
            _close(writer)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """(status, headers, body) of one response with Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length)
    return status, head, body


async def curl(host: str, port: int = 80, path: str = "/", timeout: float | None = None
               ) -> tuple[int, bytes, tuple[str, int] | None]:
    """``curl http://HOST:PORT/PATH``: one request, then close. Returns (status, body, sockname).

    Like curl, a failed connect raises ``OSError`` (curl: (7) Couldn't connect to server).
    """
    async def go():
        reader, writer = await asyncio.open_connection(host, port)
        name = writer.get_extra_info("sockname")
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/8.5.0\r\n"
                         f"Accept: */*\r\n\r\n".encode())
            status, _, body = await read_response(reader)
        finally:
            _close(writer)
        return status, body, name

    if timeout is None:
        return await go()
    return await asyncio.wait_for(go(), timeout)


class HttpClient:
    """A browser-like persistent connection: several requests over one socket."""

    def __init__(self, host: str, port: int = 80, so_keepalive: tuple[int, int, int] | None = None):
        self.host = host
        self.port = port
        self.so_keepalive = so_keepalive
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str = "/") -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            sock = self.writer.get_extra_info("socket")
            if self.so_keepalive and sock is not None:
                idle, intvl, cnt = self.so_keepalive
                sock.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1)
                sock.setsockopt(IPPROTO_TCP, TCP_KEEPIDLE, idle)
                sock.setsockopt(IPPROTO_TCP, TCP_KEEPINTVL, intvl)
                sock.setsockopt(IPPROTO_TCP, TCP_KEEPCNT, cnt)
        assert self.reader is not None and self.writer is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        status, _, _ = await read_response(self.reader)
        return status

    async def wait_closed_by_peer(self) -> bytes:
        """Read until EOF (the server closed) and close our side too."""
        assert self.reader is not None and self.writer is not None
        data = await self.reader.read()
        self.writer.close()
        return data


def _close(writer) -> None:
    """Close a stream, tolerating a loop already closed (a task collected after its world)."""
    try:
        writer.close()
    except RuntimeError:
        pass
