"""Run outputs for people: the contact sheet PNG and report.html.

report.html is one self-contained file (inline CSS, SVG charts and PNG thumbnails; no script, no
external asset, no server): counts and hours in and out of every stage, rejections by stage and
reason, histograms of the sync offset, sync confidence and quality scores with the thresholds of
run.yaml drawn on them, clip durations and face sizes, and contact sheets of kept clips and of
dropped clips grouped by reason.  The numeric cores (`stage_funnel`, `rejection_table`,
`bin_edges`, `histogram_svg`) are pure.
"""

from __future__ import annotations

import base64
import html
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from syncvid.config.pipeline_schema import PipelineConfig
from syncvid.atomic import write_text_atomic
from syncvid.outputs.layout import OutputLayout
from syncvid.outputs.thumbs import load_thumbnail_strip
from syncvid.records import STAGES

MAX_SHEET_CLIPS = 24  # contact_sheet.png and the report's kept-clip sheet
MAX_DROPPED_PER_REASON = 6
MAX_SOURCE_ROWS = 100
SOURCE_STAGES = ("broken", "resample")
CLIP_STAGES = ("segment", "face", "sync", "quality")
KEPT_COLOUR, DROPPED_COLOUR, THRESHOLD_COLOUR = "#2ca02c", "#c7c7c7", "#d62728"


# ----------------------------------------------------------------------------- contact sheet
def _thumb_path(layout: OutputLayout, row: dict) -> Path:
    rel_dir = Path(row["source"]).parent.as_posix()
    name = f"{row['clip']}.png"
    return layout.state_dir / "thumbs" / (name if rel_dir == "." else f"{rel_dir}/{name}")


def _strips(layout: OutputLayout, rows: list[dict], limit: int) -> tuple[list[np.ndarray], list[dict]]:
    """Thumbnail strips (first, middle, last aligned frame) of up to `limit` rows that have one."""
    images, found = [], []
    for row in rows:
        strip = load_thumbnail_strip(_thumb_path(layout, row))
        if strip is None:
            continue
        images.append(strip)
        found.append(row)
        if len(images) >= limit:
            break
    return images, found


def write_contact_sheet(layout: OutputLayout, rows: list[dict]) -> Path | None:
    """A grid of aligned frames (first, middle, last) of up to 24 kept clips; None when nothing was kept."""
    from syncvid.outputs.contact_sheet import make_contact_sheet, save_png

    kept = [r for r in rows if r.get("row_type") == "clip" and r.get("status") == "kept"]
    images, found = _strips(layout, kept, MAX_SHEET_CLIPS)
    if not images:
        layout.contact_sheet.unlink(missing_ok=True)
        return None
    save_png(layout.contact_sheet, make_contact_sheet(images, [r["clip"] for r in found], columns=3))
    return layout.contact_sheet


# ----------------------------------------------------------------------------- pure cores
def _num(value) -> float | None:
    """A finite float, or None (missing, None, NaN, not a number)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def segment_frames(row: dict) -> int:
    """Frames of a candidate segment as cut (before any sync trim)."""
    if row.get("start_frame") is not None and row.get("end_frame") is not None:
        return int(row["end_frame"]) - int(row["start_frame"])
    return int(row.get("num_frames") or 0)


@dataclass
class StageCount:
    """Items entering a stage, dropped by it, leaving it; hours of video alongside."""

    stage: str
    unit: str
    count_in: int
    hours_in: float
    dropped: int
    hours_dropped: float
    count_out: int
    hours_out: float
    unit_out: str = ""
    reasons: Counter = field(default_factory=Counter)


def _source_hours(row: dict, fps: float) -> float:
    if row.get("num_frames"):
        return int(row["num_frames"]) / fps / 3600
    return (_num(row.get("duration_s")) or 0.0) / 3600


def stage_funnel(rows: list[dict], fps: float = 25.0) -> list[StageCount]:
    """In/out counts and hours per stage, in pipeline order.

    Sources go through broken and resample (a source rejected there is dropped as a whole), scene
    turns sources into shots, then candidate segments go through segment, face, sync and quality;
    what leaves quality is the training set (its hours after the sync trims).
    """
    sources = [r for r in rows if r.get("row_type") == "source"]
    clips = [r for r in rows if r.get("row_type") == "clip"]
    out: list[StageCount] = []
    alive = sources
    for stage in SOURCE_STAGES:
        dropped = [r for r in alive if r.get("status") == "dropped" and r.get("stage") == stage
                   and r.get("reason") != "no_clips_kept"]
        gone = {id(r) for r in dropped}
        rest = [r for r in alive if id(r) not in gone]
        out.append(StageCount(stage, "sources", len(alive), sum(_source_hours(r, fps) for r in alive), len(dropped),
                              sum(_source_hours(r, fps) for r in dropped), len(rest),
                              sum(_source_hours(r, fps) for r in rest), "sources",
                              Counter(r.get("reason") for r in dropped)))
        alive = rest
    shots = sum(int(r.get("num_shots") or 0) for r in alive)
    hours = sum(_source_hours(r, fps) for r in alive)
    out.append(StageCount("scene", "sources", len(alive), hours, 0, 0.0, shots, hours, "shots"))
    def h(rs: list[dict]) -> float:
        return sum(segment_frames(r) for r in rs) / fps / 3600

    alive = clips
    for stage in CLIP_STAGES:
        dropped = [r for r in alive if r.get("status") == "dropped" and r.get("stage") == stage]
        rest = [r for r in alive if not (r.get("status") == "dropped" and r.get("stage") == stage)]
        hours_out = (sum(int(r.get("num_frames") or 0) for r in rest) / fps / 3600 if stage == CLIP_STAGES[-1]
                     else h(rest))
        out.append(StageCount(stage, "segments", len(alive), h(alive), len(dropped), h(dropped), len(rest),
                              hours_out, "clips kept" if stage == CLIP_STAGES[-1] else "segments",
                              Counter(r.get("reason") for r in dropped)))
        alive = rest
    return out


def rejection_table(rows: list[dict], fps: float = 25.0) -> list[tuple[str, str, int, float, str]]:
    """(stage, reason, count, hours, an example message) of every rejection, in stage order then by count.

    Sources dropped only because none of their segments was kept (`no_clips_kept`) are not counted
    again: their segments are.
    """
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r.get("status") != "dropped" or (r.get("row_type") == "source" and r.get("reason") == "no_clips_kept"):
            continue
        groups.setdefault((r.get("stage") or "", r.get("reason") or ""), []).append(r)

    def hours(r: dict) -> float:
        return _source_hours(r, fps) if r.get("row_type") == "source" else segment_frames(r) / fps / 3600

    order = {s: i for i, s in enumerate(STAGES)}
    table = [(s, reason, len(rs), sum(hours(r) for r in rs), rs[0].get("message") or "")
             for (s, reason), rs in groups.items()]
    return sorted(table, key=lambda t: (order.get(t[0], len(order)), -t[2], t[1]))


def bin_edges(values: list[float], marks: list[float] = (), integer: bool = False, bins: int = 24) -> np.ndarray:
    """Histogram bin edges covering `values` and the threshold `marks`.

    `integer`: one bin per whole number (edges at k ± 0.5).  Otherwise `bins` equal bins; a single
    distinct value gets a unit-wide range around it.
    """
    data = [float(v) for v in list(values) + list(marks)]
    if not data:
        raise ValueError("bin_edges needs at least one value")
    lo, hi = min(data), max(data)
    if integer:
        return np.arange(math.floor(lo) - 0.5, math.ceil(hi) + 1.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, int(bins) + 1)


def _fmt(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 1000 or abs(x) < 0.01:
        return f"{x:.2g}"
    return f"{x:.3g}"


@dataclass(frozen=True)
class Series:
    label: str
    values: tuple[float, ...]
    colour: str


def histogram_svg(series: list[Series], edges: np.ndarray, thresholds: list[tuple[float, str]] = (),
                  title: str = "", xlabel: str = "", width: int = 560, height: int = 220,
                  integer_ticks: bool = False) -> str:
    """An SVG histogram: `series` stacked bottom-up over bins `edges`, dashed threshold lines labelled.

    Values outside the edges are counted in the first/last bin.  Self-contained markup (no script,
    no external reference).
    """
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("edges must be at least two increasing numbers")
    left, right, top, bottom = 44, 12, 30, 40
    pw, ph = width - left - right, height - top - bottom
    x0, x1 = float(edges[0]), float(edges[-1])

    def sx(x: float) -> float:
        return left + (min(max(x, x0), x1) - x0) / (x1 - x0) * pw

    counts = []
    for s in series:
        v = np.clip(np.asarray(s.values, dtype=float), x0, x1)
        counts.append(np.histogram(v, bins=edges)[0])
    total = np.sum(counts, axis=0) if counts else np.zeros(len(edges) - 1, int)
    ymax = max(1, int(total.max()) if total.size else 1)

    def sy(c: float) -> float:
        return top + ph - c / ymax * ph

    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" font-size="11">',
             f"<title>{e(title)}</title>",
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{e(title)}</text>']
    base = np.zeros(len(edges) - 1)
    for s, c in zip(series, counts):
        for i, n in enumerate(c):
            if n:
                xa, xb = sx(edges[i]), sx(edges[i + 1])
                ya, yb = sy(base[i] + n), sy(base[i])
                parts.append(f'<rect x="{xa + 0.5:.1f}" y="{ya:.1f}" width="{max(xb - xa - 1, 0.5):.1f}" '
                             f'height="{yb - ya:.1f}" fill="{s.colour}"><title>{e(s.label)}: {int(n)} in '
                             f'[{_fmt(edges[i])}, {_fmt(edges[i + 1])})</title></rect>')
        base = base + c
    # axes and ticks
    parts.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#333"/>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#333"/>')
    for c in sorted({0, ymax // 2, ymax}):
        parts.append(f'<text x="{left - 4}" y="{sy(c) + 4:.1f}" text-anchor="end">{c}</text>')
    if integer_ticks:
        step = max(1, math.ceil((x1 - x0) / 8))
        ticks = np.arange(math.ceil(x0), math.floor(x1) + 1, step)
    else:
        ticks = np.linspace(x0, x1, 6)
    for x in ticks:
        parts.append(f'<line x1="{sx(x):.1f}" y1="{top + ph}" x2="{sx(x):.1f}" y2="{top + ph + 4}" stroke="#333"/>')
        parts.append(f'<text x="{sx(x):.1f}" y="{top + ph + 16}" text-anchor="middle">{_fmt(float(x))}</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 4}" text-anchor="middle">{e(xlabel)}</text>')
    for value, label in thresholds:
        x = sx(float(value))
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{top + ph}" stroke="{THRESHOLD_COLOUR}" '
                     f'stroke-width="2" stroke-dasharray="5,3"/>')
        anchor = "end" if x > left + pw * 0.8 else "start"
        dx = -3 if anchor == "end" else 3
        parts.append(f'<text x="{x + dx:.1f}" y="{top + 6}" fill="{THRESHOLD_COLOUR}" text-anchor="{anchor}">'
                     f"{e(label)}</text>")
    # legend
    lx = left + pw
    for s in reversed(series):
        text = f"{s.label} ({len(s.values)})"
        lx -= 14 + 6.5 * len(text)
        parts.append(f'<rect x="{lx:.1f}" y="7" width="10" height="10" fill="{s.colour}"/>')
        parts.append(f'<text x="{lx + 13:.1f}" y="16">{e(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ----------------------------------------------------------------------------- charts
@dataclass(frozen=True)
class Chart:
    key: str  # manifest column
    title: str
    xlabel: str
    thresholds: tuple[tuple[float, str], ...] = ()
    integer: bool = False


def _charts(cfg: PipelineConfig | None) -> list[Chart]:
    """The histograms of the report, with the thresholds of `cfg` (None: thresholds unknown)."""
    from syncvid.stages.quality import CHECKS

    def thr(section, name, label):
        value = getattr(getattr(cfg, section), name, None) if cfg is not None else None
        return ((float(value), f"{label} {value:g}"),) if value is not None else ()

    m = cfg.sync.max_offset_frames if cfg is not None else None
    offset_marks = ((-m - 0.5, f"-{m}"), (m + 0.5, f"+{m}")) if m is not None else ()
    charts = [Chart("sync_offset_frames", "Sync offset", "frames at 25 fps (+ = audio leads; corrected by the sync "
                    "stage)", offset_marks, integer=True)]
    charts.append(Chart("sync_conf", "Sync confidence",
                        f"confidence ({cfg.sync.backend} backend)" if cfg is not None else "confidence",
                        thr("sync", "conf_threshold", "min")))
    # after the corpus judge re-judged a run: what the per-clip judge had measured (decisions are the corpus judge's)
    charts.append(Chart("sync_offset_frames_clip", "Sync offset, per-clip judge", "frames at 25 fps, before the "
                        "corpus judge", offset_marks, integer=True))
    charts.append(Chart("sync_conf_clip", "Sync confidence, per-clip judge", "confidence before the corpus judge",
                        thr("sync", "conf_threshold", "min")))
    charts.append(Chart("quality_score", "Quality score", "summary score, higher is better"))
    metrics: dict[str, list] = {}
    for check in CHECKS:
        metrics.setdefault(check.metric, []).extend(thr("quality", check.param, check.bound))
    for metric, marks in metrics.items():
        charts.append(Chart(f"quality_{metric}", f"Quality: {metric}", metric, tuple(marks)))
    return charts


def _split(rows: list[dict], key: str, scale: float = 1.0) -> tuple[list[Series], int]:
    kept, dropped, nan = [], [], 0
    for r in rows:
        if key not in r or r.get(key) is None:
            continue
        x = _num(r[key])
        if x is None:
            nan += 1
            continue
        (kept if r.get("status") == "kept" else dropped).append(x * scale)
    series = [Series("kept", tuple(kept), KEPT_COLOUR), Series("dropped", tuple(dropped), DROPPED_COLOUR)]
    return series, nan


def _chart_html(rows: list[dict], chart: Chart, scale: float = 1.0) -> str:
    series, nan = _split(rows, chart.key, scale)
    values = [v for s in series for v in s.values]
    if not values:
        return ""
    marks = [t[0] for t in chart.thresholds]
    edges = bin_edges(values, marks, integer=chart.integer and (max(values + marks) - min(values + marks)) <= 80)
    svg = histogram_svg(series, edges, list(chart.thresholds), chart.title, chart.xlabel,
                        integer_ticks=bool(np.all(edges % 1 == 0.5)))
    note = f"<figcaption>{nan} clip(s) not measurable (NaN)</figcaption>" if nan else ""
    return f"<figure class='chart'>{svg}{note}</figure>"


# ----------------------------------------------------------------------------- html
CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{margin-bottom:0}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
.muted{color:#777}.charts{display:flex;flex-wrap:wrap;gap:8px}.chart{margin:0}
.sheet{display:flex;flex-wrap:wrap;gap:10px}.sheet figure{margin:0;width:288px}
.sheet img{width:288px;height:96px;image-rendering:auto;display:block}
.sheet figcaption{font-size:12px;overflow-wrap:anywhere}.reason{color:#b00}
"""


def _png_data_uri(image: np.ndarray) -> str:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("could not encode a thumbnail as PNG")
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode()


def _table(headers: list[str], body: list[list], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    rows = "".join("<tr>" + "".join(f"<td{' class=n' if i in numeric else ''}>{html.escape(str(c))}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in body)
    return f"<table><tr>{head}</tr>{rows}</table>"


def _sheet(layout: OutputLayout, rows: list[dict], limit: int) -> str:
    images, found = _strips(layout, rows, limit)
    cells = []
    for image, row in zip(images, found):
        reason = f"<br><span class='reason'>{html.escape(row['reason'])}</span>" if row.get("reason") else ""
        tip = html.escape(row.get("message") or row["clip"], quote=True)
        cells.append(f"<figure title=\"{tip}\"><img alt='{html.escape(row['clip'])}' src='{_png_data_uri(image)}'>"
                     f"<figcaption>{html.escape(row['clip'])}{reason}</figcaption></figure>")
    return f"<div class='sheet'>{''.join(cells)}</div>" if cells else ""


def _load_cfg(layout: OutputLayout):
    """(config of run.yaml or None, a note when it could not be read)."""
    from syncvid.config import ConfigError, load_config

    if not layout.run_yaml.is_file():
        return None, "run.yaml not found: thresholds are not drawn"
    try:
        return load_config(layout.run_yaml, family="pipeline"), ""
    except (OSError, ConfigError) as exc:
        return None, f"run.yaml could not be read ({str(exc).splitlines()[0]}): thresholds are not drawn"


def _hours(h: float) -> str:
    """A duration in hours as h:mm:ss."""
    seconds = round(h * 3600)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def render_report(layout: OutputLayout, rows: list[dict], cfg=None, note: str = "") -> str:
    """The report's HTML text (pure apart from reading the thumbnail strips)."""
    fps = float(cfg.media.fps) if cfg is not None else 25.0
    clips = [r for r in rows if r.get("row_type") == "clip"]
    sources = [r for r in rows if r.get("row_type") == "source"]
    kept = [r for r in clips if r.get("status") == "kept"]
    funnel = stage_funnel(rows, fps)
    e = html.escape
    hours_in = funnel[0].hours_in if funnel else 0.0
    hours_out = funnel[-1].hours_out if funnel else 0.0
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'><title>syncvid run report</title>",
             f"<style>{CSS}</style></head><body>",
             "<h1>syncvid run report</h1>",
             f"<p class='muted'>{e(str(layout.root))} &middot; generated {e(time.strftime('%Y-%m-%d %H:%M:%S'))}</p>"]
    if note:
        parts.append(f"<p class='reason'>{e(note)}</p>")
    parts.append("<h2 id='summary'>Summary</h2>")
    parts.append(_table(["", "count", "duration (h:mm:ss)"], [
        ["sources", len(sources), _hours(hours_in)],
        ["candidate segments", len(clips), _hours(sum(segment_frames(r) for r in clips) / fps / 3600)],
        ["clips kept (training set)", len(kept), _hours(hours_out)],
        ["yield (hours kept / hours in)", "", f"{100 * hours_out / hours_in:.1f} %" if hours_in else "-"],
    ], {1, 2}))
    if cfg is not None:
        q = cfg.quality
        parts.append(f"<p class='muted'>face {e(cfg.face.backend)} at {cfg.face.resolution}px, min face "
                     f"{cfg.face.min_size_px}px &middot; sync {e(cfg.sync.backend)}: "
                     f"conf &ge; {cfg.sync.conf_threshold:g}, "
                     f"|offset| &le; {cfg.sync.max_offset_frames} &middot; quality {e(', '.join(q.backends))} "
                     "(thresholds in run.yaml)</p>")

    parts.append("<h2 id='stages'>Stages: in and out</h2>")
    body = []
    for s in funnel:
        top = ", ".join(f"{reason} {n}" for reason, n in s.reasons.most_common(3))
        body.append([s.stage, f"{s.count_in} {s.unit}", _hours(s.hours_in), s.dropped, _hours(s.hours_dropped),
                     f"{s.count_out} {s.unit_out}", _hours(s.hours_out), top])
    parts.append(_table(["stage", "in", "h:mm:ss in", "dropped", "h:mm:ss dropped", "out", "h:mm:ss out",
                         "main reasons"], body, {2, 3, 4, 6}))

    parts.append("<h2 id='rejections'>Rejections by stage and reason</h2>")
    table = rejection_table(rows, fps)
    parts.append(_table(["stage", "reason", "count", "h:mm:ss", "example"],
                        [[s, r, n, _hours(h), m] for s, r, n, h, m in table], {2, 3}) if table
                 else "<p>Nothing was rejected.</p>")
    whole = [r for r in sources if r.get("status") == "dropped" and r.get("reason") != "no_clips_kept"]
    if whole:
        parts.append(f"<h3>Sources rejected as a whole ({len(whole)})</h3>")
        parts.append(_table(["source", "stage", "reason", "message"],
                            [[r["source"], r.get("stage"), r.get("reason"), r.get("message")]
                             for r in whole[:MAX_SOURCE_ROWS]]))
        if len(whole) > MAX_SOURCE_ROWS:
            parts.append(f"<p class='muted'>... and {len(whole) - MAX_SOURCE_ROWS} more (see manifest.parquet)</p>")

    parts.append("<h2 id='scores'>Scores and thresholds</h2>"
                 "<p class='muted'>Clips that reached each measurement, kept (green) and dropped (grey, by any "
                 "stage); dashed red lines are the thresholds of run.yaml.</p><div class='charts'>")
    judges = sorted({str(r["sync_judge"]) for r in clips if r.get("sync_judge")})
    if "corpus" in judges:
        parts.append("<p class='muted'>Sync was judged by the corpus judge fitted on this run (sync_model.npz); "
                     "the per-clip judge's offsets and confidences are drawn beside it.</p>")
    drawn = [_chart_html(clips, chart) for chart in _charts(cfg)]
    parts.extend(d for d in drawn if d)
    if not any(drawn):
        parts.append("<p>No clip reached the sync stage.</p>")
    parts.append("</div>")

    parts.append("<h2 id='distributions'>Clip durations and face sizes</h2><div class='charts'>")
    durations = [{**r, "duration_s": segment_frames(r) / fps} for r in clips]
    min_s = ((cfg.segment.min_seconds, f"min {cfg.segment.min_seconds:g} s"),) if cfg is not None else ()
    min_px = ((cfg.face.min_size_px, f"min {cfg.face.min_size_px} px"),) if cfg is not None else ()
    parts.append(_chart_html(durations, Chart("duration_s", "Candidate segment durations", "seconds", min_s)))
    parts.append(_chart_html(clips, Chart("face_size_px", "Face size", "pixels (in the source frame)", min_px)))
    parts.append("</div>")

    parts.append(f"<h2 id='kept'>Kept clips ({len(kept)})</h2>")
    parts.append(_sheet(layout, kept, MAX_SHEET_CLIPS) or "<p>No clip was kept.</p>")
    if len(kept) > MAX_SHEET_CLIPS:
        parts.append(f"<p class='muted'>first {MAX_SHEET_CLIPS} shown</p>")
    dropped = [r for r in clips if r.get("status") == "dropped"]
    parts.append(f"<h2 id='dropped'>Dropped clips ({len(dropped)})</h2>")
    by_reason: dict[tuple[str, str], list[dict]] = {}
    for r in dropped:
        by_reason.setdefault((r.get("stage") or "", r.get("reason") or ""), []).append(r)
    order = {s: i for i, s in enumerate(STAGES)}
    shown = False
    for (stage, reason), group in sorted(by_reason.items(), key=lambda kv: (order.get(kv[0][0], 99), -len(kv[1]))):
        sheet = _sheet(layout, group, MAX_DROPPED_PER_REASON)
        if sheet:
            shown = True
            parts.append(f"<h3>{e(stage)}: {e(reason)} ({len(group)})</h3>{sheet}")
    if not shown:
        parts.append("<p>No dropped clip has aligned frames to show.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(layout: OutputLayout, rows: list[dict]) -> Path:
    """report.html from the rows of every source (thresholds read from run.yaml), written atomically."""
    cfg, note = _load_cfg(layout)
    write_text_atomic(layout.report, render_report(layout, rows, cfg, note))
    return layout.report
