"""Run outputs for people: the contact sheet PNG and report.html (self-contained, no server)."""

from __future__ import annotations

import base64
import html
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from syncvid.pipeline.atomic import write_text_atomic
from syncvid.pipeline.layout import OutputLayout
from syncvid.pipeline.thumbs import load_thumbnail_strip

MAX_SHEET_CLIPS = 24


def _thumb_path(layout: OutputLayout, row: dict) -> Path:
    rel_dir = Path(row["source"]).parent.as_posix()
    name = f"{row['clip']}.png"
    return layout.state_dir / "thumbs" / (name if rel_dir == "." else f"{rel_dir}/{name}")


def _strips(layout: OutputLayout, rows: list[dict], limit: int) -> tuple[list[np.ndarray], list[str]]:
    images, labels = [], []
    for row in rows:
        strip = load_thumbnail_strip(_thumb_path(layout, row))
        if strip is None:
            continue
        images.append(strip)
        label = row["clip"] if row["status"] == "kept" else f"{row['clip']}: {row['reason']}"
        labels.append(label)
        if len(images) >= limit:
            break
    return images, labels


def write_contact_sheet(layout: OutputLayout, rows: list[dict]) -> Path | None:
    """A grid of aligned frames (first, middle, last) of up to 24 kept clips; None when nothing was kept."""
    from syncvid.face.contact_sheet import make_contact_sheet, save_png

    kept = [r for r in rows if r.get("row_type") == "clip" and r.get("status") == "kept"]
    images, labels = _strips(layout, kept, MAX_SHEET_CLIPS)
    if not images:
        layout.contact_sheet.unlink(missing_ok=True)
        return None
    save_png(layout.contact_sheet, make_contact_sheet(images, labels, columns=3))
    return layout.contact_sheet


def _png_data_uri(image: np.ndarray) -> str:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode() if ok else ""


def _table(headers: list[str], body: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><tr>{head}</tr>{rows}</table>"


def write_report(layout: OutputLayout, rows: list[dict]) -> Path:
    """report.html: counts in/out per stage, rejections by stage and reason, contact sheets."""
    sources = [r for r in rows if r.get("row_type") == "source"]
    clips = [r for r in rows if r.get("row_type") == "clip"]
    kept = [r for r in clips if r["status"] == "kept"]
    dropped = [r for r in clips if r["status"] == "dropped"]
    src_dropped = [r for r in sources if r["status"] == "dropped" and r["reason"] != "no_clips_kept"]
    hours_in = sum((r.get("num_frames") or 0) for r in sources) / 25 / 3600
    hours_out = sum((r.get("num_frames") or 0) for r in kept) / 25 / 3600
    reasons = Counter((r["stage"], r["reason"]) for r in dropped + src_dropped)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>syncvid run report</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px}img{max-width:100%}</style></head><body>",
        f"<h1>syncvid run report</h1><p>{html.escape(str(layout.root))}</p>",
        _table(["", "count", "hours"], [
            ["sources", len(sources), f"{hours_in:.4f}"],
            ["sources rejected as a whole", len(src_dropped), ""],
            ["candidate segments", len(clips), ""],
            ["clips kept", len(kept), f"{hours_out:.4f}"],
            ["clips dropped", len(dropped), ""],
        ]),
        "<h2>Rejections by stage and reason</h2>",
        _table(["stage", "reason", "count"], [[s, r, n] for (s, r), n in sorted(reasons.items())]),
    ]
    for title, subset in (("Kept clips", kept), ("Dropped clips", dropped)):
        images, labels = _strips(layout, subset, 12)
        if images:
            parts.append(f"<h2>{title}</h2>")
            for image, label in zip(images, labels):
                parts.append(f"<figure><img src='{_png_data_uri(image)}'><figcaption>{html.escape(label)}"
                             "</figcaption></figure>")
    parts.append("</body></html>")
    write_text_atomic(layout.report, "\n".join(parts))
    return layout.report
