"""Linux's packetdrill TCP corpus against tcpdive: per directory, the number of scripts where
tcpdive does what Linux 6.18 does must not fall below the recorded baseline
(tests/packetdrill/corpus_baseline.json, counts only).

"Does what Linux does" (tiers.tsv beside the corpus holds the real kernel's results): the
script passes on both, or it fails on both at the same script line -- a script written for an
older kernel is followed the way Linux 6.18 follows it, not the way it was written.

The corpus is third-party GPLv2 data, read in place from ../shared/packetdrill/tcp (or
$TCPDIVE_PACKETDRILL_CORPUS); the test is skipped when it is absent.  Refresh the baseline
after an improvement with ``TCPDIVE_UPDATE_BASELINE=1 pytest tests/packetdrill/test_corpus.py``.
"""

from __future__ import annotations

import collections
import json
import os
import time
from pathlib import Path

import pytest

from tcpdive.packetdrill import corpus_root
from tcpdive.packetdrill.linux import LinuxResults
from tcpdive.packetdrill.runner import collect_scripts, run_script

HERE = Path(__file__).parent
BASELINE = HERE / "corpus_baseline.json"
CORPUS = Path(os.environ.get("TCPDIVE_PACKETDRILL_CORPUS",
                             (corpus_root() or Path("/nonexistent")) / "tcp"))
DEFAULTS = CORPUS.parent / "defaults.sh"
def _run_corpus() -> tuple[dict[str, list[int]], list[str]]:
    """Per directory: [passed, failed, skipped, agrees with Linux]; and one line per script."""
    counts: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    linux = LinuxResults(CORPUS.parent)
    lines = []
    for path in collect_scripts([str(CORPUS)]):
        rel = os.path.relpath(path, CORPUS)
        d = rel.split(os.sep)[0]
        res = run_script(path, defaults_path=str(DEFAULTS), wall_limit_s=20.0)
        c = counts[d]
        if res.verdict == "PASS":
            c[0] += 1
        elif res.verdict == "SKIP":
            c[2] += 1
        else:
            c[1] += 1
        assert res.verdict in ("PASS", "FAIL", "ERROR", "SKIP")
        assert res.verdict == "PASS" or res.reason, rel
        agree = linux.agrees(res.verdict, res.reason, linux.lookup(path))
        c[3] += agree
        lines.append(f"{res.verdict:5} {'=' if agree else ' '} {rel}: {res.reason[:200]}")
    return dict(counts), lines


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"packetdrill corpus not found at {CORPUS}")
def test_corpus_pass_counts_do_not_regress() -> None:
    t0 = time.perf_counter()
    counts, lines = _run_corpus()
    wall = time.perf_counter() - t0
    print(f"\npacketdrill corpus: {wall:.1f} s wall")
    print(f"{'directory':20} passed failed skipped as-Linux")
    for d in sorted(counts):
        p, f, s, a = counts[d]
        print(f"{d:20} {p:6} {f:6} {s:7} {a:8}")
    total = [sum(c[i] for c in counts.values()) for i in range(4)]
    print(f"{'total':20} {total[0]:6} {total[1]:6} {total[2]:7} {total[3]:8}")
    agree = {d: c[3] for d, c in counts.items()}
    if os.environ.get("TCPDIVE_UPDATE_BASELINE"):
        BASELINE.write_text(json.dumps(dict(sorted(agree.items())), indent=1) + "\n")
    baseline = json.loads(BASELINE.read_text())
    worse = {d: (n, agree.get(d, 0)) for d, n in baseline.items() if agree.get(d, 0) < n}
    assert not worse, ("scripts behaving as on Linux 6.18 fell below the baseline (baseline, "
                       "now): " + repr(worse) + "\n" + "\n".join(
                           line for line in lines if not line.startswith(("PASS  =", "SKIP"))))
    assert wall < 180, f"corpus run took {wall:.0f} s"
