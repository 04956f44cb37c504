"""The whole pipeline on the sample corpus, checked against its ground truth."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import av
import pytest

from syncvid.config import load_config
from syncvid.outputs.manifest import read_manifest
from syncvid.sample import load_ground_truth


@pytest.fixture(scope="module")
def truth(sample_corpus):
    return load_ground_truth(sample_corpus / "ground_truth.json")["files"]


@pytest.fixture(scope="module")
def manifest(sample_run):
    return read_manifest(sample_run / "manifest.parquet")


def _source_rows(manifest):
    return {r["source"]: r for r in manifest if r["row_type"] == "source"}


def _clip_rows(manifest, source):
    return sorted((r for r in manifest if r["row_type"] == "clip" and r["source"] == source), key=lambda r: r["clip"])


def test_every_source_has_a_row_and_expected_rejections_match(truth, manifest):
    sources = _source_rows(manifest)
    assert set(sources) == set(truth)
    for rel, t in truth.items():
        row = sources[rel]
        if t["expected"] is not None:  # a source that yields no clip
            exp = (t["expected"]["stage"], t["expected"]["reason"])
            assert row["status"] == "dropped" and row["message"], rel
            if exp[0] == "broken":
                assert (row["stage"], row["reason"]) == exp, rel
            else:  # decided per segment: the source row summarises its segments' rejections
                assert (row["stage"], row["reason"]) == (exp[0], "no_clips_kept"), rel
                assert {(c["stage"], c["reason"]) for c in _clip_rows(manifest, rel)} == {exp}, rel
            continue
        clips = _clip_rows(manifest, rel)
        assert len(clips) == len(t["segments"]), rel
        for clip, seg in zip(clips, t["segments"]):
            if seg["expected"] is None:
                assert clip["status"] == "kept", (rel, clip["clip"], clip["reason"], clip["message"])
            else:
                assert (clip["stage"], clip["reason"]) == (seg["expected"]["stage"], seg["expected"]["reason"]), rel
                assert clip["status"] == "dropped" and clip["message"]


def test_segments_are_frame_exact_and_follow_cuts(truth, manifest):
    for rel, t in truth.items():
        if t["expected"] is not None:
            continue
        clips = _clip_rows(manifest, rel)
        for clip, seg in zip(clips, t["segments"]):
            assert clip["clip"] == f"{Path(rel).stem}_shot_{seg['shot']:03d}_{seg['index']:03d}"
            assert abs(clip["start_frame"] - seg["start_frame"]) <= 1 and abs(clip["end_frame"] - seg["end_frame"]) <= 1
            assert clip["start_s"] == pytest.approx(seg["start_s"], abs=0.05)


def test_known_audio_offsets_are_measured(truth, manifest):
    for rel, t in truth.items():
        for clip in _clip_rows(manifest, rel):
            if clip["status"] == "kept":
                assert abs(clip["sync_offset_frames"] - t["sync_offset_frames"]) <= 1, (rel, clip["clip"])


def test_kept_clips_are_aligned_25fps_16k_mono_and_listed(sample_run, manifest):
    kept = [r for r in manifest if r["row_type"] == "clip" and r["status"] == "kept"]
    assert len(kept) >= 10
    listed = (sample_run / "fileslist.txt").read_text().splitlines()
    assert sorted(listed) == sorted(str((sample_run / r["output"]).resolve()) for r in kept)
    for row in kept:
        path = sample_run / row["output"]
        assert path.parent.as_posix().startswith((sample_run / "high_visual_quality").as_posix())
        with av.open(str(path)) as c:
            v, a = c.streams.video[0], c.streams.audio[0]
            assert (v.codec_context.width, v.codec_context.height) == (256, 256)
            assert v.average_rate == Fraction(25) and v.codec_context.name == "h264"
            assert v.codec_context.pix_fmt == "yuv420p"
            assert (a.codec_context.name, a.rate, a.channels) == ("aac", 16000, 1)
            assert v.frames == row["num_frames"]
        assert (sample_run / row["candidate"]).is_file()


def test_folder_structure_and_odd_names_mirrored(sample_run, manifest):
    odd = [r for r in manifest if r["source"].startswith("odd names/") and r["status"] == "kept" and r["clip"]]
    assert odd and all(r["output"].startswith("high_visual_quality/odd names/") for r in odd)
    assert (sample_run / "high_visual_quality" / "-leading-dash_shot_000_000.mp4").is_file()


def test_run_yaml_reproduces_config_and_no_partial_files(sample_run, sample_corpus):
    cfg = load_config(sample_run / "run.yaml")
    assert cfg.run.input_dir == str(sample_corpus.resolve()) and cfg.face.resolution == 256
    leftovers = [p for p in sample_run.rglob("*") if ".part" in p.name or ".tmp" in p.name]
    assert leftovers == []
    html = (sample_run / "report.html").read_text()
    assert "syncvid run report" in html and (sample_run / "contact_sheet.png").stat().st_size > 1000


def test_inputs_untouched(sample_corpus):
    """The corpus still matches the sizes recorded when it was generated (nothing deleted or rewritten)."""
    truth = load_ground_truth(sample_corpus / "ground_truth.json")["files"]
    for rel, t in truth.items():
        assert (sample_corpus / rel).stat().st_size == t["size_bytes"], rel
