"""Resuming checks what it relies on: the recorded files (present, at their recorded sizes) and the
input (the same file); a write error names the file, removes what the source wrote and, for a full
disk, stops the run."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from syncvid.cli import main
from syncvid.commands.filter import filter_main
from syncvid.config import load_pipeline_config
from syncvid.errors import RunStopped
from syncvid.outputs.layout import OutputLayout
from syncvid.outputs.manifest import read_manifest
from syncvid.outputs.markers import read_marker
from syncvid.pipeline.run import run_pipeline
from syncvid.sample.corpus import Framing, Scene, _talk, write_source

CLIP_A = "high_visual_quality/a/talk_shot_000_000.mp4"
CAND_A = "affine_transformed/a/talk_shot_000_000.mp4"


@pytest.fixture(scope="module")
def tiny_input(tmp_path_factory) -> Path:
    """Two 5.2 s talking heads (one kept clip and a too-short tail each)."""
    root = tmp_path_factory.mktemp("resume") / "raw"
    write_source(_talk("a/talk.mp4", "", num_frames=130, scenes=(Scene(0.0, "window", Framing(0.55, 0.52, 0.42)),)),
                 root, 1)
    write_source(_talk("b/other.mp4", "", num_frames=130, scenes=(Scene(0.0, "studio", Framing(0.5, 0.52, 0.42)),)),
                 root, 2)
    return root


def _run(inp: Path, out: Path, **flags):
    notices: list[str] = []
    cfg = load_pipeline_config(None, flags={"run.input_dir": str(inp), "run.output_dir": str(out),
                                            "run.executor": "sequential", "run.progress": False, **flags})
    return run_pipeline(cfg, notice=notices.append), notices


def _summary(out: Path) -> list[tuple]:
    return sorted((r["source"], r["clip"], r["status"], r["stage"], r["reason"], r["num_frames"], r["output"],
                   r["candidate"]) for r in read_manifest(out / "manifest.parquet"))


@pytest.fixture(scope="module")
def reference(tiny_input, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resume_ref") / "out"
    summary, _ = _run(tiny_input, out)
    assert (summary.processed, summary.kept_clips) == (2, 2)
    return out


@pytest.fixture
def copies(tiny_input, reference, tmp_path) -> tuple[Path, Path]:
    """A copy of the input (mtimes kept) and of the reference output root, to damage."""
    inp, out = tmp_path / "raw", tmp_path / "out"
    shutil.copytree(tiny_input, inp)
    shutil.copytree(reference, out)
    return inp, out


def test_marker_records_input_identity_and_file_sizes(tiny_input, reference):
    marker = read_marker(OutputLayout(reference), "a/talk.mp4")
    st = (tiny_input / "a/talk.mp4").stat()
    assert (marker.input["size"], marker.input["mtime_ns"]) == (st.st_size, st.st_mtime_ns)
    assert len(marker.input["edge_sha1"]) == 40
    assert marker.files == {"talk_shot_000_000": {"clip": (reference / CLIP_A).stat().st_size,
                                                  "candidate": (reference / CAND_A).stat().st_size}}


def test_copied_input_and_output_resume_without_redoing(copies):
    inp, out = copies
    summary, notices = _run(inp, out)
    assert (summary.processed, summary.skipped) == (0, 2), notices


@pytest.mark.parametrize("deleted", [CLIP_A, CAND_A])
def test_deleted_clip_is_redone_and_filter_goes_on(copies, reference, deleted, capsys):
    inp, out = copies
    (out / deleted).unlink()
    # filter: no traceback, names the source and what redoes it, re-decides the others
    assert filter_main(out, None, None) == 0
    err = capsys.readouterr().err
    assert f"a/talk.mp4 is incomplete ({deleted} is missing)" in err and "`syncvid pipeline` redoes it" in err
    summary, notices = _run(inp, out)
    assert f"redoing a/talk.mp4: {deleted} is missing" in notices
    assert (summary.processed, summary.skipped) == (1, 1)
    assert (out / deleted).is_file()
    assert _summary(out) == _summary(reference)
    summary, _ = _run(inp, out)
    assert summary.processed == 0


def test_truncated_clip_is_redone(copies, reference):
    inp, out = copies
    data = (out / CLIP_A).read_bytes()
    (out / CLIP_A).write_bytes(data[: len(data) // 2])
    summary, notices = _run(inp, out)
    assert f"redoing a/talk.mp4: {CLIP_A} has {len(data) // 2} bytes, {len(data)} when it was written" in notices
    assert summary.processed == 1
    assert (out / CLIP_A).stat().st_size == read_marker(OutputLayout(out), "a/talk.mp4").files[
        "talk_shot_000_000"]["clip"]
    assert _summary(out) == _summary(reference)


def test_changed_input_is_redone_touched_input_is_not(copies):
    inp, out = copies
    src = inp / "a/talk.mp4"
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # same bytes, other mtime
    summary, _ = _run(inp, out)
    assert summary.processed == 0
    old_clip = (out / CLIP_A).read_bytes()
    shutil.copyfile(inp / "b/other.mp4", src)  # other content under the same name
    summary, notices = _run(inp, out)
    assert "redoing a/talk.mp4: the input file changed since it was processed" in notices
    assert (summary.processed, summary.skipped) == (1, 1)
    assert (out / CLIP_A).read_bytes() != old_clip
    assert read_marker(OutputLayout(out), "a/talk.mp4").input["size"] == src.stat().st_size


def test_markers_of_earlier_versions_stay_done_but_missing_clips_are_redone(copies):
    inp, out = copies
    for path in (out / ".syncvid/done").glob("*.json"):
        data = json.loads(path.read_text())
        del data["input"], data["files"]
        path.write_text(json.dumps(data))
    summary, notices = _run(inp, out)
    assert (summary.processed, summary.skipped) == (0, 2), notices
    (out / CLIP_A).unlink()
    summary, notices = _run(inp, out)
    assert f"redoing a/talk.mp4: {CLIP_A} is missing" in notices
    assert summary.processed == 1 and (out / CLIP_A).is_file()


def _files_of_a(out: Path) -> list[Path]:
    return [p for d in ("high_visual_quality", "affine_transformed", ".syncvid/landmarks", ".syncvid/thumbs")
            for p in (out / d / "a").glob("*") if p.is_file()]


def test_disk_full_names_the_path_removes_what_the_source_wrote_and_stops(tiny_input, tmp_path, monkeypatch, capsys):
    """The thumbnail write after the first clip fails with ENOSPC: the clip and candidate already written
    are removed, the source is recorded as disk_full at the face stage, the run stops with exit 1 and one
    line; a rerun once there is room does everything."""
    import syncvid.pipeline.source_runner as sr

    def full(path, images):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(sr, "save_thumbnail_strip", full)
    out = tmp_path / "out"
    with pytest.raises(RunStopped) as stop:
        _run(tiny_input, out)
    thumb = out / ".syncvid/thumbs/a/talk_shot_000_000.png"
    assert str(stop.value).startswith(f"disk full: cannot write {thumb}: No space left on device (")
    assert "free there)" in str(stop.value) and "run the same command again" in str(stop.value)
    assert _files_of_a(out) == []
    rows = read_manifest(out / "manifest.parquet")
    assert [(r["source"], r["row_type"], r["status"], r["stage"], r["reason"]) for r in rows] == [
        ("a/talk.mp4", "source", "dropped", "face", "disk_full")]
    assert str(thumb) in rows[0]["message"]
    assert read_marker(OutputLayout(out), "b/other.mp4") is None  # the run stopped before it

    # the command line: exit 1, one line, no traceback
    code = main(["pipeline", "--input_dir", str(tiny_input), "--output_dir", str(out), "--no_progress",
                 "--executor", "sequential"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("syncvid: error: disk full: cannot write ")
    assert not any("Traceback" in line for line in err)

    monkeypatch.undo()
    summary, _ = _run(tiny_input, out)
    assert (summary.processed, summary.kept_clips) == (2, 2)
    assert (out / CLIP_A).is_file()


def test_other_write_error_is_recorded_at_its_stage_and_the_run_goes_on(tiny_input, tmp_path, monkeypatch):
    import syncvid.pipeline.source_runner as sr

    real = sr.write_clip

    def refuse(path, *args, **kw):
        if Path(path).parts[-2:] == ("a", "talk_shot_000_000.mp4") and "high_visual_quality" in str(path):
            raise OSError(errno.EACCES, "Permission denied", str(path))
        return real(path, *args, **kw)

    monkeypatch.setattr(sr, "write_clip", refuse)
    out = tmp_path / "out"
    summary, _ = _run(tiny_input, out, **{"run.keep_candidates": False})
    assert (summary.processed, summary.kept_clips) == (2, 1)
    row = next(r for r in read_manifest(out / "manifest.parquet") if r["source"] == "a/talk.mp4")
    assert (row["status"], row["stage"], row["reason"]) == ("dropped", "quality", "write_error")
    assert row["message"] == f"cannot write {out / CLIP_A}: Permission denied"
    assert _files_of_a(out) == []
    assert read_marker(OutputLayout(out), "a/talk.mp4").retry_on_resume
