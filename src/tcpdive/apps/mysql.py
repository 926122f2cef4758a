"""A MySQL-like server and query client (the article's pymysql script, STEP 3.3.2).

Not the MySQL wire protocol: a line protocol with the same shape on the wire — the server
greets, the client sends a query, the server answers one row. The client, like
libmysqlclient/pymysql, sets SO_KEEPALIVE on its socket (idle time from
net.ipv4.tcp_keepalive_time unless given) and then sleeps ``interval`` seconds between queries
without reading: a FIN that arrives while it sleeps leaves it in CLOSE_WAIT.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..socket import SO_KEEPALIVE, SOL_SOCKET

VERSION = b"8.0.35"


class MySqlServer:
    def __init__(self, port: int = 3306) -> None:
        self.port = port
        self.server: Any = None
        self.conns: list[asyncio.StreamWriter] = []
        self.queries = 0

    async def start(self) -> MySqlServer:
        self.server = await asyncio.start_server(self._client, "0.0.0.0", self.port)
        return self

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.conns.append(writer)
        writer.write(b"HELLO " + VERSION + b"\n")
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                self.queries += 1
                if line.strip().upper() == b"SELECT VERSION()":
                    writer.write(VERSION + b"\n")
                else:
                    writer.write(b"OK\n")
        except (ConnectionError, OSError):
            pass
        finally:
            _close(writer)

    def shutdown(self) -> None:
        """``docker stop mysql``: close the listener and every client connection (FIN)."""
        if self.server is not None:
            self.server.close()
        for w in self.conns:
            w.close()
        self.conns.clear()


class MySqlClient:
    """``con = pymysql.connect(...); while True: cur.execute("SELECT VERSION()"); sleep(N)``."""

    def __init__(self, host: str, port: int = 3306, interval: float = 600.0,
                 keepalive: bool = True) -> None:
        self.host = host
        self.port = port
        self.interval = interval
        self.keepalive = keepalive
        self.results: list[tuple[float, bytes]] = []
        self.error: BaseException | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.sock: Any = None

    async def run(self, queries: int | None = None) -> None:
        loop = asyncio.get_running_loop()
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.writer = writer
            self.sock = writer.get_extra_info("socket")
            if self.keepalive and self.sock is not None:
                self.sock.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1)
            await reader.readline()                      # greeting
            n = 0
            while queries is None or n < queries:
                writer.write(b"SELECT VERSION()\n")
                row = await reader.readline()
                if not row:
                    raise ConnectionResetError("Lost connection to MySQL server during query")
                self.results.append((loop.time(), row.strip()))
                n += 1
                await asyncio.sleep(self.interval)
        except (ConnectionError, OSError) as e:
            self.error = e


def _close(writer) -> None:
    """Close a stream, tolerating a loop already closed (a task collected after its world)."""
    try:
        writer.close()
    except RuntimeError:
        pass
