"""dlib's shape predictor read from its file and evaluated by syncvid.face.ert."""

from __future__ import annotations

import math

import dlib
import numpy as np
import pytest

from syncvid.face import ert, synthetic
from syncvid.face.dlib_backend import predictor_path
from syncvid.face.ert import ShapePredictor, load_ert_model, parse_dlib_shape_predictor


# ------------------------------------------------------------------ dlib's serialisation, for test models
def _int(v: int) -> bytes:
    body = abs(int(v)).to_bytes(8, "little").rstrip(b"\0") or b"\0"
    return bytes([len(body) | (0x80 if v < 0 else 0)]) + body


def _float(v: float) -> bytes:
    m, e = math.frexp(float(np.float32(v)))
    return _int(int(m * (1 << 24))) + _int(e - 24)


def _column(values) -> bytes:
    return _int(-len(values)) + _int(-1) + b"".join(_float(v) for v in values)


def _model_bytes(initial, levels, anchors, deltas) -> bytes:
    """levels: per level a list of trees (splits [(a, b, thresh)], leaves [[2P floats]])."""
    out = _int(1) + _column(initial) + _int(len(levels))
    for trees in levels:
        out += _int(len(trees))
        for splits, leaves in trees:
            out += _int(len(splits)) + b"".join(_int(a) + _int(b) + _float(t) for a, b, t in splits)
            out += _int(len(leaves)) + b"".join(_column(leaf) for leaf in leaves)
    out += _int(len(anchors)) + b"".join(_int(len(a)) + b"".join(_int(i) for i in a) for a in anchors)
    out += _int(len(deltas)) + b"".join(_int(len(d)) + b"".join(_float(x) + _float(y) for x, y in d) for d in deltas)
    return out


def _two_point_model(tmp_path):
    """Parts at (0.25, 0.5) and (0.75, 0.5) of the box; one tree: if the pixel under part 0 is
    more than 10 brighter than the one under part 1, part 0 moves right by 0.1 box widths, else
    part 1 moves left by 0.1."""
    data = _model_bytes(
        initial=[0.25, 0.5, 0.75, 0.5],
        levels=[[([(0, 1, 10.0)], [[0.1, 0.0, 0.0, 0.0], [0.0, 0.0, -0.1, 0.0]])]],
        anchors=[[0, 1]],
        deltas=[[(0.0, 0.0), (0.0, 0.0)]],
    )
    path = tmp_path / "two_points.dat"
    path.write_bytes(data)
    return path, data


@pytest.fixture(scope="module")
def model68():
    return parse_dlib_shape_predictor(predictor_path())


# ------------------------------------------------------------------ a model with a known answer
@pytest.mark.parametrize("bright, expected", [(0, [[35.0, 50.0], [75.0, 50.0]]), (1, [[25.0, 50.0], [65.0, 50.0]])])
def test_a_hand_made_model_moves_the_part_its_split_chooses(tmp_path, bright, expected):
    path, _ = _two_point_model(tmp_path)
    model = parse_dlib_shape_predictor(path)
    assert model.split_features.shape == (1, 1, 1, 2) and model.leaves.shape == (1, 1, 2, 4)
    image = np.zeros((101, 101, 3), np.uint8)
    image[50, 25 if bright == 0 else 75] = (200, 190, 180)
    out = ShapePredictor(model)(image, (0, 0, 100, 100))
    np.testing.assert_allclose(out, expected, atol=1e-5)
    # The same pixels as grey: (R + G + B) / 3 is what the trees compare.
    grey = ((image.astype(np.int32).sum(axis=2)) // 3).astype(np.uint8)
    np.testing.assert_array_equal(ShapePredictor(model)(grey, (0, 0, 100, 100)), out)


def test_feature_pixels_outside_the_image_read_as_zero(tmp_path):
    path, _ = _two_point_model(tmp_path)
    sp = ShapePredictor(parse_dlib_shape_predictor(path))
    image = np.full((60, 60), 255, np.uint8)
    # Box (-50, 0)-(50, 100): part 0 falls at x = -25 (outside: 0), part 1 at x = 25 (255):
    # 0 - 255 > 10 is false, so part 1 moves left.
    np.testing.assert_allclose(sp(image, (-50, 0, 50, 100)), [[-25.0, 50.0], [15.0, 50.0]], atol=1e-5)


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[: len(d) // 2], "ends too early"),
    (lambda d: d + b"\x01\x00", "bytes after the model"),
    (lambda d: _int(2) + d[2:], "version"),
    (lambda d: b"not a model at all" * 10, "not a dlib shape predictor"),
])
def test_files_that_are_not_shape_predictors_are_named(tmp_path, damage, message):
    path, data = _two_point_model(tmp_path)
    path.write_bytes(damage(data))
    with pytest.raises(ValueError, match=message) as err:
        parse_dlib_shape_predictor(path)
    assert "two_points.dat" in str(err.value)


# ------------------------------------------------------------------ the shipped 68-point model
def test_the_shipped_model_has_dlibs_layout(model68):
    assert model68.num_parts == 68
    assert model68.split_features.shape == (15, 500, 15, 2)  # 15 levels of 500 depth-4 trees
    assert model68.leaves.shape == (15, 500, 16, 136)
    assert model68.anchors.shape == (15, 500) and model68.deltas.shape == (15, 500, 2)
    assert 0.0 < model68.initial_shape.min() and model68.initial_shape.max() < 1.2


def _faces(shared_media_or_none):
    """(image, dlib rectangle corners) pairs: a synthetic face, and real frames when present."""
    detector = dlib.get_frontal_face_detector()
    images = [synthetic.place_face(synthetic.canvas(640, 360), (320, 180), 150)]
    if shared_media_or_none is not None:
        from syncvid.media.decode import SourceReader

        for name in ("talk_25fps_844.mp4", "talk_30fps_700.mp4", "talk_22fps_700.mp4"):
            with SourceReader(shared_media_or_none / name) as reader:
                images += [f for i, f in zip(range(40), reader.frames()) if i % 8 == 0]
    out = []
    for image in images:
        image = np.ascontiguousarray(image)
        for r in detector(image):
            out.append((image, (r.left(), r.top(), r.right(), r.bottom())))
    return out


def test_landmarks_are_dlibs_before_its_rounding(model68, media_or_none):
    reference = dlib.shape_predictor(str(predictor_path()))
    sp = ShapePredictor(model68)
    faces = _faces(media_or_none)
    assert faces
    equal = total = 0
    for image, (left, top, right, bottom) in faces:
        ours = sp(image, (left, top, right, bottom))
        theirs = np.array([(p.x, p.y) for p in reference(image, dlib.rectangle(left, top, right, bottom)).parts()])
        assert np.abs(ours - theirs).max() <= 1.0  # dlib rounds to whole pixels
        equal += int((np.floor(ours + 0.5) == theirs).all(axis=1).sum())
        total += len(theirs)
    assert equal >= 0.99 * total, f"{equal} of {total} points equal after rounding"


def test_a_view_of_a_larger_frame_gives_the_same_landmarks(model68):
    image = np.ascontiguousarray(synthetic.place_face(synthetic.canvas(640, 360), (320, 180), 150))
    sp = ShapePredictor(model68)
    box = (250, 110, 390, 250)
    whole = sp(image, box)
    view = image[60:320, 180:470]  # not contiguous
    np.testing.assert_allclose(sp(view, (box[0] - 180, box[1] - 60, box[2] - 180, box[3] - 60)) + [180, 60], whole,
                               atol=1e-4)


# ------------------------------------------------------------------ the cached arrays
def test_the_model_is_parsed_once_then_loaded_from_the_cache(tmp_path, monkeypatch):
    path, _ = _two_point_model(tmp_path)
    cache = tmp_path / "cache"
    first = load_ert_model(path, cache)
    assert len(list(cache.glob("ert*-two_points-*.npz"))) == 1
    assert len(list(cache.glob("ert*-two_points-*.leaves.npy"))) == 1
    assert not list(cache.glob(".*.part"))

    def no_parse(_):
        raise AssertionError("parsed again instead of loaded")

    monkeypatch.setattr(ert, "parse_dlib_shape_predictor", no_parse)
    again = load_ert_model(path, cache)
    for name, value in first.arrays().items():
        np.testing.assert_array_equal(getattr(again, name), value)
    assert isinstance(again.leaves, np.memmap)  # mapped: processes share one copy


@pytest.mark.parametrize("damaged", ["*.npz", "*.leaves.npy"])

def test_a_damaged_cache_is_parsed_again_and_rewritten(tmp_path, damaged):
    path, _ = _two_point_model(tmp_path)
    cache = tmp_path / "cache"
    load_ert_model(path, cache)
    (saved,) = cache.glob(damaged)
    saved.write_bytes(b"damaged")
    model = load_ert_model(path, cache)
    assert model.num_parts == 2 and saved.stat().st_size > 100


def test_an_unwritable_cache_only_costs_the_parse(tmp_path):
    path, _ = _two_point_model(tmp_path)
    cache = tmp_path / "a_file"  # a cache "folder" that is a file cannot be written into
    cache.write_text("not a folder")
    assert load_ert_model(path, cache).num_parts == 2


def test_no_cache_folder_parses(tmp_path):
    path, _ = _two_point_model(tmp_path)
    assert load_ert_model(path, None).num_parts == 2


# ------------------------------------------------------------------ without numba
_WITHOUT_NUMBA = r"""
import sys
sys.modules["numba"] = None  # `import numba` raises ImportError, as where it is not installed
import dlib, numpy as np
from syncvid.face import synthetic
from syncvid.face.dlib_backend import load_shape_predictor, predictor_path
image = np.ascontiguousarray(synthetic.place_face(synthetic.canvas(320, 240), (160, 120), 110))
box = (105, 65, 215, 175)
sp = load_shape_predictor()
ours = sp(image, box)
sp(image[10:230, 10:310], (95, 55, 205, 165))  # a view: still dlib's, no second notice
theirs = dlib.shape_predictor(str(predictor_path()))(image, dlib.rectangle(*box))
assert not sp.compiled
assert ours.dtype == np.float32 and ours.shape == (68, 2)
assert (ours == np.array([(p.x, p.y) for p in theirs.parts()])).all()
print("ok")
"""


def test_without_numba_landmarks_come_from_dlib_after_one_line(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root), SYNCVID_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", _WITHOUT_NUMBA], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("syncvid: numba cannot be imported (")
    assert "dlib's own shape predictor" in lines[0]


def test_a_failed_compile_falls_back_to_dlib_with_one_line(monkeypatch, capsys):
    from numba.core.errors import TypingError

    from syncvid.face import dlib_backend, ert_kernels

    def does_not_compile(*args):
        raise TypingError("Failed in nopython mode pipeline (step: nopython frontend)\nmore detail")

    monkeypatch.setattr(ert_kernels, "predict", does_not_compile)
    monkeypatch.setattr(dlib_backend, "_fallback_noticed", False)
    sp = dlib_backend.load_shape_predictor()
    assert sp.compiled  # the loops fail on their first call, not when loaded
    image = np.ascontiguousarray(synthetic.place_face(synthetic.canvas(320, 240), (160, 120), 110))
    box = (105, 65, 215, 175)
    ours = sp(image, box)
    again = sp(image, box)
    reference = dlib.shape_predictor(str(predictor_path()))(image, dlib.rectangle(*box))
    np.testing.assert_array_equal(ours, np.array([(p.x, p.y) for p in reference.parts()], np.float32))
    np.testing.assert_array_equal(again, ours)
    assert not sp.compiled
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["syncvid: numba could not compile does_not_compile (Failed in nopython mode pipeline "
                   "(step: nopython frontend)); landmarks come from dlib's own shape predictor (whole pixels, slower)"]
