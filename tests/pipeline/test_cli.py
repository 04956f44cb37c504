"""The command line: flags, exit codes, resume after kill -9, the run lock, the reference's command."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syncvid.cli import main
from syncvid.pipeline.lock import RunLock
from syncvid.outputs.manifest import read_manifest

REPO = Path(__file__).resolve().parents[2]
SUBSET = ["talk_30fps_cuts.mp4", "short_4.9s.mp4", "shifted/talk_audio_leads_3.mp4", "broken.mp4"]


@pytest.fixture(scope="module")
def small_input(sample_corpus, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "raw videos"
    for rel in SUBSET:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(sample_corpus / rel, root / rel)
    return root


def _summary(out: Path) -> list[tuple]:
    rows = read_manifest(out / "manifest.parquet")
    return sorted((r["source"], r["clip"], r["status"], r["stage"], r["reason"], r["num_frames"],
                   r["sync_offset_frames"], r["output"]) for r in rows)


def _syncvid(*args, cwd=REPO, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "syncvid.cli", *args], cwd=cwd, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def reference_run(small_input, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref_out")
    assert main(["pipeline", "--input_dir", str(small_input), "--output_dir", str(out), "--total_num_workers", "1",
                 "--no_progress"]) == 0
    return out


@pytest.mark.parametrize(
    "args, needle",
    [
        (["pipeline"], "--input_dir is required"),
        (["pipeline", "--input_dir", "/nonexistent/videos"], "input folder not found"),
        (["pipeline", "--input-dir", ".", "--total_num_workers", "zero"], "expected a positive integer"),
        (["pipeline", "--input_dir", ".", "--resolution", "255"], "resolution must be an even number"),
        (["pipeline", "--input_dir", ".", "--bogus"], "unrecognized arguments: --bogus"),
        (["pipeline", "--input_dir", ".", "--set", "face.resolutoin=512"], "did you mean face.resolution"),
        (["pipeline", "--input_dir", ".", "--output_dir", "/proc/no/such/place"], "cannot create the output folder"),
        (["make-sample", str(REPO / "README.md")], "make-sample writes a folder, but"),
    ],
)
def test_usage_errors_are_one_clear_line_exit_2(args, needle, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any(needle in line for line in err), err
    assert len(err) <= 2 and not any("Traceback" in line for line in err)


def test_resume_skips_done_sources_and_keeps_results(small_input, reference_run, capsys):
    before = _summary(reference_run)
    assert main(["pipeline", "--input_dir", str(small_input), "--output_dir", str(reference_run), "--no_progress"]) == 0
    captured = capsys.readouterr()
    assert f"{len(SUBSET)} of {len(SUBSET)} sources already done" in captured.err
    assert _summary(reference_run) == before


def test_kill_9_then_rerun_gives_the_uninterrupted_result(small_input, reference_run, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "syncvid.cli", "pipeline", "--input_dir", str(small_input),
                             "--output_dir", str(out), "--total_num_workers", "1", "--no_progress"],
                            cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    done = out / ".syncvid" / "done"
    while time.time() < deadline and not (done.is_dir() and any(done.iterdir())):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its worker, mid-run
    proc.wait()
    finished = len(list(done.iterdir()))
    assert 1 <= finished < len(SUBSET), "the run was not interrupted midway"
    result = _syncvid("pipeline", "--input_dir", str(small_input), "--output_dir", str(out), "--no_progress")
    assert result.returncode == 0, result.stderr
    assert f"resuming: {finished} of {len(SUBSET)}" in result.stderr
    assert _summary(out) == _summary(reference_run)
    assert not [p for p in out.rglob("*") if ".part" in p.name]


def _children(pid: int) -> set[int]:
    """Live processes whose parent is `pid` (Linux /proc)."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(stat.parent.name))
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux /proc")
@pytest.mark.parametrize("signum, code, word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_sigterm_and_ctrl_c_stop_the_workers_with_one_line(small_input, reference_run, tmp_path, signum, code, word):
    """`kill PID` (systemd, Slurm) and Ctrl-C: workers stop, nothing half-written stays, one line,
    the conventional exit code, and an immediate rerun takes the lock and finishes the job."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "syncvid.cli", "pipeline", "--input_dir", str(small_input),
                             "--output_dir", str(out), "--total_num_workers", "2", "--no_progress"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    done = out / ".syncvid" / "done"
    workers: set[int] = set()
    while time.time() < deadline and not (done.is_dir() and any(done.iterdir())):
        workers |= _children(proc.pid)
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert len(list(done.iterdir())) < len(SUBSET), "the run was not interrupted midway"
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and word in lines[-1] and "Traceback" not in err and "BrokenPipeError" not in err, err
    time.sleep(0.5)
    assert not [p for p in workers if Path(f"/proc/{p}").exists()
                and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"], "orphaned workers"
    assert not [p for p in out.rglob("*") if ".part" in p.name or ".tmp" in p.name]
    result = _syncvid("pipeline", "--input_dir", str(small_input), "--output_dir", str(out), "--no_progress")
    assert result.returncode == 0, result.stderr
    assert _summary(out) == _summary(reference_run)


def test_an_input_without_videos_says_so(tmp_path, capsys):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "notes.txt").write_text("no videos here\n")
    assert main(["pipeline", "--input_dir", str(tmp_path / "raw"), "--output_dir", str(tmp_path / "out"),
                 "--no_progress"]) == 0
    assert f"no video files under {tmp_path / 'raw'}" in capsys.readouterr().err


def test_shipped_configs_are_found_from_any_folder(tmp_path, monkeypatch):
    from syncvid.config import load_config, shipped_config_path

    monkeypatch.chdir(tmp_path)
    assert shipped_config_path("configs/unet/stage2.yaml") == REPO / "configs/unet/stage2.yaml"
    assert load_config("configs/syncnet/cpu_small.yaml").data.num_frames > 0
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "mine.yaml").write_text("family: pipeline\n")
    assert shipped_config_path("configs/mine.yaml") == Path("configs/mine.yaml")  # the user's own file wins


def test_second_run_on_same_output_refused(small_input, tmp_path, capsys):
    out = tmp_path / "out"
    with RunLock(out / ".syncvid" / "run.lock"):
        assert main(["pipeline", "--input_dir", str(small_input), "--output_dir", str(out)]) == 2
    assert "another syncvid run is using" in capsys.readouterr().err


def test_reference_command_verbatim_writes_beside_the_input(sample_corpus, tmp_path):
    raw = tmp_path / "videos"
    raw.mkdir()
    shutil.copy2(sample_corpus / "short_4.9s.mp4", raw / "clip one.mp4")
    result = subprocess.run(
        [sys.executable, "-m", "preprocess.data_processing_pipeline", "--total_num_workers", "1",
         "--per_gpu_num_workers", "1", "--resolution", "256", "--sync_conf_threshold", "3", "--input_dir", str(raw)],
        cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "high_visual_quality" / "clip one_shot_000_000.mp4").is_file()
    assert str(tmp_path / "high_visual_quality" / "clip one_shot_000_000.mp4") in (tmp_path / "fileslist.txt").read_text()
    run_yaml = (tmp_path / "run.yaml").read_text()
    assert "per_gpu_num_workers: 1" in run_yaml and "conf_threshold: 3" in run_yaml
    assert sorted(p.name for p in raw.iterdir()) == ["clip one.mp4"]  # input folder untouched


def test_keep_intermediate_writes_reference_folders(sample_corpus, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy2(sample_corpus / "talk_30fps_cuts.mp4", raw / "cuts.mp4")
    out = tmp_path / "out"
    assert main(["pipeline", "--input_dir", str(raw), "--output_dir", str(out), "--keep_intermediate",
                 "--executor", "sequential", "--no_progress", "--set", "segment.seconds=2"]) == 0
    names = lambda d: sorted(p.name for p in (out / d).iterdir())  # noqa: E731
    assert names("resampled") == ["cuts.mp4"]
    assert names("shot") == ["cuts_shot_000.mp4", "cuts_shot_001.mp4", "cuts_shot_002.mp4"]
    assert names("segmented")[:3] == ["cuts_shot_000_000.mp4", "cuts_shot_000_001.mp4", "cuts_shot_001_000.mp4"]
    assert (out / "av_synced_3").is_dir() and names("affine_transformed")
    import av

    with av.open(str(out / "resampled" / "cuts.mp4")) as c:
        assert c.streams.video[0].frames == 250 and c.streams.audio[0].rate == 16000


def test_config_show_and_validate(capsys):
    assert main(["config", "show", str(REPO / "configs/data/pipeline.yaml"), "--set", "segment.seconds=4"]) == 0
    assert "seconds: 4" in capsys.readouterr().out
    assert main(["config", "validate", str(REPO / "configs/unet/stage2.yaml")]) == 0
    assert main(["config", "validate", "missing.yaml"]) == 1  # an invalid config: every problem printed
    assert "missing.yaml: config file not found" in capsys.readouterr().out
    assert main(["config", "validate", "--set", "scene.detector=adaptve"]) == 1  # the shipped config by default
    assert "detector must be one of adaptive, content, threshold, none, got 'adaptve'" in capsys.readouterr().out


def test_rerun_with_other_thresholds_redecides_without_recomputing(small_input, reference_run, capsys, monkeypatch):
    before = _summary(reference_run)
    args = ["pipeline", "--input_dir", str(small_input), "--output_dir", str(reference_run), "--no_progress"]
    import syncvid.pipeline.source_runner as runner

    monkeypatch.setattr(runner.SourceRunner, "run", lambda *a: pytest.fail("a completed source was recomputed"))
    assert main(args + ["--sync_conf_threshold", "1000"]) == 0
    rows = read_manifest(reference_run / "manifest.parquet")
    synced = [r for r in rows if r["row_type"] == "clip" and r["sync_conf"] is not None]
    assert synced and all((r["status"], r["reason"]) == ("dropped", "low_sync_conf") for r in synced)
    assert (reference_run / "fileslist.txt").read_text() == ""
    assert main(args) == 0  # back to the config's threshold: the same clips, restored from the pool
    assert _summary(reference_run) == before
