"""Landmark geometry: boxes, shape residual, box following, yaw."""

from __future__ import annotations

import numpy as np
import pytest

from syncvid.face.landmarks import (
    follow_box,
    inside_fraction,
    iou,
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
