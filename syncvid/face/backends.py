"""Face backends: one small interface, chosen by name in the configuration.

A backend finds faces in a frame (`detect`) and follows one face into the next
frame from its previous landmarks (`refine`); `verify` scores how face-like the
tracked region still is.  Every backend returns 68-point (iBUG) landmarks in
full-resolution image pixels, the three alignment anchors (L, R, N; see
`syncvid.face.align`) and a face box in the *reference box* convention
(`syncvid.face.landmarks`), so that the rules and the alignment downstream do
not depend on the backend.

Frames are given as `syncvid.media.picture.Picture`s (or RGB uint8 arrays, which
`as_picture` wraps): a backend asks for the pixels it needs (`rgb()` for a whole
frame, `rgb_region` / `warp_affine` near the face) so that a tracked frame need
not be converted to RGB as a whole.

Backends load their models in `setup()`, never in `__init__`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from syncvid.face.landmarks import Box
from syncvid.media.picture import Picture


class FaceBackendError(RuntimeError):
    """A backend cannot be created or set up (unknown name, missing model file, ...)."""


@dataclass(frozen=True)
class FaceObservation:
    """One face in one frame, in full-resolution image pixels."""

    box: Box  # reference box (InsightFace-like, includes part of the forehead)
    score: float  # detection confidence in [0, 1]
    landmarks: np.ndarray  # float32 [68, 2] (x, y)
    anchors: np.ndarray  # float64 [3, 2]: L, R, N
    extra: dict = field(default_factory=dict, compare=False)  # backend state (e.g. 106-point landmarks)

    @property
    def area(self) -> float:
        return max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0)


class FaceBackend(ABC):
    """Detector + landmarker behind one interface."""

    name: str = ""

    @abstractmethod
    def setup(self) -> None:
        """Load the models (once per worker)."""

    @abstractmethod
    def detect(self, image: Picture | np.ndarray) -> list[FaceObservation]:
        """All faces found in the frame, largest first (no size or score filtering)."""

    @abstractmethod
    def refine(self, image: Picture | np.ndarray, previous: FaceObservation) -> FaceObservation:
        """Landmarks of the face that was at `previous` one frame earlier."""

    @abstractmethod
    def verify(self, image: Picture | np.ndarray, face: FaceObservation) -> float:
        """Confidence in [0, 1] that `face` still covers a face (0: nothing there)."""


_BUILTIN = {
    "dlib": "syncvid.face.dlib_backend:DlibBackend",
    "insightface": "syncvid.face.insightface_backend:InsightFaceBackend",
}
_REGISTRY: dict[str, Callable[..., FaceBackend]] = {}


def register_backend(name: str, factory: Callable[..., FaceBackend]) -> None:
    """Make `factory(params: FaceSection) -> FaceBackend` available under `name`."""
    _REGISTRY[name] = factory


def available_backends() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def create_backend(params) -> FaceBackend:
    """The backend named by `params.backend` (a `FaceSection`), not yet set up."""
    name = params.backend
    if name in _REGISTRY:
        return _REGISTRY[name](params)
    if name not in _BUILTIN:
        raise FaceBackendError(
            f"unknown face backend {name!r} (face.backend); available: {', '.join(available_backends())}"
        )
    module_name, cls_name = _BUILTIN[name].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls.from_params(params)
