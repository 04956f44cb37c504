"""The face stage reads only regions of a decoded picture and gets what the whole RGB frame gives."""

from __future__ import annotations

import av
import numpy as np
import pytest

from syncvid.face import synthetic
from syncvid.face.align import FaceAligner
from syncvid.face.dlib_backend import DlibBackend
from syncvid.media.picture import ArrayPicture, Converters, VideoPicture


@pytest.fixture(scope="module")
def backend():
    b = DlibBackend()
    b.setup()
    return b


def decoded(rgb: np.ndarray) -> VideoPicture:
    """A 4:2:0 picture of `rgb` (as a decoder would hand it over) and nothing converted yet."""
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    return VideoPicture(frame, 0, Converters())


@pytest.mark.parametrize("center, face_px", [((640, 360), 160), ((1180, 330), 220), ((90, 640), 150)])
def test_landmarks_alignment_and_checks_match_the_whole_frame(backend, center, face_px):
    rgb = synthetic.place_face(synthetic.canvas(1280, 720), center, face_px)
    picture = decoded(rgb)
    whole = ArrayPicture(picture.frame.reformat(format="rgb24", threads=1).to_ndarray())
    faces = backend.detect(whole)
    assert faces, "the synthetic face is found"
    face = faces[0]
    tracked = backend.refine(picture, face)
    assert picture._rgb is None  # tracking converted only the region around the face
    reference = backend.refine(whole, face)
    np.testing.assert_array_equal(tracked.landmarks, reference.landmarks)
    assert tracked.box == reference.box
    assert backend.verify(picture, tracked) == pytest.approx(backend.verify(whole, reference), abs=1e-6)
    crop, lm = FaceAligner(256).warp(picture, tracked)
    crop_ref, lm_ref = FaceAligner(256).warp(whole, reference)
    np.testing.assert_array_equal(lm, lm_ref)
    diff = np.abs(crop.astype(int) - crop_ref)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # fixed-point rounding of a shifted matrix at most
    assert picture._rgb is None
    detected = backend.detect(picture)  # detection converts the whole frame once
    np.testing.assert_array_equal(detected[0].landmarks, faces[0].landmarks)


def test_a_face_box_outside_the_frame_still_gives_landmarks(backend):
    rgb = synthetic.place_face(synthetic.canvas(640, 360), (320, 180), 120)
    picture = decoded(rgb)
    face = backend.detect(ArrayPicture(rgb))[0]
    moved = type(face)(face.box, face.score, face.landmarks + 2000.0, face.anchors + 2000.0, {})
    lost = backend.refine(picture, moved)  # nowhere near the frame: plausibility checks reject it later
    assert lost.landmarks.shape == (68, 2)
