"""asyncio over simulated TCP: unmodified open_connection/start_server, transports, servers."""

from __future__ import annotations

import asyncio
import hashlib
import socket as stdsocket

import pytest

from tcpdive.sim import aio
from tcpdive.sim.world import World

DELAY = 0.005  # one way; RTT = 10 ms
RTT_US = 10_000


@pytest.fixture
def world():
    w = World(seed=1)
    c = w.host("client", "10.0.0.1")
    s = w.host("server", "10.0.0.2")
    w.link(c, s, delay=DELAY)
    yield w
    w.run_for(300)  # let handlers see their EOFs and TIME_WAIT expire before closing the loop
    w.loop.close()


def hosts(w):
    return w.hosts["client"], w.hosts["server"]


def now_us():
    return asyncio.get_running_loop().now_us()


async def redis_handler(reader, writer):
    """A tiny Redis-like line protocol: PING, SET k v, GET k, QUIT."""
    store = {}
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd, *args = line.decode().split()
        if cmd == "PING":
            writer.write(b"+PONG\r\n")
        elif cmd == "SET":
            store[args[0]] = args[1]
            writer.write(b"+OK\r\n")
        elif cmd == "GET":
            v = store.get(args[0])
            writer.write(b"$-1\r\n" if v is None else f"${len(v)}\r\n{v}\r\n".encode())
        elif cmd == "QUIT":
            writer.write(b"+OK\r\n")
            await writer.drain()
            break
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def start_redis(w):
    _, s = hosts(w)

    async def main():
        return await asyncio.start_server(redis_handler, "0.0.0.0", 6379)

    return s.run(main())


# ------------------------------------------------------------------------------ streams


def test_redis_like_round_trips_exact_virtual_time(world):
    c, _ = hosts(world)
    server = start_redis(world)
    assert server.is_serving()
    assert server.sockets[0].getsockname() == ("0.0.0.0", 6379)

    async def client():
        t0 = now_us()
        reader, writer = await asyncio.open_connection("10.0.0.2", 6379)
        t_conn = now_us()
        assert t_conn - t0 == RTT_US  # SYN -> SYN-ACK
        assert writer.get_extra_info("peername") == ("10.0.0.2", 6379)
        assert writer.get_extra_info("sockname")[0] == "10.0.0.1"
        assert writer.get_extra_info("socket").getpeername() == ("10.0.0.2", 6379)
        n = 200
        for i in range(n):
            writer.write(f"SET k{i} v{i}\r\n".encode())
            await writer.drain()
            assert await reader.readline() == b"+OK\r\n"
        assert now_us() - t_conn == n * RTT_US
        writer.write(b"GET k7\r\n")
        assert await reader.readline() == b"$2\r\n"
        assert await reader.readline() == b"v7\r\n"
        writer.write(b"GET nope\r\n")
        assert await reader.readline() == b"$-1\r\n"
        writer.write(b"QUIT\r\n")
        assert await reader.readline() == b"+OK\r\n"
        assert await reader.read() == b""  # server closed: EOF
        assert now_us() - t_conn == (n + 3) * RTT_US
        writer.close()
        await writer.wait_closed()

    c.run(client())
    server.close()
    world.run_for(120)
    assert not c.sockets or all(sk.state == 7 for sk in c.sockets)  # all closed


def test_pipelined_requests_initial_window(world):
    """50 pipelined PINGs: the server answers each with its own write (TCP_NODELAY, as asyncio
    sets it); the initial window (10 segments) carries 10 answers, the 40 others coalesce into
    one segment on the write queue and leave when the ACKs return: 2 RTT in all."""
    c, _ = hosts(world)
    start_redis(world)

    async def client():
        reader, writer = await asyncio.open_connection("server", 6379)  # world host name
        t0 = now_us()
        writer.write(b"PING\r\n" * 50)
        for _ in range(50):
            assert await reader.readline() == b"+PONG\r\n"
        assert now_us() - t0 == 2 * RTT_US
        writer.close()

    c.run(client())


def test_eof_half_close_both_ways(world):
    c, s = hosts(world)
    log = []

    async def handler(reader, writer):
        data = await reader.read()  # until the client's FIN
        log.append(("server got", data, reader.at_eof()))
        writer.write(b"reply after your EOF: " + data)
        await writer.drain()
        writer.write_eof()
        assert writer.can_write_eof()
        writer.close()

    async def srv():
        return await asyncio.start_server(handler, None, 7000)

    s.run(srv())

    async def client():
        reader, writer = await asyncio.open_connection("10.0.0.2", 7000)
        writer.write(b"hello")
        writer.write_eof()
        with pytest.raises(RuntimeError):
            writer.write(b"more")
        data = await reader.read()
        log.append(("client got", data, reader.at_eof()))
        writer.close()
        await writer.wait_closed()

    c.run(client())
    assert log == [("server got", b"hello", True),
                   ("client got", b"reply after your EOF: hello", True)]


def test_large_payload_flow_control_byte_exact(world):
    c, s = hosts(world)
    payload = bytes(range(256)) * (6 * 4096 + 17)  # ~6 MB, not a multiple of anything nice
    digest = {}

    async def handler(reader, writer):
        h = hashlib.sha256()
        n = 0
        while chunk := await reader.read(65536):
            h.update(chunk)
            n += len(chunk)
        digest["server"] = (n, h.hexdigest())
        writer.write(b"done")
        writer.close()

    async def srv():
        return await asyncio.start_server(handler, "10.0.0.2", 9000)

    s.run(srv())

    async def client():
        reader, writer = await asyncio.open_connection("10.0.0.2", 9000)
        transport = writer.transport
        transport.set_write_buffer_limits(high=256 * 1024)
        assert transport.get_write_buffer_limits() == (64 * 1024, 256 * 1024)
        writer.write(payload)
        # far more than the socket can take at once: the rest waits in the transport
        assert transport.get_write_buffer_size() > 256 * 1024
        assert writer.transport._protocol_paused
        await writer.drain()
        assert transport.get_write_buffer_size() <= 64 * 1024
        writer.write_eof()
        assert await reader.read() == b"done"
        writer.close()

    c.run(client())
    assert digest["server"] == (len(payload), hashlib.sha256(payload).hexdigest())


def test_server_close_refuses_new_keeps_existing(world):
    c, s = hosts(world)
    server = start_redis(world)
    events = []

    async def client():
        reader, writer = await asyncio.open_connection("10.0.0.2", 6379)
        writer.write(b"PING\r\n")  # one exchange: the server has accept()ed the connection
        assert await reader.readline() == b"+PONG\r\n"
        server.close()
        assert not server.is_serving()
        waiter = asyncio.ensure_future(server.wait_closed())
        await asyncio.sleep(1)
        assert not waiter.done()  # a connection is still open (3.12+ semantics)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("10.0.0.2", 6379)
        writer.write(b"PING\r\n")
        assert await reader.readline() == b"+PONG\r\n"  # the existing connection still works
        writer.write(b"QUIT\r\n")
        assert await reader.readline() == b"+OK\r\n"
        writer.close()
        await waiter
        events.append("closed")

    c.run(client())
    assert events == ["closed"]
    assert server.sockets == ()


def test_server_async_context_manager_and_serve_forever(world):
    c, s = hosts(world)

    async def handler(reader, writer):
        writer.write(b"hi\n")
        writer.close()

    async def main():
        async with await asyncio.start_server(handler, "0.0.0.0", 8000,
                                              start_serving=False) as server:
            assert not server.is_serving()
            task = asyncio.ensure_future(server.serve_forever())
            await asyncio.sleep(0)
            assert server.is_serving()
            await asyncio.sleep(5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not server.is_serving()

    s.spawn(main())

    async def client():
        await asyncio.sleep(1)
        r, w = await asyncio.open_connection("10.0.0.2", 8000)
        assert await r.read() == b"hi\n"
        w.close()
        await asyncio.sleep(10)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("10.0.0.2", 8000)

    c.run(client())


def test_reset_surfaces_as_connection_reset_error(world):
    c, s = hosts(world)

    async def handler(reader, writer):
        await reader.readline()
        writer.transport.abort()  # SO_LINGER {1, 0}: RST

    async def srv():
        return await asyncio.start_server(handler, "0.0.0.0", 6000)

    s.run(srv())

    async def client():
        reader, writer = await asyncio.open_connection("10.0.0.2", 6000)
        t0 = now_us()
        writer.write(b"boom\n")
        with pytest.raises(ConnectionResetError):
            await reader.read(100)
        assert now_us() - t0 == RTT_US
        assert writer.transport.is_closing()
        writer.close()

    c.run(client())


def test_connect_refused(world):
    c, _ = hosts(world)

    async def client():
        t0 = now_us()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("10.0.0.2", 1)
        assert now_us() - t0 == RTT_US

    c.run(client())


def test_wait_for_timeout_in_virtual_time(world):
    c, s = hosts(world)

    async def silent(reader, writer):
        await reader.read()  # never answers; closes after the client's EOF
        writer.close()

    async def srv():
        return await asyncio.start_server(silent, "0.0.0.0", 5000)

    s.run(srv())

    async def client():
        reader, writer = await asyncio.open_connection("10.0.0.2", 5000)
        writer.write(b"hello?\n")
        t0 = now_us()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readline(), 2.5)
        assert now_us() - t0 == 2_500_000
        async with asyncio.timeout(3600):  # a long timeout costs no wall time
            writer.write_eof()
            assert await reader.read() == b""
        writer.close()

    c.run(client())


def test_pause_and_resume_reading(world):
    c, s = hosts(world)

    async def handler(reader, writer):
        writer.write(b"x" * 1000)
        writer.close()

    async def srv():
        return await asyncio.start_server(handler, "0.0.0.0", 5001)

    s.run(srv())
    got = []

    class P(asyncio.Protocol):
        def connection_made(self, transport):
            self.t = transport
            transport.pause_reading()
            assert not transport.is_reading()
            self.done = asyncio.get_running_loop().create_future()

        def data_received(self, data):
            got.append((asyncio.get_running_loop().now_us(), len(data)))

        def connection_lost(self, exc):
            self.done.set_result(exc)

    async def client():
        loop = asyncio.get_running_loop()
        t, p = await loop.create_connection(P, "10.0.0.2", 5001)
        await asyncio.sleep(1)
        assert got == []
        t0 = now_us()
        t.resume_reading()
        assert await p.done is None
        assert got == [(t0, 1000)]

    c.run(client())


# ------------------------------------------------------------------------------ protocols


class EchoServer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return None  # falsy: the transport closes


class EchoClient(asyncio.Protocol):
    def __init__(self, messages, done):
        self.messages = list(messages)
        self.done = done
        self.received = bytearray()
        self.calls = []

    def connection_made(self, transport):
        self.calls.append("made")
        self.transport = transport
        transport.write(self.messages.pop(0))

    def data_received(self, data):
        self.calls.append("data")
        self.received += data
        if self.messages:
            self.transport.write(self.messages.pop(0))
        else:
            self.transport.write_eof()

    def eof_received(self):
        self.calls.append("eof")
        return True  # keep open; close ourselves

    def connection_lost(self, exc):
        self.calls.append(("lost", exc))
        self.done.set_result(bytes(self.received))


def test_protocol_echo_with_loop_create_connection(world):
    c, s = hosts(world)

    async def srv():
        loop = asyncio.get_running_loop()
        return await loop.create_server(EchoServer, "0.0.0.0", 7)

    s.run(srv())

    async def client():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        msgs = [b"one", b"two", b"three"]
        t0 = now_us()
        transport, proto = await loop.create_connection(lambda: EchoClient(msgs, done),
                                                        "10.0.0.2", 7)
        assert isinstance(transport, aio.SimTransport)
        assert proto.calls == ["made"]

        async def closer():
            while "eof" not in proto.calls:
                await asyncio.sleep(0.001)
            transport.close()

        asyncio.ensure_future(closer())
        echoed = await done
        assert echoed == b"onetwothree"
        assert proto.calls[:4] == ["made", "data", "data", "data"]
        assert proto.calls[-2:] == ["eof", ("lost", None)]
        # connect + 3 exchanges + FIN exchange (+ <= 1 ms polling in closer)
        assert 5 * RTT_US <= now_us() - t0 <= 5 * RTT_US + 1000

    c.run(client())


def test_protocol_flow_control_callbacks(world):
    c, s = hosts(world)
    sizes = []

    class Sink(asyncio.Protocol):
        def connection_made(self, transport):
            self.n = 0

        def data_received(self, data):
            self.n += len(data)

        def eof_received(self):
            sizes.append(self.n)

    class Source(asyncio.Protocol):
        def __init__(self):
            self.events = []
            self.lost = asyncio.get_running_loop().create_future()

        def pause_writing(self):
            self.events.append("pause")

        def resume_writing(self):
            self.events.append("resume")

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    async def srv():
        return await asyncio.get_running_loop().create_server(Sink, "0.0.0.0", 9)

    s.run(srv())

    async def client():
        loop = asyncio.get_running_loop()
        t, p = await loop.create_connection(Source, "10.0.0.2", 9)
        t.set_write_buffer_limits(high=10_000, low=1_000)
        t.write(b"a" * 3_000_000)
        assert p.events == ["pause"]
        t.close()  # flushes first, then FIN
        assert t.is_closing()
        assert await p.lost is None
        assert p.events == ["pause", "resume"]
        assert t.get_write_buffer_size() == 0

    c.run(client())
    world.run_for(1)
    assert sizes == [3_000_000]


# ------------------------------------------------------------------------------ hosts, sock_*


def test_no_current_host_is_a_clear_error(world):
    async def main():
        await asyncio.open_connection("10.0.0.2", 80)

    with pytest.raises(RuntimeError, match=r"host\.spawn\(\)/host\.run\(\)"):
        world.loop.run_until_complete(main())


def test_explicit_on_and_name_resolution(world):
    c, s = hosts(world)

    async def handler(reader, writer):
        writer.write(b"ok")
        writer.close()

    async def main():
        server = await aio.start_server(handler, "server", 4000, on=s)
        r, w = await aio.open_connection("server", 4000, on=c)
        assert w.get_extra_info("sockname")[0] == "10.0.0.1"
        assert await r.read() == b"ok"
        w.close()
        with pytest.raises(stdsocket.gaierror):
            await aio.open_connection("no-such-host", 4000, on=c)
        server.close()
        await server.wait_closed()

    world.loop.run_until_complete(main())


def test_current_host_propagates_into_server_handlers(world):
    """A handler (a task started by the server) can itself connect: a tiny proxy on 'server'."""
    c, s = hosts(world)
    m = world.host("backend", "10.1.0.2")
    world.link(s, m, delay=0.001, a_addr="10.1.0.1", b_addr="10.1.0.2")

    async def backend(reader, writer):
        writer.write(b"from backend: " + await reader.readline())
        writer.close()

    async def proxy(reader, writer):
        line = await reader.readline()
        br, bw = await asyncio.open_connection("backend", 80)  # runs on 'server'
        assert bw.get_extra_info("sockname")[0] == "10.1.0.1"
        bw.write(line)
        writer.write(await br.read())
        bw.close()
        writer.close()

    async def up():
        return await asyncio.start_server(backend, "0.0.0.0", 80)

    m.run(up())

    async def up2():
        return await asyncio.start_server(proxy, "0.0.0.0", 8080)

    s.run(up2())

    async def client():
        r, w = await asyncio.open_connection("10.0.0.2", 8080)
        w.write(b"hi\n")
        assert await r.read() == b"from backend: hi\n"
        w.close()

    c.run(client())


def test_loop_sock_methods(world):
    c, s = hosts(world)
    ls = s.socket()
    ls.bind(("0.0.0.0", 3000))
    ls.listen()

    async def server():
        loop = asyncio.get_running_loop()
        conn, peer = await loop.sock_accept(ls)
        assert peer[0] == "10.0.0.1"
        buf = bytearray(10)
        n = await loop.sock_recv_into(conn, buf)
        await loop.sock_sendall(conn, bytes(buf[:n]).upper() * 100_000)
        conn.close()

    s.spawn(server())

    async def client():
        loop = asyncio.get_running_loop()
        sk = c.socket()
        sk.setblocking(False)
        await loop.sock_connect(sk, ("10.0.0.2", 3000))
        await loop.sock_sendall(sk, b"abc")
        out = bytearray()
        while data := await loop.sock_recv(sk, 65536):
            out += data
        assert out == b"ABC" * 100_000
        sk.close()
        bad = c.socket()
        with pytest.raises(ConnectionRefusedError):
            await loop.sock_connect(bad, ("10.0.0.2", 3001))
        bad.close()

    c.run(client())
