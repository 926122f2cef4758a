"""Counter names (issue #4): every MIB counter tcpdive counts is one Linux 6.18 has, except the
explicitly listed tcpdive-only ones (net/mib.py TCPDIVE_ONLY).

The reference list is ``nstat -az`` on Linux 6.18 (tests/net/data/linux-6.18-nstat-az.txt) plus
the /proc/net/snmp fields nstat never prints (mib.NSTAT_HIDDEN, e.g. TcpCurrEstab). The source
is scanned for string literals shaped like counter names; names built at run time are the
``"TcpExt" + name`` of tcp_oow_rate_limited (checked through its call sites) and the
``IcmpMsg{In,Out}Type<N>`` family (checked by pattern).
"""

from __future__ import annotations

import ast
import re
import tokenize
from pathlib import Path

from tcpdive.net.mib import KNOWN, NSTAT_HIDDEN, TCPDIVE_ONLY, Mib

SRC = Path(__file__).resolve().parents[2] / "src" / "tcpdive"
LINUX = frozenset(
    ln.strip() for ln in (Path(__file__).parent / "data" / "linux-6.18-nstat-az.txt").read_text()
    .splitlines() if ln.strip() and not ln.startswith("#")) | NSTAT_HIDDEN

COUNTER = re.compile(r"(Ip|IpExt|Icmp|IcmpMsg|Tcp|TcpExt|Udp|UdpLite|MPTcpExt)[A-Z][A-Za-z0-9]*")
# string literals of counter shape that are not counter names: prefixes used to build names
NOT_COUNTERS = {"IcmpIn", "IcmpOut", "TcpExt"}


def _python_names() -> set[str]:
    """Classes and ``__all__`` entries: identifiers whose literal looks like a counter."""
    out: set[str] = set()
    for f in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ClassDef):
                out.add(node.name)
            elif isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                out.update(e.value for e in getattr(node.value, "elts", ())
                           if isinstance(e, ast.Constant))
    return out


def _counted_names() -> set[str]:
    names: set[str] = set()
    for f in SRC.rglob("*.py"):
        text = f.read_text()
        with f.open("rb") as fh:
            for tok in tokenize.tokenize(fh.readline):
                if tok.type != tokenize.STRING or tok.string[:1] not in "\"'":
                    continue
                v = ast.literal_eval(tok.string)
                if isinstance(v, str) and COUNTER.fullmatch(v):
                    names.add(v)
        for m in re.finditer(r'tcp_oow_rate_limited\([^)]*?"(\w+)"\)', text):
            names.add("TcpExt" + m.group(1))
    return names - NOT_COUNTERS - _python_names()


def test_every_counter_name_in_the_source_is_linux_or_listed_tcpdive_only():
    names = _counted_names()
    assert len(names) > 100                       # the scan does find the counters
    assert "TcpExtTCPACKSkippedSeq" in names      # and the "TcpExt" + name ones
    unknown = sorted(n for n in names if n not in LINUX and n not in TCPDIVE_ONLY)
    assert unknown == []


def test_tcpdive_only_counters_really_are_not_in_linux_6_18():
    assert set(TCPDIVE_ONLY) == {"TcpExtPAWSPassive"}
    assert not set(TCPDIVE_ONLY) & LINUX
    assert "TcpExtTCPTimeWaitReuse" not in LINUX      # the old non-Linux name is gone
    assert "TcpExtTCPTimeWaitReuse" not in _counted_names()


def test_known_counters_are_linux_names():
    assert [n for n in KNOWN if n not in LINUX] == []
    assert len(set(KNOWN)) == len(KNOWN)


def test_icmp_msg_counters_follow_linux_pattern():
    assert "IcmpMsgInType3" in LINUX               # listed only once such a message was seen
    from tcpdive.net import icmp

    assert all(re.fullmatch(r"IcmpMsg(In|Out)Type\d+", n) for n in icmp._MSG_IN + icmp._MSG_OUT)


def test_nstat_hides_what_iproute2_hides():
    m = Mib()
    m["TcpCurrEstab"] += 1
    m["TcpExtPAWSPassive"] += 2
    names = [n for n, _ in m.nstat(all_=True)]
    assert "TcpCurrEstab" not in names                # iproute2 useless_number()
    assert "TcpExtPAWSPassive" in names               # tcpdive-only, shown once counted
    assert "TcpExtPAWSPassive" not in [n for n, _ in Mib().nstat(all_=True)]
