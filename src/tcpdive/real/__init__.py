"""Real mode: the tcpdive stack on a TUN device in a network namespace, talking to the kernel.

- :class:`RealStack` -- tcpdive owning 10.77.0.2 on a TUN device whose kernel side (10.77.0.1)
  lives in a fresh namespace ``td-<pid>-<n>``; impairment via tcpdive's Pipe; real-time clock.
- :mod:`tcpdive.real.socket` -- blocking stdlib-compatible sockets and ``patched()``.
- :class:`KernelRelay` -- two kernel namespaces joined through an impaired tcpdive path.
- :class:`KernelNetns` -- a namespace that is always cleaned up (``with``, atexit, SIGTERM).
"""

from .netns import KernelNetns, RealModeUnavailable, check_real_mode, cleanup_all
from .relay import KernelRelay
from .stack import RealHost, RealStack, default_stack

__all__ = ["KernelNetns", "KernelRelay", "RealHost", "RealModeUnavailable", "RealStack",
           "check_real_mode", "cleanup_all", "default_stack"]
