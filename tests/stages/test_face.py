"""Stage 5 (face): segment rules, the stage on synthetic frames, and real talking-head video."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from syncvid.config.pipeline_schema import FaceSection
from syncvid.face import synthetic
from syncvid.face.align import anchors_from_68, template_points_output
from syncvid.outputs.contact_sheet import make_contact_sheet, save_png
from syncvid.face.dlib_backend import DlibBackend
from syncvid.records import Rejected
from syncvid.stages.face import FaceStage, FaceStats, FrameFace, judge_faces, landmark_jitter

# ----------------------------------------------------------------------------- judge (pure)

_LM = np.random.default_rng(5).uniform(0, 100, (68, 2)).astype(np.float32)


def _ff(present=True, size=120.0, ratio=0.0, yaw=0.0, detected=False, small=0, num=1):
    if not present:
        return FrameFace(None, None, 0.0, num, ratio, detected, None, None, small)
    box = (0.0, 0.0, size, size * 1.3)
    return FrameFace(_LM, box, 0.9, num, ratio, detected, yaw, anchors_from_68(_LM), small)


def _run(frames, **kw):
    return judge_faces(frames, FaceSection(**kw), "dlib")


@pytest.mark.parametrize(
    "frames, kw, reason",
    [
        ([_ff(False)] * 10, {}, "no_face"),
        ([_ff(False, small=1, detected=True)] * 10, {}, "face_too_small"),
        ([_ff(detected=True, ratio=0.8, num=2)] * 10, {}, "multiple_faces"),
        ([_ff()] * 8 + [_ff(False)] * 2, {}, "face_lost"),
        ([_ff()] * 8 + [_ff(False, small=1)] * 2, {}, "face_too_small"),
        ([_ff(size=40)] * 10, {}, "face_too_small"),
        ([_ff(size=120)] * 10, {"min_size_px": 200}, "face_too_small"),
        ([_ff(yaw=50)] * 10, {"max_yaw_deg": 30.0}, "extreme_yaw"),
    ],
)
def test_judge_rejections(frames, kw, reason):
    with pytest.raises(Rejected) as exc:
        _run(frames, **kw)
    assert exc.value.stage == "face" and exc.value.reason == reason
    assert exc.value.message and exc.value.measurements["face_backend"] == "dlib"


@pytest.mark.parametrize(
    "frames, kw",
    [
        ([_ff()] * 10, {}),
        ([_ff(detected=True, ratio=0.2, num=2)] * 10, {}),  # a much smaller background face is tolerated
        ([_ff()] * 9 + [_ff(False)], {"max_missing_frames": 1}),
        ([_ff(yaw=50)] * 10, {}),  # no yaw limit by default
    ],
)
def test_judge_accepts(frames, kw):
    stats = _run(frames, **kw)
    assert isinstance(stats, FaceStats)
    d = stats.as_dict()
    assert d["face_size_px"] == 120.0 and d["face_backend"] == "dlib"
    assert {"face_detect_rate", "face_jitter", "face_num_faces_max"} <= set(d)


def test_jitter_is_zero_for_a_still_face_and_grows_with_noise():
    assert landmark_jitter([_ff()] * 5, 256) == 0.0
    rng = np.random.default_rng(0)
    noisy = []
    for _ in range(6):
        lm = _LM + rng.normal(0, 1.0, _LM.shape).astype(np.float32)
        noisy.append(FrameFace(lm, (0, 0, 100, 130), 0.9, 1, 0.0, False, 0.0, anchors_from_68(lm), 0))
    assert landmark_jitter(noisy, 256) > 0.5


# ----------------------------------------------------------------------------- the stage on synthetic frames


@pytest.fixture(scope="module")
def stage():
    # Without the temporal smoothing of the anchors: these tests measure each frame's alignment.
    s = FaceStage(FaceSection(detect_width=640, smooth_anchors=False))
    s.setup()
    return s


def _track(stage, frames):
    stage.reset()
    return [stage.track(f, i == 0) for i, f in enumerate(frames)]


def test_setup_loads_once_and_is_required():
    s = FaceStage(FaceSection())
    with pytest.raises(RuntimeError, match="setup"):
        s.track(np.zeros((10, 10, 3), np.uint8), True)
    s.setup()
    backend = s.backend
    s.setup()
    assert s.backend is backend and backend.name == "dlib"


def test_aligned_astronaut_matches_template(stage):
    frames = [synthetic.face_frame(640, 480, (300 + 3 * t, 220), 140) for t in range(10)]
    faces = _track(stage, frames)
    aligner = stage.new_aligner()
    redetect = DlibBackend(detect_width=256)
    redetect.setup()
    template = template_points_output(256)
    for img, ff in zip(frames, faces):
        crop, lm_crop = aligner.warp(img, ff)
        assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
        found = redetect.detect(crop)
        assert found, "the aligned crop still shows a detectable face"
        a_found = anchors_from_68(found[0].landmarks)
        a_mapped = anchors_from_68(lm_crop)
        # The warp puts the face where the transform says: landmarks found in the crop
        # agree with the frame's landmarks mapped into it.
        assert (np.linalg.norm(a_found - a_mapped, axis=1) / 256).max() < 0.02
        # And the anchors sit on the template, up to the residual of a 3-point similarity
        # fit (this face's nose is 0.65 brow widths below the brows, the template's 0.49).
        fit = np.linalg.norm(a_mapped - template, axis=1) / 256
        assert fit.max() < 0.035
        err = np.linalg.norm(a_found - template, axis=1) / 256
        assert err.mean() < 0.04 and err.max() < 0.045


def test_two_faces_side_by_side_are_multiple(stage):
    img = synthetic.face_frame(800, 400, (220, 200), 140)
    synthetic.place_face(img, (580, 200), 130)
    faces = _track(stage, [img] * 5)
    assert faces[0].num_faces == 2 and faces[0].second_face_ratio > 0.7
    with pytest.raises(Rejected) as exc:
        stage.judge(faces)
    assert exc.value.reason == "multiple_faces"


def test_small_face_is_rejected(stage):
    faces = _track(stage, [synthetic.face_frame(640, 480, (320, 240), 30)] * 5)
    with pytest.raises(Rejected) as exc:
        stage.judge(faces)
    assert exc.value.reason in ("no_face", "face_too_small")


def test_face_below_min_size_is_too_small():
    s = FaceStage(FaceSection(detect_width=640, min_size_px=150))
    s.setup()
    faces = [s.track(synthetic.face_frame(640, 480, (320, 240), 110), i == 0) for i in range(5)]
    with pytest.raises(Rejected) as exc:
        s.judge(faces)
    assert exc.value.reason == "face_too_small" and exc.value.measurements["face_size_px"] < 150


def test_face_sliding_out_is_lost(stage):
    frames = [synthetic.face_frame(640, 480, (300 + 30 * t, 240), 130) for t in range(16)]
    faces = _track(stage, frames)
    assert faces[0].has_face and not faces[-1].has_face
    with pytest.raises(Rejected) as exc:
        stage.judge(faces)
    assert exc.value.reason == "face_lost"


def test_blank_frames_are_no_face(stage):
    faces = _track(stage, [synthetic.canvas(320, 240)] * 6)
    assert not any(f.has_face for f in faces)
    with pytest.raises(Rejected) as exc:
        stage.judge(faces)
    assert exc.value.reason == "no_face"


# ----------------------------------------------------------------------------- real video


def _frames(path, n):
    with av.open(str(path)) as c:
        out = []
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="rgb24"))
            if len(out) == n:
                break
    return out


@pytest.mark.real_media
def test_real_video_is_aligned(stage, shared_media, tmp_path):
    frames = _frames(shared_media / "talk_25fps_844.mp4", 40)
    faces = _track(stage, frames)
    stats = stage.judge(faces)
    assert stats.detection_rate == 1.0 and stats.num_faces_max == 1 and stats.face_size_px > 150
    aligner = stage.new_aligner()
    redetect = DlibBackend(detect_width=256)
    redetect.setup()
    crops, labels, errors = [], [], []
    for i, (img, ff) in enumerate(zip(frames, faces)):
        crop, lm_crop = aligner.warp(img, ff)
        if i % 4 == 0:
            crops.append(crop)
            labels.append(f"frame {i}")
            found = redetect.detect(crop)
            if found:  # the HOG detector misses a few tightly cropped faces
                lm = found[0].landmarks
                errors.append(np.linalg.norm(anchors_from_68(lm) - template_points_output(256), axis=1) / 256)
    assert len(errors) >= 0.7 * len(crops)
    errors = np.array(errors)
    # L/R/N anchors of the aligned faces: on the template, up to the 3-point fit's own residual.
    assert np.median(errors) < 0.03 and errors.max() < 0.045
    sheet = make_contact_sheet(crops, labels, columns=5)
    out = save_png(tmp_path / "contact.png", sheet)
    back = cv2.imread(str(out))
    assert back.shape == sheet.shape and back.std() > 20  # real picture content, not a flat image


@pytest.mark.real_media
def test_drawn_anime_face_is_detected_by_dlib(stage, shared_media):
    frames = _frames(shared_media / "anime_noaudio_25fps.mp4", 25)
    faces = _track(stage, frames)
    # Measured: dlib's HOG detector finds the drawn face in every frame (704×1216 source).
    assert sum(f.has_face for f in faces) == len(frames)
