"""Fitting the corpus judge from an output root, and the landmark backend using the model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from syncvid.config import DEFAULT_PIPELINE_CONFIG, load_config, save_config
from syncvid.config.pipeline_schema import SyncSection
from syncvid.media.encode import write_clip
from syncvid.stages.sync import SyncStage
from syncvid.records import Clip, Segment
from syncvid.sync import corpus_judge as cj
from syncvid.sync.backends import LandmarkBackend, SyncInput
from syncvid.commands.judge_sync import MODEL_NAME, collect_features, find_candidates, fit_output_root
from syncvid.sync.synthetic import HOP, synthetic_clip

PARAMS = cj.FitParams(min_frames=1000, foreign_pairs=150, iterations=1)
MARGIN = 20


def _output_root(tmp: Path, sources: int, *, delete_source: int | None = None) -> Path:
    """An output root as a run leaves it: run.yaml, completion markers, candidates, landmarks, sources."""
    inp, root = tmp / "in", tmp / "out"
    inp.mkdir()
    grey = np.full((125 + 2 * MARGIN, 32, 32, 3), 127, np.uint8)
    for i in range(sources):
        c = synthetic_clip(125, 0, margin=MARGIN, seed=50 + i)
        rel = f"s{i}.mp4"
        write_clip(inp / rel, grey, c.source_audio[: len(grey) * HOP])
        cand = f"affine_transformed/s{i}_shot_000_000.mp4"
        write_clip(root / cand, grey[:125], c.audio)
        lm = root / ".syncvid" / "landmarks" / f"s{i}_shot_000_000.npy"
        lm.parent.mkdir(parents=True, exist_ok=True)
        np.save(lm, c.landmarks.astype(np.float16))
        rows = [{"row_type": "source", "source": rel, "clip": "", "start_s": 0.0},
                {"row_type": "clip", "source": rel, "clip": f"s{i}_shot_000_000", "candidate": cand,
                 "shot_index": 0, "seg_index": 0, "start_frame": MARGIN, "end_frame": MARGIN + 125}]
        marker = root / ".syncvid" / "done" / f"s{i}.json"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"source": rel, "rows": rows}))
    cfg = load_config(DEFAULT_PIPELINE_CONFIG)
    save_config(replace(cfg, run=replace(cfg.run, input_dir=str(inp), output_dir=str(root))), root / "run.yaml")
    if delete_source is not None:
        (inp / f"s{delete_source}.mp4").unlink()
    return root


def test_collect_features_reads_landmarks_and_source_audio(tmp_path):
    root = _output_root(tmp_path, 2, delete_source=1)
    feats = collect_features(root, 17)
    assert [f.group for f in feats] == ["s0.mp4", "s1.mp4"]
    assert all(f.num_frames == 125 and f.reach == 17 for f in feats)
    # source present: real audio around the clip; source gone: the candidate's own audio only
    assert np.isfinite(feats[0].audio).all()
    assert np.isnan(feats[1].audio[:17]).all() and np.isfinite(feats[1].audio[17:142]).all()


def test_fit_output_root_saves_a_model_that_finds_offsets(tmp_path):
    root = _output_root(tmp_path, 10)
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "in").iterdir())
    outcome = fit_output_root(root, PARAMS)
    assert outcome.model_path == root.resolve() / MODEL_NAME and outcome.clips == 10
    assert "fitted on 10 candidates" in outcome.message
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "in").iterdir()) == before  # inputs untouched
    # the landmark backend judges with it (sync.landmark_model), through the sync stage
    stage = SyncStage(replace(SyncSection(), landmark_model=str(outcome.model_path)))
    stage.setup()
    c = synthetic_clip(125, 5, seed=900)
    seg = Segment("x.mp4", 0, 0, 0, 125)
    clip = Clip(seg, c.frames, c.audio, c.landmarks, 16000, source_audio=c.source_audio,
                audio_start_sample=c.audio_start_sample)
    result = stage.measure(clip)
    assert abs(result.offset_frames - 5) <= 1 and result.conf >= 3
    assert result.extras["sync_judge"] == "corpus"


def test_a_large_run_is_fitted_on_max_clips_drawn_over_its_sources(tmp_path):
    root = _output_root(tmp_path, 10)
    assert [c.source for c in find_candidates(root)] == [f"s{i}.mp4" for i in range(10)]
    outcome = fit_output_root(root, replace(PARAMS, max_clips=9))
    assert outcome.clips == 9 and outcome.report.corpus_clips == 9
    assert "fitted on 9 candidates (drawn from 10)" in outcome.message


def test_small_run_falls_back_and_says_so(tmp_path):
    root = _output_root(tmp_path, 2)
    outcome = fit_output_root(root, PARAMS)
    assert outcome.model_path is None and not (root / MODEL_NAME).exists()
    assert outcome.message == ("corpus sync judge not fitted: 250 usable frames in 2 clips; the corpus judge needs at "
                               "least 1000; the per-clip landmark estimator stays")


def test_landmark_backend_names_a_bad_model_file(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_text("hello")
    backend = LandmarkBackend(replace(SyncSection(), landmark_model=str(bad)))
    with pytest.raises(cj.ModelFileError, match=r"model\.npz: not a corpus sync model file"):
        backend.setup()
    plain = LandmarkBackend(SyncSection())
    plain.setup()
    c = synthetic_clip(100, 0, seed=3)
    _, extras = plain.measure(SyncInput(c.frames, c.landmarks, c.source_audio, c.audio_start_sample), 15)
    assert extras["sync_judge"] == "clip"


def test_a_run_ends_with_the_corpus_judge_and_resumes_without_redoing(sample_run, tmp_path, capsys):
    """`sync.corpus_judge`: a pipeline run ends with fit → re-judge; the markers keep the run's
    fingerprint, so the same command again redoes no source."""
    import shutil

    from syncvid.commands.judge_sync import judge_output_root
    from syncvid.config import load_pipeline_config
    from syncvid.outputs.layout import OutputLayout
    from syncvid.outputs.manifest import read_manifest
    from syncvid.outputs.markers import read_markers
    from syncvid.commands.judge_sync import uses_corpus_judge
    from syncvid.pipeline.run import run_pipeline

    root = tmp_path / "out"
    shutil.copytree(sample_run, root)
    cfg = load_config(root / "run.yaml")
    before = {m.source: m.fingerprint for m in read_markers(OutputLayout(root))}
    params = cj.FitParams(min_frames=1000, foreign_pairs=150, iterations=1)
    assert judge_output_root(root, params=params, keep_config=True) == 0
    assert (root / MODEL_NAME).is_file()
    assert "corpus sync judge fitted on" in capsys.readouterr().out
    assert {m.source: m.fingerprint for m in read_markers(OutputLayout(root))} == before
    judged = [r for r in read_manifest(root / "manifest.parquet")
              if r["row_type"] == "clip" and r.get("sync_offset_frames") is not None]
    assert judged and all(r["sync_judge"] == "corpus" for r in judged)
    assert all(r["sync_offset_frames_clip"] is not None for r in judged)  # the per-clip judge's, kept beside
    report = (root / "report.html").read_text()
    assert "Sync offset, per-clip judge" in report and "Sync confidence, per-clip judge" in report
    assert load_config(root / "run.yaml").sync.landmark_model == ""  # run.yaml is the run's own
    # the same run again, asking for the judge: every source is already done
    again = load_pipeline_config(None, flags={"run.input_dir": cfg.run.input_dir, "run.output_dir": str(root),
                                              "run.total_num_workers": 1, "run.progress": False},
                                 overrides=["sync.corpus_judge=true"])
    assert uses_corpus_judge(again)
    notices = []
    summary = run_pipeline(again, notice=notices.append)
    assert summary.processed == 0 and summary.skipped == summary.sources - len(
        [r for r in read_manifest(root / "manifest.parquet") if r.get("reason") in {"bad_name", "not_a_regular_file",
                                                                                  "dangling_link"}])
    # nothing new since the fit: the judgement stays, no second fit and no rescore
    assert any("no new candidates since its fit" in n for n in notices)
    assert "judge-sync" not in capsys.readouterr().out
    assert judged == [r for r in read_manifest(root / "manifest.parquet")
                      if r["row_type"] == "clip" and r.get("sync_offset_frames") is not None]
    # another threshold: fitted again (too few frames for the default FitParams: said, per-clip judge stays)
    other = load_pipeline_config(None, flags={"run.input_dir": cfg.run.input_dir, "run.output_dir": str(root),
                                              "run.total_num_workers": 1, "run.progress": False},
                                 overrides=["sync.conf_threshold=2.5"])
    run_pipeline(other, notice=lambda message: None)
    assert "the per-clip landmark estimator stays" in capsys.readouterr().out


def test_rescore_sync_uses_the_corpus_judge_without_changing_the_run_config(sample_run, tmp_path, capsys):
    """`syncvid rescore --stages sync` follows `sync.corpus_judge` (on by default): it fits the judge
    first and measures sync with it; the model never enters run.yaml or the fingerprint, so a later
    `syncvid pipeline` with the same command redoes nothing.  Too small a run: the per-clip estimator."""
    import shutil

    from syncvid.commands.rescore import rescore_main
    from syncvid.outputs.layout import OutputLayout
    from syncvid.outputs.manifest import read_manifest
    from syncvid.outputs.markers import read_markers

    root = tmp_path / "out"
    shutil.copytree(sample_run, root)
    before = {m.source: m.fingerprint for m in read_markers(OutputLayout(root))}
    yaml_before = (root / "run.yaml").read_text()
    params = cj.FitParams(min_frames=1000, foreign_pairs=150, iterations=1)

    def judges():
        return {r["sync_judge"] for r in read_manifest(root / "manifest.parquet")
                if r["row_type"] == "clip" and r.get("sync_offset_frames") is not None}

    assert rescore_main(root, ["sync"], [], 1, fit_params=params) == 0
    assert "corpus sync judge fitted on" in capsys.readouterr().out
    assert judges() == {"corpus"}
    assert {m.source: m.fingerprint for m in read_markers(OutputLayout(root))} == before
    assert (root / "run.yaml").read_text() == yaml_before
    # the default FitParams need more frames than the sample holds: said, and the per-clip judge measures
    assert rescore_main(root, ["sync"], [], 1) == 0
    assert "the per-clip landmark estimator stays" in capsys.readouterr().out
    assert judges() == {"clip"}
    # explicitly off: no fit at all
    assert rescore_main(root, ["sync"], ["sync.corpus_judge=false"], 1, fit_params=params) == 0
    assert "judge-sync" not in capsys.readouterr().out and judges() == {"clip"}
