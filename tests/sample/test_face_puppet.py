"""The talking puppet: the mouth warp must be seen by dlib, and placement must be exact."""

from __future__ import annotations

import math

import numpy as np
import pytest

from syncvid.sample.face_puppet import (
    BACKGROUNDS,
    Placement,
    composite,
    detect_landmarks,
    face_box_on_canvas,
    inner_lip_gap,
    load_face_model,
    make_background,
    open_mouth,
    placement_matrix,
    render_frame,
)
from syncvid.sample.speech import plan_syllables, mouth_curve


@pytest.fixture(scope="module")
def face():
    return load_face_model()


def test_face_model(face):
    h, w = face.image.shape[:2]
    assert face.image.dtype == np.uint8 and face.alpha.shape == (h, w)
    assert face.landmarks.shape == (68, 2)
    x, y, bw, bh = face.box
    assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h
    assert 70 <= bw <= 110  # the face in the 512x512 photograph is about 90 px wide
    cx, cy = (int(v) for v in face.box_center)
    assert face.alpha[cy, cx] == pytest.approx(1.0)
    assert face.alpha[0, 0] == 0.0 and face.alpha[0, -1] == 0.0
    assert 0.0 <= face.alpha.min() and face.alpha.max() <= 1.0
    assert load_face_model() is face  # located once per process


def test_open_mouth_only_touches_the_lower_face(face):
    closed = open_mouth(face, 0.0)
    np.testing.assert_array_equal(closed, face.image)
    wide = open_mouth(face, 1.0)
    nose_y = int(face.landmarks[33, 1])
    np.testing.assert_array_equal(wide[: nose_y - 2], face.image[: nose_y - 2])
    changed = np.nonzero(np.any(wide != face.image, axis=2))
    assert changed[0].min() >= nose_y - 2
    jaw_left, jaw_right = face.landmarks[4, 0], face.landmarks[12, 0]
    half = 0.5 * (jaw_right - jaw_left)
    assert changed[1].min() >= jaw_left - 0.15 * half - 1
    assert changed[1].max() <= jaw_right + 0.15 * half + 1
    # Out-of-range openings are clamped.
    np.testing.assert_array_equal(open_mouth(face, 1.7), wide)
    np.testing.assert_array_equal(open_mouth(face, -0.3), closed)


def test_mouth_cavity_darkens_with_opening(face):
    lm = face.landmarks
    x0, x1 = int(lm[60, 0]), int(lm[64, 0]) + 1
    y0 = int(lm[62, 1])
    y1 = int(lm[57, 1] + face.max_drop) + 1
    means = [open_mouth(face, v)[y0:y1, x0:x1].mean() for v in np.linspace(0.0, 1.0, 6)]
    assert all(a > b for a, b in zip(means, means[1:])), means


def test_inner_lip_gap_is_scale_free():
    lm = np.zeros((68, 2))
    lm[36:42] = [10.0, 50.0]  # eye centres 40 px apart
    lm[42:48] = [50.0, 50.0]
    lm[61:64] = [[20.0, 80.0], [30.0, 80.0], [40.0, 80.0]]
    lm[65:68] = [[40.0, 86.0], [30.0, 86.0], [20.0, 86.0]]
    assert inner_lip_gap(lm) == pytest.approx(6.0 / 40.0)
    assert inner_lip_gap(lm * 2.5) == pytest.approx(6.0 / 40.0)


@pytest.mark.parametrize(
    "face_width, angle", [(90, 0.0), (105, 3.0), (105, -3.0), (140, 2.0), (250, -2.0)]
)
def test_dlib_measured_opening_increases_monotonically(face_width, angle):
    background = make_background("wall", 480, 360, seed=1)
    gaps = []
    for value in np.linspace(0.0, 1.0, 6):
        heads = [(Placement(240, 200, face_width, angle), float(value))]
        found = detect_landmarks(render_frame(background, heads))
        assert len(found) == 1
        gaps.append(inner_lip_gap(found[0][1]))
    assert all(b > a for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] > 2.5 * gaps[0]


def test_dlib_measured_opening_follows_the_commanded_curve():
    """A 3 s synthetic clip with head drift: dlib's inner-lip gap must track the command."""
    fps = 25
    commanded = mouth_curve(plan_syllables(0.0, 3.0, seed=21), fps, 3 * fps)
    background = make_background("shelves", 320, 240, seed=2)
    measured = []
    for k, value in enumerate(commanded):
        t = k / fps
        place = Placement(
            160 + 5 * math.sin(t * 1.7),
            124 + 3 * math.sin(t * 2.3),
            104 * (1 + 0.03 * math.sin(t * 1.3)),
            2.5 * math.sin(t * 1.1),
        )
        found = detect_landmarks(render_frame(background, [(place, float(value))]))
        assert len(found) == 1, f"frame {k}: {len(found)} faces"
        measured.append(inner_lip_gap(found[0][1]))
    assert np.corrcoef(commanded, measured)[0, 1] > 0.8


def test_placement_matrix_and_face_box(face):
    place = Placement(200.0, 150.0, 120.0)
    m = placement_matrix(face, place)
    cx, cy = face.box_center
    np.testing.assert_allclose(m @ [cx, cy, 1.0], [200.0, 150.0])
    x, y, w, h = face_box_on_canvas(face, place)
    assert w == pytest.approx(120.0)
    assert h == pytest.approx(120.0 * face.box[3] / face.box[2])
    assert x + w / 2 == pytest.approx(200.0) and y + h / 2 == pytest.approx(150.0)
    # A tilted face's axis-aligned box is larger and keeps its centre.
    tx, ty, tw, th = face_box_on_canvas(face, Placement(200.0, 150.0, 120.0, 20.0))
    assert tw > w and th > h
    assert tx + tw / 2 == pytest.approx(200.0) and ty + th / 2 == pytest.approx(150.0)


def test_composite_touches_only_the_covered_region(face):
    canvas = np.full((240, 320, 3), 40, np.uint8)
    before = canvas.copy()
    place = Placement(80.0, 100.0, 60.0)
    composite(canvas, face.image, face.alpha, placement_matrix(face, place))
    ys, xs = np.nonzero(np.any(canvas != before, axis=2))
    sh, sw = face.image.shape[:2]
    corners = np.array([[0, 0, 1.0], [sw, sh, 1.0]]) @ placement_matrix(face, place).T
    assert xs.min() >= corners[0, 0] - 1 and xs.max() <= corners[1, 0] + 1
    assert ys.min() >= corners[0, 1] - 1 and ys.max() <= corners[1, 1] + 1
    # Fully outside: nothing changes.
    outside = before.copy()
    composite(outside, face.image, face.alpha, placement_matrix(face, Placement(900.0, 100.0, 60.0)))
    np.testing.assert_array_equal(outside, before)


def test_render_frame_leaves_background_alone():
    background = make_background("wall", 320, 240, seed=0)
    copy = background.copy()
    frame = render_frame(background, [(Placement(160, 120, 100), 0.5)])
    np.testing.assert_array_equal(background, copy)
    assert frame.shape == background.shape and not np.array_equal(frame, background)


@pytest.mark.parametrize("kind", BACKGROUNDS)
def test_backgrounds(kind):
    a = make_background(kind, 320, 240, seed=3)
    assert a.shape == (240, 320, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, make_background(kind, 320, 240, seed=3))
    assert not np.array_equal(a, make_background(kind, 320, 240, seed=4))
    assert a.std() > 3.0
    assert detect_landmarks(a, upsample=1) == []


def test_background_kinds_differ():
    images = [make_background(kind, 160, 120, seed=0).astype(np.float32) for kind in BACKGROUNDS]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.abs(images[i] - images[j]).mean() > 15.0


def test_unknown_background():
    with pytest.raises(ValueError, match="unknown background 'beach'"):
        make_background("beach", 32, 32, seed=0)
