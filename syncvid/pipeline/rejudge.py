"""Re-deciding completed sources from their recorded scores, and moving their clips to match.

Used when a run resumes with other thresholds, by `syncvid filter` and by `syncvid rescore`.
Clips move between high_visual_quality/ and the hidden pool by atomic renames; nothing is decoded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from syncvid.config.pipeline_schema import PipelineConfig
from syncvid.outputs.layout import OutputLayout
from syncvid.outputs.markers import read_markers
from syncvid.pipeline.decisions import final_rel, pool_rel, rejudge_row, row_segment, summarise_source
from syncvid.pipeline.fingerprint import config_fingerprint

__all__ = ["RefilterResult", "apply_thresholds", "clip_exists", "merge_rows", "place_clip", "remove_clip_files"]


def place_clip(layout: OutputLayout, old: dict, new: dict) -> str | None:
    """Move the corrected clip from where `old` recorded it to where `new` wants it (atomic rename).

    Idempotent: a clip already at its new place (an interrupted earlier call) is left there.
    Returns "restored" / "pooled" for a move, None when nothing moved.
    """
    dest_rel = new.get("output") or new.get("pooled")
    if not dest_rel:
        return None
    dest = layout.root / dest_rel
    clip_rel = row_segment(new).clip_rel
    candidates = [old.get("output"), old.get("pooled"), final_rel(layout, clip_rel), pool_rel(layout, clip_rel)]
    for rel in dict.fromkeys(r for r in candidates if r):
        src = layout.root / rel
        if src == dest or not src.is_file():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        return "restored" if new.get("output") else "pooled"
    if not dest.is_file():
        raise FileNotFoundError(f"clip {clip_rel} is in neither {layout.final_dir.name}/ nor the pool")
    return None


def clip_exists(layout: OutputLayout, row: dict) -> bool:
    return any((layout.root / row[k]).is_file() for k in ("output", "pooled") if row.get(k))


def remove_clip_files(layout: OutputLayout, row: dict, keep: Path | None = None) -> None:
    clip_rel = row_segment(row).clip_rel
    for rel in {row.get("output"), row.get("pooled"), final_rel(layout, clip_rel), pool_rel(layout, clip_rel)}:
        if rel and (layout.root / rel) != keep:
            (layout.root / rel).unlink(missing_ok=True)


@dataclass
class RefilterResult:
    kept_before: int = 0
    kept_after: int = 0
    restored: int = 0
    pooled: int = 0
    changed_rows: int = 0
    stale_sources: int = 0
    reasons: dict = field(default_factory=dict)
    incomplete: list = field(default_factory=list)  # (source, why): files gone or cut short, left as they are


def apply_thresholds(layout: OutputLayout, cfg: PipelineConfig,
                     previous: PipelineConfig | None = None) -> RefilterResult:
    """Re-decide every completed source's clips with `cfg`'s thresholds; move files; rewrite markers.

    The caller holds the run lock.  Markers written under `previous` (or already under `cfg`, after
    an interrupted call) are re-decided and get `cfg`'s fingerprint; others are stale (a pipeline
    resume redoes them) and are left alone, as are sources whose files are missing or cut short
    (`incomplete`: a pipeline resume redoes them too).
    """
    from syncvid.stages.quality import QualityStage
    from syncvid.stages.sync import SyncStage

    sync_stage = SyncStage(cfg.sync)
    quality_stage = QualityStage(cfg.quality)
    fingerprint = config_fingerprint(cfg)
    accepted = {fingerprint} | ({config_fingerprint(previous)} if previous is not None else set())
    result = RefilterResult()
    for marker in read_markers(layout):
        rows = marker.rows
        old_kept = sum(1 for r in rows if r.get("row_type") == "clip" and r.get("status") == "kept")
        if not marker.current(accepted):
            result.stale_sources += 1
            result.kept_before += old_kept
            result.kept_after += old_kept
            continue
        missing = marker.missing_output(layout)
        if missing:
            result.incomplete.append((marker.source, missing))
            result.kept_before += old_kept
            result.kept_after += old_kept
            continue
        clips = [rejudge_row(layout, r, sync_stage, quality_stage) for r in rows if r.get("row_type") == "clip"]
        old_clips = [r for r in rows if r.get("row_type") == "clip"]
        for old, new in zip(old_clips, clips):
            moved = place_clip(layout, old, new)
            if moved:
                setattr(result, moved, getattr(result, moved) + 1)
            if (old.get("status"), old.get("reason")) != (new.get("status"), new.get("reason")):
                result.changed_rows += 1
        new_rows = merge_rows(rows, clips)
        if new_rows != rows or marker.fingerprint != fingerprint:
            marker.rows, marker.fingerprint = new_rows, fingerprint
            marker.write(layout)
        result.kept_before += old_kept
        result.kept_after += sum(1 for r in clips if r.get("status") == "kept")
        for r in clips:
            if r.get("status") == "dropped":
                result.reasons[r["reason"]] = result.reasons.get(r["reason"], 0) + 1
    return result


def merge_rows(rows: list[dict], clips: list[dict]) -> list[dict]:
    """A marker's rows in their order, with `clips` (new clip rows, same order) and the source row
    summarised from them."""
    it = iter(clips)
    return [summarise_source(r, clips) if r.get("row_type") == "source" else next(it) if r.get("row_type") == "clip"
            else r for r in rows]
