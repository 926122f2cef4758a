"""Kernel network namespaces for real mode: create, configure (iproute2), run programs, clean up.

A :class:`KernelNetns` is a real Linux network namespace (``ip netns add``). Everything real mode
creates is registered here and removed again however the process ends: by the context manager,
by ``atexit`` (normal exit, ``sys.exit``), and on SIGTERM/SIGHUP (turned into ``SystemExit`` so
``finally`` blocks and ``atexit`` run). Names carry the creating pid (``td-<pid>-<n>``) so that a
later run removes namespaces left behind by a process that was SIGKILLed
(:func:`reap_stale`).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket as _stdsocket
import subprocess
import threading
from typing import Any

__all__ = ["KernelNetns", "RealModeUnavailable", "check_real_mode", "reap_stale", "cleanup_all"]

CLONE_NEWNET = 0x40000000
_NETNS_DIR = "/var/run/netns"
_NAME_RE = re.compile(r"^td-(\d+)-\d+$")


class RealModeUnavailable(RuntimeError):
    """Real mode cannot run here (not root, no /dev/net/tun, no iproute2); one-line reason."""


def check_real_mode() -> None:
    """Raise :class:`RealModeUnavailable` with a one-line reason unless real mode can run."""
    if os.geteuid() != 0:
        raise RealModeUnavailable("real mode needs root (CAP_NET_ADMIN) to create a network "
                                  "namespace and a TUN device")
    if not os.path.exists("/dev/net/tun"):
        raise RealModeUnavailable("no /dev/net/tun: load the tun module (modprobe tun)")
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR)
        os.close(fd)
    except OSError as e:
        raise RealModeUnavailable(f"cannot open /dev/net/tun: {e.strerror}") from None
    if shutil.which("ip") is None:
        raise RealModeUnavailable("iproute2's `ip` command is not installed")


_LIVE: dict[str, KernelNetns] = {}
_LOCK = threading.RLock()
_COUNTER = [0]
_HANDLERS_INSTALLED = [False]


def cleanup_all() -> None:
    """Delete every namespace this process created and still holds (idempotent)."""
    with _LOCK:
        live = list(_LIVE.values())
    for ns in live:
        with contextlib.suppress(Exception):
            ns.delete()


def _on_signal(signum: int, frame: Any) -> None:
    # SystemExit unwinds `with` blocks and then runs atexit: the namespaces go either way
    cleanup_all()
    raise SystemExit(128 + signum)


def _install_handlers() -> None:
    if _HANDLERS_INSTALLED[0]:
        return
    _HANDLERS_INSTALLED[0] = True
    atexit.register(cleanup_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_signal)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(_NETNS_DIR))
    except FileNotFoundError:
        return []


def reap_stale() -> list[str]:
    """Delete ``td-<pid>-<n>`` namespaces whose creating process is gone (SIGKILLed runs)."""
    gone = []
    for name in list_netns():
        m = _NAME_RE.match(name)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            gone.append(name)
    return gone


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _in_netns(name: str, fn, *args: Any) -> Any:
    """Run ``fn(*args)`` on a fresh thread that has joined namespace ``name`` (setns is per
    thread); sockets it creates stay in that namespace wherever they are used afterwards."""
    out: list[Any] = [None, None]

    def body() -> None:
        try:
            fd = os.open(os.path.join(_NETNS_DIR, name), os.O_RDONLY)
            try:
                if _libc().setns(fd, CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, f"setns({name}): {os.strerror(e)}")
            finally:
                os.close(fd)
            out[0] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            out[1] = e

    t = threading.Thread(target=body, name=f"setns-{name}")
    t.start()
    t.join()
    if out[1] is not None:
        raise out[1]
    return out[0]


class KernelNetns:
    """One Linux network namespace, owned by this process and deleted on :meth:`delete`."""

    def __init__(self, name: str | None = None, *, create: bool = True) -> None:
        with _LOCK:
            if name is None:
                _COUNTER[0] += 1
                name = f"td-{os.getpid()}-{_COUNTER[0]}"
        self.name = name
        self.procs: list[subprocess.Popen] = []
        self.alive = False
        if create:
            self.create()

    # ---- lifecycle ---------------------------------------------------------------------------

    def create(self) -> None:
        check_real_mode()
        _install_handlers()
        reap_stale()
        if self.name in list_netns():
            raise FileExistsError(f"network namespace {self.name!r} already exists "
                                  f"(delete it with `ip netns del {self.name}`)")
        with _LOCK:
            _run(["ip", "netns", "add", self.name])
            self.alive = True
            _LIVE[self.name] = self
        self.ip("link", "set", "lo", "up")

    def delete(self) -> None:
        """Stop the programs started in it and delete the namespace (idempotent)."""
        with _LOCK:
            if not self.alive:
                return
            self.alive = False
            _LIVE.pop(self.name, None)
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        for p in self.procs:
            try:
                p.wait(3)
            except subprocess.TimeoutExpired:
                p.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(3)
        self.procs.clear()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def __enter__(self) -> KernelNetns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()

    # ---- configuration and programs ------------------------------------------------------------

    def ip(self, *args: str) -> str:
        """``ip -n NAME ARGS...``; raises with ip's message on failure."""
        return _run(["ip", "-n", self.name, *args])

    def sysctl(self, key: str, value: str) -> None:
        self.exec(["sysctl", "-q", "-w", f"{key}={value}"], check=False)

    def cmd(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def exec(self, argv: list[str], *, check: bool = True, timeout: float = 60,
             **kw: Any) -> subprocess.CompletedProcess:
        """Run a program inside the namespace to completion (output captured as text)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(self.cmd(argv), check=check, timeout=timeout, **kw)

    def popen(self, argv: list[str], **kw: Any) -> subprocess.Popen:
        """Start a program inside the namespace; it is terminated when the namespace goes."""
        p = subprocess.Popen(self.cmd(argv), **kw)
        self.procs.append(p)
        return p

    def socket(self, family: int = _stdsocket.AF_INET, type: int = _stdsocket.SOCK_STREAM,
               proto: int = 0) -> _stdsocket.socket:
        """A real kernel socket living in this namespace (usable from any thread)."""
        return _in_netns(self.name, _stdsocket.socket, family, type, proto)

    def ss(self, args: str = "-tan") -> list[dict[str, str]]:
        """The kernel's ``ss`` rows: dicts with state, recvq, sendq, local, peer (and rest)."""
        out = self.exec(["ss", "-H", *args.split()]).stdout
        rows = []
        for line in out.splitlines():
            f = line.split()
            if len(f) < 5:
                continue
            rows.append({"state": f[0], "recvq": f[1], "sendq": f[2], "local": f[3],
                         "peer": f[4], "rest": " ".join(f[5:])})
        return rows

    def __repr__(self) -> str:
        return f"<KernelNetns {self.name}{'' if self.alive else ' (deleted)'}>"


def _run(argv: list[str]) -> str:
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise OSError(f"{' '.join(argv)}: {r.stderr.strip() or r.returncode}")
    return r.stdout
