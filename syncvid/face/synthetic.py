"""Frames with a real face at a known place, for tests, benchmarks and demos.

The face is the astronaut photograph shipped with scikit-image (a real,
frontal portrait); `place_face` pastes it, scaled, so that its face lands at a
chosen position and size on a plain canvas.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

# Where dlib's HOG detector finds the face in the 512×512 photograph (x0, y0, x1, y1).
ASTRONAUT_FACE_BOX = (179.0, 83.0, 267.0, 171.0)


@lru_cache(maxsize=1)
def astronaut() -> np.ndarray:
    from skimage import data

    img = np.ascontiguousarray(data.astronaut())
    img.setflags(write=False)
    return img


def canvas(width: int, height: int, value: int = 90) -> np.ndarray:
    """A plain canvas with a soft horizontal gradient (not perfectly flat, like a wall)."""
    ramp = np.linspace(-12, 12, width, dtype=np.float32)[None, :, None]
    img = np.clip(value + ramp + np.zeros((height, 1, 3), np.float32), 0, 255)
    return img.astype(np.uint8)


def place_face(image: np.ndarray, center: tuple[float, float], face_px: float) -> np.ndarray:
    """Paste the astronaut so that her face (HOG box side `face_px`) is centred at `center`.

    Works in place on `image` (H×W×3 uint8) and returns it; parts falling
    outside the image are clipped.
    """
    x0, y0, x1, y1 = ASTRONAUT_FACE_BOX
    s = face_px / (x1 - x0)
    fcx, fcy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    m = np.array([[s, 0.0, center[0] - s * fcx], [0.0, s, center[1] - s * fcy]])
    h, w = image.shape[:2]
    src = astronaut()
    warped = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    mask = cv2.warpAffine(np.full(src.shape[:2], 255, np.uint8), m, (w, h), flags=cv2.INTER_NEAREST)
    image[mask > 0] = warped[mask > 0]
    return image


def face_frame(width: int, height: int, center: tuple[float, float], face_px: float) -> np.ndarray:
    """A canvas with one astronaut face."""
    return place_face(canvas(width, height), center, face_px)
