"""SNMP / netstat MIB counters of one namespace, named as ``nstat`` prints them.

Every name the code counts is a Linux 6.18 name (``nstat -az`` on 6.18, or /proc/net/snmp for
the few nstat hides), except those in :data:`TCPDIVE_ONLY`; tests/net/test_mib.py checks the
source against the 6.18 list.
"""

from __future__ import annotations

# Counters nstat shows even at zero with -a; anything else appears once bumped.
KNOWN = (
    "IpInReceives", "IpInHdrErrors", "IpInAddrErrors", "IpForwDatagrams", "IpInUnknownProtos",
    "IpInDiscards", "IpInDelivers", "IpOutRequests", "IpOutNoRoutes", "IpReasmFails",
    "IpExtInTruncatedPkts", "IpExtInCsumErrors",
    "IcmpInMsgs", "IcmpInErrors", "IcmpInDestUnreachs", "IcmpInEchos", "IcmpOutMsgs",
    "IcmpOutDestUnreachs", "IcmpOutEchoReps",
    "TcpActiveOpens", "TcpPassiveOpens", "TcpAttemptFails", "TcpEstabResets", "TcpCurrEstab",
    "TcpInSegs", "TcpOutSegs", "TcpRetransSegs", "TcpInErrs", "TcpOutRsts", "TcpInCsumErrors",
    "UdpInDatagrams", "UdpNoPorts", "UdpInErrors", "UdpOutDatagrams", "UdpRcvbufErrors",
    "UdpInCsumErrors",
    "TcpExtSyncookiesSent", "TcpExtSyncookiesRecv", "TcpExtSyncookiesFailed", "TcpExtTW",
    "TcpExtTWRecycled", "TcpExtPAWSActive", "TcpExtPAWSEstab", "TcpExtDelayedACKs",
    "TcpExtDelayedACKLost", "TcpExtListenOverflows", "TcpExtListenDrops", "TcpExtTCPHPHits",
    "TcpExtTCPPureAcks", "TcpExtTCPHPAcks", "TcpExtTCPTimeouts", "TcpExtTCPLossProbes",
    "TcpExtTCPAbortOnData", "TcpExtTCPAbortOnClose", "TcpExtTCPAbortOnMemory",
    "TcpExtTCPAbortOnTimeout", "TcpExtTCPAbortOnLinger", "TcpExtTCPKeepAlive",
    "TcpExtTCPSynRetrans", "TcpExtTCPOrigDataSent", "TcpExtTCPTimeWaitOverflow",
    "TcpExtTCPOFOQueue", "TcpExtTCPOFODrop", "TcpExtTCPOFOMerge", "TcpExtTCPRcvQDrop",
    "TcpExtTCPDSACKOldSent", "TcpExtTCPDSACKOfoSent", "TcpExtTCPDSACKRecv",
    "TcpExtTCPChallengeACK", "TcpExtTCPSYNChallenge", "TcpExtTCPWinProbe",
    "TcpExtTCPZeroWindowDrop", "TcpExtTCPToZeroWindowAdv", "TcpExtTCPFromZeroWindowAdv",
    "TcpExtTCPWantZeroWindowAdv", "TcpExtTCPDeferAcceptDrop", "TcpExtTCPReqQFullDrop",
    "TcpExtTCPReqQFullDoCookies", "TcpExtTCPBacklogCoalesce", "TcpExtTCPBacklogDrop",
    "TcpExtTCPRcvCoalesce", "TcpExtTCPAckCompressed", "TcpExtOutOfWindowIcmps",
    "TcpExtTCPSpuriousRTOs", "TcpExtTCPFastRetrans", "TcpExtTCPSlowStartRetrans",
    "TcpExtTCPRetransFail", "TcpExtTCPAbortFailed",
)

# Counters tcpdive keeps that Linux 6.18 does not have, and why. nstat -a does not list them
# at zero (they are not in KNOWN); they appear once counted.
TCPDIVE_ONLY = {
    "TcpExtPAWSPassive": "Linux < 4.12 LINUX_MIB_PAWSPASSIVEREJECTED: SYNs dropped by the "
                         "net.ipv4.tcp_tw_recycle emulation (both removed in 4.12)",
}

# In /proc/net/snmp but never printed by nstat (iproute2's useless_number()).
NSTAT_HIDDEN = frozenset(("IpForwarding", "IpDefaultTTL", "TcpRtoAlgorithm", "TcpRtoMin",
                          "TcpRtoMax", "TcpMaxConn", "TcpCurrEstab"))


class Mib(dict):
    """MIB values by nstat name, missing ones 0; ``mib["TcpInSegs"] += 1`` on hot paths (a plain
    dict store: ``collections.Counter`` would route each through a Python-level method),
    ``nstat()`` to read."""

    def __missing__(self, key: str) -> int:
        return 0

    def nstat(self, all_: bool = False, pattern: str | None = None) -> list[tuple[str, int]]:
        """Counters in nstat's order (Ip, Icmp, Tcp, Udp, TcpExt...), non-zero unless ``all_``."""
        names = list(KNOWN) + sorted(k for k in self if k not in KNOWN)
        out = []
        for n in names:
            if n in NSTAT_HIDDEN:
                continue
            v = self.get(n, 0)
            if (v or all_) and (pattern is None or pattern.lower() in n.lower()):
                out.append((n, v))
        return out

    def delta(self, before: dict[str, int]) -> dict[str, int]:
        """What changed since a snapshot (``dict(mib)``), like ``nstat`` between two runs."""
        return {k: v - before.get(k, 0) for k, v in self.items() if v != before.get(k, 0)}
