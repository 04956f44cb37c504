"""The dlib backend's face detector: built once, then loaded from its saved form."""

from __future__ import annotations

import dlib
import numpy as np
import pytest

from syncvid.face import dlib_backend, synthetic
from syncvid.face.dlib_backend import DlibBackend, cache_dir, load_face_detector


def _frames(shared_media) -> list[np.ndarray]:
    """A synthetic face on a canvas, and the real videos' first frames when present."""
    frames = [np.ascontiguousarray(synthetic.place_face(synthetic.canvas(1280, 720), (640, 360), 200)[..., 0])]
    if shared_media is not None:
        from syncvid.media.decode import SourceReader

        for name in ("talk_25fps_844.mp4", "talk_30fps_700.mp4", "talk_22fps_700.mp4"):
            with SourceReader(shared_media / name) as reader:
                rgb = next(iter(reader.frames()))
            frames.append(np.ascontiguousarray(rgb.mean(axis=2).astype(np.uint8)))
    return frames


def _detections(detector, gray: np.ndarray) -> list[tuple]:
    rects, margins, kinds = detector.run(gray, 0, -0.5)
    return [(r.left(), r.top(), r.right(), r.bottom(), m, k) for r, m, k in zip(rects, margins, kinds)]


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNCVID_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNCVID_CACHE_DIR", str(tmp_path / "a"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.delenv("SYNCVID_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "syncvid"


def test_the_saved_detector_is_written_once_and_finds_the_same_faces(own_cache, monkeypatch, media_or_none):
    built = load_face_detector()
    saved = list(own_cache.glob("dlib-*-frontal_face_detector.svm"))
    assert len(saved) == 1 and dlib.__version__ in saved[0].name
    assert not list(own_cache.glob(".*.part"))  # written under a temporary name, then renamed

    def no_build():
        raise AssertionError("the detector was built again instead of loaded")

    monkeypatch.setattr(dlib, "get_frontal_face_detector", no_build)
    loaded = load_face_detector()
    monkeypatch.undo()
    fresh = dlib.get_frontal_face_detector()
    found = 0
    for gray in _frames(media_or_none):
        expected = _detections(fresh, gray)
        assert _detections(built, gray) == expected
        assert _detections(loaded, gray) == expected  # same boxes, margins and sub-detectors, exactly
        found += len(expected)
    assert found >= 1


def test_a_damaged_cache_is_rebuilt(own_cache):
    own_cache.mkdir(parents=True)
    path = own_cache / f"dlib-{dlib.__version__}-frontal_face_detector.svm"
    path.write_bytes(b"not a detector")
    detector = load_face_detector()
    gray = np.ascontiguousarray(synthetic.place_face(synthetic.canvas(640, 480), (320, 240), 180)[..., 0])
    assert _detections(detector, gray) == _detections(dlib.get_frontal_face_detector(), gray)
    assert path.stat().st_size > 10_000  # rewritten with the real detector
    dlib.fhog_object_detector(str(path))


def test_an_unwritable_cache_is_only_a_missed_speed_up(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("SYNCVID_CACHE_DIR", str(blocker / "cache"))
    backend = DlibBackend()
    backend.setup()
    rgb = synthetic.place_face(synthetic.canvas(640, 480), (320, 240), 180)
    assert len(backend.detect(rgb)) == 1
    assert dlib_backend.cache_dir() == blocker / "cache" and not (blocker / "cache").exists()
