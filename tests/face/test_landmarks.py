"""Landmark geometry: boxes, shape residual, box following, yaw."""

from __future__ import annotations

import numpy as np
import pytest

from syncvid.face.landmarks import (
    follow_box,
    inside_fraction,
    iou,
    RIGID_68,
    predictor_box_from_68,
    reference_box_from_68,
    shape_residual,
)


@pytest.fixture(scope="module")
def shape():
    rng = np.random.default_rng(3)
    return rng.uniform(100, 200, (68, 2))


@pytest.mark.parametrize(
    "a, b, expected",
    [((0, 0, 10, 10), (0, 0, 10, 10), 1.0), ((0, 0, 10, 10), (5, 0, 15, 10), 1 / 3), ((0, 0, 1, 1), (2, 2, 3, 3), 0.0)],
)
def test_iou(a, b, expected):
    assert iou(a, b) == pytest.approx(expected)


def test_inside_fraction():
    lm = np.array([[5, 5], [-1, 5], [5, 20], [9, 9]])
    assert inside_fraction(lm, 10, 10) == 0.5


def test_shape_residual_is_similarity_invariant(shape):
    rot = np.array([[0.8, -0.6], [0.6, 0.8]])
    moved = 1.7 * shape @ rot.T + [40, -30]
    assert shape_residual(moved, shape) < 1e-6
    scrambled = shape[np.random.default_rng(0).permutation(68)]
    assert shape_residual(scrambled, shape) > 0.3


@pytest.mark.parametrize("seed", range(6))
def test_shape_residual_equals_the_singular_value_formula(shape, seed):
    rng = np.random.default_rng(seed)
    other = shape @ rng.normal(size=(2, 2)) + rng.normal(scale=5.0, size=shape.shape)
    idx = list(RIGID_68)
    a, b = other[idx] - other[idx].mean(0), shape[idx] - shape[idx].mean(0)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    expected = np.sqrt(max(0.0, 1.0 - np.linalg.svd(a.T @ b, compute_uv=False).sum() ** 2))
    assert shape_residual(other, shape) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("angle_deg, mirror", [(0, False), (25, False), (-140, False), (30, True)])
def test_follow_box_turns_with_the_face_but_not_with_a_mirror_image(shape, angle_deg, mirror):
    a = np.radians(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = (shape - 150) @ rot.T * ([-1.0, 1.0] if mirror else 1.0) + 150
    box = (140.0, 110.0, 200.0, 190.0)  # centre (170, 150): off the shape's centre, so turning moves it
    fb = follow_box(box, shape, moved, idx=tuple(range(68)))
    centre = np.array([(fb[0] + fb[2]) / 2, (fb[1] + fb[3]) / 2])
    c0 = shape.mean(0)
    offset = np.array([170.0, 150.0]) - c0
    turned = offset if mirror else rot @ offset  # a mirror image is followed without turning
    np.testing.assert_allclose(centre, moved.mean(0) + turned, atol=1e-9)


def test_follow_box_moves_and_scales_with_the_face(shape):
    box = predictor_box_from_68(shape)
    moved = 2.0 * (shape - 150) + 150 + [10, 20]
    fb = follow_box(box, shape, moved)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    assert (fb[2] - fb[0]) == pytest.approx(2 * (box[2] - box[0]))
    assert (fb[0] + fb[2]) / 2 == pytest.approx(2 * (cx - 150) + 160)
    assert (fb[1] + fb[3]) / 2 == pytest.approx(2 * (cy - 150) + 170)


def test_reference_box_is_taller_than_the_landmarks(shape):
    lm = shape.copy()
    box = reference_box_from_68(lm)
    assert box[0] == lm[:, 0].min() and box[3] == lm[:, 1].max()
    assert box[1] < lm[17:27, 1].min()
