"""A self-contained HTML report of scenario results: claims, ladders, state timelines, plots.

Everything is inline (CSS and SVG, no scripts, no external resources) so the file opens offline
in any browser. Inputs are :class:`tcpdive.scenarios.Result` objects; their ``data`` may carry
``ladders`` (arrows between hosts), ``timelines`` (per-socket states) and ``plots`` (series).
"""

from __future__ import annotations

import html
import time
from typing import Any

_CSS = """
:root{--fg:#1d2330;--mut:#5b6475;--bg:#f6f7fb;--card:#fff;--ok:#1a7f37;--bad:#c62828;--acc:#3457d5}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;
color:var(--fg);background:var(--bg)}header{background:#1d2330;color:#fff;padding:28px 40px}
header h1{margin:0 0 4px;font-size:26px}header p{margin:0;color:#c8cfdd}
main{max-width:1180px;margin:0 auto;padding:24px}
nav.toc{background:var(--card);border-radius:10px;padding:14px 20px;margin-bottom:24px;
box-shadow:0 1px 3px #0002}nav.toc ol{margin:0;padding-left:22px;columns:2}
section.scenario{background:var(--card);border-radius:10px;padding:20px 26px;margin-bottom:28px;
box-shadow:0 1px 3px #0002}h2{margin:0 0 6px;font-size:21px}h3{font-size:16px;margin:20px 0 8px;
color:var(--acc)}.badge{display:inline-block;border-radius:12px;padding:1px 10px;font-size:12px;
font-weight:600;color:#fff;vertical-align:middle;margin-left:8px}.pass{background:var(--ok)}
.fail{background:var(--bad)}.article{color:var(--mut);font-size:13px}
details{margin:6px 0}summary{cursor:pointer;color:var(--mut)}
pre{background:#0f1420;color:#d6deeb;padding:10px 12px;border-radius:6px;overflow-x:auto;
font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;margin:6px 0}
table.claims{border-collapse:collapse;width:100%}table.claims td{border-top:1px solid #e4e7ee;
padding:6px 8px;vertical-align:top}td.mark{width:56px;font-weight:700}td.mark.ok{color:var(--ok)}
td.mark.no{color:var(--bad)}td .ev{color:var(--mut);font:12px ui-monospace,Menlo,monospace;
white-space:pre-wrap;word-break:break-all}
.doc{white-space:pre-wrap;color:#333;font-size:13.5px;background:#f3f5fa;border-left:3px solid
var(--acc);padding:8px 12px;border-radius:4px}
svg{max-width:100%;height:auto;background:#fff}.figs{display:flex;flex-wrap:wrap;gap:16px}
.summary{display:flex;gap:24px;font-size:17px;margin:8px 0 0}
"""


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


_FLAG_COLORS = {"S": "#2e7d32", "F": "#c62828", "R": "#6a1b9a", "P": "#1565c0"}


def _arrow_color(flags: str) -> str:
    for k in ("R", "S", "F", "P"):
        if k in flags:
            return _FLAG_COLORS[k]
    return "#555"


def ladder_svg(lad: dict[str, Any]) -> str:
    """A sequence diagram: one lifeline per host, one arrow per packet (time downwards)."""
    hosts = list(lad.get("hosts") or [])
    arrows = lad.get("arrows") or []
    for a in arrows:
        for h in (a["src"], a["dst"]):
            if h not in hosts:
                hosts.append(h)
    if not arrows or not hosts:
        return ""
    colw, top, rowh = max(220, 720 // max(2, len(hosts))), 46, 30
    width = max(2, len(hosts)) * colw
    n = len(arrows)
    height = top + n * rowh + 30
    x = {h: colw // 2 + i * colw for i, h in enumerate(hosts)}
    out = [f'<svg class="ladder" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="{_e(lad.get("title", "ladder"))}">',
           '<defs><marker id="ah" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="context-stroke"/>'
           '</marker></defs>']
    for h in hosts:
        out.append(f'<text x="{x[h]}" y="22" text-anchor="middle" font-weight="700" font-size="14">{_e(h)}</text>'
                   f'<line x1="{x[h]}" y1="32" x2="{x[h]}" y2="{height - 8}" stroke="#b8c0d0" stroke-dasharray="4 3"/>')
    t_base = arrows[0]["t0"]
    for i, a in enumerate(arrows):
        y0 = top + i * rowh
        y1 = y0 + rowh * 0.6
        c = _arrow_color(a["flags"])
        x0, x1 = x[a["src"]], x[a["dst"]]
        if x0 == x1:
            x1 = x0 + 40
        out.append(f'<g class="pkt"><line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1:.1f}" stroke="{c}" '
                   f'stroke-width="1.6" marker-end="url(#ah)"/>'
                   f'<text x="{(x0 + x1) / 2:.0f}" y="{(y0 + y1) / 2 - 6:.1f}" text-anchor="middle" '
                   f'font-size="11" fill="{c}" stroke="#fff" stroke-width="3" paint-order="stroke">'
                   f'{_e(a["label"])}</text>'
                   f'<text x="4" y="{y0 + 4}" font-size="10" fill="#8a93a6">+{a["t0"] - t_base:.3f}s</text>'
                   f'<title>{_e(a.get("ep", ""))} {_e(a["label"])} at t={a["t0"]:.6f}s</title></g>')
    out.append("</svg>")
    return "".join(out)


_STATE_COLORS = {"ESTABLISHED": "#2e7d32", "SYN_SENT": "#9ccc65", "SYN_RECV": "#9ccc65",
                 "FIN_WAIT1": "#ffb300", "FIN_WAIT2": "#fb8c00", "TIME_WAIT": "#e53935",
                 "CLOSE_WAIT": "#8e24aa", "LAST_ACK": "#5e35b1", "CLOSING": "#f4511e",
                 "CLOSE": "#9e9e9e", "LISTEN": "#1e88e5", "NEW_SYN_RECV": "#9ccc65"}


def timeline_svg(tl: dict[str, Any]) -> str:
    rows = tl.get("rows") or []
    if not rows:
        return ""
    t_end = max([tl.get("t_end", 0.0)] + [e[-1][0] for r in rows for e in [r["events"]] if e])
    t0 = min(r["events"][0][0] for r in rows if r["events"])
    span = max(t_end - t0, 1e-3)
    left, width, rowh = 330, 820, 24
    height = 30 + len(rows) * rowh + 20
    out = [f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {left + width + 20} {height}" '
           f'width="{left + width + 20}" height="{height}">']
    for i, r in enumerate(rows):
        y = 24 + i * rowh
        out.append(f'<text x="4" y="{y + 14}" font-size="11" font-family="monospace">{_e(r["label"][:48])}</text>')
        evs = r["events"]
        for j, (t, st) in enumerate(evs):
            tn = evs[j + 1][0] if j + 1 < len(evs) else t_end
            if st == "CLOSE":
                tn = t + span * 0.004
            x0 = left + (t - t0) / span * width
            w = max(2.0, (tn - t) / span * width)
            c = _STATE_COLORS.get(st, "#607d8b")
            out.append(f'<rect x="{x0:.1f}" y="{y}" width="{w:.1f}" height="18" fill="{c}" rx="3">'
                       f'<title>{_e(st)} from t={t:.3f}s</title></rect>')
            if w > 60:
                out.append(f'<text x="{x0 + 4:.1f}" y="{y + 13}" font-size="10" fill="#fff">{_e(st)}</text>')
    out.append(f'<text x="{left}" y="{height - 4}" font-size="10" fill="#666">t={t0:.3f}s</text>'
               f'<text x="{left + width}" y="{height - 4}" font-size="10" fill="#666" text-anchor="end">'
               f't={t_end:.3f}s</text></svg>')
    return "".join(out)


_SERIES_COLORS = ["#3457d5", "#e53935", "#2e7d32", "#fb8c00", "#8e24aa"]


def plot_svg(p: dict[str, Any]) -> str:
    series = [(n, pts) for n, pts in p.get("series", []) if pts]
    if not series:
        return ""
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = 0.0, max(ys) if max(ys) > 0 else 1.0
    if x1 == x0:
        x1 = x0 + 1
    W, H, L, B, T, R = 540, 300, 60, 40, 30, 16
    pw, ph = W - L - R, H - T - B

    def sx(v):
        return L + (v - x0) / (x1 - x0) * pw

    def sy(v):
        return T + ph - (v - y0) / (y1 - y0) * ph
    out = [f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}">',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-weight="600" font-size="13">{_e(p["title"])}</text>',
           f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="#fafbfe" stroke="#ccd"/>']
    for k in range(5):
        v = y0 + (y1 - y0) * k / 4
        out.append(f'<line x1="{L}" x2="{L + pw}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" stroke="#e3e6ee"/>'
                   f'<text x="{L - 6}" y="{sy(v) + 4:.1f}" font-size="10" text-anchor="end">{v:.4g}</text>')
        xv = x0 + (x1 - x0) * k / 4
        out.append(f'<text x="{sx(xv):.1f}" y="{T + ph + 14}" font-size="10" text-anchor="middle">{xv:.4g}</text>')
    out.append(f'<text x="{L + pw / 2}" y="{H - 6}" font-size="11" text-anchor="middle">{_e(p["xlabel"])}</text>'
               f'<text x="14" y="{T + ph / 2}" font-size="11" text-anchor="middle" '
               f'transform="rotate(-90 14 {T + ph / 2})">{_e(p["ylabel"])}</text>')
    kind = p.get("kind", "line")
    for si, (name, pts) in enumerate(series):
        c = _SERIES_COLORS[si % len(_SERIES_COLORS)]
        if kind == "bars":
            bw = max(2.0, pw / (len(pts) * 1.6))
            for x, y in pts:
                out.append(f'<rect x="{sx(x) - bw / 2:.1f}" y="{sy(y):.1f}" width="{bw:.1f}" '
                           f'height="{T + ph - sy(y):.1f}" fill="{c}"><title>{x:g}: {y:g}</title></rect>')
        elif kind == "points":
            for x, y in pts:
                out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{c}">'
                           f'<title>{x:g}, {y:g}</title></circle>')
        else:
            d = []
            prev = None
            for x, y in pts:
                if kind == "step" and prev is not None:
                    d.append(f"L{sx(x):.1f},{sy(prev):.1f}")
                d.append(("M" if not d else "L") + f"{sx(x):.1f},{sy(y):.1f}")
                prev = y
            out.append(f'<path d="{" ".join(d)}" fill="none" stroke="{c}" stroke-width="2"/>')
        out.append(f'<rect x="{L + 8}" y="{T + 8 + si * 16}" width="10" height="10" fill="{c}"/>'
                   f'<text x="{L + 22}" y="{T + 17 + si * 16}" font-size="11">{_e(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def _handshake_ladder(res) -> dict[str, Any] | None:
    pk = res.data.get("packets")
    if not pk or res.data.get("ladders"):
        return None
    arrows = []
    for t, host, flags, plen in pk:
        other = "server" if host == "client" else "client"
        arrows.append({"t0": t / 1e6, "t1": t / 1e6, "src": host, "dst": other, "flags": flags,
                       "label": f"[{flags}]" + (f" len {plen}" if plen else ""), "len": plen, "ep": ""})
    return {"title": "Packets", "hosts": ["client", "server"], "arrows": arrows}


def scenario_html(res, idx: int) -> str:
    ok = res.ok
    parts = [f'<section class="scenario" id="sc-{_e(res.name)}" data-name="{_e(res.name)}" '
             f'data-ok="{"1" if ok else "0"}">',
             f'<h2>{idx}. {_e(res.name)} — {_e(res.title)}<span class="badge {"pass" if ok else "fail"}">'
             f'{"PASS" if ok else "FAIL"}</span></h2>']
    doc = (res.article or "").strip()
    if doc:
        parts.append(f'<div class="doc">{_e(doc)}</div>')
    parts.append('<h3>Claims</h3><table class="claims">')
    for c in res.claims:
        parts.append(f'<tr><td class="mark {"ok" if c.ok else "no"}">{"PASS" if c.ok else "FAIL"}</td>'
                     f'<td>{_e(c.text)}<div class="ev">{_e(c.evidence)}</div></td></tr>')
    parts.append("</table>")
    ladders = list(res.data.get("ladders", []))
    hl = _handshake_ladder(res)
    if hl:
        ladders.append(hl)
    for lad in ladders:
        svg = ladder_svg(lad)
        if svg:
            parts.append(f'<h3>Ladder: {_e(lad.get("title", ""))}</h3>{svg}')
    for tl in res.data.get("timelines", []):
        svg = timeline_svg(tl)
        if svg:
            parts.append(f'<h3>Socket states{(": " + _e(tl["title"])) if tl.get("title") else ""}</h3>{svg}')
    plots = [plot_svg(p) for p in res.data.get("plots", [])]
    plots = [p for p in plots if p]
    if plots:
        parts.append('<h3>Plots</h3><div class="figs">' + "".join(plots) + "</div>")
    parts.append("<h3>Evidence</h3>")
    for title, lines in res.sections:
        is_netstat = "netstat" in title
        body = "\n".join(lines) if lines else "(empty)"
        if is_netstat or len(lines) <= 12:
            parts.append(f'<div><b>{_e(title)}</b><pre>{_e(body)}</pre></div>')
        else:
            parts.append(f'<details><summary>{_e(title)} ({len(lines)} lines)</summary><pre>{_e(body)}</pre></details>')
    parts.append("</section>")
    return "".join(parts)


def render_report(results: list, wall_s: float | None = None) -> str:
    passed = sum(1 for r in results if r.ok)
    toc = "".join(f'<li><a href="#sc-{_e(r.name)}">{_e(r.name)}</a> '
                  f'<span class="badge {"pass" if r.ok else "fail"}">{"PASS" if r.ok else "FAIL"}</span></li>'
                  for r in results)
    body = "".join(scenario_html(r, i) for i, r in enumerate(results, 1))
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    wall = f" · {wall_s:.1f} s wall" if wall_s is not None else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>tcpdive tour report</title><style>{_CSS}</style></head><body>'
            f'<header><h1>tcpdive tour</h1><p>The article\'s experiments replayed on the simulated Linux '
            f'TCP/IP stack, in virtual time. Generated {when}{wall}.</p>'
            f'<div class="summary"><span>{passed} passed</span><span>{len(results) - passed} failed</span></div>'
            f'</header><main><nav class="toc"><b>Scenarios</b><ol>{toc}</ol></nav>{body}</main></body></html>')


def write_report(path: str, results: list, wall_s: float | None = None) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_report(results, wall_s))
    return path
