"""``tcpdive real ...``: serve on a TUN device, look at the running stack's sockets.

    tcpdive real serve http [--netns NAME] [--port N] [--mtu N] [--loss P] [--delay S] ...
    tcpdive real netstat [--netns NAME]        # netstat -napo of a running `real serve`
    tcpdive real ss [--netns NAME]
    tcpdive real proc-net-tcp [--netns NAME]   # tcpdive's /proc/net/tcp, as Linux prints it

A running ``serve`` answers ``netstat``/``ss``/``proc-net-tcp`` on a unix socket
``/run/tcpdive/NAME.ctl``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket as _std
import sys
import threading
import time

CTL_DIR = "/run/tcpdive"


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("real", help="tcpdive on a TUN device, talking to the real Linux kernel")
    rs = r.add_subparsers(dest="real_cmd", metavar="SUBCOMMAND")
    s = rs.add_parser("serve", help="run a server on tcpdive, reachable from a kernel namespace")
    s.add_argument("kind", choices=["echo", "http", "redis"])
    s.add_argument("--netns", metavar="NAME", help="kernel namespace to create (default td-PID-N)")
    s.add_argument("--port", type=int, help="port (default 7 / 80 / 6379)")
    s.add_argument("--addr", default="10.77.0.2", help="tcpdive's address (default 10.77.0.2)")
    s.add_argument("--kernel-addr", default="10.77.0.1", help="the kernel's address on the TUN")
    s.add_argument("--mtu", type=int, default=1500)
    s.add_argument("--delay", type=float, default=0.0, help="one-way delay, seconds")
    s.add_argument("--rate", type=float, help="rate, bits per second")
    s.add_argument("--loss", type=float, default=0.0, help="loss probability each way")
    s.add_argument("--reorder", type=float, default=0.0, help="reorder probability each way")
    s.add_argument("--duplicate", type=float, default=0.0, help="duplication probability")
    s.add_argument("--duration", type=float, help="stop after this many seconds")
    s.set_defaults(fn=cmd_real)
    for name in ("netstat", "ss", "proc-net-tcp"):
        what = "/proc/net/tcp" if name == "proc-net-tcp" else name
        n = rs.add_parser(name, help=f"{what} of tcpdive's side of a running `tcpdive real serve`")
        n.add_argument("--netns", metavar="NAME", help="which serve (default: the only one)")
        n.set_defaults(fn=cmd_real)
    r.set_defaults(fn=cmd_real, real_cmd=None, _real_parser=r)


def cmd_real(args: argparse.Namespace) -> int:
    from .netns import RealModeUnavailable, check_real_mode

    if args.real_cmd is None:
        args._real_parser.print_help()
        return 0
    try:
        check_real_mode()
        if args.real_cmd == "serve":
            return _serve(args)
        return _query(args.real_cmd, args.netns)
    except RealModeUnavailable as e:
        print(f"tcpdive real: {e}", file=sys.stderr)
        return 1
    except (OSError, RuntimeError) as e:
        print(f"tcpdive real: {e}", file=sys.stderr)
        return 1


def _serve(args: argparse.Namespace) -> int:
    from . import servers
    from .stack import RealStack

    impair = {k: v for k, v in (("delay", args.delay), ("rate_bps", args.rate),
                                ("loss", args.loss), ("reorder", args.reorder),
                                ("duplicate", args.duplicate)) if v}
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM,
                                                          signal.SIGHUP)}
    try:
        with RealStack(args.netns, addr=args.addr, kernel_addr=args.kernel_addr, mtu=args.mtu,
                       impair=impair or None) as st:
            port = args.port or servers.DEFAULT_PORTS[args.kind]
            st.run(servers.start(st, args.kind, port), timeout=10)
            ctl = _start_ctl(st)
            ns = st.ns.name
            print(f"tcpdive {args.kind} server on {st.addr}:{port} (mtu {st.mtu}"
                  f"{', impaired ' + str(impair) if impair else ''})")
            print(f"kernel side: namespace {ns}, {st.kernel_addr} on {st.tun.devname}")
            if args.kind == "http":
                print(f"  ip netns exec {ns} curl http://{st.addr}:{port}/")
                print(f"  ip netns exec {ns} curl -o /dev/null http://{st.addr}:{port}/bytes/10000000")
            elif args.kind == "redis":
                print(f"  ip netns exec {ns} redis-cli -h {st.addr} -p {port} ping")
            else:
                print(f"  ip netns exec {ns} python3 -c \"import socket; s=socket.create_connection("
                      f"('{st.addr}', {port})); s.sendall(b'hi'); print(s.recv(9))\"")
            print(f"tcpdive's sockets: tcpdive real netstat --netns {ns}")
            print("Ctrl-C to stop", flush=True)
            deadline = None if args.duration is None else time.monotonic() + args.duration
            while not stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                stop.wait(0.2)
            with contextlib.suppress(OSError):
                os.unlink(ctl)
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
    print("stopped; namespace removed")
    return 0


def _start_ctl(st) -> str:
    """A unix socket answering `netstat` / `ss` for this stack (served on the stack's loop)."""
    os.makedirs(CTL_DIR, exist_ok=True)
    path = os.path.join(CTL_DIR, f"{st.ns.name}.ctl")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)

    async def handle(reader, writer) -> None:
        from ..tools.netstat import netstat_napo, ss_tanpoi
        from ..tools.procnet import proc_net_tcp

        what = (await reader.readline()).decode().strip()
        if what == "proc-net-tcp":
            text = proc_net_tcp(st.net)
        else:
            lines = ss_tanpoi(st.net) if what == "ss" else netstat_napo(st.net)
            text = "\n".join(lines) + "\n"
        writer.write(text.encode())
        await writer.drain()
        writer.close()

    async def start() -> None:
        import asyncio

        await asyncio.start_unix_server(handle, path)

    st.run(start(), timeout=5)
    return path


def _query(what: str, netns: str | None) -> int:
    if netns is None:
        try:
            names = sorted(f[:-4] for f in os.listdir(CTL_DIR) if f.endswith(".ctl"))
        except FileNotFoundError:
            names = []
        if not names:
            print("tcpdive real: no running `tcpdive real serve` found", file=sys.stderr)
            return 1
        if len(names) > 1:
            print(f"tcpdive real: several running stacks, pick one with --netns: "
                  f"{', '.join(names)}", file=sys.stderr)
            return 1
        netns = names[0]
    path = os.path.join(CTL_DIR, f"{netns}.ctl")
    s = _std.socket(_std.AF_UNIX, _std.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
    except OSError:
        print(f"tcpdive real: no running `tcpdive real serve` for namespace {netns}",
              file=sys.stderr)
        return 1
    s.sendall(what.encode() + b"\n")
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    sys.stdout.write(out.decode())
    return 0
