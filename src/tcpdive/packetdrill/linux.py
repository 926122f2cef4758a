"""What the real Linux 6.18 kernel does with each script of the corpus (``tiers.tsv``).

The corpus's ``tiers.tsv`` records the result of the real packetdrill binary against a real
Linux 6.18 kernel. tcpdive follows that kernel, not a script written for an older one: a script
"behaves as on Linux" when it passes on both, or fails on both at the same script line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from . import corpus_root

_LINE = re.compile(r"\.pkt:(\d+):")


class LinuxResults:
    """Linux 6.18's verdict and first failing line per corpus script (keyed by path)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else corpus_root()
        self.by_rel: dict[str, tuple[str, int | None]] = {}
        tiers = self.root / "tiers.tsv" if self.root is not None else None
        if tiers is None or not tiers.is_file():
            return
        for row in tiers.read_text().splitlines()[1:]:
            f = row.split("\t")
            if len(f) < 4:
                continue
            m = _LINE.search(f[4]) if len(f) > 4 else None
            self.by_rel[f[0]] = (f[3], int(m.group(1)) if m else None)

    def lookup(self, path: str) -> tuple[str, int | None] | None:
        """(verdict, first error line) for a script file, or None if it is not in the corpus."""
        if self.root is None:
            return None
        rel = os.path.relpath(os.path.realpath(path), os.path.realpath(self.root / "tcp"))
        return self.by_rel.get(rel)

    @staticmethod
    def agrees(verdict: str, reason: str, linux: tuple[str, int | None] | None) -> bool:
        """tcpdive's verdict is Linux 6.18's: both pass, or both fail at the same line."""
        if linux is None:
            return verdict == "PASS"
        lverdict, lline = linux
        if lverdict.startswith("PASS"):
            return verdict == "PASS"
        if lverdict == "FAIL" and verdict in ("FAIL", "ERROR") and lline is not None:
            m = _LINE.search(reason)
            return m is not None and int(m.group(1)) == lline
        return False

    def note(self, path: str, verdict: str, reason: str) -> str:
        """A short suffix for a result line: what Linux 6.18 does with this script."""
        linux = self.lookup(path)
        if linux is None or verdict == "SKIP":
            return ""
        lverdict, lline = linux
        same = "same as" if self.agrees(verdict, reason, linux) else "unlike"
        what = "passes" if lverdict.startswith("PASS") else (
            f"fails at line {lline}" if lline else lverdict.lower())
        return f"  [{same} Linux 6.18, which {what}]"
