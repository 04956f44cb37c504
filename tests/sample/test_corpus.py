"""The sample corpus: every file is there, and the ground truth is what the files really hold."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from syncvid.sample import corpus as corpus_mod
from syncvid.sample.corpus import (
    GENERATOR_VERSION,
    Scene,
    SourceSpec,
    corpus_specs,
    expected_segments,
    load_ground_truth,
    make_sample,
    write_source,
)
from syncvid.sample.face_puppet import detect_landmarks, inner_lip_gap, landmarks_in_box

REQUIRED = {
    "talk_25fps.mp4",
    "talk_30fps_cuts.mp4",
    "talk_23.976fps.mp4",
    "shifted/talk_audio_leads_3.mp4",
    "shifted/talk_audio_lags_4.mp4",
    "no_audio.mp4",
    "broken.mp4",
    "empty.mp4",
    "notes.txt.mp4",
    "truncated.mp4",
    "faces/two_faces.mp4",
    "faces/tiny_face.mp4",
    "faces/face_leaves.mp4",
    "odd names/it's a \"talk\" — ünï.mp4",
    "-leading-dash.mp4",
    "short_4.9s.mp4",
    "short_1.5s.mp4",
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("sample")
    path = make_sample(root, size="small", seed=0)
    assert path == root / "ground_truth.json"
    return root, load_ground_truth(path)


def decode(path: Path) -> tuple[list[np.ndarray], list[float], np.ndarray | None, int]:
    """All frames (RGB), their times, the audio ([channels, n] float) and its rate."""
    with av.open(str(path)) as container:
        frames, times = [], []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.time))
    audio, rate = None, 0
    with av.open(str(path)) as container:
        if container.streams.audio:
            rate = container.streams.audio[0].rate
            audio = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    return frames, times, audio, rate


def scene_at(entry: dict, t: float) -> dict:
    return [s for s in entry["scenes"] if s["start_s"] <= t + 1e-9][-1]


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter)


# -- pure parts -------------------------------------------------------------------------------------
def test_specs_cover_the_required_cases():
    small = corpus_specs("small")
    names = [s.rel for s in small]
    assert len(names) == len(set(names))
    assert set(names) == REQUIRED
    full = [s.rel for s in corpus_specs("full")]
    assert set(full) > set(names)
    kinds = {s.kind for s in corpus_specs("full")}
    assert {"talk", "two_faces", "tiny_face", "face_leaves", "garbage", "empty", "text", "truncated"} <= kinds
    assert any(s.vfr for s in corpus_specs("full")) and any(s.rotation == 90 for s in corpus_specs("full"))
    with pytest.raises(ValueError, match="unknown sample size 'huge'"):
        corpus_specs("huge")


def _spec(num_frames, fps=25, cuts=(), **kw):
    scenes = (Scene(0.0, "studio"),) + tuple(Scene(c, "wall") for c in cuts)
    return SourceSpec("x.mp4", "talk", "", fps=Fraction(fps), num_frames=num_frames, scenes=scenes, **kw)


@pytest.mark.parametrize(
    "spec, frames, kept",
    [
        (_spec(275), [125, 125, 25], [True, True, False]),
        (_spec(300, fps=30, cuts=(3.6, 7.2)), [90, 90, 70], [True, True, True]),
        (_spec(123), [123], [True]),
        (_spec(45, fps=30), [37], [False]),
        (_spec(192, fps=Fraction(24000, 1001)), [125, 75], [True, True]),
        (_spec(125, segment_expected=("face", "multiple_faces")), [125], [False]),
        (_spec(100, expected=("broken", "no_audio")), [], []),
    ],
)
def test_expected_segments(spec, frames, kept):
    duration = spec.num_frames / float(spec.fps)
    segments = expected_segments(spec, duration)
    assert [s["num_frames"] for s in segments] == frames
    assert [s["expected"] is None for s in segments] == kept
    for s in segments:
        assert s["end_frame"] - s["start_frame"] == s["num_frames"]
        assert s["end_s"] == pytest.approx(s["end_frame"] / 25)
        if s["num_frames"] < 50:
            assert s["expected"] == {"stage": "segment", "reason": "too_short"}


# -- the generated corpus --------------------------------------------------------------------------
def test_every_file_is_written_with_ground_truth(sample):
    root, truth = sample
    assert truth["version"] == GENERATOR_VERSION and truth["seed"] == 0 and truth["size"] == "small"
    assert set(truth["files"]) == REQUIRED
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert on_disk == REQUIRED | {"ground_truth.json"}, "stray or temporary files left behind"
    for rel, entry in truth["files"].items():
        assert entry["size_bytes"] == (root / rel).stat().st_size
        assert set(entry) >= {
            "fps", "sample_rate", "channels", "duration_s", "cut_times_s", "sync_offset_frames",
            "expected", "num_faces", "scenes", "segments", "expected_clips",
        }


def test_ground_truth_matches_what_pyav_reads(sample):
    root, truth = sample
    for rel, entry in truth["files"].items():
        if entry["fps"] is None:
            continue
        frames, times, audio, rate = decode(root / rel)
        fps = Fraction(entry["fps"])
        with av.open(str(root / rel)) as container:
            video = container.streams.video[0]
            assert Fraction(video.average_rate) == fps, rel
            stream_duration = float(video.duration * video.time_base)
            assert (video.width, video.height) == (entry["width"], entry["height"]), rel
        assert len(frames) == entry["num_frames"], rel
        assert abs(stream_duration - entry["duration_s"]) < 1.0 / float(fps), rel
        np.testing.assert_allclose(times, np.arange(len(times)) / float(fps), atol=1e-4, err_msg=rel)
        assert (audio is not None) == entry["has_audio"], rel
        if entry["has_audio"]:
            assert rate == entry["sample_rate"], rel
            assert audio.shape[0] == entry["channels"], rel
            # AAC pads the last frame: at least the written samples, at most one frame more.
            assert 0 <= audio.shape[1] - round(entry["audio_duration_s"] * rate) <= 1024, rel
            assert entry["audio_duration_s"] == pytest.approx(entry["duration_s"], abs=1e-3)
        assert len(entry["mouth_opening"]) == entry["num_frames"]


def test_declared_properties(sample):
    _, truth = sample
    files = truth["files"]
    assert files["talk_25fps.mp4"]["sample_rate"] == 44100 and files["talk_25fps.mp4"]["channels"] == 2
    assert files["talk_25fps.mp4"]["expected_clips"] == 2
    assert files["talk_30fps_cuts.mp4"]["cut_times_s"] == [3.6, 7.2]
    assert files["talk_30fps_cuts.mp4"]["sample_rate"] == 48000
    assert files["talk_23.976fps.mp4"]["fps"] == "24000/1001"
    assert files["shifted/talk_audio_leads_3.mp4"]["sync_offset_frames"] == 3
    assert files["shifted/talk_audio_lags_4.mp4"]["sync_offset_frames"] == -4
    assert files["short_4.9s.mp4"]["segments"][0]["num_frames"] == 123
    assert files["short_4.9s.mp4"]["expected_clips"] == 1
    assert files["short_1.5s.mp4"]["expected"] == {"stage": "segment", "reason": "too_short"}
    assert files["no_audio.mp4"]["expected"] == {"stage": "broken", "reason": "no_audio"}
    assert files["faces/two_faces.mp4"]["num_faces"] == 2
    leaves = files["faces/face_leaves.mp4"]
    assert 0 < leaves["face_partly_out_from_s"] < leaves["face_gone_from_s"] < leaves["duration_s"]


def test_broken_inputs_are_really_broken(sample):
    root, truth = sample
    assert (root / "empty.mp4").stat().st_size == 0
    assert b"\n" in (root / "notes.txt.mp4").read_bytes()
    truncated = (root / "truncated.mp4").read_bytes()
    assert truncated[4:8] == b"ftyp" and b"moov" not in truncated
    for rel in ("broken.mp4", "empty.mp4", "notes.txt.mp4", "truncated.mp4"):
        assert truth["files"][rel]["expected"]["stage"] == "broken"
        with pytest.raises(av.FFmpegError):
            av.open(str(root / rel)).close()


def test_faces_are_where_the_ground_truth_says(sample):
    root, truth = sample
    for rel in ("talk_25fps.mp4", "talk_30fps_cuts.mp4", "talk_23.976fps.mp4", "faces/two_faces.mp4"):
        entry = truth["files"][rel]
        frames, _, _, _ = decode(root / rel)
        fps = float(Fraction(entry["fps"]))
        for scene in entry["scenes"]:
            k = int(round(scene["start_s"] * fps)) + 5
            found = detect_landmarks(frames[k])
            assert len(found) == entry["num_faces"], f"{rel} frame {k}"
            for box in scene["face_boxes"]:
                assert max(iou(box, f[0]) for f in found) > 0.5, f"{rel} frame {k}"


def test_face_cases(sample):
    root, truth = sample
    tiny, _, _, _ = decode(root / "faces/tiny_face.mp4")
    found = detect_landmarks(tiny[60], upsample=1)
    assert len(found) == 1 and found[0][0][2] < 50
    assert detect_landmarks(tiny[60], upsample=0) == []
    leaves_entry = truth["files"]["faces/face_leaves.mp4"]
    leaves, times, _, _ = decode(root / "faces/face_leaves.mp4")
    assert len(detect_landmarks(leaves[0])) == 1
    gone = [k for k, t in enumerate(times) if t >= leaves_entry["face_gone_from_s"]]
    assert gone and all(detect_landmarks(leaves[k], upsample=1) == [] for k in gone[::10])


def test_cuts_are_hard_and_only_where_declared(sample):
    root, truth = sample
    entry = truth["files"]["talk_30fps_cuts.mp4"]
    frames, _, _, _ = decode(root / "talk_30fps_cuts.mp4")
    # diffs[k]: mean absolute change from frame k to frame k + 1
    diffs = np.array([np.abs(b.astype(np.int16) - a).mean() for a, b in zip(frames[:-1], frames[1:])])
    cut_frames = [round(c * 30) for c in entry["cut_times_s"]]
    big = set(np.nonzero(diffs > 10 * np.median(diffs))[0] + 1)
    assert big == set(cut_frames)


def measured_offset(frames, box_of, audio, rate, fps) -> tuple[int, float]:
    """The audio lead (in frames) at which dlib's inner-lip gap best matches the audio energy."""
    gaps = np.array([inner_lip_gap(landmarks_in_box(f, box_of(k))) for k, f in enumerate(frames)])
    mono = audio.mean(axis=0)
    edges = np.round(np.arange(len(frames) + 1) * rate / fps).astype(int)
    rms = np.array([np.sqrt(np.mean(mono[a:b] ** 2)) for a, b in zip(edges[:-1], edges[1:])])
    corr = {}
    for lead in range(-8, 9):
        if lead >= 0:
            corr[lead] = np.corrcoef(gaps[lead:], rms[: len(rms) - lead])[0, 1]
        else:
            corr[lead] = np.corrcoef(gaps[:lead], rms[-lead:])[0, 1]
    best = max(corr, key=corr.get)
    return best, float(np.corrcoef(gaps, rms)[0, 1])


@pytest.mark.parametrize(
    "rel",
    ["talk_25fps.mp4", "shifted/talk_audio_leads_3.mp4", "shifted/talk_audio_lags_4.mp4", "talk_30fps_cuts.mp4"],
)
def test_known_audio_shift_is_measurable_from_dlib_landmarks(sample, rel):
    root, truth = sample
    entry = truth["files"][rel]
    frames, _, audio, rate = decode(root / rel)
    fps = float(Fraction(entry["fps"]))
    best, _ = measured_offset(frames, lambda k: scene_at(entry, k / fps)["face_boxes"][0], audio, rate, fps)
    assert best == entry["sync_offset_frames"]
    # dlib's measured opening follows the commanded one.
    gaps = [
        inner_lip_gap(landmarks_in_box(f, scene_at(entry, k / fps)["face_boxes"][0])) for k, f in enumerate(frames)
    ]
    assert np.corrcoef(gaps, entry["mouth_opening"])[0, 1] > 0.9


def test_load_ground_truth_checks_what_it_reads(sample, tmp_path):
    root, truth = sample
    assert load_ground_truth(root) == truth
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"files": {}}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a syncvid sample ground truth"):
        load_ground_truth(other)
    old = dict(truth, version=GENERATOR_VERSION + 1)
    other.write_text(json.dumps(old), encoding="utf-8")
    with pytest.raises(ValueError, match="regenerate the sample"):
        load_ground_truth(other)


def test_same_seed_same_content(tmp_path):
    spec = next(s for s in corpus_specs("small") if s.rel == "short_1.5s.mp4")
    a = write_source(spec, tmp_path / "a", seed=4)
    b = write_source(spec, tmp_path / "b", seed=4)
    c = write_source(spec, tmp_path / "c", seed=5)
    a.pop("size_bytes"), b.pop("size_bytes"), c.pop("size_bytes")
    assert a == b
    assert a["mouth_opening"] != c["mouth_opening"]
    fa, _, aa, _ = decode(tmp_path / "a" / spec.rel)
    fb, _, ab, _ = decode(tmp_path / "b" / spec.rel)
    np.testing.assert_array_equal(np.stack(fa), np.stack(fb))
    np.testing.assert_allclose(aa, ab, atol=1e-6)
    assert not list((tmp_path / "a").glob(".*")), "temporary files left behind"


def test_generator_constants_match_the_default_segmenting():
    assert corpus_mod.SEGMENT_FRAMES == 125 and corpus_mod.MIN_SEGMENT_FRAMES == 50
