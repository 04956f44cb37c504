"""A whole pipeline run: discover sources, skip completed ones, execute the rest, write the outputs."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from syncvid.config.pipeline_schema import PipelineConfig
from syncvid.errors import RunStopped, UsageError
from syncvid.outputs.finish import finish_outputs, remove_stale_temporaries, write_skipped
from syncvid.outputs.layout import OutputLayout
from syncvid.outputs.markers import DoneMarker, read_marker
from syncvid.pipeline.devices import plan_workers, visible_gpu_count
from syncvid.pipeline.discovery import check_input_outside_outputs, discover_inputs
from syncvid.pipeline.executors import LocalProcessExecutor, SequentialExecutor, WorkerJob
from syncvid.pipeline.fingerprint import config_fingerprint
from syncvid.pipeline.lock import RunLock
from syncvid.pipeline.progress import Progress



@dataclass
class RunSummary:
    output_dir: Path
    sources: int
    processed: int
    skipped: int
    kept_clips: int
    dropped_clips: int
    rejected_sources: int
    video_hours: float
    wall_s: float


def resolve_output_dir(cfg: PipelineConfig) -> tuple[Path, Path]:
    """(input root, output root); the output defaults to the input's parent folder, as in the reference."""
    if not cfg.run.input_dir:
        raise UsageError("--input_dir is required")
    input_dir = Path(cfg.run.input_dir).expanduser()
    if not input_dir.is_dir():
        raise UsageError(f"input folder not found: {input_dir}")
    input_dir = input_dir.resolve()
    output = Path(cfg.run.output_dir).expanduser() if cfg.run.output_dir else input_dir.parent
    return input_dir, output.resolve()


def needs_gpu(cfg: PipelineConfig) -> bool:
    """Whether a configured backend of the face, sync or quality stage runs on a GPU (the stages'
    `resources`, which their constructors compute without loading a model)."""
    from syncvid.pipeline.source_runner import StageSet

    return any(stage.resources.needs_gpu for stage in StageSet.per_clip_stages(cfg))


def make_executor(cfg: PipelineConfig, job: WorkerJob, notice, on_progress=None) -> object:
    gpu = needs_gpu(cfg)
    plan = plan_workers(cfg.run.total_num_workers, cfg.run.per_gpu_num_workers,
                        visible_gpu_count() if gpu else 0, gpu)
    if plan.notice and cfg.run.executor != "ray":  # the Ray executor plans against the cluster it joins
        notice(plan.notice)
    if cfg.run.executor == "sequential":
        return SequentialExecutor(job, plan.slots[0], on_progress=on_progress)
    if cfg.run.executor == "local":
        return LocalProcessExecutor(job, plan.slots, max_retries=cfg.run.max_retries,
                                    on_crash=lambda s, n: notice(f"worker died on {s.rel} (attempt {n})"),
                                    on_progress=on_progress)
    if cfg.run.executor == "ray":
        from syncvid.pipeline.executors.ray_cluster import RayExecutor

        return RayExecutor(job, plan, address=cfg.run.ray_address, max_retries=cfg.run.max_retries,
                           needs_gpu=gpu, notice=notice)
    raise UsageError(f"run.executor must be sequential, local or ray, got {cfg.run.executor!r}")


def _stop_disk_full(layout: OutputLayout, sources: list, outcomes, full) -> None:
    """Stop the workers, remove what they left half-written, write the manifest of what is done
    (when there is room for it) and stop the run with one line naming the file and the free space."""
    outcomes.close()
    remove_stale_temporaries(layout)
    try:
        finish_outputs(layout, sources)
    except OSError:
        pass  # the completion markers hold every row; the next run writes the manifest
    raise RunStopped(f"disk full: {full.rows[0].get('message')}; {full.source_rel} is recorded as disk_full "
                     "and the run stopped; free some space and run the same command again to resume")


def run_pipeline(cfg: PipelineConfig, notice=None) -> RunSummary:
    """Run every stage on every unfinished source under cfg.run.input_dir."""
    notice = notice or (lambda msg: print(f"syncvid: {msg}", file=sys.stderr))
    started = time.time()
    input_dir, output_dir = resolve_output_dir(cfg)
    cfg.run.input_dir, cfg.run.output_dir = str(input_dir), str(output_dir)
    layout = OutputLayout(output_dir)
    check_input_outside_outputs(input_dir, layout, cfg.run.keep_intermediate)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the output folder {output_dir}: {exc.strerror or exc}") from None
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise UsageError(f"the output folder {output_dir} is not writable")
    with RunLock(layout.lock_file):
        from syncvid.config import save_config

        save_config(cfg, layout.run_yaml)
        remove_stale_temporaries(layout)
        found = discover_inputs(input_dir, cfg.run.extensions, layout, cfg.run.keep_intermediate)
        if found.notice(input_dir):
            notice(found.notice(input_dir))
        sources = found.sources
        if not sources and not found.skipped:
            notice(f"no video files under {input_dir} (extensions: {', '.join(cfg.run.extensions)})")
        write_skipped(layout, found.skipped)  # their rows join the manifest and the report
        fingerprint = config_fingerprint(cfg)
        todo = []
        for source in sources:
            marker = read_marker(layout, source.rel)
            if marker is None or not marker.current({fingerprint}):
                todo.append(source)
                continue
            why = ("the input file changed since it was processed" if marker.input_changed(source.path)
                   else marker.missing_output(layout))
            if why:  # done, but no longer what its marker says: redo it
                notice(f"redoing {source.rel}: {why}")
                todo.append(source)
        skipped = len(sources) - len(todo)
        if skipped:
            notice(f"resuming: {skipped} of {len(sources)} sources already done")
        job = WorkerJob(cfg, layout, fingerprint)
        progress = Progress(len(todo), enabled=cfg.run.progress)
        executor = make_executor(cfg, job, notice, on_progress=progress.advance)
        outcomes = executor.run(todo)
        full = None
        try:
            for outcome in outcomes:
                if outcome.retry_on_resume and outcome.rows and outcome.rows[0].get("reason") == "worker_crashed":
                    DoneMarker(outcome.source_rel, fingerprint, outcome.rows, retry_on_resume=True).write(layout)
                progress.update(outcome)
                if outcome.rows and outcome.rows[0].get("reason") == "disk_full":
                    full = outcome  # every following source would fail the same way
                    break
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop the workers, then remove what they left half-written
            outcomes.close()
            remove_stale_temporaries(layout)
            raise
        finally:
            progress.close()
        if full is not None:
            _stop_disk_full(layout, sources, outcomes, full)
        if skipped:  # sources done by an earlier run are decided with this run's thresholds
            from syncvid.pipeline.rejudge import apply_thresholds

            apply_thresholds(layout, cfg)
        rows = finish_outputs(layout, sources, contact_sheet=cfg.run.contact_sheet)
    from syncvid.commands.judge_sync import uses_corpus_judge

    if uses_corpus_judge(cfg):
        rows = judge_with_corpus(cfg, layout, sources, notice, processed=len(todo))
    clips = [r for r in rows if r["row_type"] == "clip"]
    src_rows = [r for r in rows if r["row_type"] == "source"]
    return RunSummary(
        output_dir=output_dir,
        sources=len(sources) + len(found.skipped),
        processed=len(todo),
        skipped=skipped,
        kept_clips=sum(r["status"] == "kept" for r in clips),
        dropped_clips=sum(r["status"] == "dropped" for r in clips),
        rejected_sources=sum(r["status"] == "dropped" for r in src_rows),
        video_hours=sum((r.get("num_frames") or 0) for r in src_rows) / cfg.media.fps / 3600,
        wall_s=time.time() - started,
    )


def _judged_by_current_model(cfg: PipelineConfig, model_path, rows: list[dict]) -> bool:
    """Every clip that reached sync is judged by the corpus model at `model_path`, fitted for
    this configuration's search range and threshold."""
    from syncvid.sync.corpus_judge import ModelFileError, load_model

    judged = [r for r in rows if r["row_type"] == "clip" and r.get("sync_offset_frames") is not None]
    if not judged or any(r.get("sync_judge") != "corpus" for r in judged) or not model_path.is_file():
        return False
    try:
        fitted = load_model(model_path).info.get("params", {})
    except ModelFileError:
        return False
    return (fitted.get("max_shift") == cfg.sync.search_frames
            and fitted.get("threshold") == float(cfg.sync.conf_threshold))


def judge_with_corpus(cfg: PipelineConfig, layout: OutputLayout, sources: list, notice, processed: int) -> list[dict]:
    """measure → fit → re-judge: fit the corpus judge on every candidate of the output root and
    rescore sync with it; the markers keep this run's fingerprint, so a resume skips their sources.
    A resume that processed no source, on a root already judged by a model fitted with this run's
    search range and threshold, keeps that judgement.  Returns the manifest rows afterwards."""
    from syncvid.commands.judge_sync import MODEL_NAME, judge_output_root
    from syncvid.outputs.finish import collect_rows

    rows = collect_rows(layout, sources)
    if not any(r.get("candidate") for r in rows if r["row_type"] == "clip"):
        return rows  # no candidate anywhere (no video, every source rejected): nothing to fit on
    if not cfg.run.keep_candidates:
        notice("sync.corpus_judge needs the aligned candidates (run.keep_candidates): the per-clip judge stays")
        return rows
    if processed == 0 and _judged_by_current_model(cfg, layout.root / MODEL_NAME, rows):
        notice(f"corpus sync judge: no new candidates since its fit ({MODEL_NAME}): its judgement stays")
        return rows
    judge_output_root(layout.root, total_num_workers=cfg.run.total_num_workers, keep_config=True)
    return collect_rows(layout, sources)

