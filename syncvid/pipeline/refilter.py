"""Re-deciding a finished run without running the pipeline again.

* `syncvid filter OUT` re-applies the sync and quality thresholds to the scores recorded in the
  completion markers: nothing is decoded; clips move between high_visual_quality/ and the hidden
  pool with atomic renames; the markers, manifest.parquet, fileslist.txt, the contact sheet,
  report.html and run.yaml are rewritten.
* `syncvid rescore OUT --stages sync,quality` measures those stages again on the aligned
  candidates (affine_transformed/ + their landmarks), e.g. with a newly trained SyncNet, then
  decides and places the corrected clips as the pipeline does.
* `syncvid report OUT` regenerates report.html (and the contact sheet) from the markers.

Only clips that reached the sync stage are re-decided; rows dropped by the broken, resample,
segment or face stages keep their decision.  The pure cores (`rejudge_row`, `score_clip`,
`decide`, `summarise_source`, `changed_keys`) do no I/O.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from syncvid.config.pipeline_schema import PipelineConfig
from syncvid.atomic import write_json_atomic
from syncvid.pipeline.layout import OutputLayout
from syncvid.pipeline.lock import RunLock
from syncvid.pipeline.run import UsageError, config_fingerprint, finish_outputs
from syncvid.pipeline.decisions import (  # noqa: F401  (re-exported: the refilter API)
    RESCORABLE_STAGES,
    THRESHOLD_KEYS,
    decide,
    decision_fields,
    final_rel,
    pool_rel,
    reached_sync_decision,
    recorded_sync_result,
    rejudge_row,
    row_segment,
    score_clip,
    summarise_source,
)
from syncvid.records import Clip, Rejected, Source

# A candidate whose recorded audio differs from the source's audio by more than this relative RMS
# is not from this source any more (the input was replaced): its own audio is used instead.
AUDIO_MATCH_TOLERANCE = 0.3


# ----------------------------------------------------------------------------- pure cores
def changed_keys(old: PipelineConfig, new: PipelineConfig, sections: Iterable[str] | None = None) -> list[str]:
    """Dotted keys whose values differ between two configs (all sections unless `sections` names some)."""
    names = list(sections) if sections is not None else [f.name for f in dataclasses.fields(old)]
    out = []
    for name in names:
        a, b = dataclasses.asdict(getattr(old, name)), dataclasses.asdict(getattr(new, name))
        out.extend(f"{name}.{k}" for k in a if a[k] != b.get(k))
    return out


# ----------------------------------------------------------------------------- markers
@dataclass
class MarkerFile:
    path: Path
    data: dict

    @property
    def rows(self) -> list[dict]:
        return self.data.get("rows", [])


def read_markers(layout: OutputLayout) -> list[MarkerFile]:
    out = []
    for path in sorted(layout.done_dir.glob("*.json")):
        try:
            out.append(MarkerFile(path, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            continue  # a marker being replaced or damaged: the pipeline redoes that source
    return out


def run_sources(cfg: PipelineConfig, layout: OutputLayout, markers: list[MarkerFile]) -> list[Source]:
    """The sources of the run, as `syncvid pipeline` sees them (the input folder when it is still there,
    else every source with a marker: an output root copied elsewhere can still be filtered)."""
    from syncvid.pipeline.discovery import discover_sources

    input_dir = Path(cfg.run.input_dir) if cfg.run.input_dir else None
    if input_dir is not None and input_dir.is_dir():
        root = layout.root
        exclude = [root] if root != input_dir.parent and root.is_relative_to(input_dir) else []
        exclude += [p for p in layout.all_stage_dirs() if p.is_relative_to(input_dir)]
        return discover_sources(input_dir, cfg.run.extensions, exclude=exclude)
    base = input_dir or layout.root
    return [Source(base / m.data["source"], m.data["source"]) for m in markers if m.data.get("source")]


def _open_root(output_dir) -> tuple[OutputLayout, PipelineConfig]:
    root = Path(output_dir).expanduser().resolve()
    layout = OutputLayout(root)
    if not layout.run_yaml.is_file() or not layout.done_dir.is_dir():
        raise UsageError(f"not a syncvid output root (no run.yaml or no completed source): {root}")
    from syncvid.config import load_config

    return layout, load_config(layout.run_yaml, family="pipeline")


def _load_new(layout: OutputLayout, overrides, flags: dict) -> PipelineConfig:
    from syncvid.config import load_config

    return load_config(layout.run_yaml, overrides=list(overrides or []), flags=flags, family="pipeline")


def _current(marker: MarkerFile, fingerprints: set[str]) -> bool:
    """True when the marker was written under one of these configurations (not a stale one that a
    pipeline resume would redo anyway, not a crashed source waiting for a retry)."""
    return marker.data.get("fingerprint") in fingerprints and not marker.data.get("retry_on_resume")


def _write_marker(marker: MarkerFile, rows: list[dict], fingerprint: str) -> None:
    marker.data = {**marker.data, "rows": rows, "fingerprint": fingerprint}
    write_json_atomic(marker.path, marker.data)


def _place(layout: OutputLayout, old: dict, new: dict) -> str | None:
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


@dataclass
class RefilterResult:
    kept_before: int = 0
    kept_after: int = 0
    restored: int = 0
    pooled: int = 0
    changed_rows: int = 0
    stale_sources: int = 0
    reasons: dict = field(default_factory=dict)


def apply_thresholds(layout: OutputLayout, cfg: PipelineConfig,
                     previous: PipelineConfig | None = None) -> RefilterResult:
    """Re-decide every completed source's clips with `cfg`'s thresholds; move files; rewrite markers.

    The caller holds the run lock.  Markers written under `previous` (or already under `cfg`, after
    an interrupted call) are re-decided and get `cfg`'s fingerprint; others are stale (a pipeline
    resume redoes them) and are left alone.
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
        if not _current(marker, accepted):
            result.stale_sources += 1
            result.kept_before += old_kept
            result.kept_after += old_kept
            continue
        clips = [rejudge_row(layout, r, sync_stage, quality_stage) for r in rows if r.get("row_type") == "clip"]
        old_clips = [r for r in rows if r.get("row_type") == "clip"]
        for old, new in zip(old_clips, clips):
            moved = _place(layout, old, new)
            if moved:
                setattr(result, moved, getattr(result, moved) + 1)
            if (old.get("status"), old.get("reason")) != (new.get("status"), new.get("reason")):
                result.changed_rows += 1
        new_rows = _merge_rows(rows, clips)
        if new_rows != rows or marker.data.get("fingerprint") != fingerprint:
            _write_marker(marker, new_rows, fingerprint)
        result.kept_before += old_kept
        result.kept_after += sum(1 for r in clips if r.get("status") == "kept")
        for r in clips:
            if r.get("status") == "dropped":
                result.reasons[r["reason"]] = result.reasons.get(r["reason"], 0) + 1
    return result


def _merge_rows(rows: list[dict], clips: list[dict]) -> list[dict]:
    """A marker's rows in their order, with `clips` (new clip rows, same order) and the source row
    summarised from them."""
    it = iter(clips)
    return [summarise_source(r, clips) if r.get("row_type") == "source" else next(it) if r.get("row_type") == "clip"
            else r for r in rows]


def _save_run_yaml(layout: OutputLayout, old: PipelineConfig, new: PipelineConfig) -> None:
    """run.yaml with `new`'s stage settings; the run section (folders, workers) stays the recorded one."""
    from syncvid.config import save_config

    save_config(dataclasses.replace(new, run=old.run), layout.run_yaml)


def _format_changes(old: PipelineConfig, new: PipelineConfig, keys: list[str]) -> str:
    def value(cfg, key):
        section, name = key.split(".", 1)
        return getattr(getattr(cfg, section), name)

    return ", ".join(f"{k} {value(old, k)!r} -> {value(new, k)!r}" for k in keys) or "no threshold changed"


# ----------------------------------------------------------------------------- filter
def filter_main(output_dir, sync_conf_threshold: float | None, overrides: list[str] | None) -> int:
    """`syncvid filter`: new thresholds from the recorded scores (nothing decoded)."""
    layout, old = _open_root(output_dir)
    flags = {"sync.conf_threshold": sync_conf_threshold} if sync_conf_threshold is not None else {}
    with RunLock(layout.lock_file):
        layout, old = _open_root(output_dir)  # re-read under the lock
        new = _load_new(layout, overrides, flags)
        keys = changed_keys(old, new)
        others = [k for k in keys if k not in THRESHOLD_KEYS]
        if others:
            raise UsageError(
                "filter changes thresholds only (sync.conf_threshold, sync.max_offset_frames, quality.min_*, "
                f"quality.max_*); {', '.join(others)} "
                "changes what is measured: use `syncvid rescore` (sync, quality) or rerun `syncvid pipeline`")
        started = time.time()
        result = apply_thresholds(layout, new, previous=old)
        _save_run_yaml(layout, old, new)
        finish_outputs(layout, run_sources(new, layout, read_markers(layout)))
    print(f"syncvid: filter: {result.kept_before} -> {result.kept_after} clips kept "
          f"({result.restored} restored from the pool, {result.pooled} moved to it; "
          f"{_format_changes(old, new, keys)}; {time.time() - started:.2f} s)")
    if result.stale_sources:
        print(f"syncvid: filter: {result.stale_sources} source(s) done under another configuration were left "
              "as they are; `syncvid pipeline` redoes them", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- rescore
@dataclass(frozen=True)
class RescoreJob:
    """One source's candidates to re-score (picklable, for worker processes)."""

    source_row: dict
    rows: list
    root: str


@dataclass
class RescoreOutcome:
    rows: list
    rescored: int = 0
    reencoded: int = 0
    audio_context: dict = field(default_factory=dict)  # "source" | "clip" -> count
    errors: list = field(default_factory=list)  # (clip, message)


_WORKER: dict = {}


def _init_worker(cfg: PipelineConfig, stages: tuple[str, ...]) -> None:
    import cv2

    from syncvid.stages.quality import QualityStage
    from syncvid.stages.sync import SyncStage

    cv2.setNumThreads(1)
    sync_stage, quality_stage = SyncStage(cfg.sync), QualityStage(cfg.quality)
    if "sync" in stages:
        sync_stage.setup()
    if "quality" in stages:
        quality_stage.setup()
    _WORKER.update(cfg=cfg, stages=stages, sync=sync_stage, quality=quality_stage)


def source_audio_context(cfg: PipelineConfig, source_row: dict) -> np.ndarray | None:
    """The source's 16 kHz audio from output frame 0 on (as the pipeline held it), or None when the
    source file is gone.  Only the audio stream is decoded."""
    from syncvid.media.decode import decode_audio

    if not cfg.run.input_dir or source_row.get("start_s") is None:
        return None
    path = Path(cfg.run.input_dir) / source_row["source"]
    if not path.is_file():
        return None
    rate = cfg.media.sample_rate
    samples, start, _ = decode_audio(path, rate)
    skip = round((Fraction(source_row["start_s"]) - start) * rate)
    return samples[skip:] if 0 <= skip < len(samples) else None


def audio_matches(candidate: np.ndarray, reference: np.ndarray, tolerance: float = AUDIO_MATCH_TOLERANCE) -> bool:
    """Whether a decoded candidate's audio is the reference (up to AAC coding error)."""
    n = min(len(candidate), len(reference))
    if n == 0:
        return False
    a, b = candidate[:n].astype(np.float64), reference[:n].astype(np.float64)
    scale = max(float(np.sqrt(np.mean(b * b))), 1e-3)
    return float(np.sqrt(np.mean((a - b) ** 2))) <= tolerance * scale


def _rescore_source(job: RescoreJob) -> RescoreOutcome:
    """Worker side: score, decide and place every candidate of one source."""
    from syncvid.media.decode import read_clip
    from syncvid.media.encode import write_clip

    cfg: PipelineConfig = _WORKER["cfg"]
    stages, sync_stage, quality_stage = _WORKER["stages"], _WORKER["sync"], _WORKER["quality"]
    layout = OutputLayout(Path(job.root))
    spf = cfg.media.sample_rate // cfg.media.fps
    out = RescoreOutcome(rows=[])
    context = source_audio_context(cfg, job.source_row)
    t0 = float(job.source_row.get("start_s") or 0.0)
    for old in job.rows:
        if old.get("row_type") != "clip" or not old.get("candidate") or (
                "sync" not in stages and old.get("sync_offset_frames") is None):
            out.rows.append(old)  # never reached sync (or not measured there): the decision stands
            continue
        row = dict(old)
        seg = row_segment(row, t0)
        try:
            frames, audio, _, _ = read_clip(layout.root / row["candidate"])
        except Exception as exc:  # a damaged candidate: keep the recorded row, report the clip
            out.errors.append((row["clip"], f"{type(exc).__name__}: {exc}"))
            out.rows.append(old)
            continue
        lm_path = layout.landmarks_dir / (seg.clip_rel[:-4] + ".npy")
        landmarks = np.load(lm_path).astype(np.float32) if lm_path.is_file() else None
        a0 = seg.start_frame * spf
        n = frames.shape[0] * spf
        audio = np.concatenate([audio, np.zeros(max(0, n - len(audio)), np.float32)])[:n]
        use_source = context is not None and audio_matches(audio, context[a0:a0 + n])
        row["sync_audio_context"] = "source" if use_source else "clip"
        out.audio_context[row["sync_audio_context"]] = out.audio_context.get(row["sync_audio_context"], 0) + 1
        clip = Clip(seg, frames, context[a0:a0 + n] if use_source else audio, landmarks, cfg.media.sample_rate,
                    source_audio=context if use_source else None, audio_start_sample=a0 if use_source else 0)
        for key in ("output", "pooled"):
            row[key] = ""
        try:
            clip = score_clip(clip, row, sync_stage, quality_stage, stages)
        except Rejected as rej:
            row.update(rej.measurements)
            row.update(status="dropped", stage=rej.stage, reason=rej.reason, message=rej.message)
            _remove_clip_files(layout, old)
        else:
            row.update(decision_fields(layout, seg.clip_rel, decide(row, sync_stage, quality_stage)))
            same = all(old.get(k) == row.get(k) for k in ("sync_offset_frames", "sync_trimmed_frames", "num_frames"))
            if same and (old.get("output") or old.get("pooled")) and _exists(layout, old):
                _place(layout, old, row)
            else:
                dest = layout.root / (row["output"] or row["pooled"])
                dest.parent.mkdir(parents=True, exist_ok=True)
                write_clip(dest, clip.frames, clip.audio, fps=cfg.media.fps, sample_rate=cfg.media.sample_rate,
                           **cfg.encode.writer_options())
                _remove_clip_files(layout, old, keep=dest)
                out.reencoded += 1
        row["rescored"] = ",".join(s for s in RESCORABLE_STAGES if s in stages)
        out.rescored += 1
        out.rows.append(row)
    return out


def _exists(layout: OutputLayout, row: dict) -> bool:
    return any((layout.root / row[k]).is_file() for k in ("output", "pooled") if row.get(k))


def _remove_clip_files(layout: OutputLayout, row: dict, keep: Path | None = None) -> None:
    clip_rel = row_segment(row).clip_rel
    for rel in {row.get("output"), row.get("pooled"), final_rel(layout, clip_rel), pool_rel(layout, clip_rel)}:
        if rel and (layout.root / rel) != keep:
            (layout.root / rel).unlink(missing_ok=True)


def rescore_main(output_dir, stages: list[str], overrides: list[str] | None, total_num_workers: int | None) -> int:
    """`syncvid rescore`: new sync and/or quality scores measured on the aligned candidates."""
    stages = tuple(dict.fromkeys(s.strip() for s in stages if s.strip()))
    unknown = [s for s in stages if s not in RESCORABLE_STAGES]
    if not stages or unknown:
        raise UsageError(f"--stages: rescore measures {' and '.join(RESCORABLE_STAGES)} again "
                         f"(got {','.join(stages) or 'nothing'}); earlier stages need the sources: rerun "
                         "`syncvid pipeline`")
    layout, old = _open_root(output_dir)
    with RunLock(layout.lock_file):
        layout, old = _open_root(output_dir)
        new = _load_new(layout, overrides, {})
        keys = changed_keys(old, new)
        allowed = set(THRESHOLD_KEYS)
        allowed.update(f"{s}.{f.name}" for s in stages for f in dataclasses.fields(getattr(new, s)))
        others = [k for k in keys if k not in allowed]
        if others:
            raise UsageError(f"rescore --stages {','.join(stages)} cannot apply {', '.join(others)}: add that "
                             "stage to --stages, or rerun `syncvid pipeline` for earlier stages")
        markers = read_markers(layout)
        fingerprint = config_fingerprint(new)
        accepted = {fingerprint, config_fingerprint(old)}
        jobs: list[tuple[MarkerFile, RescoreJob]] = []
        stale = 0
        for marker in markers:
            if not _current(marker, accepted):
                stale += 1
                continue
            rows = marker.rows
            if not any(r.get("row_type") == "clip" and r.get("candidate") for r in rows):
                continue
            if any(reached_sync_decision(r) and not r.get("candidate") for r in rows):
                raise UsageError("rescore needs the aligned candidates in affine_transformed/, which this run did "
                                 "not keep (--no_keep_candidates): rerun `syncvid pipeline`")
            jobs.append((marker, RescoreJob(rows[0] if rows[0].get("row_type") == "source" else {}, rows,
                                            str(layout.root))))
        started = time.time()
        kept_before = sum(1 for m in markers for r in m.rows if r.get("row_type") == "clip" and r["status"] == "kept")
        totals = RescoreOutcome(rows=[])
        workers = max(1, min(int(total_num_workers or 1), len(jobs) or 1))
        for marker, outcome in zip((m for m, _ in jobs), _run_jobs([j for _, j in jobs], new, stages, workers)):
            clips = [r for r in outcome.rows if r.get("row_type") == "clip"]
            _write_marker(marker, _merge_rows(outcome.rows, clips), fingerprint)
            totals.rescored += outcome.rescored
            totals.reencoded += outcome.reencoded
            totals.errors.extend(outcome.errors)
            for k, v in outcome.audio_context.items():
                totals.audio_context[k] = totals.audio_context.get(k, 0) + v
        _save_run_yaml(layout, old, new)
        all_rows = finish_outputs(layout, run_sources(new, layout, read_markers(layout)))
    kept_after = sum(1 for r in all_rows if r.get("row_type") == "clip" and r["status"] == "kept")
    clip_audio = totals.audio_context.get("clip", 0)
    print(f"syncvid: rescore {','.join(stages)}: {totals.rescored} candidates scored, {totals.reencoded} re-encoded, "
          f"{kept_before} -> {kept_after} clips kept ({time.time() - started:.1f} s)")
    if clip_audio:
        print(f"syncvid: rescore: {clip_audio} candidate(s) without their source's audio (source missing or "
              "changed): sync was searched within the clip's own audio", file=sys.stderr)
    if stale:
        print(f"syncvid: rescore: {stale} source(s) done under another configuration were left as they are",
              file=sys.stderr)
    for clip, message in totals.errors:
        print(f"syncvid: rescore: {clip}: {message} (recorded scores kept)", file=sys.stderr)
    return 1 if totals.errors else 0


def _run_jobs(jobs: list[RescoreJob], cfg: PipelineConfig, stages: tuple[str, ...], workers: int):
    """Outcomes in job order: in this process, or in `workers` worker processes."""
    if workers <= 1:
        _init_worker(cfg, stages)
        try:
            for job in jobs:
                yield _rescore_source(job)
        finally:
            _WORKER.clear()
        return
    import multiprocessing as mp

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                             initargs=(cfg, stages)) as pool:
        yield from pool.map(_rescore_source, jobs)


# ----------------------------------------------------------------------------- report
def report_main(output_dir) -> int:
    """`syncvid report`: rewrite report.html and the contact sheet from the completion markers."""
    from syncvid.pipeline.report import write_contact_sheet, write_report
    from syncvid.pipeline.run import collect_rows

    layout, cfg = _open_root(output_dir)
    rows = collect_rows(layout, run_sources(cfg, layout, read_markers(layout)))
    write_contact_sheet(layout, rows)
    path = write_report(layout, rows)
    print(f"syncvid: report: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


__all__ = [
    "THRESHOLD_KEYS", "apply_thresholds", "changed_keys", "decide", "decision_fields", "filter_main",
    "rejudge_row", "report_main", "rescore_main", "score_clip", "summarise_source",
]
