"""A whole pipeline run: discover sources, skip completed ones, execute the rest, write the outputs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from syncvid.config.pipeline_schema import PipelineConfig
from syncvid.atomic import write_text_atomic
from syncvid.pipeline.devices import plan_workers, visible_gpu_count
from syncvid.pipeline.discovery import discover_sources
from syncvid.pipeline.executors import LocalProcessExecutor, SequentialExecutor, WorkerJob
from syncvid.pipeline.layout import OutputLayout
from syncvid.pipeline.lock import RunLock
from syncvid.pipeline.manifest import write_manifest
from syncvid.pipeline.progress import Progress
from syncvid.records import Source

# Sections whose values change what a source produces; a completed source is redone when they change.
FINGERPRINT_SECTIONS = ("media", "scene", "segment", "face", "sync", "quality", "encode")
GPU_BACKENDS = {"face": {"insightface"}, "sync": {"syncnet", "stable_syncnet"}, "quality": {"hyperiqa"}}


class UsageError(ValueError):
    """A problem with what the user asked for (one line, exit code 2)."""


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


def config_fingerprint(cfg: PipelineConfig) -> str:
    """What a source's results depend on; thresholds are left out: they only decide, and a run with
    other thresholds re-decides completed sources from their recorded scores (as `syncvid filter`)."""
    from syncvid.pipeline.decisions import THRESHOLD_KEYS

    data = {name: dataclasses.asdict(getattr(cfg, name)) for name in FINGERPRINT_SECTIONS}
    for key in THRESHOLD_KEYS:
        section, name = key.split(".")
        data[section].pop(name)
    data["outputs"] = [cfg.run.keep_candidates, cfg.run.keep_intermediate]
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def needs_gpu(cfg: PipelineConfig) -> bool:
    return (cfg.face.backend in GPU_BACKENDS["face"] or cfg.sync.backend in GPU_BACKENDS["sync"]
            or any(b in GPU_BACKENDS["quality"] for b in cfg.quality.backends))


def load_marker(layout: OutputLayout, source: Source) -> dict | None:
    path = layout.done_marker(source.rel)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def remove_stale_temporaries(layout: OutputLayout) -> int:
    """Delete hidden temporary files left by an interrupted run (only our own output folders)."""
    removed = 0
    for folder in layout.all_stage_dirs() + [layout.state_dir, layout.root]:
        if not folder.is_dir():
            continue
        pattern = "**/.*" if folder != layout.root else ".*"
        for path in folder.glob(pattern):
            if path.is_file() and (".part" in path.name or ".tmp" in path.name):
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def make_executor(cfg: PipelineConfig, job: WorkerJob, notice) -> object:
    gpu = needs_gpu(cfg)
    plan = plan_workers(cfg.run.total_num_workers, cfg.run.per_gpu_num_workers,
                        visible_gpu_count() if gpu else 0, gpu)
    if plan.notice and cfg.run.executor != "ray":  # the Ray executor plans against the cluster it joins
        notice(plan.notice)
    if cfg.run.executor == "sequential":
        return SequentialExecutor(job, plan.slots[0])
    if cfg.run.executor == "local":
        return LocalProcessExecutor(job, plan.slots, max_retries=cfg.run.max_retries,
                                    on_crash=lambda s, n: notice(f"worker died on {s.rel} (attempt {n})"))
    if cfg.run.executor == "ray":
        from syncvid.pipeline.ray_executor import RayExecutor

        return RayExecutor(job, plan, address=cfg.run.ray_address, max_retries=cfg.run.max_retries,
                           needs_gpu=gpu, notice=notice)
    raise UsageError(f"run.executor must be sequential, local or ray, got {cfg.run.executor!r}")


def run_pipeline(cfg: PipelineConfig, notice=None) -> RunSummary:
    """Run every stage on every unfinished source under cfg.run.input_dir."""
    notice = notice or (lambda msg: print(f"syncvid: {msg}", file=sys.stderr))
    started = time.time()
    input_dir, output_dir = resolve_output_dir(cfg)
    cfg.run.input_dir, cfg.run.output_dir = str(input_dir), str(output_dir)
    layout = OutputLayout(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(layout.lock_file):
        from syncvid.config import save_config

        save_config(cfg, layout.run_yaml)
        remove_stale_temporaries(layout)
        exclude = [output_dir] if output_dir != input_dir.parent and output_dir.is_relative_to(input_dir) else []
        exclude += [p for p in layout.all_stage_dirs() if p.is_relative_to(input_dir)]
        sources = discover_sources(input_dir, cfg.run.extensions, exclude=exclude)
        fingerprint = config_fingerprint(cfg)
        todo = []
        for source in sources:
            marker = load_marker(layout, source)
            if not (marker and marker.get("fingerprint") == fingerprint and not marker.get("retry_on_resume")):
                todo.append(source)
        skipped = len(sources) - len(todo)
        if skipped:
            notice(f"resuming: {skipped} of {len(sources)} sources already done")
        job = WorkerJob(cfg, layout, fingerprint)
        progress = Progress(len(todo), enabled=cfg.run.progress)
        executor = make_executor(cfg, job, notice)
        try:
            for outcome in executor.run(todo):
                if outcome.retry_on_resume and outcome.rows and outcome.rows[0].get("reason") == "worker_crashed":
                    _write_crash_marker(layout, outcome, fingerprint)
                progress.update(outcome)
        finally:
            progress.close()
        if skipped:  # sources done by an earlier run are decided with this run's thresholds
            from syncvid.pipeline.refilter import apply_thresholds

            apply_thresholds(layout, cfg)
        rows = finish_outputs(layout, sources)
    clips = [r for r in rows if r["row_type"] == "clip"]
    src_rows = [r for r in rows if r["row_type"] == "source"]
    return RunSummary(
        output_dir=output_dir,
        sources=len(sources),
        processed=len(todo),
        skipped=skipped,
        kept_clips=sum(r["status"] == "kept" for r in clips),
        dropped_clips=sum(r["status"] == "dropped" for r in clips),
        rejected_sources=sum(r["status"] == "dropped" for r in src_rows),
        video_hours=sum((r.get("num_frames") or 0) for r in src_rows) / cfg.media.fps / 3600,
        wall_s=time.time() - started,
    )


def _write_crash_marker(layout: OutputLayout, outcome, fingerprint: str) -> None:
    from syncvid.atomic import write_json_atomic

    write_json_atomic(layout.done_marker(outcome.source_rel), {
        "source": outcome.source_rel, "fingerprint": fingerprint, "rows": outcome.rows,
        "duration_s": 0.0, "retry_on_resume": True, "finished": time.time()})


def collect_rows(layout: OutputLayout, sources: list[Source]) -> list[dict]:
    rows: list[dict] = []
    for source in sources:
        marker = load_marker(layout, source)
        if marker is not None:
            rows.extend(marker.get("rows", []))
    return rows


def finish_outputs(layout: OutputLayout, sources: list[Source]) -> list[dict]:
    """Write manifest.parquet, fileslist.txt, the contact sheet and the report from the completion markers."""
    rows = collect_rows(layout, sources)
    write_manifest(layout.manifest, rows)
    kept = sorted(str((layout.root / r["output"]).resolve()) for r in rows
                  if r.get("row_type") == "clip" and r.get("status") == "kept" and r.get("output"))
    write_text_atomic(layout.fileslist, "".join(p + "\n" for p in kept))
    from syncvid.pipeline.report import write_contact_sheet, write_report

    write_contact_sheet(layout, rows)
    write_report(layout, rows)
    return rows
