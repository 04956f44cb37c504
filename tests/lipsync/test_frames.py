"""Ping-pong frame order and the inverse warp that pastes a face back into its frame."""

from __future__ import annotations

import numpy as np
import pytest

from syncvid.face.align import FaceAligner, crop_size
from syncvid.lipsync.frames import paste_back, pingpong_indices, soft_paste_mask


@pytest.mark.parametrize(
    "n,out,expected",
    [
        (3, 3, [0, 1, 2]),
        (3, 2, [0, 1]),
        (3, 8, [0, 1, 2, 2, 1, 0, 0, 1]),
        (1, 4, [0, 0, 0, 0]),
        (4, 0, []),
    ],
)
def test_pingpong_order(n, out, expected):
    assert pingpong_indices(n, out).tolist() == expected


def test_pingpong_rejects_empty_video():
    with pytest.raises(ValueError, match="no frames"):
        pingpong_indices(0, 5)


class _Face:
    def __init__(self, anchors):
        self.anchors = np.asarray(anchors, np.float64)
        self.landmarks = None


def smooth_image(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([
        128 + 80 * np.sin(x / 37.0) * np.cos(y / 53.0),
        128 + 70 * np.cos(x / 41.0 + y / 61.0),
        128 + 60 * np.sin((x + y) / 47.0),
    ], axis=-1)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("resolution", [64, 256])
def test_unmodified_face_pastes_back_to_the_same_pixels(resolution):
    frame = smooth_image(360, 480)
    aligner = FaceAligner(resolution=resolution, smooth_bias=False, resize="cubic")
    anchors = [[200.0, 150.0], [262.0, 146.0], [232.0, 185.0]]
    result = aligner.align(frame, _Face(anchors))
    out = paste_back(frame, result.crop, result.matrix, crop_size(resolution))
    inv = np.linalg.inv(np.vstack([result.matrix, [0, 0, 1]]))[:2]
    weight = soft_paste_mask(inv, crop_size(resolution), (480, 360))
    inside = weight > 0.99
    outside = weight == 0
    assert inside.sum() > 2000 and outside.sum() > 50_000
    diff = np.abs(out.astype(int) - frame.astype(int))
    tolerance = 4 if resolution == 256 else 12  # a 64 px face resamples a ~100 px region coarsely
    assert diff[inside].max() <= tolerance
    assert np.median(diff[inside]) <= 2
    assert (diff[outside] == 0).all()


def test_a_changed_face_changes_only_the_face_region():
    frame = smooth_image(240, 320)
    aligner = FaceAligner(resolution=128, smooth_bias=False, resize="cubic")
    result = aligner.align(frame, _Face([[130.0, 100.0], [180.0, 100.0], [155.0, 128.0]]))
    black = np.zeros_like(result.crop)
    out = paste_back(frame, black, result.matrix, crop_size(128))
    changed = np.abs(out.astype(int) - frame.astype(int)).max(axis=-1) > 10
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 1000
    assert 60 < xs.mean() < 250 and 40 < ys.mean() < 220
    assert not changed[:, :40].any() and not changed[:20, :].any()


def test_frame_without_a_face_passes_through():
    frame = smooth_image(50, 60)
    face = np.zeros((64, 64, 3), np.uint8)
    out = paste_back(frame, face, np.full((2, 3), np.nan), crop_size(64))
    assert (out == frame).all()
