"""InsightFace backend: pre/post-processing, errors, and a run on tiny random models
saved with the published files' input/output names and shapes."""

from __future__ import annotations

import numpy as np
import pytest

from syncvid.config.pipeline_schema import FaceSection
from syncvid.face import synthetic
from syncvid.face.backends import FaceBackendError, available_backends, create_backend
from syncvid.face.insightface_backend import (
    OUTLINE_106,
    InsightFaceBackend,
    anchor_centers,
    decode_landmarks,
    decode_scrfd,
    landmark_crop_matrix,
    letterbox,
    nms,
    resolve_providers,
)


def test_anchor_centers_layout():
    c = anchor_centers(2, 3, 8, 2)
    assert c.shape == (12, 2)
    # Row-major positions, each repeated for the two anchors.
    np.testing.assert_array_equal(c[:6], [[0, 0], [0, 0], [8, 0], [8, 0], [16, 0], [16, 0]])
    np.testing.assert_array_equal(c[6:8], [[0, 8], [0, 8]])


def test_decode_scrfd_single_hit():
    hw = (64, 64)
    outs = []
    for stride in (8, 16, 32):
        n = (64 // stride) ** 2 * 2
        outs.append(np.zeros((n, 1), np.float32))
    bbox = [np.zeros(((64 // s) ** 2 * 2, 4), np.float32) for s in (8, 16, 32)]
    kps = [np.zeros(((64 // s) ** 2 * 2, 10), np.float32) for s in (8, 16, 32)]
    # Stride 16, grid position (x=2, y=1), second anchor: index (1*4 + 2)*2 + 1 = 13.
    outs[1][13, 0] = 0.9
    bbox[1][13] = [1, 0.5, 2, 1.5]  # left, top, right, bottom in strides
    kps[1][13, :2] = [0.25, -0.25]
    boxes, scores, kpss = decode_scrfd(outs + bbox + kps, hw, 0.5)
    assert scores.tolist() == pytest.approx([0.9])
    np.testing.assert_allclose(boxes[0], [32 - 16, 16 - 8, 32 + 32, 16 + 24])
    np.testing.assert_allclose(kpss[0, 0], [32 + 4, 16 - 4])
    with pytest.raises(ValueError):
        decode_scrfd(outs, hw, 0.5)


@pytest.mark.parametrize(
    "boxes, scores, keep",
    [
        ([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], [0.9, 0.8, 0.7], [0, 2]),
        ([[0, 0, 10, 10], [1, 1, 11, 11]], [0.5, 0.95], [1]),
        ([[0, 0, 10, 10], [6, 0, 16, 10]], [0.9, 0.8], [0, 1]),  # IoU 0.25 < 0.4: both kept
    ],
)
def test_nms(boxes, scores, keep):
    assert nms(np.array(boxes, float), np.array(scores, float)).tolist() == keep


def test_landmark_crop_roundtrip():
    box = (100.0, 50.0, 200.0, 170.0)
    m = landmark_crop_matrix(box, 192)
    # A prediction of 0 is the middle of the input, i.e. the box centre.
    np.testing.assert_allclose(decode_landmarks(np.zeros(212), m, 192)[0], [150.0, 110.0])
    # ±1 spans the input, i.e. 1.5 × the box's longer side.
    pts = decode_landmarks(np.array([-1.0, -1.0, 1.0, 1.0]), m, 192)
    np.testing.assert_allclose(pts[1] - pts[0], [180.0, 180.0])


def test_letterbox_keeps_aspect():
    img = np.full((100, 200, 3), 255, np.uint8)
    out, scale = letterbox(img, 64)
    assert out.shape == (64, 64, 3) and scale == pytest.approx(0.32)
    assert out[:32].min() == 255 and out[33:].max() == 0


def test_outline_indices_are_distinct():
    assert len(set(OUTLINE_106)) == 27 and max(OUTLINE_106) < 106


@pytest.mark.parametrize(
    "device, available, expected",
    [
        ("auto", ["CPUExecutionProvider"], ["CPUExecutionProvider"]),
        ("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]),
        ("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]),
        ("cuda:0", ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]),
    ],
)
def test_resolve_providers(device, available, expected):
    assert resolve_providers(device, available) == expected


def test_cuda_requested_without_provider():
    with pytest.raises(FaceBackendError, match="no CUDA provider"):
        resolve_providers("cuda", ["CPUExecutionProvider"])


def test_missing_model_dir_errors(tmp_path):
    with pytest.raises(FaceBackendError, match="face.insightface_model_dir"):
        InsightFaceBackend(None).setup()
    missing = tmp_path / "buffalo_l"
    with pytest.raises(FaceBackendError, match="det_10g.onnx") as exc:
        create_backend(FaceSection(backend="insightface", insightface_model_dir=str(missing))).setup()
    assert str(missing) in str(exc.value)


def test_unknown_backend():
    assert {"dlib", "insightface"} <= set(available_backends())
    with pytest.raises(FaceBackendError, match="unknown face backend 'nope'"):
        create_backend(FaceSection(backend="nope"))


def _save_random_models(folder):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, outputs = [], [], []
    groups = {"score": 1, "bbox": 4, "kps": 10}
    for kind, ch in groups.items():
        for s in (8, 16, 32):
            name = f"{kind}_{s}"
            w = numpy_helper.from_array(rng.normal(0, 0.05, (2 * ch, 3, 1, 1)).astype(np.float32), f"w_{name}")
            shape = numpy_helper.from_array(np.array([-1, ch], np.int64), f"shape_{name}")
            inits += [w, shape]
            nodes += [
                helper.make_node("AveragePool", ["input.1"], [f"p_{name}"], kernel_shape=[s, s], strides=[s, s]),
                helper.make_node("Conv", [f"p_{name}", f"w_{name}"], [f"c_{name}"]),
                helper.make_node("Transpose", [f"c_{name}"], [f"t_{name}"], perm=[0, 2, 3, 1]),
                helper.make_node("Reshape", [f"t_{name}", f"shape_{name}"], [f"r_{name}"]),
            ]
            final = {"score": "Sigmoid", "bbox": "Abs", "kps": "Identity"}[kind]
            nodes.append(helper.make_node(final, [f"r_{name}"], [name]))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    det = helper.make_graph(
        nodes, "scrfd_random",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "h", "w"])], outputs, inits,
    )
    onnx.save(helper.make_model(det, opset_imports=[helper.make_opsetid("", 13)]), str(folder / "det_10g.onnx"))

    w = numpy_helper.from_array(rng.normal(0, 0.01, (3, 212)).astype(np.float32), "fc_w")
    lmk = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["data"], ["gap"]),
            helper.make_node("Flatten", ["gap"], ["flat"]),
            helper.make_node("MatMul", ["flat", "fc_w"], ["mm"]),
            helper.make_node("Tanh", ["mm"], ["fc1"]),
        ],
        "lmk_random",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 192, 192])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 212])],
        [w],
    )
    onnx.save(helper.make_model(lmk, opset_imports=[helper.make_opsetid("", 13)]), str(folder / "2d106det.onnx"))


def test_runs_random_models_end_to_end(tmp_path):
    pytest.importorskip("onnxruntime")
    _save_random_models(tmp_path)
    params = FaceSection(backend="insightface", insightface_model_dir=str(tmp_path), insightface_det_size=160, device="cpu")
    backend = create_backend(params)
    backend.setup()
    img = synthetic.face_frame(320, 240, (160, 120), 80)
    faces = backend.detect(img)
    assert faces, "random weights still give candidates above the 0.3 score floor"
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)
    f = faces[0]
    assert f.landmarks.shape == (68, 2) and f.anchors.shape == (3, 2) and f.extra["lm106"].shape == (106, 2)
    assert 0.0 <= f.score <= 1.0
    g = backend.refine(img, f)
    assert g.landmarks.shape == (68, 2) and g.extra["key"] is f.extra["key"]
    assert 0.0 <= backend.verify(img, g) <= 1.0
