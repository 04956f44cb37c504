"""Optional backend: InsightFace buffalo_l models (SCRFD detector + 106-point landmarks).

This is the detector pair LatentSync's pipeline uses.  Only `onnxruntime` is
needed (not the `insightface` package); the user supplies the model folder:
`face.insightface_model_dir` must hold `det_10g.onnx` and `2d106det.onnx`
(see docs/face.md).  A CUDA provider is used when onnxruntime has one and
`face.device` allows it.

Outputs follow the common backend contract: the alignment anchors are computed
from the 106 points exactly as LatentSync does (eyebrow and nose index sets,
`syncvid.face.align.anchors_from_106`); the 68-point (iBUG) landmarks the rest
of the pipeline reads (mouth points for sync, rules, crops) come from dlib's
68-point predictor, placed with a box built from the 106 model's jaw and
eyebrow points.  The face box is SCRFD's own box, the one LatentSync's size
rules were written for (docs/face.md, "Compatibility with LatentSync").
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from syncvid.face.align import anchors_from_106
from syncvid.face.backends import FaceBackend, FaceBackendError, FaceObservation
from syncvid.face.landmarks import Box, box_center, follow_box, predictor_box_from_outline
from syncvid.media.picture import Picture, as_picture

DETECTOR_FILE = "det_10g.onnx"
LANDMARK_FILE = "2d106det.onnx"
STRIDES = (8, 16, 32)
NUM_ANCHORS = 2
NMS_IOU = 0.4
DETECT_THRESHOLD = 0.3  # candidates below this never leave the detector (the rules use face.min_score)
LANDMARK_SIZE = 192

# 106-point indices of the 68-point jaw (0..16) and eyebrows (17..26), in 68-point order.
OUTLINE_106 = (1, 10, 12, 14, 16, 3, 5, 7, 0, 23, 21, 19, 32, 30, 28, 26, 17, 43, 48, 49, 51, 50, 102, 103, 104, 105, 101)
# Eyes and nose: the points that follow the head, not the jaw.
STABLE_106 = tuple(range(33, 43)) + tuple(range(72, 87)) + tuple(range(87, 97))


# --------------------------------------------------------------------------- pure helpers


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """Resize keeping the aspect ratio into the top-left of a size×size black canvas."""
    h, w = image.shape[:2]
    scale = min(size / w, size / h)
    nw, nh = max(1, int(w * scale)), max(1, int(h * scale))
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return canvas, nh / h


def to_blob(image_rgb: np.ndarray, mean: float, std: float) -> np.ndarray:
    """uint8 H×W×3 RGB → float32 1×3×H×W, (x − mean) / std."""
    x = (image_rgb.astype(np.float32) - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def anchor_centers(height: int, width: int, stride: int, num_anchors: int = NUM_ANCHORS) -> np.ndarray:
    """[height·width·num_anchors, 2] (x, y) centres, row-major, each repeated num_anchors times."""
    ys, xs = np.mgrid[:height, :width]
    centers = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centers, num_anchors, axis=0)


def decode_scrfd(
    outputs: list[np.ndarray], input_hw: tuple[int, int], threshold: float, strides=STRIDES
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes [N, 4], scores [N], keypoints [N, 5, 2] (input pixels) from SCRFD's raw outputs.

    `outputs` are ordered scores per stride, then box distances per stride, then
    keypoint offsets per stride (the published det_10g export's order); distances
    and offsets are in units of the stride.
    """
    n = len(strides)
    if len(outputs) not in (2 * n, 3 * n):
        raise ValueError(f"expected {2 * n} or {3 * n} SCRFD outputs, got {len(outputs)}")
    has_kps = len(outputs) == 3 * n
    boxes, scores, kpss = [], [], []
    for i, stride in enumerate(strides):
        h, w = input_hw[0] // stride, input_hw[1] // stride
        centers = anchor_centers(h, w, stride)
        sc = np.asarray(outputs[i]).reshape(-1)
        dist = np.asarray(outputs[i + n]).reshape(-1, 4) * stride
        if len(sc) != len(centers) or len(dist) != len(centers):
            raise ValueError(f"stride {stride}: {len(sc)} scores for {len(centers)} anchors")
        keep = np.nonzero(sc >= threshold)[0]
        c = centers[keep]
        d = dist[keep]
        boxes.append(np.concatenate([c - d[:, :2], c + d[:, 2:]], axis=1))
        scores.append(sc[keep])
        if has_kps:
            k = np.asarray(outputs[i + 2 * n]).reshape(-1, 5, 2)[keep] * stride
            kpss.append(k + c[:, None, :])
        else:
            kpss.append(np.zeros((len(keep), 5, 2), np.float32))
    return np.concatenate(boxes), np.concatenate(scores), np.concatenate(kpss)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = NMS_IOU) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    x0, y0, x1, y1 = boxes.T
    areas = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]))
        ih = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]))
        inter = iw * ih
        union = areas[i] + areas[rest] - inter
        ovr = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
        order = rest[ovr <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def landmark_crop_matrix(box: Box, input_size: int = LANDMARK_SIZE) -> np.ndarray:
    """2×3 matrix image → landmark-model input: the box centre to the middle, max side·1.5 to the input."""
    w, h = box[2] - box[0], box[3] - box[1]
    s = input_size / (max(w, h) * 1.5)
    cx, cy = box_center(box)
    return np.array([[s, 0.0, input_size / 2.0 - s * cx], [0.0, s, input_size / 2.0 - s * cy]])


def decode_landmarks(pred: np.ndarray, matrix: np.ndarray, input_size: int = LANDMARK_SIZE) -> np.ndarray:
    """Model output in [−1, 1] input coordinates → [N, 2] image pixels."""
    p = np.asarray(pred, dtype=np.float64).reshape(-1, 2)
    p = (p + 1.0) * (input_size // 2)
    inv = cv2.invertAffineTransform(matrix)
    return p @ inv[:, :2].T + inv[:, 2]


def outline_from_106(lm106: np.ndarray) -> np.ndarray:
    """The 27 jaw + eyebrow points of the 68-point layout, taken from 106 points."""
    return np.asarray(lm106, dtype=np.float64)[list(OUTLINE_106)]


def resolve_providers(device: str, available: list[str]) -> list[str]:
    """onnxruntime providers for face.device ('auto', 'cpu', 'cuda', 'cuda:N')."""
    want_gpu = device == "auto" or device.startswith("cuda")
    if want_gpu and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device.startswith("cuda"):
        raise FaceBackendError(f"face.device={device!r} but onnxruntime has no CUDA provider (has: {available})")
    return ["CPUExecutionProvider"]


def _model_normalisation(path: Path) -> tuple[float, float]:
    """Input mean/std of a landmark model: (0, 1) when the graph normalises its input itself."""
    try:
        import onnx
    except ImportError:
        return 0.0, 1.0  # the published 2d106det starts with its own normalisation layer
    graph = onnx.load(str(path), load_external_data=False).graph
    names = [n.name for n in graph.node[:8]]
    has_sub = any(n.startswith(("Sub", "_minus")) for n in names)
    has_mul = any(n.startswith(("Mul", "_mul")) for n in names)
    if any(n == "bn_data" for n in names[:3]) or (has_sub and has_mul):
        return 0.0, 1.0
    return 127.5, 128.0


# --------------------------------------------------------------------------- backend


class InsightFaceBackend(FaceBackend):
    name = "insightface"

    def __init__(self, model_dir: str | Path | None, det_size: int = 640, device: str = "auto"):
        self.model_dir = None if model_dir is None else Path(model_dir)
        self.det_size = int(det_size)
        if self.det_size % 32:
            raise ValueError(f"face.insightface_det_size must be a multiple of 32, got {det_size}")
        self.device = device
        self._det = None
        self._lmk = None
        self._predictor = None

    @classmethod
    def from_params(cls, params) -> "InsightFaceBackend":
        return cls(params.insightface_model_dir, getattr(params, "insightface_det_size", 640), params.device)

    def model_paths(self) -> tuple[Path, Path]:
        if self.model_dir is None:
            raise FaceBackendError(
                "face.backend=insightface needs face.insightface_model_dir: a buffalo_l folder "
                f"holding {DETECTOR_FILE} and {LANDMARK_FILE}"
            )
        paths = (self.model_dir / DETECTOR_FILE, self.model_dir / LANDMARK_FILE)
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FaceBackendError(
                f"face.insightface_model_dir={self.model_dir}: missing {', '.join(missing)} "
                f"(expected a buffalo_l folder with {DETECTOR_FILE} and {LANDMARK_FILE})"
            )
        return paths

    def setup(self) -> None:
        if self._det is not None:
            return
        det_path, lmk_path = self.model_paths()
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise FaceBackendError(
                "face.backend=insightface needs onnxruntime (pip install 'syncvid[insightface]')"
            ) from exc
        providers = resolve_providers(self.device, ort.get_available_providers())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        try:
            self._det = ort.InferenceSession(str(det_path), opts, providers=providers)
            self._lmk = ort.InferenceSession(str(lmk_path), opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise FaceBackendError(f"cannot load InsightFace models from {self.model_dir}: {exc}") from exc
        self._det_input = self._det.get_inputs()[0].name
        self._det_outputs = [o.name for o in self._det.get_outputs()]
        lmk_in = self._lmk.get_inputs()[0]
        self._lmk_input = lmk_in.name
        self._lmk_size = int(lmk_in.shape[2]) if isinstance(lmk_in.shape[2], int) else LANDMARK_SIZE
        self._lmk_output = self._lmk.get_outputs()[0].name
        self._lmk_mean, self._lmk_std = _model_normalisation(lmk_path)
        from syncvid.face.dlib_backend import DlibBackend

        self._predictor = DlibBackend()
        self._predictor.setup()

    def _require(self) -> None:
        if self._det is None:
            raise RuntimeError("InsightFaceBackend.setup() must be called before use")

    def _run_detector(self, image_rgb: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        canvas, scale = letterbox(image_rgb, size)
        outs = self._det.run(self._det_outputs, {self._det_input: to_blob(canvas, 127.5, 128.0)})
        boxes, scores, _ = decode_scrfd(outs, (size, size), DETECT_THRESHOLD)
        ok = ((boxes[:, 2] - boxes[:, 0]) > 1.0) & ((boxes[:, 3] - boxes[:, 1]) > 1.0)
        boxes, scores = boxes[ok], scores[ok]
        keep = nms(boxes, scores)
        return boxes[keep] / scale, scores[keep]

    def _landmarks106(self, picture: Picture, box: Box) -> np.ndarray:
        m = landmark_crop_matrix(box, self._lmk_size)
        crop = picture.warp_affine(m, (self._lmk_size, self._lmk_size), flags=cv2.INTER_LINEAR)
        pred = self._lmk.run([self._lmk_output], {self._lmk_input: to_blob(crop, self._lmk_mean, self._lmk_std)})[0]
        return decode_landmarks(pred[0][-212:], m, self._lmk_size)

    def _observe(self, picture: Picture, box: Box, score: float, key: dict | None = None) -> FaceObservation:
        lm106 = self._landmarks106(picture, box)
        lm68 = self._predictor._landmarks(picture, predictor_box_from_outline(outline_from_106(lm106)))
        key = key if key is not None else {"box": box, "landmarks": lm106}
        return FaceObservation(
            tuple(float(v) for v in box), float(score), lm68, anchors_from_106(lm106), {"key": key, "lm106": lm106}
        )

    def detect(self, image: Picture | np.ndarray) -> list[FaceObservation]:
        self._require()
        picture = as_picture(image)
        boxes, scores = self._run_detector(picture.rgb(), self.det_size)
        faces = [self._observe(picture, tuple(b), s) for b, s in zip(boxes.tolist(), scores.tolist())]
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def refine(self, image: Picture | np.ndarray, previous: FaceObservation) -> FaceObservation:
        self._require()
        key = previous.extra["key"]
        box = follow_box(key["box"], key["landmarks"], previous.extra["lm106"], STABLE_106)
        return self._observe(as_picture(image), box, previous.score, key)

    def verify(self, image: Picture | np.ndarray, face: FaceObservation) -> float:
        """SCRFD on a 160×160 window around the tracked face."""
        self._require()
        size = 160
        w, h = face.box[2] - face.box[0], face.box[3] - face.box[1]
        s = size / (2.0 * max(w, h, 1.0))
        cx, cy = box_center(face.box)
        m = np.array([[s, 0.0, size / 2.0 - s * cx], [0.0, s, size / 2.0 - s * cy]])
        window = as_picture(image).warp_affine(m, (size, size), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        boxes, scores = self._run_detector(window, size)
        best = 0.0
        for b, sc in zip(boxes, scores):
            bx, by = (b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0
            if abs(bx - size / 2.0) < size / 4.0 and abs(by - size / 2.0) < size / 4.0:
                best = max(best, float(sc))
        return best
