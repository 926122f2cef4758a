"""Connection tables and ephemeral ports as Linux keeps them (issue #4).

Bind-conflict matrix, ephemeral port parity, ip_local_port_range exhaustion (the article's
TIME_WAIT experiment), tcp_tw_reuse 0/1/2, tcp_max_tw_buckets overflow, many TIME_WAIT sockets.
Expectations marked "real kernel" were produced once on Linux 6.18 (Python's socket module on
127.0.0.x in a fresh network namespace) and pasted here.
"""

from __future__ import annotations

import errno
import sys

import pytest

from tcpdive.sim.world import World
from tcpdive.socket import SO_REUSEADDR, SO_REUSEPORT, SOL_SOCKET
from tcpdive.tcp.sock import TCP_TIME_WAIT

# ---- bind conflict matrix -------------------------------------------------------------------

# Generated on the real kernel (Linux 6.18.44, root, fresh netns, lo up) by binding two Python
# sockets to the same port: "<sk1 REUSEADDR REUSEPORT> <sk1 state> <sk1 addr> | <sk2 opts>
# <sk2 addr> -> <sk2 bind()> <sk2 listen() after a successful bind>". States: bound = bind()
# only; listen; estab = bound, then connect()ed to 127.0.0.1:9; timewait = that connection
# closed by sk1 first. Addresses: any = 0.0.0.0, lo1 = 127.0.0.1, lo2 = 127.0.0.2.
BIND_MATRIX = [
    "00 bound any | 00 any -> EADDRINUSE -",
    "00 bound any | 00 lo1 -> EADDRINUSE -",
    "00 bound any | 00 lo2 -> EADDRINUSE -",
    "00 bound any | 10 any -> EADDRINUSE -",
    "00 bound any | 10 lo1 -> EADDRINUSE -",
    "00 bound any | 10 lo2 -> EADDRINUSE -",
    "00 bound any | 01 any -> EADDRINUSE -",
    "00 bound any | 01 lo1 -> EADDRINUSE -",
    "00 bound any | 01 lo2 -> EADDRINUSE -",
    "00 bound any | 11 any -> EADDRINUSE -",
    "00 bound any | 11 lo1 -> EADDRINUSE -",
    "00 bound any | 11 lo2 -> EADDRINUSE -",
    "00 bound lo1 | 00 any -> EADDRINUSE -",
    "00 bound lo1 | 00 lo1 -> EADDRINUSE -",
    "00 bound lo1 | 00 lo2 -> ok ok",
    "00 bound lo1 | 10 any -> EADDRINUSE -",
    "00 bound lo1 | 10 lo1 -> EADDRINUSE -",
    "00 bound lo1 | 10 lo2 -> ok ok",
    "00 bound lo1 | 01 any -> EADDRINUSE -",
    "00 bound lo1 | 01 lo1 -> EADDRINUSE -",
    "00 bound lo1 | 01 lo2 -> ok ok",
    "00 bound lo1 | 11 any -> EADDRINUSE -",
    "00 bound lo1 | 11 lo1 -> EADDRINUSE -",
    "00 bound lo1 | 11 lo2 -> ok ok",
    "00 listen any | 00 any -> EADDRINUSE -",
    "00 listen any | 00 lo1 -> EADDRINUSE -",
    "00 listen any | 00 lo2 -> EADDRINUSE -",
    "00 listen any | 10 any -> EADDRINUSE -",
    "00 listen any | 10 lo1 -> EADDRINUSE -",
    "00 listen any | 10 lo2 -> EADDRINUSE -",
    "00 listen any | 01 any -> EADDRINUSE -",
    "00 listen any | 01 lo1 -> EADDRINUSE -",
    "00 listen any | 01 lo2 -> EADDRINUSE -",
    "00 listen any | 11 any -> EADDRINUSE -",
    "00 listen any | 11 lo1 -> EADDRINUSE -",
    "00 listen any | 11 lo2 -> EADDRINUSE -",
    "00 listen lo1 | 00 any -> EADDRINUSE -",
    "00 listen lo1 | 00 lo1 -> EADDRINUSE -",
    "00 listen lo1 | 00 lo2 -> ok ok",
    "00 listen lo1 | 10 any -> EADDRINUSE -",
    "00 listen lo1 | 10 lo1 -> EADDRINUSE -",
    "00 listen lo1 | 10 lo2 -> ok ok",
    "00 listen lo1 | 01 any -> EADDRINUSE -",
    "00 listen lo1 | 01 lo1 -> EADDRINUSE -",
    "00 listen lo1 | 01 lo2 -> ok ok",
    "00 listen lo1 | 11 any -> EADDRINUSE -",
    "00 listen lo1 | 11 lo1 -> EADDRINUSE -",
    "00 listen lo1 | 11 lo2 -> ok ok",
    "00 estab any | 00 any -> EADDRINUSE -",
    "00 estab any | 00 lo1 -> EADDRINUSE -",
    "00 estab any | 00 lo2 -> ok ok",
    "00 estab any | 10 any -> EADDRINUSE -",
    "00 estab any | 10 lo1 -> EADDRINUSE -",
    "00 estab any | 10 lo2 -> ok ok",
    "00 estab any | 01 any -> EADDRINUSE -",
    "00 estab any | 01 lo1 -> EADDRINUSE -",
    "00 estab any | 01 lo2 -> ok ok",
    "00 estab any | 11 any -> EADDRINUSE -",
    "00 estab any | 11 lo1 -> EADDRINUSE -",
    "00 estab any | 11 lo2 -> ok ok",
    "00 estab lo1 | 00 any -> EADDRINUSE -",
    "00 estab lo1 | 00 lo1 -> EADDRINUSE -",
    "00 estab lo1 | 00 lo2 -> ok ok",
    "00 estab lo1 | 10 any -> EADDRINUSE -",
    "00 estab lo1 | 10 lo1 -> EADDRINUSE -",
    "00 estab lo1 | 10 lo2 -> ok ok",
    "00 estab lo1 | 01 any -> EADDRINUSE -",
    "00 estab lo1 | 01 lo1 -> EADDRINUSE -",
    "00 estab lo1 | 01 lo2 -> ok ok",
    "00 estab lo1 | 11 any -> EADDRINUSE -",
    "00 estab lo1 | 11 lo1 -> EADDRINUSE -",
    "00 estab lo1 | 11 lo2 -> ok ok",
    "00 timewait any | 00 any -> EADDRINUSE -",
    "00 timewait any | 00 lo1 -> EADDRINUSE -",
    "00 timewait any | 00 lo2 -> ok ok",
    "00 timewait any | 10 any -> EADDRINUSE -",
    "00 timewait any | 10 lo1 -> EADDRINUSE -",
    "00 timewait any | 10 lo2 -> ok ok",
    "00 timewait any | 01 any -> EADDRINUSE -",
    "00 timewait any | 01 lo1 -> EADDRINUSE -",
    "00 timewait any | 01 lo2 -> ok ok",
    "00 timewait any | 11 any -> EADDRINUSE -",
    "00 timewait any | 11 lo1 -> EADDRINUSE -",
    "00 timewait any | 11 lo2 -> ok ok",
    "00 timewait lo1 | 00 any -> EADDRINUSE -",
    "00 timewait lo1 | 00 lo1 -> EADDRINUSE -",
    "00 timewait lo1 | 00 lo2 -> ok ok",
    "00 timewait lo1 | 10 any -> EADDRINUSE -",
    "00 timewait lo1 | 10 lo1 -> EADDRINUSE -",
    "00 timewait lo1 | 10 lo2 -> ok ok",
    "00 timewait lo1 | 01 any -> EADDRINUSE -",
    "00 timewait lo1 | 01 lo1 -> EADDRINUSE -",
    "00 timewait lo1 | 01 lo2 -> ok ok",
    "00 timewait lo1 | 11 any -> EADDRINUSE -",
    "00 timewait lo1 | 11 lo1 -> EADDRINUSE -",
    "00 timewait lo1 | 11 lo2 -> ok ok",
    "10 bound any | 00 any -> EADDRINUSE -",
    "10 bound any | 00 lo1 -> EADDRINUSE -",
    "10 bound any | 00 lo2 -> EADDRINUSE -",
    "10 bound any | 10 any -> ok ok",
    "10 bound any | 10 lo1 -> ok ok",
    "10 bound any | 10 lo2 -> ok ok",
    "10 bound any | 01 any -> EADDRINUSE -",
    "10 bound any | 01 lo1 -> EADDRINUSE -",
    "10 bound any | 01 lo2 -> EADDRINUSE -",
    "10 bound any | 11 any -> ok ok",
    "10 bound any | 11 lo1 -> ok ok",
    "10 bound any | 11 lo2 -> ok ok",
    "10 bound lo1 | 00 any -> EADDRINUSE -",
    "10 bound lo1 | 00 lo1 -> EADDRINUSE -",
    "10 bound lo1 | 00 lo2 -> ok ok",
    "10 bound lo1 | 10 any -> ok ok",
    "10 bound lo1 | 10 lo1 -> ok ok",
    "10 bound lo1 | 10 lo2 -> ok ok",
    "10 bound lo1 | 01 any -> EADDRINUSE -",
    "10 bound lo1 | 01 lo1 -> EADDRINUSE -",
    "10 bound lo1 | 01 lo2 -> ok ok",
    "10 bound lo1 | 11 any -> ok ok",
    "10 bound lo1 | 11 lo1 -> ok ok",
    "10 bound lo1 | 11 lo2 -> ok ok",
    "10 listen any | 00 any -> EADDRINUSE -",
    "10 listen any | 00 lo1 -> EADDRINUSE -",
    "10 listen any | 00 lo2 -> EADDRINUSE -",
    "10 listen any | 10 any -> EADDRINUSE -",
    "10 listen any | 10 lo1 -> EADDRINUSE -",
    "10 listen any | 10 lo2 -> EADDRINUSE -",
    "10 listen any | 01 any -> EADDRINUSE -",
    "10 listen any | 01 lo1 -> EADDRINUSE -",
    "10 listen any | 01 lo2 -> EADDRINUSE -",
    "10 listen any | 11 any -> EADDRINUSE -",
    "10 listen any | 11 lo1 -> EADDRINUSE -",
    "10 listen any | 11 lo2 -> EADDRINUSE -",
    "10 listen lo1 | 00 any -> EADDRINUSE -",
    "10 listen lo1 | 00 lo1 -> EADDRINUSE -",
    "10 listen lo1 | 00 lo2 -> ok ok",
    "10 listen lo1 | 10 any -> EADDRINUSE -",
    "10 listen lo1 | 10 lo1 -> EADDRINUSE -",
    "10 listen lo1 | 10 lo2 -> ok ok",
    "10 listen lo1 | 01 any -> EADDRINUSE -",
    "10 listen lo1 | 01 lo1 -> EADDRINUSE -",
    "10 listen lo1 | 01 lo2 -> ok ok",
    "10 listen lo1 | 11 any -> EADDRINUSE -",
    "10 listen lo1 | 11 lo1 -> EADDRINUSE -",
    "10 listen lo1 | 11 lo2 -> ok ok",
    "10 estab any | 00 any -> EADDRINUSE -",
    "10 estab any | 00 lo1 -> EADDRINUSE -",
    "10 estab any | 00 lo2 -> ok ok",
    "10 estab any | 10 any -> ok ok",
    "10 estab any | 10 lo1 -> ok ok",
    "10 estab any | 10 lo2 -> ok ok",
    "10 estab any | 01 any -> EADDRINUSE -",
    "10 estab any | 01 lo1 -> EADDRINUSE -",
    "10 estab any | 01 lo2 -> ok ok",
    "10 estab any | 11 any -> ok ok",
    "10 estab any | 11 lo1 -> ok ok",
    "10 estab any | 11 lo2 -> ok ok",
    "10 estab lo1 | 00 any -> EADDRINUSE -",
    "10 estab lo1 | 00 lo1 -> EADDRINUSE -",
    "10 estab lo1 | 00 lo2 -> ok ok",
    "10 estab lo1 | 10 any -> ok ok",
    "10 estab lo1 | 10 lo1 -> ok ok",
    "10 estab lo1 | 10 lo2 -> ok ok",
    "10 estab lo1 | 01 any -> EADDRINUSE -",
    "10 estab lo1 | 01 lo1 -> EADDRINUSE -",
    "10 estab lo1 | 01 lo2 -> ok ok",
    "10 estab lo1 | 11 any -> ok ok",
    "10 estab lo1 | 11 lo1 -> ok ok",
    "10 estab lo1 | 11 lo2 -> ok ok",
    "10 timewait any | 00 any -> EADDRINUSE -",
    "10 timewait any | 00 lo1 -> EADDRINUSE -",
    "10 timewait any | 00 lo2 -> ok ok",
    "10 timewait any | 10 any -> ok ok",
    "10 timewait any | 10 lo1 -> ok ok",
    "10 timewait any | 10 lo2 -> ok ok",
    "10 timewait any | 01 any -> EADDRINUSE -",
    "10 timewait any | 01 lo1 -> EADDRINUSE -",
    "10 timewait any | 01 lo2 -> ok ok",
    "10 timewait any | 11 any -> ok ok",
    "10 timewait any | 11 lo1 -> ok ok",
    "10 timewait any | 11 lo2 -> ok ok",
    "10 timewait lo1 | 00 any -> EADDRINUSE -",
    "10 timewait lo1 | 00 lo1 -> EADDRINUSE -",
    "10 timewait lo1 | 00 lo2 -> ok ok",
    "10 timewait lo1 | 10 any -> ok ok",
    "10 timewait lo1 | 10 lo1 -> ok ok",
    "10 timewait lo1 | 10 lo2 -> ok ok",
    "10 timewait lo1 | 01 any -> EADDRINUSE -",
    "10 timewait lo1 | 01 lo1 -> EADDRINUSE -",
    "10 timewait lo1 | 01 lo2 -> ok ok",
    "10 timewait lo1 | 11 any -> ok ok",
    "10 timewait lo1 | 11 lo1 -> ok ok",
    "10 timewait lo1 | 11 lo2 -> ok ok",
    "01 bound any | 00 any -> EADDRINUSE -",
    "01 bound any | 00 lo1 -> EADDRINUSE -",
    "01 bound any | 00 lo2 -> EADDRINUSE -",
    "01 bound any | 10 any -> EADDRINUSE -",
    "01 bound any | 10 lo1 -> EADDRINUSE -",
    "01 bound any | 10 lo2 -> EADDRINUSE -",
    "01 bound any | 01 any -> ok ok",
    "01 bound any | 01 lo1 -> ok ok",
    "01 bound any | 01 lo2 -> ok ok",
    "01 bound any | 11 any -> ok ok",
    "01 bound any | 11 lo1 -> ok ok",
    "01 bound any | 11 lo2 -> ok ok",
    "01 bound lo1 | 00 any -> EADDRINUSE -",
    "01 bound lo1 | 00 lo1 -> EADDRINUSE -",
    "01 bound lo1 | 00 lo2 -> ok ok",
    "01 bound lo1 | 10 any -> EADDRINUSE -",
    "01 bound lo1 | 10 lo1 -> EADDRINUSE -",
    "01 bound lo1 | 10 lo2 -> ok ok",
    "01 bound lo1 | 01 any -> ok ok",
    "01 bound lo1 | 01 lo1 -> ok ok",
    "01 bound lo1 | 01 lo2 -> ok ok",
    "01 bound lo1 | 11 any -> ok ok",
    "01 bound lo1 | 11 lo1 -> ok ok",
    "01 bound lo1 | 11 lo2 -> ok ok",
    "01 listen any | 00 any -> EADDRINUSE -",
    "01 listen any | 00 lo1 -> EADDRINUSE -",
    "01 listen any | 00 lo2 -> EADDRINUSE -",
    "01 listen any | 10 any -> EADDRINUSE -",
    "01 listen any | 10 lo1 -> EADDRINUSE -",
    "01 listen any | 10 lo2 -> EADDRINUSE -",
    "01 listen any | 01 any -> ok ok",
    "01 listen any | 01 lo1 -> ok ok",
    "01 listen any | 01 lo2 -> ok ok",
    "01 listen any | 11 any -> ok ok",
    "01 listen any | 11 lo1 -> ok ok",
    "01 listen any | 11 lo2 -> ok ok",
    "01 listen lo1 | 00 any -> EADDRINUSE -",
    "01 listen lo1 | 00 lo1 -> EADDRINUSE -",
    "01 listen lo1 | 00 lo2 -> ok ok",
    "01 listen lo1 | 10 any -> EADDRINUSE -",
    "01 listen lo1 | 10 lo1 -> EADDRINUSE -",
    "01 listen lo1 | 10 lo2 -> ok ok",
    "01 listen lo1 | 01 any -> ok ok",
    "01 listen lo1 | 01 lo1 -> ok ok",
    "01 listen lo1 | 01 lo2 -> ok ok",
    "01 listen lo1 | 11 any -> ok ok",
    "01 listen lo1 | 11 lo1 -> ok ok",
    "01 listen lo1 | 11 lo2 -> ok ok",
    "01 estab any | 00 any -> EADDRINUSE -",
    "01 estab any | 00 lo1 -> EADDRINUSE -",
    "01 estab any | 00 lo2 -> ok ok",
    "01 estab any | 10 any -> EADDRINUSE -",
    "01 estab any | 10 lo1 -> EADDRINUSE -",
    "01 estab any | 10 lo2 -> ok ok",
    "01 estab any | 01 any -> ok ok",
    "01 estab any | 01 lo1 -> ok ok",
    "01 estab any | 01 lo2 -> ok ok",
    "01 estab any | 11 any -> ok ok",
    "01 estab any | 11 lo1 -> ok ok",
    "01 estab any | 11 lo2 -> ok ok",
    "01 estab lo1 | 00 any -> EADDRINUSE -",
    "01 estab lo1 | 00 lo1 -> EADDRINUSE -",
    "01 estab lo1 | 00 lo2 -> ok ok",
    "01 estab lo1 | 10 any -> EADDRINUSE -",
    "01 estab lo1 | 10 lo1 -> EADDRINUSE -",
    "01 estab lo1 | 10 lo2 -> ok ok",
    "01 estab lo1 | 01 any -> ok ok",
    "01 estab lo1 | 01 lo1 -> ok ok",
    "01 estab lo1 | 01 lo2 -> ok ok",
    "01 estab lo1 | 11 any -> ok ok",
    "01 estab lo1 | 11 lo1 -> ok ok",
    "01 estab lo1 | 11 lo2 -> ok ok",
    "01 timewait any | 00 any -> EADDRINUSE -",
    "01 timewait any | 00 lo1 -> EADDRINUSE -",
    "01 timewait any | 00 lo2 -> ok ok",
    "01 timewait any | 10 any -> EADDRINUSE -",
    "01 timewait any | 10 lo1 -> EADDRINUSE -",
    "01 timewait any | 10 lo2 -> ok ok",
    "01 timewait any | 01 any -> ok ok",
    "01 timewait any | 01 lo1 -> ok ok",
    "01 timewait any | 01 lo2 -> ok ok",
    "01 timewait any | 11 any -> ok ok",
    "01 timewait any | 11 lo1 -> ok ok",
    "01 timewait any | 11 lo2 -> ok ok",
    "01 timewait lo1 | 00 any -> EADDRINUSE -",
    "01 timewait lo1 | 00 lo1 -> EADDRINUSE -",
    "01 timewait lo1 | 00 lo2 -> ok ok",
    "01 timewait lo1 | 10 any -> EADDRINUSE -",
    "01 timewait lo1 | 10 lo1 -> EADDRINUSE -",
    "01 timewait lo1 | 10 lo2 -> ok ok",
    "01 timewait lo1 | 01 any -> ok ok",
    "01 timewait lo1 | 01 lo1 -> ok ok",
    "01 timewait lo1 | 01 lo2 -> ok ok",
    "01 timewait lo1 | 11 any -> ok ok",
    "01 timewait lo1 | 11 lo1 -> ok ok",
    "01 timewait lo1 | 11 lo2 -> ok ok",
    "11 bound any | 00 any -> EADDRINUSE -",
    "11 bound any | 00 lo1 -> EADDRINUSE -",
    "11 bound any | 00 lo2 -> EADDRINUSE -",
    "11 bound any | 10 any -> ok ok",
    "11 bound any | 10 lo1 -> ok ok",
    "11 bound any | 10 lo2 -> ok ok",
    "11 bound any | 01 any -> ok ok",
    "11 bound any | 01 lo1 -> ok ok",
    "11 bound any | 01 lo2 -> ok ok",
    "11 bound any | 11 any -> ok ok",
    "11 bound any | 11 lo1 -> ok ok",
    "11 bound any | 11 lo2 -> ok ok",
    "11 bound lo1 | 00 any -> EADDRINUSE -",
    "11 bound lo1 | 00 lo1 -> EADDRINUSE -",
    "11 bound lo1 | 00 lo2 -> ok ok",
    "11 bound lo1 | 10 any -> ok ok",
    "11 bound lo1 | 10 lo1 -> ok ok",
    "11 bound lo1 | 10 lo2 -> ok ok",
    "11 bound lo1 | 01 any -> ok ok",
    "11 bound lo1 | 01 lo1 -> ok ok",
    "11 bound lo1 | 01 lo2 -> ok ok",
    "11 bound lo1 | 11 any -> ok ok",
    "11 bound lo1 | 11 lo1 -> ok ok",
    "11 bound lo1 | 11 lo2 -> ok ok",
    "11 listen any | 00 any -> EADDRINUSE -",
    "11 listen any | 00 lo1 -> EADDRINUSE -",
    "11 listen any | 00 lo2 -> EADDRINUSE -",
    "11 listen any | 10 any -> EADDRINUSE -",
    "11 listen any | 10 lo1 -> EADDRINUSE -",
    "11 listen any | 10 lo2 -> EADDRINUSE -",
    "11 listen any | 01 any -> ok ok",
    "11 listen any | 01 lo1 -> ok ok",
    "11 listen any | 01 lo2 -> ok ok",
    "11 listen any | 11 any -> ok ok",
    "11 listen any | 11 lo1 -> ok ok",
    "11 listen any | 11 lo2 -> ok ok",
    "11 listen lo1 | 00 any -> EADDRINUSE -",
    "11 listen lo1 | 00 lo1 -> EADDRINUSE -",
    "11 listen lo1 | 00 lo2 -> ok ok",
    "11 listen lo1 | 10 any -> EADDRINUSE -",
    "11 listen lo1 | 10 lo1 -> EADDRINUSE -",
    "11 listen lo1 | 10 lo2 -> ok ok",
    "11 listen lo1 | 01 any -> ok ok",
    "11 listen lo1 | 01 lo1 -> ok ok",
    "11 listen lo1 | 01 lo2 -> ok ok",
    "11 listen lo1 | 11 any -> ok ok",
    "11 listen lo1 | 11 lo1 -> ok ok",
    "11 listen lo1 | 11 lo2 -> ok ok",
    "11 estab any | 00 any -> EADDRINUSE -",
    "11 estab any | 00 lo1 -> EADDRINUSE -",
    "11 estab any | 00 lo2 -> ok ok",
    "11 estab any | 10 any -> ok ok",
    "11 estab any | 10 lo1 -> ok ok",
    "11 estab any | 10 lo2 -> ok ok",
    "11 estab any | 01 any -> ok ok",
    "11 estab any | 01 lo1 -> ok ok",
    "11 estab any | 01 lo2 -> ok ok",
    "11 estab any | 11 any -> ok ok",
    "11 estab any | 11 lo1 -> ok ok",
    "11 estab any | 11 lo2 -> ok ok",
    "11 estab lo1 | 00 any -> EADDRINUSE -",
    "11 estab lo1 | 00 lo1 -> EADDRINUSE -",
    "11 estab lo1 | 00 lo2 -> ok ok",
    "11 estab lo1 | 10 any -> ok ok",
    "11 estab lo1 | 10 lo1 -> ok ok",
    "11 estab lo1 | 10 lo2 -> ok ok",
    "11 estab lo1 | 01 any -> ok ok",
    "11 estab lo1 | 01 lo1 -> ok ok",
    "11 estab lo1 | 01 lo2 -> ok ok",
    "11 estab lo1 | 11 any -> ok ok",
    "11 estab lo1 | 11 lo1 -> ok ok",
    "11 estab lo1 | 11 lo2 -> ok ok",
    "11 timewait any | 00 any -> EADDRINUSE -",
    "11 timewait any | 00 lo1 -> EADDRINUSE -",
    "11 timewait any | 00 lo2 -> ok ok",
    "11 timewait any | 10 any -> ok ok",
    "11 timewait any | 10 lo1 -> ok ok",
    "11 timewait any | 10 lo2 -> ok ok",
    "11 timewait any | 01 any -> ok ok",
    "11 timewait any | 01 lo1 -> ok ok",
    "11 timewait any | 01 lo2 -> ok ok",
    "11 timewait any | 11 any -> ok ok",
    "11 timewait any | 11 lo1 -> ok ok",
    "11 timewait any | 11 lo2 -> ok ok",
    "11 timewait lo1 | 00 any -> EADDRINUSE -",
    "11 timewait lo1 | 00 lo1 -> EADDRINUSE -",
    "11 timewait lo1 | 00 lo2 -> ok ok",
    "11 timewait lo1 | 10 any -> ok ok",
    "11 timewait lo1 | 10 lo1 -> ok ok",
    "11 timewait lo1 | 10 lo2 -> ok ok",
    "11 timewait lo1 | 01 any -> ok ok",
    "11 timewait lo1 | 01 lo1 -> ok ok",
    "11 timewait lo1 | 01 lo2 -> ok ok",
    "11 timewait lo1 | 11 any -> ok ok",
    "11 timewait lo1 | 11 lo1 -> ok ok",
    "11 timewait lo1 | 11 lo2 -> ok ok",]

_ADDR = {"any": "0.0.0.0", "lo1": "127.0.0.1", "lo2": "127.0.0.2"}


def _sock(host, opts: str):
    s = host.socket()
    if opts[0] == "1":
        s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
    if opts[1] == "1":
        s.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1)
    return s


def _errname(fn) -> str:
    try:
        fn()
    except OSError as e:
        return errno.errorcode[e.errno]
    return "ok"


def _bind_case(w: World, h, srv, port: int, case: str) -> str:
    left, right = case.split(" -> ")[0].split(" | ")
    o1, st, a1 = left.split()
    o2, a2 = right.split()
    s1 = _sock(h, o1)
    s1.bind((_ADDR[a1], port))
    if st == "listen":
        s1.listen(5)
    elif st in ("estab", "timewait"):
        s1.connect(("127.0.0.1", 9))
        c, _ = srv.accept()
        if st == "timewait":
            s1.close()
            w.run_for(0.001)
            c.close()
            w.run_for(0.001)
            assert h.tcp_hashinfo.bhash[port].owners[0].state == TCP_TIME_WAIT
    s2 = _sock(h, o2)
    b = _errname(lambda: s2.bind((_ADDR[a2], port)))
    ls = _errname(lambda: s2.listen(5)) if b == "ok" else "-"
    return f"{case.split(' -> ')[0]} -> {b} {ls}"


def test_bind_conflict_matrix_matches_linux():
    w = World(seed=3)
    h = w.host("h", "10.0.0.1")
    srv = h.socket()
    srv.bind(("127.0.0.1", 9))
    srv.listen(4096)
    got = []
    for i, case in enumerate(BIND_MATRIX):
        got.append(_bind_case(w, h, srv, 20001 + i, case))
    bad = [f"{g}   (Linux: {e.split(' -> ')[1]})" for g, e in zip(got, BIND_MATRIX, strict=True) if g != e]
    assert not bad, f"{len(bad)} of {len(BIND_MATRIX)} differ from Linux:\n" + "\n".join(bad)


# ---- ephemeral ports -------------------------------------------------------------------------

def _pair_world(seed: int = 1, delay: float = 0.0005):
    w = World(seed=seed)
    c = w.host("client", "10.0.0.1")
    s = w.host("server", "10.0.0.2")
    w.link(c, s, delay=delay)
    return w, c, s


def _listen(host, addr: str = "0.0.0.0", port: int = 80, backlog: int = 4096):
    ls = host.socket()
    ls.bind((addr, port))
    ls.listen(backlog)
    return ls


def _request(w, client, ls, dst: str = "10.0.0.2", port: int = 80) -> int:
    """One short request, the client closing first (its side ends in TIME_WAIT); its port."""
    c = client.socket()
    c.connect((dst, port))
    s, _ = ls.accept()
    lport = c.getsockname()[1]
    c.close()
    w.run_for(0.01)
    s.close()
    w.run_for(0.01)
    return lport


def test_bind_port_zero_prefers_odd_connect_prefers_even():
    """Real kernel (6.18, default range): 200/200 bind(0) ports odd, 200/200 connect() ports even."""
    w, c, s = _pair_world()
    ls = _listen(s)
    bound = []
    for _ in range(200):
        b = c.socket()
        b.bind(("0.0.0.0", 0))
        bound.append(b.getsockname()[1])
    assert all(p % 2 == 1 and 32768 <= p <= 60999 for p in bound)
    assert len(set(bound)) == 200
    conns = []
    for _ in range(200):
        k = c.socket()
        k.connect(("10.0.0.2", 80))
        conns.append(k.getsockname()[1])
        ls.accept()
    assert all(p % 2 == 0 and 32768 <= p <= 60999 for p in conns)
    assert len(set(conns)) == 200


def test_connect_uses_odd_ports_once_even_ones_are_gone():
    """__inet_hash_connect walks the even ports, then the odd ones (range 40000-40003)."""
    w, c, s = _pair_world()
    c.sysctl.set("net.ipv4.ip_local_port_range", "40000 40003")
    ls = _listen(s)
    ports = []
    for _ in range(4):
        k = c.socket()
        k.connect(("10.0.0.2", 80))
        ls.accept()
        ports.append(k.getsockname()[1])
    assert sorted(ports[:2]) == [40000, 40002] and sorted(ports[2:]) == [40001, 40003]
    k = c.socket()
    with pytest.raises(OSError) as ei:
        k.connect(("10.0.0.2", 80))
    assert ei.value.errno == errno.EADDRNOTAVAIL
    # another destination is another set of 4-tuples: the same ports serve again
    ls2 = _listen(s, port=81)
    k.connect(("10.0.0.2", 81))
    ls2.accept()
    assert k.getsockname()[1] in ports


def test_bind_port_zero_skips_connect_ports_and_fails_eaddrinuse():
    """bind(0) never shares a port connect() took; all taken -> EADDRINUSE (inet_csk_get_port)."""
    w, c, s = _pair_world()
    c.sysctl.set("net.ipv4.ip_local_port_range", "40000 40001")
    ls = _listen(s)
    for _ in range(2):
        k = c.socket()
        k.connect(("10.0.0.2", 80))
        ls.accept()
    b = c.socket()
    with pytest.raises(OSError) as ei:
        b.bind(("0.0.0.0", 0))
    assert ei.value.errno == errno.EADDRINUSE


# ---- the article: one port, TIME_WAIT, tcp_tw_reuse ------------------------------------------

def test_article_single_port_time_wait_blocks_connect_until_tw_reuse():
    """Real kernel: range "N N", tw_reuse=0: EADDRNOTAVAIL now and after 1.1 s; tw_reuse=1:
    EADDRNOTAVAIL at once, ok after 1.1 s (tcp_tw_reuse_delay 1000 ms)."""
    w, c, s = _pair_world()
    c.sysctl.set("net.ipv4.ip_local_port_range", "32768 32768")
    c.sysctl.set("net.ipv4.tcp_tw_reuse", 0)
    ls = _listen(s)
    assert _request(w, c, ls) == 32768
    tws = [sk for sk in c.tcp_hashinfo.ehash.values() if sk.state == TCP_TIME_WAIT]
    assert len(tws) == 1 and tws[0].sport == 32768
    k = c.socket()
    with pytest.raises(OSError) as ei:
        k.connect(("10.0.0.2", 80))
    assert ei.value.errno == errno.EADDRNOTAVAIL
    w.run_for(1.1)
    with pytest.raises(OSError) as ei:
        k.connect(("10.0.0.2", 80))
    assert ei.value.errno == errno.EADDRNOTAVAIL
    c.sysctl.set("net.ipv4.tcp_tw_reuse", 1)
    before = dict(c.mib)
    k.connect(("10.0.0.2", 80))
    assert k.getsockname() == ("10.0.0.1", 32768)
    sk2, _ = ls.accept()
    k.send(b"ping")
    assert sk2.recv(10) == b"ping"
    assert c.mib.delta(before).get("TcpExtTWRecycled") == 1
    assert c.tw_count == 0


@pytest.mark.parametrize("reuse,wait,loopback,ok", [
    # real kernel, Linux 6.18: range of one port, TIME_WAIT left by the previous connection
    (0, 0, True, False), (0, 1.1, True, False),
    (1, 0, True, False), (1, 1.1, True, True),
    (2, 0, True, False), (2, 1.1, True, True),
    (0, 1.1, False, False), (1, 0, False, False), (1, 1.1, False, True),
    (2, 0, False, False), (2, 1.1, False, False),
])
def test_tw_reuse_modes(reuse, wait, loopback, ok):
    if loopback:
        w = World(seed=2)
        c = s = w.host("h", "10.0.0.1")
        dst = "127.0.0.1"
    else:
        w, c, s = _pair_world(seed=2)
        dst = "10.0.0.2"
    c.sysctl.set("net.ipv4.ip_local_port_range", "40000 40000")
    c.sysctl.set("net.ipv4.tcp_tw_reuse", reuse)
    ls = _listen(s)
    _request(w, c, ls, dst)
    w.run_for(wait)
    k = c.socket()
    assert _errname(lambda: k.connect((dst, 80))) == ("ok" if ok else "EADDRNOTAVAIL")


def test_bound_socket_connect_takes_over_time_wait_without_tw_reuse():
    """Real kernel: SO_REUSEADDR + bind(addr, port) + connect() over a TIME_WAIT of the same
    4-tuple succeeds at once with tcp_tw_reuse=0 (tcp_twsk_unique with twp == NULL)."""
    w, c, s = _pair_world()
    c.sysctl.set("net.ipv4.tcp_tw_reuse", 0)
    ls = _listen(s)

    def bound():
        k = c.socket()
        k.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
        k.bind(("10.0.0.1", 45000))
        return k

    k = bound()
    k.connect(("10.0.0.2", 80))
    sk, _ = ls.accept()
    k.close()
    w.run_for(0.01)
    sk.close()
    w.run_for(0.01)
    assert c.tw_count == 1
    k = bound()
    k.connect(("10.0.0.2", 80))
    assert k.getsockname() == ("10.0.0.1", 45000)
    assert c.tw_count == 0


def _churn(w, c, ls, dst: str = "10.0.0.2", batch: int = 2000) -> int:
    """Open/close connections (client closes first) until connect() fails; returns how many
    succeeded. Batched non-blocking connects: the same packets as a serial loop, fewer turns of
    the event loop."""
    done = 0
    while True:
        clients = []
        err = None
        for _ in range(batch):
            k = c.socket()
            k.setblocking(False)
            e = k.connect_ex((dst, 80))
            if e != errno.EINPROGRESS:
                err = e
                k.close()
                break
            clients.append(k)
        w.run_for(0.005)
        servers = [ls.accept()[0] for _ in clients]
        for k in clients:
            k.close()
        w.run_for(0.005)
        for sk in servers:
            sk.close()
        w.run_for(0.005)
        done += len(clients)
        if err is not None:
            assert err == errno.EADDRNOTAVAIL
            return done


def test_connect_loop_runs_out_after_28232_ports():
    """The article: default ip_local_port_range 32768-60999 and tcp_tw_reuse 0. Real kernel
    (Linux 6.18, one destination, client closes first): connect() #28233 fails EADDRNOTAVAIL;
    28232 distinct ports used, 32768..60999."""
    w, c, s = _pair_world(delay=0.0005)
    c.sysctl.set("net.ipv4.tcp_tw_reuse", 0)
    ls = _listen(s)
    n = _churn(w, c, ls)
    assert n == 28232 == 60999 - 32768 + 1
    assert c.tw_count == 28232
    assert s.tw_count == 0
    ports = {tw.sport for tw in c.tcp_hashinfo.ehash.values()}
    assert ports == set(range(32768, 61000))
    # 60 s later TIME_WAIT is over and the ports are back
    w.run_for(61)
    assert c.tw_count == 0 and not c.tcp_hashinfo.ehash and not c.tcp_hashinfo.bhash
    k = c.socket()
    k.connect(("10.0.0.2", 80))


# ---- tcp_max_tw_buckets, many TIME_WAIT sockets ---------------------------------------------

def test_max_tw_buckets_overflow_makes_no_time_wait_socket():
    """Real kernel: tcp_max_tw_buckets below the TIME_WAIT count -> every further close bumps
    TcpExtTCPTimeWaitOverflow and leaves no TIME_WAIT socket (the port is free at once)."""
    w, c, s = _pair_world()
    c.sysctl.set("net.ipv4.tcp_max_tw_buckets", 5)
    c.sysctl.set("net.ipv4.tcp_tw_reuse", 0)
    ls = _listen(s)
    before = dict(c.mib)
    ports = [_request(w, c, ls) for _ in range(10)]
    assert c.tw_count == 5
    assert sum(1 for sk in c.tcp_hashinfo.ehash.values() if sk.state == TCP_TIME_WAIT) == 5
    assert c.mib.delta(before).get("TcpExtTCPTimeWaitOverflow") == 5
    held = {p for p in c.tcp_hashinfo.bhash}
    assert held == set(ports[:5])


def make_time_wait(host, n: int, dst: str = "10.0.0.2", dport: int = 80, start: int = 0) -> None:
    """Put ``n`` connections of ``host`` into TIME_WAIT through ``tcp_time_wait`` (the mini
    socket, ehash and bind-bucket handover, the 60 s timer) without the packets that would
    lead there, so that very many can be made quickly. 4-tuples: ports 1024-65535 to
    consecutive destination ports."""
    from tcpdive.packet.ipv4 import ip2int
    from tcpdive.tcp import sock as S
    from tcpdive.tcp.minisocks import tcp_time_wait
    from tcpdive.tcp.sock import TcpSock

    hi = host.tcp_hashinfo
    saddr, daddr = host.primary_addr(), ip2int(dst)
    for i in range(start, start + n):
        sport = 1024 + i % 64512
        dp = dport + i // 64512
        sk = TcpSock(host)
        sk.saddr = sk.rcv_saddr = saddr
        sk.daddr, sk.dport = daddr, dp
        sk.tstamp_ok = True
        sk.state = S.TCP_FIN_WAIT2
        sk.dead = True
        host.sockets.add(sk)
        host.tcp_orphan_count += 1
        hi.bind_add(sk, sport, -1)
        hi.ehash_insert(sk, (saddr, sport, daddr, dp))
        tcp_time_wait(sk, S.TCP_TIME_WAIT, 0)


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="measured with tracemalloc, "
                    "which only CPython has")
def test_100k_time_wait_sockets_are_small_and_expire_on_time():
    import gc
    import tracemalloc

    w, c, s = _pair_world()
    n = 100_000
    c.sysctl.set("net.ipv4.tcp_max_tw_buckets", n)
    w.run_for(1.0)
    gc.collect()
    tracemalloc.start()
    m0 = tracemalloc.get_traced_memory()[0]
    make_time_wait(c, 20_000)              # measured: ~755 B each (mini socket 232 B, KTimer
    gc.collect()                           # 80 B, heap entry, ehash key, bind bucket)
    per_tw = (tracemalloc.get_traced_memory()[0] - m0) / 20_000
    tracemalloc.stop()
    make_time_wait(c, n - 20_000, start=20_000)
    assert c.tw_count == n and len(c.tcp_hashinfo.ehash) == n
    assert not c.sockets and c.tcp_orphan_count == 0
    assert per_tw < 1200, per_tw           # mini socket + timer + ehash/bhash entries
    w.run_for(59.9)
    assert c.tw_count == n
    w.run_for(0.2)                         # TCP_TIMEWAIT_LEN = 60 s after entry
    assert c.tw_count == 0 and not c.tcp_hashinfo.ehash and not c.tcp_hashinfo.bhash
    assert c.mib["TcpExtTW"] == n


def test_connect_loop_runs_out_after_exactly_the_range():
    """The same experiment on a 4000-port range (fast enough for every run): exactly
    high - low + 1 connections, then EADDRNOTAVAIL; every port of the range in TIME_WAIT."""
    w, c, s = _pair_world()
    c.sysctl.set("net.ipv4.tcp_tw_reuse", 0)
    c.sysctl.set("net.ipv4.ip_local_port_range", "32768 36767")
    ls = _listen(s)
    assert _churn(w, c, ls) == 4000
    assert {tw.sport for tw in c.tcp_hashinfo.ehash.values()} == set(range(32768, 36768))
