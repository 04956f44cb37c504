"""Stage 3 — scene: the detectors on synthetic frames whose cuts are known."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from syncvid.config.pipeline_schema import SceneSection
from syncvid.media.picture import as_picture
from syncvid.stages.scene import SceneDetector

W, H = 192, 108


def _shot_image(seed: int) -> np.ndarray:
    """A smooth, colourful picture of its own (each shot a different hue and layout), twice the
    frame width so that it can pan."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 12, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(coarse, H // 6, axis=0), (2 * W) // 12, axis=1)
    tint = rng.integers(0, 256, 3)
    return ((big.astype(np.int32) + tint) // 2).astype(np.uint8)


def _frames(cuts: list[int], total: int, *, black: range = range(0)) -> list[np.ndarray]:
    """`total` RGB frames: a new shot starts at each of `cuts`; within a shot the picture pans by a
    pixel a frame and carries a little noise; the frames of `black` are black."""
    rng = np.random.default_rng(7)
    starts = [0, *cuts]
    frames = []
    for i in range(total):
        shot = sum(1 for s in starts if s <= i) - 1
        base = _shot_image(100 + shot)
        offset = i - starts[shot]
        frame = base[:, offset:offset + W].astype(np.int16) + rng.integers(-3, 4, (H, W, 3))
        frame = np.clip(frame, 0, 255).astype(np.uint8)
        if i in black:
            frame[:] = 0
        frames.append(np.ascontiguousarray(frame))
    return frames


def _detect(frames, **params) -> list[int]:
    det = SceneDetector(SceneSection(**params), fps=25)
    found = []
    for index, frame in enumerate(frames):
        found += det.push(index, frame)
    return found + det.finish()


@pytest.mark.parametrize("detector", ["content", "adaptive"])
def test_hard_cuts_are_found_at_their_frames(detector):
    params = {"detector": detector}
    if detector == "content":
        params["threshold"] = 27.0
    assert _detect(_frames([40, 95], 140), **params) == [40, 95]


def test_one_shot_has_no_cut():
    assert _detect(_frames([], 80), detector="content", threshold=27.0) == []
    assert _detect(_frames([], 80)) == []


def test_the_adaptive_detector_reports_a_cut_window_width_frames_late():
    det = SceneDetector(SceneSection(detector="adaptive", window_width=3), fps=25)
    assert det.latency == 3
    pushed_at = {}
    for index, frame in enumerate(_frames([40], 70)):
        for cut in det.push(index, frame):
            pushed_at[cut] = index
    assert pushed_at == {40: 43}


def test_the_content_detector_reports_a_cut_when_its_frame_arrives():
    det = SceneDetector(SceneSection(detector="content", threshold=27.0), fps=25)
    assert det.latency == 0
    pushed_at = {}
    for index, frame in enumerate(_frames([40], 70)):
        for cut in det.push(index, frame):
            pushed_at[cut] = index
    assert pushed_at == {40: 40}


def test_cuts_closer_than_the_shortest_scene_are_merged():
    frames = _frames([40, 45], 100)  # a 5-frame shot: under 0.6 s at 25 fps
    found = _detect(frames, detector="content", threshold=27.0)
    assert found == [40]
    assert _detect(frames, detector="content", threshold=27.0, min_scene_len_s=0.1) == [40, 45]


def test_the_threshold_detector_cuts_in_a_fade_to_black():
    found = _detect(_frames([], 110, black=range(50, 62)), detector="threshold", threshold=12.0)
    assert len(found) == 1 and 50 <= found[0] <= 62


def test_pictures_and_rgb_arrays_give_the_same_cuts():
    frames = _frames([40, 95], 140)
    det = SceneDetector(SceneSection(), fps=25)
    found = []
    for index, frame in enumerate(frames):
        found += det.push(index, as_picture(frame))
    assert found + det.finish() == _detect(frames) == [40, 95]


def test_large_frames_are_shrunk_before_detection():
    frames = [np.repeat(np.repeat(f, 4, axis=0), 4, axis=1) for f in _frames([40], 70)]  # 768x432
    assert _detect(frames, downscale_width=192) == [40]


def test_none_looks_at_no_frame():
    det = SceneDetector(SceneSection(detector="none"), fps=25)
    assert not det.enabled
    assert det.push(0, object()) == [] and det.finish() == []  # the frame is not even read


def test_an_unknown_detector_is_refused():
    params = dataclasses.replace(SceneSection(), detector="histogram")
    with pytest.raises(ValueError, match=r"scene.detector must be one of adaptive, content, threshold, none, "
                                         r"got 'histogram'"):
        SceneDetector(params)


def test_finish_before_any_frame_reports_nothing():
    assert SceneDetector(SceneSection(), fps=25).finish() == []
