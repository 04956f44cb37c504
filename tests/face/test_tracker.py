"""Face selection rules, tracking plausibility, and tracking on a moving real face."""

from __future__ import annotations

import numpy as np
import pytest

from syncvid.config.pipeline_schema import FaceSection
from syncvid.face import synthetic
from syncvid.face.backends import FaceObservation
from syncvid.face.dlib_backend import DlibBackend
from syncvid.face.tracker import FaceTracker, plausible_step, select_face

RULES = dict(min_width=50, min_height=80, min_aspect=0.2, max_aspect=1.5, min_score=0.5)


def _face(box, score=0.9):
    return FaceObservation(box, score, np.zeros((68, 2), np.float32), np.zeros((3, 2)))


@pytest.mark.parametrize(
    "boxes, expected_main, num, ratio, small",
    [
        ([], None, 0, 0.0, 0),
        ([(0, 0, 100, 130)], 0, 1, 0.0, 0),
        ([(0, 0, 100, 130), (200, 0, 300, 130)], 0, 2, 1.0, 0),  # two equal faces
        ([(0, 0, 100, 130), (200, 0, 230, 40)], 0, 2, 1200 / 13000, 1),  # a small background face
        ([(0, 0, 40, 60)], None, 1, 0.0, 1),  # too small: w < 50 and h < 80
        ([(0, 0, 60, 70)], None, 1, 0.0, 1),  # h < 80
        ([(0, 0, 200, 100)], None, 0, 0.0, 0),  # w/h = 2 > 1.5: not a face box
        ([(0, 0, 60, 90), (100, 0, 220, 150)], 1, 2, 5400 / 18000, 0),  # largest wins
    ],
)
def test_select_face(boxes, expected_main, num, ratio, small):
    faces = [_face(b) for b in boxes]
    sel = select_face(faces, **RULES)
    assert (sel.face is None) == (expected_main is None)
    if expected_main is not None:
        assert sel.face is faces[expected_main]
    assert sel.num_faces == num
    assert sel.second_face_ratio == pytest.approx(ratio)
    assert sel.small_faces == small


def test_select_face_score_filter():
    sel = select_face([_face((0, 0, 100, 130), score=0.3)], **RULES)
    assert sel.face is None and sel.num_faces == 0


@pytest.fixture(scope="module")
def backend():
    b = DlibBackend(detect_width=640)
    b.setup()
    return b


def test_plausible_step_checks(backend):
    img = synthetic.face_frame(640, 480, (320, 240), 130)
    f = backend.detect(img)[0]
    assert plausible_step(f, f, f.landmarks, 640, 480) == ""
    shifted = FaceObservation(tuple(np.add(f.box, [80, 0, 80, 0])), 1, f.landmarks + [80, 0], f.anchors)
    assert plausible_step(f, shifted, f.landmarks, 640, 480) == "jump"
    out = FaceObservation(f.box, 1, f.landmarks + [600, 0], f.anchors)
    assert plausible_step(f, out, f.landmarks, 640, 480) == "outside"
    scrambled = f.landmarks[np.random.default_rng(0).permutation(68)]
    assert plausible_step(f, FaceObservation(f.box, 1, scrambled, f.anchors), f.landmarks, 640, 480) == "shape"


def test_tracking_follows_a_moving_face(backend):
    params = FaceSection(detect_width=640, redetect_every=25)
    tracker = FaceTracker(backend, params)
    errors = []
    for t in range(20):
        img = synthetic.face_frame(640, 480, (220 + 6 * t, 240 + 2 * t), 130 + t)
        ff = tracker.step(img, new_shot=(t == 0))
        assert ff.has_face
        ref = backend.detect(img)[0]
        scale = np.linalg.norm(ref.anchors[1] - ref.anchors[0])
        errors.append(np.abs(ff.anchors - ref.anchors).max() / scale)
    assert tracker.num_detections == 1  # only the first frame ran the detector
    assert np.median(errors) < 0.05 and max(errors) < 0.12


def test_face_sliding_out_is_lost(backend):
    tracker = FaceTracker(backend, FaceSection(detect_width=640))
    present = []
    for t in range(30):
        img = synthetic.face_frame(640, 480, (320 + 25 * t, 240), 130)
        present.append(tracker.step(img, new_shot=(t == 0)).has_face)
    assert present[0] and not present[-1]
    first_missing = present.index(False)
    assert all(not p for p in present[first_missing:])  # once gone, stays gone
    assert tracker.num_recoveries >= 1
