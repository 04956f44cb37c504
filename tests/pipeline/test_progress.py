"""The progress bar advances within a source: workers report the seconds of video done."""

from __future__ import annotations

import shutil

from syncvid.config import load_pipeline_config
from syncvid.pipeline import source_runner
from syncvid.pipeline.progress import Progress
from syncvid.pipeline.run import run_pipeline
from syncvid.pipeline.source_runner import SourceOutcome


def test_progress_counts_fractions_of_sources_in_work():
    progress = Progress(total=3, enabled=False)
    progress.advance(0, ("a.mp4", 450.0, 1800.0))  # a 30-minute source, a quarter done
    progress.advance(1, ("b.mp4", 10.0, 20.0))
    assert progress._bar.n == 0.75
    progress.update(SourceOutcome("b.mp4", [], 20.0))
    assert progress._bar.n == 1.25 and progress.video_s == 20.0
    progress.advance(0, ("a.mp4", 1800.0, 1800.0))
    assert progress._bar.n == 2.0
    progress.close()


def test_workers_report_seconds_done_while_a_source_runs(sample_corpus, tmp_path, monkeypatch):
    src = tmp_path / "raw"
    src.mkdir()
    shutil.copy2(sample_corpus / "talk_30fps_cuts.mp4", src / "talk.mp4")
    monkeypatch.setattr(source_runner, "PROGRESS_EVERY_S", 0.0)
    reports = []
    monkeypatch.setattr(Progress, "advance", lambda self, worker, report: reports.append(report))
    cfg = load_pipeline_config(None, flags={"run.input_dir": str(src), "run.output_dir": str(tmp_path / "out"),
                                            "run.executor": "sequential", "run.progress": False})
    run_pipeline(cfg, notice=lambda message: None)
    assert len(reports) > 10 and {r[0] for r in reports} == {"talk.mp4"}
    done = [r[1] for r in reports]
    assert done == sorted(done) and 0 < done[0] < done[-1] <= reports[-1][2] + 0.1
