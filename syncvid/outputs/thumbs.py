"""Tiny per-clip thumbnail strips (first, middle, last aligned frame) for contact sheets and the report."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from syncvid.atomic import write_bytes_atomic

THUMB_SIZE = 96


def thumbnail_strip(images: list[np.ndarray], size: int = THUMB_SIZE) -> np.ndarray:
    """RGB images side by side, each resized to size×size."""
    tiles = [cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images]
    return np.concatenate(tiles, axis=1)


def save_thumbnail_strip(path: Path, images: list[np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".png", cv2.cvtColor(thumbnail_strip(images), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"could not encode thumbnail {path.name}")
    write_bytes_atomic(path, data.tobytes())


def load_thumbnail_strip(path: Path) -> np.ndarray | None:
    """The strip as RGB, or None when it is missing or unreadable."""
    if not path.is_file():
        return None
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
