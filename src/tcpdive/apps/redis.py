"""A Redis-protocol (RESP) subset: server and client, with and without a connection pool.

Server commands: PING, SET, SETEX, GET, DEL, CONFIG GET/SET tcp-keepalive. Like redis-server
(``anetKeepAlive`` in anet.c, called from ``acceptCommonHandler``), every accepted client socket
gets ``SO_KEEPALIVE`` with ``TCP_KEEPIDLE`` = tcp-keepalive, ``TCP_KEEPINTVL`` = tcp-keepalive/3
and ``TCP_KEEPCNT`` = 3 when tcp-keepalive > 0; ``CONFIG SET tcp-keepalive`` applies to clients
accepted afterwards, as in Redis. The default is 300 (Redis >= 3.2.1).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..socket import IPPROTO_TCP, SO_KEEPALIVE, SOL_SOCKET, TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL


def encode_command(*args: Any) -> bytes:
    """A RESP array of bulk strings, as redis-py's ``pack_command`` writes it."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


async def read_reply(reader: asyncio.StreamReader) -> Any:
    """One RESP reply: +simple, -error (raised), :int, $bulk, *array."""
    line = await reader.readline()
    if not line:
        raise ConnectionResetError("connection closed by server")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = await reader.readexactly(n + 2)
        return data[:-2]
    if kind == b"*":
        return [await read_reply(reader) for _ in range(int(rest))]
    raise RuntimeError(f"protocol error: {line!r}")


async def read_command(reader: asyncio.StreamReader) -> list[bytes] | None:
    """One request: a RESP array, or an inline command line (what telnet sends)."""
    line = await reader.readline()
    if not line:
        return None
    if line[:1] == b"*":
        args = []
        for _ in range(int(line[1:-2])):
            hdr = await reader.readline()
            n = int(hdr[1:-2])
            args.append((await reader.readexactly(n + 2))[:-2])
        return args
    return line.strip().split()


class RedisServer:
    """``redis-server --port PORT --tcp-keepalive N`` on a simulated host."""

    def __init__(self, port: int = 6379, tcp_keepalive: int = 300) -> None:
        self.port = port
        self.tcp_keepalive = tcp_keepalive
        self.data: dict[bytes, bytes] = {}
        self.expires: dict[bytes, float] = {}
        self.server: Any = None
        self.clients: list[asyncio.StreamWriter] = []
        self.commands = 0
        self.accepted = 0

    async def start(self) -> RedisServer:
        self.server = await asyncio.start_server(self._client, "0.0.0.0", self.port, backlog=511)
        return self

    def _set_keepalive(self, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is None or self.tcp_keepalive <= 0:
            return
        sock.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1)
        sock.setsockopt(IPPROTO_TCP, TCP_KEEPIDLE, self.tcp_keepalive)
        sock.setsockopt(IPPROTO_TCP, TCP_KEEPINTVL, max(1, self.tcp_keepalive // 3))
        sock.setsockopt(IPPROTO_TCP, TCP_KEEPCNT, 3)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._set_keepalive(writer)
        self.clients.append(writer)
        try:
            while True:
                args = await read_command(reader)
                if args is None:
                    break
                if not args:
                    continue
                self.commands += 1
                writer.write(self.execute(args))
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            if writer in self.clients:
                self.clients.remove(writer)
            _close(writer)

    def execute(self, args: list[bytes]) -> bytes:
        cmd = args[0].upper()
        if cmd == b"PING":
            return b"+PONG\r\n"
        if cmd == b"SET" and len(args) >= 3:
            self.data[args[1]] = args[2]
            self.expires.pop(args[1], None)
            return b"+OK\r\n"
        if cmd == b"SETEX" and len(args) == 4:
            self.data[args[1]] = args[3]
            self.expires[args[1]] = self._now() + int(args[2])
            return b"+OK\r\n"
        if cmd == b"GET" and len(args) == 2:
            exp = self.expires.get(args[1])
            if exp is not None and exp <= self._now():
                self.data.pop(args[1], None)
                self.expires.pop(args[1], None)
            v = self.data.get(args[1])
            return b"$-1\r\n" if v is None else b"$%d\r\n%s\r\n" % (len(v), v)
        if cmd == b"DEL":
            n = sum(self.data.pop(k, None) is not None for k in args[1:])
            return b":%d\r\n" % n
        if cmd == b"CONFIG" and len(args) >= 3:
            sub, name = args[1].upper(), args[2].lower()
            if name != b"tcp-keepalive":
                return b"*0\r\n" if sub == b"GET" else b"-ERR Unsupported CONFIG parameter\r\n"
            if sub == b"GET":
                v = str(self.tcp_keepalive).encode()
                return b"*2\r\n$13\r\ntcp-keepalive\r\n$%d\r\n%s\r\n" % (len(v), v)
            if sub == b"SET" and len(args) == 4:
                self.tcp_keepalive = int(args[3])
                return b"+OK\r\n"
        return b"-ERR unknown command '%s'\r\n" % args[0]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in list(self.clients):
            w.close()


class RedisConnection:
    """One client connection (redis-py's ``Connection``): connects on first use."""

    def __init__(self, host: str, port: int = 6379) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def execute(self, *args: Any) -> Any:
        await self.connect()
        assert self.reader is not None and self.writer is not None
        self.writer.write(encode_command(*args))
        return await read_reply(self.reader)

    def sockname(self) -> tuple[str, int] | None:
        return self.writer.get_extra_info("sockname") if self.writer else None

    async def disconnect(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = self.reader = None


class ConnectionPool:
    """redis-py's ``ConnectionPool``: idle connections are kept and handed out again."""

    def __init__(self, host: str, port: int = 6379) -> None:
        self.host = host
        self.port = port
        self.idle: list[RedisConnection] = []
        self.created = 0

    def get(self) -> RedisConnection:
        if self.idle:
            return self.idle.pop()
        self.created += 1
        return RedisConnection(self.host, self.port)

    def release(self, conn: RedisConnection) -> None:
        self.idle.append(conn)

    async def disconnect(self) -> None:
        for c in self.idle:
            await c.disconnect()
        self.idle.clear()


class Redis:
    """``redis.Redis(host=..., port=...)`` or ``redis.Redis(connection_pool=pool)``.

    Without a pool, the object owns a private pool of its own, so a new ``Redis`` object per
    command (the article's first script) means a new TCP connection per command, closed by the
    client when the object goes away (``close()``): the client is the active closer.
    """

    def __init__(self, host: str = "localhost", port: int = 6379,
                 connection_pool: ConnectionPool | None = None) -> None:
        self.own_pool = connection_pool is None
        self.pool = connection_pool or ConnectionPool(host, port)

    async def execute_command(self, *args: Any) -> Any:
        conn = self.pool.get()
        try:
            return await conn.execute(*args)
        finally:
            self.pool.release(conn)

    async def setex(self, name: Any, time: int, value: Any) -> Any:
        return await self.execute_command("SETEX", name, time, value)

    async def set(self, name: Any, value: Any) -> Any:
        return await self.execute_command("SET", name, value)

    async def get(self, name: Any) -> Any:
        return await self.execute_command("GET", name)

    async def ping(self) -> Any:
        return await self.execute_command("PING")

    async def config_get(self, name: str) -> Any:
        return await self.execute_command("CONFIG", "GET", name)

    async def config_set(self, name: str, value: Any) -> Any:
        return await self.execute_command("CONFIG", "SET", name, value)

    async def close(self) -> None:
        if self.own_pool:
            await self.pool.disconnect()


def _close(writer) -> None:
    """Close a stream, tolerating a loop already closed (a task collected after its world)."""
    try:
        writer.close()
    except RuntimeError:
        pass
