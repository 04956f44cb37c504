"""Well-typed but wrong pipeline values are refused when the config loads: exit 2 before any work,
one line naming the key, the value and what is allowed; `config validate` runs the same checks."""

from __future__ import annotations

import pytest

from syncvid.cli import main

BAD_VALUES = [
    ("scene.detector=adaptve", "scene.detector", "adaptive, content, threshold, none"),
    ("media.sample_rate=0", "media.sample_rate", "16000"),
    ("media.fps=30", "media.fps", "must be 25"),
    ("sync.backend=nonexistent", "sync.backend", "landmark, syncnet, stable_syncnet"),
    ("face.backend=foo", "face.backend", "dlib, insightface"),
    ("face.resolution=100000", "face.resolution", "from 32 to 2048"),
    ("segment.seconds=-1", "segment.seconds", "positive"),
    ("segment.min_seconds=9", "segment.min_seconds", "[0, seconds=5.0]"),
    ("quality.backends=[foo]", "quality.backends", "unknown 'foo'"),
    ("quality.num_frames=0", "quality.num_frames", ">= 1"),
    ("encode.crf=99", "encode.crf", "0 to 51"),
    ("run.max_retries=-1", "run.max_retries", ">= 0"),
    ("scene.threshold=-1", "scene.threshold", ">= 0"),
    ("run.executor=slurm", "run.executor", "local, sequential, ray"),
    ("run.total_num_workers=0", "run.total_num_workers", ">= 1"),
]


@pytest.mark.parametrize("override,key,allowed", BAD_VALUES)
def test_pipeline_refuses_bad_values_before_any_work(tmp_path, capsys, override, key, allowed):
    raw = tmp_path / "raw"
    raw.mkdir()
    out = tmp_path / "out"
    code = main(["pipeline", "--input_dir", str(raw), "--output_dir", str(out), "--set", override])
    err = capsys.readouterr().err
    assert code == 2
    section, name = key.split(".")
    assert f"{section}: {name}" in err and allowed in err
    assert len([line for line in err.splitlines() if line.strip()]) <= 2  # the problem (and its file)
    assert not out.exists()  # no run.yaml, no bookkeeping folder


@pytest.mark.parametrize("override,key,allowed", BAD_VALUES[:6])
def test_config_validate_runs_the_same_checks(repo_root, capsys, override, key, allowed):
    code = main(["config", "validate", str(repo_root / "configs/data/pipeline.yaml"), "--set", override])
    out = capsys.readouterr().out
    section, name = key.split(".")
    assert code == 1 and f"{section}: {name}" in out and allowed in out


def test_a_nan_threshold_flag_is_refused(tmp_path, capsys):
    (tmp_path / "raw").mkdir()
    code = main(["pipeline", "--input_dir", str(tmp_path / "raw"), "--output_dir", str(tmp_path / "o"),
                 "--sync_conf_threshold", "nan"])
    err = capsys.readouterr().err
    assert code == 2 and "conf_threshold" in err and "finite" in err and not (tmp_path / "o").exists()


def test_resolution_flag_is_checked_too(tmp_path, capsys):
    (tmp_path / "raw").mkdir()
    code = main(["pipeline", "--input_dir", str(tmp_path / "raw"), "--output_dir", str(tmp_path / "o"),
                 "--resolution", "100000"])
    assert code == 2 and "resolution" in capsys.readouterr().err
