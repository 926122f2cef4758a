"""Linux's packetdrill test language: parser, symbols and a runner in virtual time."""

from __future__ import annotations

import os
from pathlib import Path


def shared_dir() -> Path | None:
    """The project's ``shared/`` folder (packetdrill corpus, seed article), if present.

    Looked up as $TCPDIVE_SHARED, then ``../shared`` beside the repository (how CI lays it
    out), then ``/work/shared``.
    """
    env = os.environ.get("TCPDIVE_SHARED")
    cands = [Path(env)] if env else []
    cands.append(Path(__file__).resolve().parents[3].parent / "shared")
    cands.append(Path("/work/shared"))
    for c in cands:
        if (c / "packetdrill").is_dir():
            return c
    return None


def corpus_root() -> Path | None:
    """``shared/packetdrill`` (holding ``tcp/``, ``tiers.tsv``, ``defaults.sh``), if present."""
    s = shared_dir()
    return s / "packetdrill" if s is not None else None
