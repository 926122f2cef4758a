"""OSError helpers carrying Linux errno values (include/uapi/asm-generic/errno*.h)."""

from __future__ import annotations

import errno as _errno
import os

# Linux errno numbers; Python's errno module carries the host's values, which on Linux are these.
EPERM = 1
ENOENT = 2
EINTR = 4
EIO = 5
EBADF = 9
EAGAIN = 11
EWOULDBLOCK = EAGAIN
ENOMEM = 12
EACCES = 13
EFAULT = 14
EEXIST = 17
ENOTDIR = 20
ENOTTY = 25
EINVAL = 22
EMFILE = 24
ENOSPC = 28
ESPIPE = 29
EPIPE = 32
ERANGE = 34
ELOOP = 40
ENOTSOCK = 88
EDESTADDRREQ = 89
EMSGSIZE = 90
EPROTOTYPE = 91
ENOPROTOOPT = 92
EPROTONOSUPPORT = 93
ESOCKTNOSUPPORT = 94
EOPNOTSUPP = 95
EAFNOSUPPORT = 97
EADDRINUSE = 98
EADDRNOTAVAIL = 99
ENETDOWN = 100
ENETUNREACH = 101
ECONNABORTED = 103
ECONNRESET = 104
ENOBUFS = 105
EISCONN = 106
ENOTCONN = 107
ESHUTDOWN = 108
ETIMEDOUT = 110
ECONNREFUSED = 111
EHOSTDOWN = 112
EHOSTUNREACH = 113
EALREADY = 114
EINPROGRESS = 115

_NAMES = {v: k for k, v in sorted(vars().items()) if k.isupper() and isinstance(v, int)}
_NAMES[EAGAIN] = "EAGAIN"


def errname(code: int) -> str:
    """Symbolic name of a Linux errno ('ECONNREFUSED'), or the number as text."""
    return _NAMES.get(code) or _errno.errorcode.get(code, str(code))


def strerror(code: int) -> str:
    """The libc message for an errno ('Connection refused')."""
    return os.strerror(code)


def oserror(code: int, detail: str | None = None) -> OSError:
    """An OSError with a Linux errno, its strerror text and, optionally, what the caller did."""
    msg = strerror(code)
    if detail:
        msg = f"{msg} ({detail})"
    return OSError(code, msg)
