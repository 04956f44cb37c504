"""Decisions on candidate clips, shared by the pipeline's runner and by filter/rescore.

Every candidate that passes the face stage is measured by sync and quality first and decided
afterwards, from the recorded measurements alone (`decide`), so a finished run can be re-decided
with other thresholds without decoding anything.  The corrected clip then lives either in
high_visual_quality/ (kept) or in the hidden pool (dropped by a threshold).  Pure functions: no I/O.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable, ContextManager, Iterable

from syncvid.outputs.layout import OutputLayout
from syncvid.records import Clip, Rejected, Segment, clip_stem_of
from syncvid.rows import Reason, RowType, Status
from syncvid.stages.quality import CHECKS

RESCORABLE_STAGES = ("sync", "quality")
# Thresholds: config keys read only by `SyncStage.judge` / `QualityStage.judge`, never by a measurement.
THRESHOLD_KEYS = ("sync.conf_threshold", "sync.max_offset_frames") + tuple(
    dict.fromkeys(f"quality.{c.param}" for c in CHECKS))


def final_rel(layout: OutputLayout, clip_rel: str) -> str:
    return f"{layout.final_dir.relative_to(layout.root).as_posix()}/{clip_rel}"


def pool_rel(layout: OutputLayout, clip_rel: str) -> str:
    return f"{layout.pool_dir.relative_to(layout.root).as_posix()}/{clip_rel}"


def row_segment(row: dict, time_offset_s: float = 0.0) -> Segment:
    """The candidate segment a clip row describes (before any sync trim)."""
    return Segment(row["source"], int(row["shot_index"]), int(row["seg_index"]), int(row["start_frame"]),
                   int(row["end_frame"]), time_offset_s=time_offset_s, clip_stem=clip_stem_of(row.get("clip") or ""))


def reached_sync_decision(row: dict) -> bool:
    """A clip row whose corrected clip was encoded (kept, or pooled by a threshold): filter re-decides it."""
    return row.get("row_type") == RowType.CLIP and bool(row.get("output") or row.get("pooled"))


def decide(measurements: dict, sync_stage, quality_stage) -> Rejected | None:
    """The threshold decision on recorded measurements: the first failing rejection, or None to keep."""
    try:
        sync_stage.judge(measurements)
        quality_stage.judge(measurements)
    except Rejected as rej:
        return rej
    return None


def decision_fields(layout: OutputLayout, clip_rel: str, decision: Rejected | None) -> dict:
    """Row fields that record a decision and where the corrected clip lives."""
    if decision is None:
        return {"status": Status.KEPT, "stage": "", "reason": "", "message": "",
                "output": final_rel(layout, clip_rel), "pooled": ""}
    return {"status": Status.DROPPED, "stage": decision.stage, "reason": decision.reason, "message": decision.message,
            "output": "", "pooled": pool_rel(layout, clip_rel)}


def rejudge_row(layout: OutputLayout, row: dict, sync_stage, quality_stage) -> dict:
    """`row` re-decided with the stages' thresholds (a new dict); rows that never reached the decision
    are returned unchanged."""
    if not reached_sync_decision(row):
        return dict(row)
    decision = decide(row, sync_stage, quality_stage)
    return {**row, **decision_fields(layout, row_segment(row).clip_rel, decision)}


def summarise_source(src: dict, clips: list[dict]) -> dict:
    """The source row's status and message from its clip rows (a new dict).

    A source rejected as a whole (broken, resample, internal error) keeps its row.
    """
    if src.get("status") == Status.DROPPED and src.get("reason") != Reason.NO_CLIPS_KEPT:
        return dict(src)
    if not clips:
        return dict(src)
    kept = sum(1 for r in clips if r.get("status") == Status.KEPT)
    if kept:
        return {**src, "status": Status.KEPT, "stage": "", "reason": "",
                "message": f"{kept} of {len(clips)} segments kept"}
    reasons: dict[tuple[str, str], int] = {}
    for r in clips:
        reasons[(r["stage"], r["reason"])] = reasons.get((r["stage"], r["reason"]), 0) + 1
    (top_stage, _), _ = max(reasons.items(), key=lambda kv: kv[1])
    summary = ", ".join(f"{n} {reason}" for (_, reason), n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    return {**src, "status": Status.DROPPED, "stage": top_stage, "reason": Reason.NO_CLIPS_KEPT,
            "message": f"all {len(clips)} segments dropped: {summary}"}


def recorded_sync_result(row: dict):
    """The sync measurement recorded in a row, as a `SyncResult` (to re-apply its correction)."""
    from syncvid.stages.sync import SyncResult

    extras = {k: row[k] for k in row if k.startswith("sync_") and k not in (
        "sync_offset_frames", "sync_conf", "sync_backend", "sync_at_search_edge", "sync_trimmed_frames")}
    return SyncResult(offset_frames=int(row["sync_offset_frames"]), conf=float(row["sync_conf"]),
                      backend=str(row.get("sync_backend") or ""), at_search_edge=bool(row.get("sync_at_search_edge")),
                      extras=extras)


def _no_timer(stage: str) -> ContextManager:
    return nullcontext()


def score_clip(clip: Clip, row: dict, sync_stage, quality_stage, stages: Iterable[str] = RESCORABLE_STAGES,
               timer: Callable[[str], ContextManager] = _no_timer) -> Clip:
    """Measure the requested stages on a candidate and correct its audio; the corrected clip.

    `row` receives every measurement.  Without "sync" in `stages`, the offset recorded in `row` is
    re-applied instead of measured; without "quality", the recorded quality scores stay.  Raises
    `Rejected("sync", "too_short")` when the backend or the correction leaves too few frames.
    """
    stages = set(stages)
    with timer("sync"):
        if "sync" in stages:
            result = sync_stage.measure(clip)
            row.update(result.measurements())
        else:
            result = recorded_sync_result(row)
        clip = sync_stage.correct(clip, result)
    row.update(clip.measurements)
    if "quality" in stages:
        with timer("quality"):
            row.update(quality_stage.score(clip.frames).as_measurements())
    row["num_frames"] = int(clip.frames.shape[0])
    return clip
