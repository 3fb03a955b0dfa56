"""One static `report.html` per run, assembled from sections.

Each experiment (loop, review, w2s, sandwich) lists its sections as `SECTIONS = [(title, fn)]` with
`fn(store) -> str | None` (HTML, or None when the run has nothing for it); `superalign.cli.experiments`
puts those lists in page order and passes them to `build`. The page is
self-contained (inline CSS and SVG, no scripts from the network) so it opens offline.
Harmful text is only ever shown inside a closed <details> element.
"""
from __future__ import annotations

import html
import json
import math
import re
import platform
from importlib import metadata
from pathlib import Path
from typing import Callable, Mapping, Sequence

from superalign.store import RunStore

Section = tuple[str, Callable[[RunStore], "str | None"]]

CSS = """
body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f5f5f5}td:first-child,th:first-child,td.t,th.t{text-align:left}
.tw{overflow-x:auto;max-width:100%}
details{margin:.4em 0}summary{cursor:pointer;color:#555}.harm{filter:blur(4px)}.harm:hover{filter:none}
pre{white-space:pre-wrap;background:#f8f8f8;padding:.5em;border-radius:4px;max-height:30em;overflow:auto}
.muted{color:#777}.bad{color:#b00}.good{color:#070}
"""


def esc(x) -> str:
    return html.escape(str(x))


_NUMERIC = re.compile(r"^\s*(?:[-+\u2212]?[\d.]|\u2013\s*$|$)")  # 0.8 [..], -2.2, +0.1, 12, "–" (no value), ""


def table(header: list[str], rows: list[list]) -> str:
    """An HTML table: a column of numbers is right-aligned (digits line up), a column holding any text is
    left-aligned (a right-aligned sentence is hard to read), and a table wider than the page scrolls inside its
    own box, not the page."""
    text = [any(not _NUMERIC.match(re.sub(r"<[^>]*>", "", str(r[i]))) for r in rows if i < len(r))
            for i in range(len(header))]
    cls = [' class="t"' if t else "" for t in text]
    h = "".join(f"<th{cls[i]}>{esc(c)}</th>" for i, c in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{cls[i] if i < len(cls) else ''}>{c if isinstance(c, Markup) else esc(c)}"
                                    "</td>" for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f'<div class="tw"><table><tr>{h}</tr>{body}</table></div>'


class Markup(str):
    """A string already safe to put into HTML."""


def fmt_ci(value, lo=None, hi=None, digits: int = 3, ci_digits: int | None = None, sign: str = "",
           sep: str = ", ") -> str:
    """`0.650 [0.433, 0.819]`; `sign="+"` for a change, and a narrower interval (`ci_digits=2, sep=","`) where a
    console's columns are few."""
    if value is None:
        return "–"
    c = digits if ci_digits is None else ci_digits
    s = f"{value:{sign}.{digits}f}"
    if lo is not None and hi is not None:
        s += f" [{lo:{sign}.{c}f}{sep}{hi:{sign}.{c}f}]"
    return s


def hidden(text: str, label: str = "show text (may be harmful)") -> Markup:
    """Red-team text stays folded until the reader asks for it."""
    return Markup(f"<details><summary>{esc(label)}</summary><pre>{esc(text)}</pre></details>")


# ten, so a line plot of the nine harm categories repeats no colour
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf"]


def line_plot(series: Mapping[str, Sequence[tuple[float, float | None, float | None, float | None]]], width=520, height=220,
              xlabel="round", ylabel="") -> Markup:
    """Inline SVG: one polyline per series of (x, y, lo, hi) points with CI whiskers."""
    pts = [p for s in series.values() for p in s]
    if not pts:
        return Markup("")
    xs = [p[0] for p in pts]
    ys = [v for p in pts for v in (p[1], p[2], p[3]) if v is not None]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys + [0.0]), max(ys + [1.0])
    L, B = 45, 30

    def X(x): return L + (x - x0) / (x1 - x0) * (width - L - 10)
    def Y(y): return height - B - (y - y0) / ((y1 - y0) or 1) * (height - B - 10)
    colors = COLORS
    out = [f'<svg width="{width}" height="{height + 20 * len(series)}" xmlns="http://www.w3.org/2000/svg" '
           f'style="font:11px sans-serif">',
           f'<line x1="{L}" y1="{height - B}" x2="{width - 10}" y2="{height - B}" stroke="#999"/>',
           f'<line x1="{L}" y1="10" x2="{L}" y2="{height - B}" stroke="#999"/>',
           f'<text x="{L - 5}" y="{Y(y1) + 4}" text-anchor="end">{y1:.2f}</text>',
           f'<text x="{L - 5}" y="{Y(y0) + 4}" text-anchor="end">{y0:.2f}</text>',
           f'<text x="{width / 2}" y="{height - 5}" text-anchor="middle">{esc(xlabel)}</text>',
           f'<text x="10" y="{height / 2}" transform="rotate(-90 10 {height / 2})" text-anchor="middle">{esc(ylabel)}</text>']
    for x in sorted(set(xs)):
        out.append(f'<text x="{X(x)}" y="{height - B + 14}" text-anchor="middle">{x:g}</text>')
    for i, (name, s) in enumerate(series.items()):
        c = colors[i % len(colors)]
        s = sorted(s)
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="'
                   + " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y, *_ in s) + '"/>')
        for x, y, lo, hi in s:
            out.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="3" fill="{c}"/>')
            if lo is not None and hi is not None:
                out.append(f'<line x1="{X(x):.1f}" y1="{Y(lo):.1f}" x2="{X(x):.1f}" y2="{Y(hi):.1f}" stroke="{c}"/>')
        out.append(f'<rect x="{L}" y="{height + 20 * i + 2}" width="10" height="10" fill="{c}"/>'
                   f'<text x="{L + 15}" y="{height + 20 * i + 11}">{esc(name)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def _num(v) -> float | None:
    """A finite float, or None (a missing or NaN estimate cannot be placed on an axis)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def pareto_plot(points: list[dict], width=520, height=320, xlabel="over-refusal (look-alike)", ylabel="compliance",
                caption="lower-left is better: fewer harmful answers and fewer refusals of harmless prompts") -> Markup:
    """Inline SVG scatter of a safety boundary: each point {x, y, label, series, x_lo, x_hi, y_lo, y_hi} (bounds
    optional, drawn as error bars); the points of one series are joined in the order given (e.g. one arm's
    rounds), so a trade of one error for the other shows as a line running up-left or down-right."""
    pts = [dict(p, x=_num(p.get("x")), y=_num(p.get("y"))) for p in points]
    pts = [p for p in pts if p["x"] is not None and p["y"] is not None]
    if not pts:
        return Markup("")
    vals = [v for p in pts for k in ("x", "x_hi", "y", "y_hi") if (v := _num(p.get(k))) is not None]
    top = min(1.0, max(0.1, math.ceil(max(vals) * 10 + 1e-9) / 10))  # rates: one shared 0..top scale, in tenths
    L, B, T, R = 45, 42, 10, 10

    def X(x): return L + x / top * (width - L - R)
    def Y(y): return height - B - y / top * (height - B - T)
    colors = COLORS
    series = list(dict.fromkeys(str(p.get("series", "")) for p in pts))
    out = [(f'<svg width="{width}" height="{height + 20 * len(series)}" xmlns="http://www.w3.org/2000/svg" '
            f'style="font:11px sans-serif">'),
           f'<line x1="{L}" y1="{height - B}" x2="{width - R}" y2="{height - B}" stroke="#999"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{height - B}" stroke="#999"/>',
           f'<text x="{(width + L) / 2}" y="{height - B + 26}" text-anchor="middle">{esc(xlabel)}</text>',
           f'<text x="{(width + L) / 2}" y="{height - 3}" text-anchor="middle" fill="#777">{esc(caption)}</text>',
           (f'<text x="10" y="{(height - B) / 2}" transform="rotate(-90 10 {(height - B) / 2})" '
            f'text-anchor="middle">{esc(ylabel)}</text>')]
    for t in (0.0, top / 2, top):
        out.append(f'<text x="{X(t):.1f}" y="{height - B + 13}" text-anchor="middle">{t:.2f}</text>'
                   f'<text x="{L - 5}" y="{Y(t) + 4:.1f}" text-anchor="end">{t:.2f}</text>')
    for i, name in enumerate(series):
        c = colors[i % len(colors)]
        mine = [p for p in pts if str(p.get("series", "")) == name]
        if len(mine) > 1:
            out.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.5" stroke-opacity="0.7" points="'
                       + " ".join(f"{X(p['x']):.1f},{Y(p['y']):.1f}" for p in mine) + '"/>')
        for p in mine:
            x, y = X(p["x"]), Y(p["y"])
            xl, xh, yl, yh = (_num(p.get(k)) for k in ("x_lo", "x_hi", "y_lo", "y_hi"))
            if xl is not None and xh is not None:
                out.append(f'<line x1="{X(xl):.1f}" y1="{y:.1f}" x2="{X(xh):.1f}" y2="{y:.1f}" stroke="{c}"/>')
            if yl is not None and yh is not None:
                out.append(f'<line x1="{x:.1f}" y1="{Y(yl):.1f}" x2="{x:.1f}" y2="{Y(yh):.1f}" stroke="{c}"/>')
            label = esc(p.get("label", ""))
            out.append(f'<circle class="pt" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{c}"><title>{esc(name)} '
                       f'{label}: {esc(xlabel)} {p["x"]:.3f}, {esc(ylabel)} {p["y"]:.3f}</title></circle>'
                       f'<text x="{x + 5:.1f}" y="{y - 5:.1f}">{label}</text>')
        out.append(f'<rect x="{L}" y="{height + 20 * i + 2}" width="10" height="10" fill="{c}"/>'
                   f'<text x="{L + 15}" y="{height + 20 * i + 11}">{esc(name)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def provenance(store: RunStore) -> str:
    cfg = store.get("config", {})
    vers = {}
    for pkg in ("superalign", "torch", "transformers", "peft", "trl", "sentence-transformers", "scikit-learn"):
        try:
            vers[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    vers["python"] = platform.python_version()
    rows = [[s.round, s.name, s.status, f"{s.info.wall_s:.1f}"] for s in store.stage_records()]
    seeds = store.get("seeds", cfg.get("run", {}).get("seed"))
    if seeds is None:  # a run that saved no seed (bench/w2s.py's stores): the seeds its metrics were measured on
        sql = "SELECT DISTINCT seed FROM metrics WHERE seed IS NOT NULL ORDER BY seed"
        seeds = [r[0] for r in store.db.execute(sql)] or "not recorded"
    return (f"<p>run <b>{esc(store.run_id)}</b>, seed(s): {esc(seeds)}</p>"
            + table(["package", "version"], [[k, v] for k, v in vers.items()])
            + "<h3>Stages</h3>" + table(["round", "stage", "status", "wall s"], rows)
            + f"<details><summary>full config</summary><pre>{esc(json.dumps(cfg, indent=2))}</pre></details>")


def build(run_dir: str | Path, sections: Sequence[Section]) -> Path:
    """Write `report.html` into the run directory and return its path: `sections` in order, then provenance."""
    store = RunStore(run_dir)
    parts = []
    for title, fn in [*sections, ("Config, seeds and versions", provenance)]:
        body = fn(store)
        if body:
            parts.append(f"<h2>{esc(title)}</h2>{body}")
    name = store.get("name", Path(run_dir).name)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>superalign: {esc(name)}</title>"
            f"<style>{CSS}</style></head><body><h1>superalign report: {esc(name)}</h1>"
            f"<p class='muted'>status: {esc(store.status())}. Rates carry 95% Wilson intervals "
            f"and other means 95% bootstrap intervals, in brackets; changes are paired tests on the same items. Text that may be harmful is folded.</p>"
            + "".join(parts) + "</body></html>")
    out = Path(run_dir) / "report.html"
    out.write_text(page)
    store.close()
    return out
