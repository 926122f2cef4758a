"""The tour's HTML report: self-contained, every scenario present, ladders with packets, and it
renders in headless Chromium without console errors (screenshot to artifacts/report.png)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tcpdive.scenarios import Options, load_all
from tcpdive.tools.report import render_report, write_report

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


class _Dom(HTMLParser):
    """Counts scenario sections, ladders and the packets each ladder draws; notes externals."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.ladders: list[int] = []
        self.external: list[str] = []
        self.scripts = 0
        self._in_ladder = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and "scenario" in (a.get("class") or ""):
            self.sections.append(a.get("data-name", ""))
        if tag == "svg":
            self._in_ladder = "ladder" in (a.get("class") or "")
            if self._in_ladder:
                self.ladders.append(0)
        if tag == "g" and self._in_ladder and a.get("class") == "pkt":
            self.ladders[-1] += 1
        if tag == "script":
            self.scripts += 1
        for k in ("src", "href"):
            v = a.get(k) or ""
            if v and not v.startswith("#") and not v.startswith("data:"):
                self.external.append(v)

    def handle_endtag(self, tag):
        if tag == "svg":
            self._in_ladder = False


@pytest.fixture(scope="module")
def results():
    # the scenarios' own tests exercise connection-pool at full size; a smaller run is enough here
    old = os.environ.get("TCPDIVE_POOL_COMMANDS")
    os.environ["TCPDIVE_POOL_COMMANDS"] = "300"
    try:
        return [sc.run(Options()) for sc in load_all().values()]
    finally:
        if old is None:
            os.environ.pop("TCPDIVE_POOL_COMMANDS", None)
        else:
            os.environ["TCPDIVE_POOL_COMMANDS"] = old


def _check_dom(html: str, names: list[str]) -> _Dom:
    d = _Dom()
    d.feed(html)
    assert d.sections == names
    assert d.ladders and all(n > 0 for n in d.ladders), d.ladders
    assert not d.external, d.external
    return d


def test_report_structure(results):
    html = render_report(results, 1.0)
    d = _check_dom(html, [r.name for r in results])
    assert d.scripts == 0
    assert html.count('class="plot"') >= 6
    assert html.count('class="timeline"') >= 3
    assert "timewait (" in html


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        p = shutil.which(name)
        if p:
            return p
    return None


def test_report_in_headless_chromium(results, tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium not installed (CI installs the Debian 'chromium' package via .ci/run)")
    report = tmp_path / "report.html"
    write_report(str(report), results, 1.0)
    art = ROOT / "artifacts"
    art.mkdir(exist_ok=True)
    shot = art / "report.png"
    if shot.exists():
        shot.unlink()
    profile = tmp_path / "profile"
    common = FLAGS + [f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([exe, *common, "--dump-dom", report.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    _check_dom(dom.stdout, [r.name for r in results])
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln
               or "net::ERR" in ln]
    assert not console, "\n".join(console)
    snap = subprocess.run([exe, *common, "--hide-scrollbars", "--window-size=1280,2400",
                           f"--screenshot={shot}", report.as_uri()], capture_output=True, text=True,
                          timeout=120)
    assert snap.returncode == 0, snap.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000
    errs = [ln for ln in snap.stderr.splitlines() if re.search(r"CONSOLE|Uncaught|net::ERR", ln)]
    assert not errs, "\n".join(errs)


def test_tour_cli_writes_report(tmp_path, capsys):
    from tcpdive.cli import main

    out = tmp_path / "r.html"
    rc = main(["tour", "-q", "--only", "orphan-retries", "--only", "tcp-keepalive", "--report", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and "2 passed, 0 failed" in text and "[PASS]" in text
    d = _Dom()
    d.feed(out.read_text())
    assert d.sections == ["tcp-keepalive", "orphan-retries"]
