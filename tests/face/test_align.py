"""Pure alignment functions: template, crop size, similarity, bias, filter; and the aligner."""

from __future__ import annotations

import math

import numpy as np
import pytest

from syncvid.face import align
from syncvid.face.align import (
    FaceAligner,
    OneEuroFilter,
    anchor_error,
    anchors_from_68,
    anchors_from_106,
    apply_affine,
    best_rotation,
    blend_bias,
    crop_size,
    estimate_similarity,
    nose_bias,
    template_points,
    template_points_output,
)


@pytest.mark.parametrize(
    "resolution, template, size",
    [
        (256, [[47.6, 56.0], [162.4, 56.0], [105.0, 112.0]], (210, 280)),
        (512, [[95.2, 112.0], [324.8, 112.0], [210.0, 224.0]], (420, 560)),
        (128, [[23.8, 28.0], [81.2, 28.0], [52.5, 56.0]], (105, 140)),
    ],
)
def test_template_and_crop_size(resolution, template, size):
    np.testing.assert_allclose(template_points(resolution), template, atol=1e-9)
    assert crop_size(resolution) == size


def test_template_in_output_pixels():
    out = template_points_output(256)
    np.testing.assert_allclose(out, template_points(256) * [256 / 210, 256 / 280])


def _similarity(angle_deg, scale, tx, ty):
    a = math.radians(angle_deg)
    r = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.hstack([r, [[tx], [ty]]])


@pytest.mark.parametrize(
    "angle, scale, tx, ty",
    [(0, 1, 0, 0), (10, 0.5, 30, -20), (-35, 2.2, -400, 120), (90, 1.0, 5, 5), (179, 0.1, 1000, 1000)],
)
def test_known_similarity_is_recovered(angle, scale, tx, ty):
    src = np.array([[300.0, 200.0], [420.0, 210.0], [355.0, 290.0]])
    m_true = _similarity(angle, scale, tx, ty)
    dst = apply_affine(m_true, src)
    m = estimate_similarity(src, dst)
    np.testing.assert_allclose(m, m_true, atol=1e-9)
    np.testing.assert_allclose(apply_affine(m, src), dst, atol=1e-9)


def test_reflection_is_not_returned():
    src = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 8.0]])
    mirrored = src * [-1.0, 1.0]  # only a reflection maps src onto this exactly
    m = estimate_similarity(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0  # a proper rotation
    # Without the fix the SVD solution is the mirror itself (determinant < 0).
    p1 = src - src.mean(0)
    p2 = mirrored - mirrored.mean(0)
    u, _, vt = np.linalg.svd(p1.T @ p2)
    assert np.linalg.det(vt.T @ u.T) < 0


def _svd_rotation(h):
    """The SVD recipe of docs/face.md ("Compatibility with LatentSync"): R = V·Uᵀ, the last column of V flipped for a reflection."""
    u, _, vt = np.linalg.svd(h)
    v = vt.T
    if np.linalg.det(v @ u.T) < 0:
        v[:, -1] = -v[:, -1]
    return v @ u.T


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("mirror", [False, True])
def test_best_rotation_is_the_svd_recipe(seed, mirror):
    rng = np.random.default_rng(seed)
    src = rng.normal(size=(rng.integers(3, 12), 2))
    dst = src @ rng.normal(size=(2, 2)) * (-1.0 if mirror else 1.0) + rng.normal(scale=0.3, size=src.shape)
    p1, p2 = src - src.mean(0), dst - dst.mean(0)
    np.testing.assert_allclose(best_rotation(p1.T @ p2), _svd_rotation(p1.T @ p2), atol=1e-12)


def test_aligner_matrix_is_similarity_plus_blended_nose_bias():
    aligner = FaceAligner(256)
    frames = [np.array([[300.0, 200.0], [420.0, 210.0], [355.0, 290.0]]) + d for d in ([0, 0], [3, -2], [5, 1])]
    bias = None
    for anchors in frames:
        bias = blend_bias(bias, nose_bias(anchors, template_points(256)))
        expected = estimate_similarity(anchors, template_points(256))
        expected[:, 2] += bias
        np.testing.assert_allclose(aligner.matrix(anchors), expected, atol=1e-12)


def test_degenerate_points_raise():
    with pytest.raises(ValueError, match="degenerate"):
        estimate_similarity(np.ones((3, 2)), template_points(256))


def test_anchor_index_sets():
    lm = np.zeros((68, 2))
    lm[17:22] = [10, 20]
    lm[22:27] = [30, 20]
    lm[27:36] = [20, 35]
    np.testing.assert_allclose(anchors_from_68(lm), [[10, 20], [30, 20], [20, 35]])
    lm106 = np.zeros((106, 2))
    lm106[[43, 48, 49, 51, 50]] = [1, 2]
    lm106[101:106] = [3, 4]
    lm106[[74, 77, 83, 86]] = [5, 6]
    np.testing.assert_allclose(anchors_from_106(lm106), [[1, 2], [3, 4], [5, 6]])
    with pytest.raises(ValueError):
        anchors_from_68(np.zeros((106, 2)))


def test_nose_bias_and_blend():
    t = template_points(256)
    assert np.allclose(nose_bias(t, t), 0)
    src = t + [[0, 0], [0, 0], [0, 10]]
    b = nose_bias(src, t)
    assert b[1] < 0  # the image nose is lower than the template's: pull up
    np.testing.assert_allclose(blend_bias(None, b), b)
    np.testing.assert_allclose(blend_bias(np.array([1.0, 1.0]), np.array([0.0, 2.0])), [0.2, 1.8])


_DST = [[0.0, 0.0], [2.0, 0.0], [1.0, 2.0]]  # centre (1, 2/3), sum of squares 14/3: s = sqrt(14/15)


@pytest.mark.parametrize(
    "src, expected",
    [
        # centre (1, 1/3), sum of squares 8/3: s = sqrt(8/15)
        ([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0]], [0.0, (4 / 3) / math.sqrt(14 / 15) - (2 / 3) / math.sqrt(8 / 15)]),
        # centre (2, 1), sum of squares 14: s = sqrt(14/5)
        ([[0.0, 0.0], [4.0, 0.0], [2.0, 3.0]], [0.0, (4 / 3) / math.sqrt(14 / 15) - 2 / math.sqrt(14 / 5)]),
        # centre (4/3, 2/3), sum of squares 16/3: s = 4/sqrt(15); the nose off to the side
        ([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0]], [-math.sqrt(15) / 6, (4 / 3) / math.sqrt(14 / 15) - math.sqrt(15) / 3]),
        # a scaled, shifted copy: the same normalised points
        ([[10.0, 5.0], [16.0, 5.0], [13.0, 11.0]], [0.0, 0.0]),
    ],
)
def test_nose_bias_uses_the_sample_standard_deviation(src, expected):
    """LatentSync normalises with torch.std: n - 1 = 5 over the 6 coordinates (hand-computed cases)."""
    np.testing.assert_allclose(nose_bias(np.array(src), np.array(_DST)), expected, atol=1e-12)


def test_one_euro_removes_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(25.0, 2.0, 4.0)
    still = [f(np.array([100.0, 100.0]) + rng.normal(0, 1.0, 2), 100.0) for _ in range(50)]
    assert np.std(np.array(still)[10:], axis=0).max() < 0.6  # input std 1.0
    f.reset()
    # A face moving at 1 face size per second: lag stays small.
    track = [np.array([100.0 + 4.0 * t, 50.0]) for t in range(50)]
    out = [f(x, 100.0) for x in track]
    assert abs(out[-1][0] - track[-1][0]) < 8.0
    assert out[0][0] == track[0][0]


def test_aligner_output_and_landmarks():
    class Face:
        landmarks = None
        anchors = None

    al = FaceAligner(256)
    crop, lm = al.warp(np.zeros((100, 100, 3), np.uint8), Face())
    assert crop.shape == (256, 256, 3) and (crop == 127).all() and np.isnan(lm).all()

    # Landmarks whose anchors equal the template (in a 210x280 image) give the identity warp.
    t = template_points(256)
    f = Face()
    f.landmarks = np.zeros((68, 2), np.float32)
    f.landmarks[17:22] = t[0]
    f.landmarks[22:27] = t[1]
    f.landmarks[27:36] = t[2]
    img = np.random.default_rng(1).integers(0, 255, (280, 210, 3), dtype=np.uint8)
    res = FaceAligner(256, smooth_bias=False).align(img, f)
    np.testing.assert_allclose(res.matrix, [[1, 0, 0], [0, 1, 0]], atol=1e-4)  # float32 landmarks
    assert anchor_error(res.landmarks, 256) < 1e-4
    assert res.crop.dtype == np.uint8 and res.crop.shape == (256, 256, 3)


def test_aligner_reset_clears_bias():
    al = FaceAligner(256)
    a = template_points(256) + [[0, 0], [0, 0], [0, 8]]
    m1 = al.matrix(a)
    al.matrix(a + 3)
    al.reset()
    np.testing.assert_allclose(al.matrix(a), m1)
    assert align.BIAS_KEEP == 0.2


def test_resize_matches_opencv_uint8_lanczos():
    import cv2

    rng = np.random.default_rng(2)
    img = cv2.GaussianBlur(rng.integers(0, 255, (300, 300, 3), dtype=np.uint8), (0, 0), 2.0)
    al = FaceAligner(256, smooth_bias=False)
    m = np.array([[1.0, 0.0, -20.0], [0.0, 1.0, -10.0]])
    crop = cv2.warpAffine(img, m, (210, 280), flags=cv2.INTER_LINEAR, borderValue=(127, 127, 127))
    ref = cv2.resize(crop, (256, 256), interpolation=cv2.INTER_LANCZOS4)
    out = al.warp_with_matrix(img, m)
    assert np.abs(out.astype(int) - ref).max() <= 1


def test_resize_choices_agree_closely_and_are_checked():
    from syncvid.face import synthetic

    img = synthetic.place_face(synthetic.canvas(640, 480), (320, 240), 160)
    anchors = np.array([[290.0, 200.0], [350.0, 200.0], [320.0, 232.0]])
    face = type("F", (), {"landmarks": None, "anchors": anchors})()
    cubic = FaceAligner(256, smooth_bias=False, resize="cubic").align(img, face).crop
    lanczos = FaceAligner(256, smooth_bias=False, resize="lanczos4").align(img, face).crop
    mse = np.mean((cubic.astype(float) - lanczos) ** 2)
    assert cubic.shape == lanczos.shape == (256, 256, 3) and 10 * np.log10(255 ** 2 / mse) > 45
    with pytest.raises(ValueError, match="resize must be one of lanczos4, cubic"):
        FaceAligner(256, resize="area")
