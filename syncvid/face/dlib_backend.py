"""Default backend: dlib's HOG frontal face detector + its 68-point shape predictor.

Nothing is downloaded: the predictor file ships inside the
`face_recognition_models` package.  Detection runs on a grayscale copy of the
frame resized to `detect_width`; the shape predictor runs at full resolution on
the RGB pixels of a region around its box, which is all it reads: frames are
taken as `Picture`s (or RGB arrays), so a tracked frame is never converted to
RGB as a whole.  The predictor's model is dlib's file, evaluated by
`syncvid.face.ert` (the same trees, twice as fast; landmarks come back with
their sub-pixel positions, which dlib rounds to whole pixels).  Where numba is missing or
cannot compile those loops, dlib's own predictor is used instead, after a one-line notice.

The HOG detector's window is 80×80 pixels: the smallest face it finds is about
80·W/detect_width pixels wide in a frame W pixels wide (240 px at 1080p with the
default 640), or half that with `detect_upsample` = 1 (four times slower).
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from syncvid.atomic import atomic_path
from syncvid.face.align import anchors_from_68
from syncvid.face.backends import FaceBackend, FaceBackendError, FaceObservation
from syncvid.face.ert import CompiledLoopsUnavailable, ShapePredictor, load_ert_model
from syncvid.face.landmarks import Box, box_center, follow_box, predictor_box_from_68, reference_box_from_68
from syncvid.media.picture import Picture, as_picture

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
# Side, in pixels, a face is resized to before the HOG detector verifies a tracked face.
_VERIFY_FACE_PX = 90.0
_VERIFY_WINDOW = 1.6  # window side, in face sides
# The shape predictor reads pixels near the face; it is given the region around its box grown by
# this many box sides on every side.  On real talking heads it reads up to 0.2-0.3 sides out (the
# landmarks on a region grown by 0.3 equal those on the whole frame); tests compare the two.
_PREDICTOR_MARGIN = 0.4


def predictor_path() -> Path:
    """Location of the 68-point predictor inside the installed face_recognition_models package.

    Found from the package's location rather than by importing it (its
    `__init__` needs `pkg_resources`, which recent setuptools no longer ships).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceBackendError(
            "the dlib face backend needs the face_recognition_models package (pip install face_recognition_models)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise FaceBackendError(f"68-point shape predictor not found: {path}")
    return path


def cache_dir() -> Path:
    """Where derived model files are kept: $SYNCVID_CACHE_DIR, else $XDG_CACHE_HOME/syncvid, else ~/.cache/syncvid."""
    explicit = os.environ.get("SYNCVID_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "syncvid"


def load_face_detector():
    """dlib's HOG frontal face detector, loaded from its saved form when one is cached.

    `dlib.get_frontal_face_detector()` decompresses the model dlib embeds, in every worker
    process; the same detector saved with its own `save()` loads far faster (docs/face.md gives
    both times).  The first build is saved into `cache_dir()` under a name that carries dlib's
    version; a cache that cannot be read is rebuilt, one that cannot be written is only a missed
    speed-up.
    """
    import dlib

    path = cache_dir() / f"dlib-{dlib.__version__}-frontal_face_detector.svm"
    if path.is_file():
        try:
            return dlib.fhog_object_detector(str(path))
        except RuntimeError:
            pass  # damaged: rebuilt and rewritten below
    detector = dlib.get_frontal_face_detector()
    try:
        with atomic_path(path) as tmp:
            detector.save(str(tmp))
    except (OSError, RuntimeError):
        pass
    return detector


class DlibShapePredictor:
    """dlib's own 68-point predictor behind `ShapePredictor`'s call: the same trees, the
    landmarks rounded to whole pixels, slower."""

    def __init__(self, path: Path):
        import dlib

        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(path))

    def __call__(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(f"expected a uint8 grey or RGB image, got {image.dtype} {image.shape}")
        rect = self._dlib.rectangle(*(int(round(v)) for v in box))
        shape = self._predictor(np.ascontiguousarray(image), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


_fallback_noticed = False


def _fall_back(path: Path, reason: CompiledLoopsUnavailable) -> DlibShapePredictor:
    global _fallback_noticed
    if not _fallback_noticed:  # once per process
        _fallback_noticed = True
        print(f"syncvid: {reason}; landmarks come from dlib's own shape predictor (whole pixels, slower)",
              file=sys.stderr)
    return DlibShapePredictor(path)


class LandmarkPredictor:
    """`predictor(image, box)` → float32 [68, 2]: `syncvid.face.ert`'s compiled predictor, or
    dlib's own from the first time numba cannot import or compile it."""

    def __init__(self, path: Path, compiled: ShapePredictor | None, fallback: DlibShapePredictor | None = None):
        self.path = path
        self._compiled = compiled
        self._fallback = fallback

    @property
    def compiled(self) -> bool:
        return self._fallback is None

    def __call__(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        if self._fallback is None:
            try:
                return self._compiled(image, box)
            except CompiledLoopsUnavailable as exc:
                self._fallback = _fall_back(self.path, exc)
        return self._fallback(image, box)


def load_shape_predictor() -> LandmarkPredictor:
    """The 68-point predictor of `face_recognition_models`, its arrays from `cache_dir()`; dlib's
    own predictor, after a one-line notice on stderr, when numba cannot run the compiled one."""
    path = predictor_path()
    try:
        return LandmarkPredictor(path, ShapePredictor(load_ert_model(path, cache_dir())))
    except CompiledLoopsUnavailable as exc:
        return LandmarkPredictor(path, None, _fall_back(path, exc))
    except (OSError, ValueError) as exc:
        raise FaceBackendError(f"cannot load the 68-point shape predictor {path}: {exc}") from exc


def margin_to_score(margin: float) -> float:
    """dlib's SVM margin → [0, 1] (logistic; the detector's own threshold 0 maps to 0.5)."""
    return 1.0 / (1.0 + math.exp(-float(margin)))


def _rect_corners(box: Box) -> tuple[int, int, int, int]:
    """The whole-pixel rectangle (left, top, right, bottom) dlib's predictor is given for `box`."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


class DlibBackend(FaceBackend):
    name = "dlib"

    def __init__(self, detect_width: int = 640, detect_upsample: int = 0, verify_margin: float = -0.5):
        if detect_width < 80:
            raise ValueError(f"face.detect_width must be at least 80, got {detect_width}")
        self.detect_width = int(detect_width)
        self.detect_upsample = int(detect_upsample)
        self.verify_margin = float(verify_margin)
        self._detector = None
        self._predictor = None

    @classmethod
    def from_params(cls, params) -> "DlibBackend":
        return cls(
            detect_width=params.detect_width,
            detect_upsample=getattr(params, "detect_upsample", 0),
            verify_margin=getattr(params, "verify_margin", -0.5),
        )

    def setup(self) -> None:
        if self._predictor is not None:
            return
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - dlib is a hard dependency
            raise FaceBackendError("the dlib face backend needs dlib (pip install dlib-bin)") from exc
        self._detector = load_face_detector()
        self._predictor = load_shape_predictor()

    def _require(self) -> None:
        if self._predictor is None:
            raise RuntimeError("DlibBackend.setup() must be called before use")

    def _landmarks(self, image: Picture | np.ndarray, box: Box) -> np.ndarray:
        picture = as_picture(image)
        left, top, right, bottom = _rect_corners(box)
        margin = _PREDICTOR_MARGIN * max(right - left + 1, bottom - top + 1)
        pixels, ox, oy = picture.rgb_region(left - margin, top - margin, right + 1 + margin, bottom + 1 + margin)
        if pixels.size == 0:  # a box entirely outside the frame: the predictor reads nothing but zeros
            pixels, ox, oy = picture.rgb(), 0, 0
        lm = self._predictor(pixels, (left - ox, top - oy, right - ox, bottom - oy))
        lm += np.array([ox, oy], dtype=np.float32)
        return lm

    def _observe(self, picture: Picture, box: Box, score: float, key: dict | None = None) -> FaceObservation:
        lm = self._landmarks(picture, box)
        # `key` keeps the detector's box and the landmarks found in it: tracking moves that
        # box with the face instead of rebuilding one from landmarks, which would drift.
        key = key if key is not None else {"box": box, "landmarks": lm}
        return FaceObservation(reference_box_from_68(lm), score, lm, anchors_from_68(lm), {"key": key})

    def detect(self, image: Picture | np.ndarray) -> list[FaceObservation]:
        self._require()
        picture = as_picture(image)
        image_rgb = picture.rgb()
        h, w = image_rgb.shape[:2]
        scale = self.detect_width / w
        gray = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
        if abs(scale - 1.0) > 1e-3:
            size = (self.detect_width, max(1, int(round(h * scale))))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        rects, margins, _ = self._detector.run(gray, self.detect_upsample, 0.0)
        faces = []
        for rect, margin in zip(rects, margins):
            box = (rect.left() / scale, rect.top() / scale, (rect.right() + 1) / scale, (rect.bottom() + 1) / scale)
            faces.append(self._observe(picture, box, margin_to_score(margin)))
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def refine(self, image: Picture | np.ndarray, previous: FaceObservation) -> FaceObservation:
        self._require()
        key = previous.extra.get("key")
        if key is None:
            box = predictor_box_from_68(previous.landmarks)
        else:
            box = follow_box(key["box"], key["landmarks"], previous.landmarks)
        return self._observe(as_picture(image), box, previous.score, key)

    def verify(self, image: Picture | np.ndarray, face: FaceObservation) -> float:
        """Runs the HOG detector on a small window around the tracked face."""
        self._require()
        box = predictor_box_from_68(face.landmarks)
        side = max(box[2] - box[0], 1.0)
        cx, cy = box_center(box)
        s = _VERIFY_FACE_PX / side  # resize factor: face → _VERIFY_FACE_PX
        out = int(round(_VERIFY_WINDOW * _VERIFY_FACE_PX))  # a window a little wider than the face
        m = np.array([[s, 0.0, out / 2.0 - s * cx], [0.0, s, out / 2.0 - s * cy]])
        window = as_picture(image).warp_affine(m, (out, out), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        gray = cv2.cvtColor(window, cv2.COLOR_RGB2GRAY)
        rects, margins, _ = self._detector.run(gray, 0, self.verify_margin)
        best = None
        for rect, margin in zip(rects, margins):
            rx, ry = (rect.left() + rect.right()) / 2.0, (rect.top() + rect.bottom()) / 2.0
            if abs(rx - out / 2.0) < 0.5 * _VERIFY_FACE_PX and abs(ry - out / 2.0) < 0.5 * _VERIFY_FACE_PX:
                best = margin if best is None else max(best, margin)
        return 0.0 if best is None else margin_to_score(best)
