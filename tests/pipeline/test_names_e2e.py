"""A whole run over awkward input names: same stems in one folder, a 250-character name, bad names,
special files.  Every input ends as clips under distinct names or as a manifest row with a reason."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from syncvid.commands.filter import filter_main
from syncvid.config import load_pipeline_config
from syncvid.outputs.manifest import read_manifest
from syncvid.pipeline.run import run_pipeline
from syncvid.sample.corpus import Scene, SourceSpec, write_source

LONG = "l" * 246 + ".mp4"  # a 250-character file name


@pytest.fixture(scope="module")
def talk(tmp_path_factory) -> Path:
    """One 5 s talking-head file with one expected clip (generated once)."""
    root = tmp_path_factory.mktemp("talk")
    write_source(SourceSpec("talk.mp4", "talk", "one face, 5 s", num_frames=125, scenes=(Scene(0.0, "studio"),)),
                 root, seed=3)
    return root / "talk.mp4"


def _run(inp: Path, out: Path, notices: list[str]):
    flags = {"run.input_dir": str(inp), "run.output_dir": str(out), "run.executor": "sequential",
             "run.total_num_workers": 1, "run.progress": False}
    return run_pipeline(load_pipeline_config(None, flags=flags), notice=notices.append)


def test_same_stems_long_and_bad_names_special_files(talk, tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    for name in ["talk.mp4", "talk.mov", "talk.MP4", LONG]:
        shutil.copyfile(talk, inp / name)
    with open(os.path.join(os.fsencode(inp), b"caf\xe9.mp4"), "wb") as fh:  # not UTF-8
        fh.write(talk.read_bytes())
    shutil.copyfile(talk, inp / "two\nlines.mp4")
    os.mkfifo(inp / "pipe.mp4")
    os.symlink(inp / "gone.mp4", inp / "x.mp4")
    notices: list[str] = []
    summary = _run(inp, out, notices)

    rows = read_manifest(out / "manifest.parquet")
    sources = {r["source"]: r for r in rows if r["row_type"] == "source"}
    kept = [r for r in rows if r["row_type"] == "clip" and r["status"] == "kept"]
    assert {r["source"] for r in kept} == {"talk.mp4", "talk.mov", "talk.MP4", LONG}
    # one kept clip per source, each its own file, each listed once
    outputs = sorted(r["output"] for r in kept)
    assert len(set(outputs)) == len(outputs) == 4
    assert all((out / o).is_file() for o in outputs)
    listed = (out / "fileslist.txt").read_text(encoding="utf-8").splitlines()
    assert sorted(listed) == sorted(str((out / o).resolve()) for o in outputs)
    assert "high_visual_quality/talk.mov_shot_000_000.mp4" in outputs
    assert "high_visual_quality/talk.MP4_shot_000_000.mp4" in outputs
    assert sources["talk.mov"]["clip_stem"] == "talk.mov"
    # landmarks and thumbnails are named after the clips: one each, none shared
    for o in outputs:
        name = o[len("high_visual_quality/"):-len(".mp4")]
        assert (out / ".syncvid" / "landmarks" / f"{name}.npy").is_file()
        assert (out / ".syncvid" / "thumbs" / f"{name}.png").is_file()
    assert len({p.name for p in (out / ".syncvid" / "done").iterdir()}) == 4
    # the 250-character name: its clips have a shortened name that fits the 255-byte limit
    (long_clip,) = [r for r in kept if r["source"] == LONG]
    assert len(Path(long_clip["output"]).name.encode()) <= 255 and long_clip["clip"].startswith("l" * 100)
    assert sources[LONG]["clip_stem"] == long_clip["clip"][: -len("_shot_000_000")]
    # paths that never became sources: a row each, and the run went on
    assert {k: (v["stage"], v["reason"]) for k, v in sources.items() if v["status"] == "dropped"} == {
        "caf\\xe9.mp4": ("broken", "bad_name"), "two\\nlines.mp4": ("broken", "bad_name"),
        "pipe.mp4": ("broken", "not_a_regular_file"), "x.mp4": ("broken", "dangling_link")}
    assert (summary.sources, summary.kept_clips, summary.rejected_sources) == (8, 4, 4)
    assert "no_clips_kept" not in (out / "report.html").read_text(encoding="utf-8")
    assert "dangling_link" in (out / "report.html").read_text(encoding="utf-8")
    assert not [p for p in out.rglob("*") if ".part" in p.name]

    # a resume does nothing again and keeps every row
    again = _run(inp, out, notices)
    assert (again.processed, again.kept_clips, again.rejected_sources) == (0, 4, 4)
    assert sorted(r["source"] for r in read_manifest(out / "manifest.parquet")) == sorted(r["source"] for r in rows)

    # filter moves the renamed clips to the pool and back by their recorded names; the skipped rows stay
    assert filter_main(out, 1000.0, None) == 0
    pooled = sorted(r["pooled"] for r in read_manifest(out / "manifest.parquet") if r["row_type"] == "clip")
    assert pooled == sorted(o.replace("high_visual_quality/", ".syncvid/pool/") for o in outputs)
    assert all((out / p).is_file() for p in pooled) and not any((out / o).exists() for o in outputs)
    assert filter_main(out, 0.0, None) == 0
    after = read_manifest(out / "manifest.parquet")
    assert sorted(r["output"] for r in after if r["row_type"] == "clip" and r["status"] == "kept") == outputs
    assert sum(r["reason"] == "bad_name" for r in after) == 2


def test_output_root_equal_to_input_root(talk, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copyfile(talk, inp / "talk.mp4")
    notices: list[str] = []
    first = _run(inp, inp, notices)
    assert (first.sources, first.kept_clips) == (1, 1)
    second = _run(inp, inp, notices)  # the first run's clips are not taken as sources
    assert (second.sources, second.processed, second.kept_clips) == (1, 0, 1)
    assert any("not searched for sources: " in n and "high_visual_quality/" in n for n in notices)
    assert (inp / "talk.mp4").read_bytes() == talk.read_bytes()
