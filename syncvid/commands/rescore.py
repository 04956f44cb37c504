"""`syncvid rescore OUT --stages sync,quality`: measure those stages again on the aligned candidates
(affine_transformed/ + their landmarks), e.g. with a newly trained SyncNet, then decide and place the
corrected clips as the pipeline does.  Only clips that reached the sync stage are re-scored; rows
dropped by earlier stages keep their decision."""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from syncvid.commands.common import changed_keys, load_new, open_root, run_sources, save_run_yaml
from syncvid.config.pipeline_schema import PipelineConfig
from syncvid.errors import UsageError
from syncvid.outputs.finish import finish_outputs
from syncvid.outputs.layout import OutputLayout
from syncvid.outputs.markers import DoneMarker, read_markers
from syncvid.pipeline.decisions import (
    RESCORABLE_STAGES,
    THRESHOLD_KEYS,
    decide,
    decision_fields,
    reached_sync_decision,
    row_segment,
    score_clip,
)
from syncvid.pipeline.fingerprint import config_fingerprint
from syncvid.pipeline.lock import RunLock
from syncvid.pipeline.rejudge import clip_exists, merge_rows, place_clip, remove_clip_files
from syncvid.records import Clip, Rejected

__all__ = ["audio_matches", "rescore_main", "source_audio_context"]

# A candidate whose recorded audio differs from the source's audio by more than this relative RMS
# is not from this source any more (the input was replaced): its own audio is used instead.
AUDIO_MATCH_TOLERANCE = 0.3


@dataclass(frozen=True)
class RescoreJob:
    """One source's candidates to re-score (picklable, for worker processes)."""

    key: str  # the source's relative path
    source_row: dict
    rows: list
    root: str

    @property
    def rel(self) -> str:
        return self.key


@dataclass
class RescoreOutcome:
    rows: list
    rescored: int = 0
    reencoded: int = 0
    audio_context: dict = field(default_factory=dict)  # "source" | "clip" -> count
    errors: list = field(default_factory=list)  # (clip, message)
    sizes: dict = field(default_factory=dict)  # clip id -> bytes of a corrected clip encoded again


@dataclass(frozen=True)
class RescoreWorkers:
    """Builds one rescore worker per process (picklable): its sync and quality stages, loaded once."""

    cfg: PipelineConfig
    stages: tuple[str, ...]

    def make_worker(self, slot=None) -> RescoreWorker:
        import cv2

        from syncvid.stages.quality import QualityStage
        from syncvid.stages.sync import SyncStage

        cv2.setNumThreads(1)
        sync_stage, quality_stage = SyncStage(self.cfg.sync), QualityStage(self.cfg.quality)
        if "sync" in self.stages:
            sync_stage.setup()
        if "quality" in self.stages:
            quality_stage.setup()
        return RescoreWorker(self.cfg, self.stages, sync_stage, quality_stage)


@dataclass
class RescoreWorker:
    cfg: PipelineConfig
    stages: tuple[str, ...]
    sync_stage: object
    quality_stage: object

    def run(self, job: RescoreJob) -> tuple[str, RescoreOutcome]:
        return job.key, rescore_source(job, self)


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


def rescore_source(job: RescoreJob, worker: RescoreWorker) -> RescoreOutcome:
    """Worker side: score, decide and place every candidate of one source."""
    from syncvid.media.decode import read_clip
    from syncvid.media.encode import write_clip

    cfg = worker.cfg
    stages, sync_stage, quality_stage = worker.stages, worker.sync_stage, worker.quality_stage
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
        if "sync" in stages and old.get("sync_judge") == "clip" and old.get("sync_offset_frames") is not None:
            # the per-clip judge's measurements stay beside the corpus judge's (the report draws both)
            row.update(sync_offset_frames_clip=old["sync_offset_frames"], sync_conf_clip=old.get("sync_conf"))
        try:
            clip = score_clip(clip, row, sync_stage, quality_stage, stages)
        except Rejected as rej:
            row.update(rej.measurements)
            row.update(status="dropped", stage=rej.stage, reason=rej.reason, message=rej.message)
            remove_clip_files(layout, old)
        else:
            row.update(decision_fields(layout, seg.clip_rel, decide(row, sync_stage, quality_stage)))
            same = all(old.get(k) == row.get(k) for k in ("sync_offset_frames", "sync_trimmed_frames", "num_frames"))
            if same and (old.get("output") or old.get("pooled")) and clip_exists(layout, old):
                place_clip(layout, old, row)
            else:
                dest = layout.root / (row["output"] or row["pooled"])
                dest.parent.mkdir(parents=True, exist_ok=True)
                write_clip(dest, clip.frames, clip.audio, fps=cfg.media.fps, sample_rate=cfg.media.sample_rate,
                           **cfg.encode.writer_options())
                remove_clip_files(layout, old, keep=dest)
                out.reencoded += 1
                out.sizes[row["clip"]] = dest.stat().st_size
        row["rescored"] = ",".join(s for s in RESCORABLE_STAGES if s in stages)
        out.rescored += 1
        out.rows.append(row)
    return out


def rescore_main(output_dir, stages: list[str], overrides: list[str] | None, total_num_workers: int | None,
                 keep_config: bool = False, corpus_judge: bool | None = None, fit_params=None) -> int:
    """`syncvid rescore`: new sync and/or quality scores measured on the aligned candidates.

    Sync with the corpus judge (docs/sync.md): `corpus_judge` None = as the configuration says
    (`sync.corpus_judge`, the default: the judge is fitted on the candidates first and sync
    measured with it; too few candidates: the per-clip estimator); True = only with a fitted judge
    (`syncvid judge-sync`: nothing is rescored when too few candidates); False = never.  The fitted
    model (`OUT/sync_model.npz`) is applied without becoming part of the run's configuration;
    `fit_params`: the judge's `FitParams` (default: its defaults).

    `keep_config`: the markers keep the fingerprint they were written under and run.yaml stays as
    it is (the corpus sync judge at the end of a run: a resume with the same command skips them)."""
    stages = tuple(dict.fromkeys(s.strip() for s in stages if s.strip()))
    unknown = [s for s in stages if s not in RESCORABLE_STAGES]
    if not stages or unknown:
        raise UsageError(f"--stages: rescore measures {' and '.join(RESCORABLE_STAGES)} again "
                         f"(got {','.join(stages) or 'nothing'}); earlier stages need the sources: rerun "
                         "`syncvid pipeline`")
    layout, old = open_root(output_dir)
    with RunLock(layout.lock_file):
        layout, old = open_root(output_dir)
        new = load_new(layout, overrides, {})
        keys = changed_keys(old, new)
        allowed = set(THRESHOLD_KEYS)
        allowed.update(f"{s}.{f.name}" for s in stages for f in dataclasses.fields(getattr(new, s)))
        others = [k for k in keys if k not in allowed]
        if others:
            raise UsageError(f"rescore --stages {','.join(stages)} cannot apply {', '.join(others)}: add that "
                             "stage to --stages, or rerun `syncvid pipeline` for earlier stages")
        scoring = new
        if "sync" in stages and corpus_judge is not False:
            from syncvid.commands.judge_sync import fit_for_config, uses_corpus_judge

            if corpus_judge or uses_corpus_judge(new):
                model = fit_for_config(layout.root, new, *([fit_params] if fit_params is not None else []))
                if model is not None:
                    scoring = dataclasses.replace(new, sync=dataclasses.replace(new.sync, landmark_model=str(model)))
                elif corpus_judge:
                    return 0
        markers = read_markers(layout)
        fingerprint = config_fingerprint(new)
        accepted = {fingerprint, config_fingerprint(old)}
        jobs: list[tuple[DoneMarker, RescoreJob]] = []
        stale = 0
        for marker in markers:
            if not marker.current(accepted):
                stale += 1
                continue
            rows = marker.rows
            if not any(r.get("row_type") == "clip" and r.get("candidate") for r in rows):
                continue
            if any(reached_sync_decision(r) and not r.get("candidate") for r in rows):
                raise UsageError("rescore needs the aligned candidates in affine_transformed/, which this run did "
                                 "not keep (--no_keep_candidates): rerun `syncvid pipeline`")
            jobs.append((marker, RescoreJob(marker.source, rows[0] if rows[0].get("row_type") == "source" else {}, rows,
                                            str(layout.root))))
        started = time.time()
        kept_before = sum(1 for m in markers for r in m.rows if r.get("row_type") == "clip" and r["status"] == "kept")
        totals = RescoreOutcome(rows=[])
        workers = max(1, min(int(total_num_workers or 1), len(jobs) or 1))
        by_key = {job.key: marker for marker, job in jobs}
        for key, outcome in _run_jobs([j for _, j in jobs], scoring, stages, workers):
            marker = by_key[key]
            clips = [r for r in outcome.rows if r.get("row_type") == "clip"]
            marker.rows = merge_rows(outcome.rows, clips)
            if not keep_config:
                marker.fingerprint = fingerprint
            for clip, size in outcome.sizes.items():
                marker.set_file_size(clip, "clip", size)
            marker.write(layout)
            totals.rescored += outcome.rescored
            totals.reencoded += outcome.reencoded
            totals.errors.extend(outcome.errors)
            for k, v in outcome.audio_context.items():
                totals.audio_context[k] = totals.audio_context.get(k, 0) + v
        if not keep_config:
            save_run_yaml(layout, old, new)
        all_rows = finish_outputs(layout, run_sources(new, layout, read_markers(layout)),
                                  contact_sheet=new.run.contact_sheet)
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


def _gave_up(job: RescoreJob, attempts: int, detail: str) -> tuple[str, RescoreOutcome]:
    """A source whose rescore worker died or failed on every attempt keeps its recorded rows."""
    return job.key, RescoreOutcome(rows=list(job.rows), errors=[(job.key, f"worker failed {attempts} time(s): {detail}")])


def _run_jobs(jobs: list[RescoreJob], cfg: PipelineConfig, stages: tuple[str, ...], workers: int):
    """(source, outcome) pairs as they complete: in this process, or in `workers` worker processes."""
    factory = RescoreWorkers(cfg, stages)
    if workers <= 1:
        worker = factory.make_worker()
        for job in jobs:
            yield worker.run(job)
        return
    from syncvid.pipeline.devices import WorkerSlot
    from syncvid.pipeline.executors.dispatch import dispatch
    from syncvid.pipeline.executors.processes import ProcessPool

    slots = [WorkerSlot(i, None) for i in range(workers)]
    yield from dispatch(ProcessPool(factory, name="syncvid-rescore"), slots, jobs, max_retries=cfg.run.max_retries,
                        give_up=_gave_up, key=lambda job: job.key)
