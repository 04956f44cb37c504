"""Stage 7 — quality: thresholds (pure), and real aligned faces kept / blurred and darkened copies rejected."""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from syncvid.config.pipeline_schema import QualitySection
from syncvid.records import Clip, Rejected, Segment
from syncvid.stages.quality import (
    CHECKS,
    QualityScores,
    QualityStage,
    enabled_metrics,
    failed_checks,
    summary_score,
)

GOOD = {
    "quality_sharpness": 9.0, "quality_mouth_sharpness": 15.0, "quality_brightness": 86.0,
    "quality_contrast": 17.6, "quality_noise": 0.3, "quality_blockiness": 1.0, "quality_brisque": 55.0,
}


def measured(**changes) -> dict:
    out = dict(GOOD)
    out.update({f"quality_{k}": v for k, v in changes.items()})
    return out


def score_and_judge(stage: QualityStage, clip: Clip) -> Clip:
    """The pipeline's path for one candidate (`score_clip`, then `decide`): score, record, judge the record."""
    clip.measurements.update(stage.score(clip.frames).as_measurements())
    stage.judge(clip.measurements)
    return clip


def make_clip(frames: np.ndarray, name: str = "talk.mp4") -> Clip:
    return Clip(Segment(name, 0, 0, 0, len(frames)), frames, np.zeros(len(frames) * 640, np.float32))


# ---------------------------------------------------------------- pure thresholds


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({}, None),
        ({"brightness": 20.0, "sharpness": 1.0, "contrast": 4.0}, "dark"),  # cause before symptoms
        ({"brightness": 240.0}, "bright"),
        ({"sharpness": 0.7, "mouth_sharpness": 0.7, "contrast": 6.0, "brisque": 103.0}, "blur"),
        ({"mouth_sharpness": 2.0}, "mouth_blur"),
        ({"contrast": 5.0}, "contrast"),
        ({"noise": 7.0}, "noise"),
        ({"blockiness": 4.0}, "blockiness"),
        ({"brisque": 80.0}, "brisque"),
        ({"brisque": float("nan")}, "brisque"),  # not measurable fails
        ({"brightness": 40.0, "sharpness": 3.0, "brisque": 70.0}, None),  # thresholds are inclusive
    ],
)
def test_judge_table(changes, reason):
    stage = QualityStage(QualitySection())
    m = measured(**changes)
    if reason is None:
        assert stage.judge(m) is None
        return
    with pytest.raises(Rejected) as info:
        stage.judge(m)
    err = info.value
    assert (err.stage, err.reason) == ("quality", f"low_quality:{reason}")
    assert err.message.startswith(f"{reason}: ")
    assert err.measurements == m


def test_judge_message_lists_every_failed_check():
    with pytest.raises(Rejected) as info:
        QualityStage(QualitySection()).judge(measured(sharpness=0.5, mouth_sharpness=0.5, brisque=100.0))
    assert info.value.message == (
        "blur: sharpness 0.5 < min_sharpness 3; mouth_blur: mouth_sharpness 0.5 < min_mouth_sharpness 4; "
        "brisque: brisque 100 > max_brisque 70"
    )


def test_hyperiqa_threshold():
    params = QualitySection(backends=["hyperiqa"])
    stage = QualityStage(params)
    assert stage.judge({"quality_hyperiqa": 40.0}) is None
    with pytest.raises(Rejected, match="hyperiqa 39.5 < min_hyperiqa 40") as info:
        stage.judge({"quality_hyperiqa": 39.5, "quality_sharpness": 0.0})  # classic is not enabled: ignored
    assert info.value.reason == "low_quality:hyperiqa"


def test_disabled_thresholds_and_backends_are_skipped():
    params = QualitySection(backends=["classic"], min_sharpness=None, min_mouth_sharpness=None, max_brisque=10.0)
    assert failed_checks({"sharpness": 0.0, "mouth_sharpness": 0.0, "brightness": 100.0}, params) == []
    QualityStage(params).judge(measured(sharpness=0.0, mouth_sharpness=0.0, brisque=99.0))  # brisque not enabled


def test_judge_needs_the_enabled_metrics():
    stage = QualityStage(QualitySection())
    m = measured()
    del m["quality_brisque"]
    with pytest.raises(ValueError, match="lack quality_brisque.*re-score"):
        stage.judge(m)
    with pytest.raises(ValueError, match="lack quality_noise"):
        stage.judge(measured(noise=None))


def test_every_check_has_a_threshold_in_the_schema():
    params = QualitySection()
    for check in CHECKS:
        assert hasattr(params, check.param), check.param
    assert enabled_metrics(QualitySection(backends=["brisque", "classic", "brisque"]))[0] == "brisque"


@pytest.mark.parametrize(
    "metrics, expected",
    [
        ({"hyperiqa": 55.0, "brisque": 20.0, "sharpness": 9.0}, 55.0),
        ({"brisque": 30.0, "sharpness": 9.0}, 70.0),
        ({"brisque": 120.0}, 0.0),
        ({"brisque": -5.0}, 100.0),
        ({"sharpness": 9.0}, 9.0),
    ],
)
def test_summary_score(metrics, expected):
    assert summary_score(metrics) == expected


def test_scores_as_measurements():
    m = QualityScores({"sharpness": 9.0, "brisque": 40.0}, ("classic", "brisque")).as_measurements()
    assert m == {"quality_sharpness": 9.0, "quality_brisque": 40.0, "quality_score": 60.0,
                 "quality_backend": "classic,brisque"}


def test_stage_validates_its_input():
    stage = QualityStage(QualitySection(backends=["classic"]))
    with pytest.raises(RuntimeError, match="setup"):
        score_and_judge(stage, make_clip(np.zeros((2, 64, 64, 3), np.uint8)))
    stage.setup()
    with pytest.raises(ValueError, match="uint8"):
        score_and_judge(stage, make_clip(np.zeros((2, 64, 64, 3), np.float32)))
    with pytest.raises(ValueError, match=r"\[T, r, r, 3\]"):
        score_and_judge(stage, make_clip(np.zeros((0, 64, 64, 3), np.uint8)))
    with pytest.raises(ValueError, match="unknown backend"):
        QualityStage(QualitySection(backends=["classic", "vmaf"]))


def test_uniform_grey_clip_is_rejected_with_all_scores_recorded():
    stage = QualityStage(QualitySection())
    stage.setup()
    clip = make_clip(np.full((4, 256, 256, 3), 127, np.uint8))
    with pytest.raises(Rejected) as info:
        score_and_judge(stage, clip)
    assert info.value.reason == "low_quality:blur"
    assert "quality_brisque" in info.value.measurements
    assert info.value.measurements["quality_backend"] == "classic,brisque"


# ---------------------------------------------------------------- real aligned faces


def _predictor_path() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("face_recognition_models (dlib landmark model) is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"


@functools.lru_cache(maxsize=1)
def _dlib_models():
    dlib = pytest.importorskip("dlib")
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(_predictor_path()))


def aligned_faces(path: Path, count: int = 5, stride: int = 10, resolution: int = 256) -> np.ndarray:
    """`count` frames of a video, aligned with the 3-point template (eyebrows, nose) as the face stage does."""
    av = pytest.importorskip("av")
    dlib = pytest.importorskip("dlib")
    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % stride == 0:
                frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    scale = 320.0 / frames[0].shape[1]
    small = cv2.resize(frames[0], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    detector, predictor = _dlib_models()
    faces = detector(small, 1)
    assert len(faces) >= 1, f"no face found in {path.name}"
    f = max(faces, key=lambda r: r.area())
    box = dlib.rectangle(*(int(v / scale) for v in (f.left(), f.top(), f.right(), f.bottom())))
    ratio = resolution / 256 * 2.8
    template = np.array([[17, 20], [58, 20], [37.5, 40]], np.float32) * ratio
    size = (int(75 * ratio), int(100 * ratio))
    out = []
    for frame in frames:
        pts = np.array([[p.x, p.y] for p in predictor(frame, box).parts()], np.float32)
        anchors = np.stack([pts[17:22].mean(0), pts[22:27].mean(0), pts[27:36].mean(0)])
        matrix, _ = cv2.estimateAffinePartial2D(anchors, template)
        crop = cv2.warpAffine(frame, matrix, size, flags=cv2.INTER_LINEAR, borderValue=(127, 127, 127))
        out.append(cv2.resize(crop, (resolution, resolution), interpolation=cv2.INTER_LANCZOS4))
    return np.stack(out)


def blurred(frames: np.ndarray, sigma: float) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in frames])


def darkened(frames: np.ndarray, gain: float) -> np.ndarray:
    return np.round(frames.astype(np.float32) * gain).astype(np.uint8)


@pytest.fixture(scope="module")
def stage() -> QualityStage:
    s = QualityStage(QualitySection())
    s.setup()
    return s


REAL = ["talk_25fps_844.mp4", "talk_30fps_700.mp4"]
DEFAULT_METRICS = enabled_metrics(QualitySection())


@pytest.fixture(scope="module", params=REAL)
def real_faces(request, shared_media) -> np.ndarray:
    return aligned_faces(shared_media / request.param)


@pytest.mark.real_media
def test_real_clip_is_kept_and_scored(stage, real_faces):
    clip = score_and_judge(stage, make_clip(real_faces))
    m = clip.measurements
    assert m["quality_backend"] == "classic,brisque"
    assert {f"quality_{k}" for k in DEFAULT_METRICS} <= set(m)
    assert 0.0 < m["quality_score"] <= 100.0 and m["quality_score"] == pytest.approx(100 - m["quality_brisque"])


@pytest.mark.real_media
def test_blurred_real_clip_is_rejected_for_blur(stage, real_faces):
    with pytest.raises(Rejected) as info:
        score_and_judge(stage, make_clip(blurred(real_faces, 8.0)))
    assert info.value.reason == "low_quality:blur"
    recorded = info.value.measurements
    assert {f"quality_{k}" for k in DEFAULT_METRICS} | {"quality_score", "quality_backend"} <= set(recorded)
    # re-thresholding the recorded scores without decoding: permissive thresholds keep the clip
    lenient = QualityStage(replace(stage.params, min_sharpness=0.1, min_mouth_sharpness=0.1, max_brisque=None))
    assert lenient.judge(recorded) is None


@pytest.mark.real_media
def test_darkened_real_clip_is_rejected_as_dark(stage, real_faces):
    with pytest.raises(Rejected) as info:
        score_and_judge(stage, make_clip(darkened(real_faces, 0.2)))
    assert info.value.reason == "low_quality:dark"
    assert info.value.measurements["quality_brightness"] < stage.params.min_brightness


@pytest.mark.real_media
def test_recorded_scores_of_a_kept_clip_can_be_rethresholded(stage, real_faces):
    m = score_and_judge(stage, make_clip(real_faces)).measurements
    strict = QualityStage(replace(stage.params, min_sharpness=m["quality_sharpness"] + 1.0))
    with pytest.raises(Rejected, match="blur"):
        strict.judge(m)


@pytest.mark.real_media
def test_thresholds_hold_at_resolution_512(stage, shared_media):
    faces = aligned_faces(shared_media / "talk_25fps_844.mp4", count=3, stride=20, resolution=512)
    assert faces.shape[1:] == (512, 512, 3)
    score_and_judge(stage, make_clip(faces))
    with pytest.raises(Rejected, match="blur"):
        score_and_judge(stage, make_clip(blurred(faces, 16.0)))  # sigma 8 at 256 is sigma 16 at 512
