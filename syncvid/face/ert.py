"""dlib's 68-point shape predictor, read from dlib's own model file and run as compiled loops.

The predictor is an ensemble of regression trees (Kazemi & Sullivan 2014): starting from the
mean shape placed in the face box, each of 15 cascade levels samples 500 pixels at positions
tied to the current shape, walks 500 depth-4 trees on differences of those pixels and adds
the 500 chosen leaf vectors (136 floats each) to the shape.  dlib keeps every leaf in a heap
allocation of its own, so one call waits on 7,500 scattered 544-byte reads from a 65 MB set of
leaves.  Here the leaves of one tree lie side by side, the loops are compiled by numba, the
tree walk has no branches and eight leaves are read in one pass (`ert_kernels.add_leaves`), so
that their cache misses overlap (docs/face.md gives the measured times of both).

What is computed is dlib's algorithm step for step (`dlib/image_processing/shape_predictor.h`):
the similarity transform from the mean shape to the current shape (Umeyama's least squares,
here in its closed 2-D form), feature pixels rounded to the nearest pixel and read as
(R + G + B) / 3 in integers, 0 outside the image, splits `f[a] - f[b] > threshold` going to
child 2i+1, else 2i+2, leaves added in tree order.  Unlike dlib, the result is not rounded to
whole pixels: landmarks come back as float32 sub-pixel positions (dlib's integers are these
values rounded).

The model file is parsed once (dlib's serialisation: integers as a length byte with a sign bit
followed by little-endian bytes, floats as mantissa and binary exponent, matrices as their
negated sizes followed by the values) and kept in the cache folder as arrays, which load far
faster than the file parses (docs/face.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from syncvid.atomic import atomic_path

__all__ = ["CompiledLoopsUnavailable", "ErtModel", "ShapePredictor", "parse_dlib_shape_predictor", "load_ert_model"]

# Written into the cached arrays' file name: bump when the layout changes.
_CACHE_VERSION = 2


@dataclass(frozen=True)
class ErtModel:
    """A shape predictor as arrays (C cascade levels, T trees, S splits and L = S + 1 leaves per
    tree, P parts, F feature pixels per level)."""

    initial_shape: np.ndarray  # float32 [2P]: the mean shape (x0, y0, x1, y1, ...) in box units
    split_features: np.ndarray  # int32 [C, T, S, 2]: the two feature pixels each split compares
    split_thresholds: np.ndarray  # float32 [C, T, S]
    leaves: np.ndarray  # float32 [C, T, L, 2P]: shape increments
    anchors: np.ndarray  # int32 [C, F]: the part each feature pixel is placed relative to
    deltas: np.ndarray  # float32 [C, F, 2]: its offset from that part, in mean-shape units

    @property
    def num_parts(self) -> int:
        return self.initial_shape.shape[0] // 2

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class CompiledLoopsUnavailable(RuntimeError):
    """numba cannot be imported, or could not compile one of the loops (the message says which)."""


# ------------------------------------------------------------------------------- parsing
def _kernels():
    # The compiled loops live in their own module, imported on first use: importing syncvid
    # does not import numba.  numba keeps the machine code in its cache after the first run.
    try:
        from syncvid.face import ert_kernels
    except Exception as exc:  # ImportError, or numba failing while it sets itself up
        raise CompiledLoopsUnavailable(f"numba cannot be imported ({_first_line(exc)})") from exc
    return ert_kernels


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _from_numba(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("numba", "llvmlite")


def _run(kernel, *args):
    """`kernel(*args)`, its compilation errors (numba's or llvmlite's) raised as
    CompiledLoopsUnavailable; what the loop itself raises (IndexError) passes unchanged."""
    try:
        return kernel(*args)
    except Exception as exc:
        if _from_numba(exc):
            name = getattr(kernel, "__name__", "a loop")
            raise CompiledLoopsUnavailable(f"numba could not compile {name} ({_first_line(exc)})") from exc
        raise


_PARSE_STEPS = {
    -1: "the file's version is not 1", -2: "bad mean shape", -3: "cascade count differs",
    -4: "tree count differs between levels", -5: "trees of different depths",
    -6: "a split reads a feature that does not exist", -7: "leaf count does not match the depth",
    -8: "leaf size differs from the shape's", -9: "anchor list count differs", -10: "feature count differs",
    -11: "an anchor names a part that does not exist", -12: "delta list count differs",
    -13: "delta count differs",
}


def parse_dlib_shape_predictor(path: str | os.PathLike) -> ErtModel:
    """Read a shape predictor file written by dlib (`shape_predictor_68_face_landmarks.dat`).

    Raises ValueError naming the file when it is not one (or has trees of unequal depth,
    which dlib's own trainer never writes)."""
    path = Path(path)
    buf = np.fromfile(path, dtype=np.uint8)
    try:
        dims = _run(_kernels().model_sizes, buf)
    except IndexError:
        raise ValueError(f"{path}: not a dlib shape predictor file (it ends too early)") from None
    C, T, S, L, p2, F = (int(v) for v in dims)
    if not (C > 0 and T > 0 and S >= 0 and L == S + 1 and p2 > 0 and p2 % 2 == 0 and F > 0):
        raise ValueError(f"{path}: not a dlib shape predictor file (sizes {C}x{T} trees, {L} leaves, {p2 // 2} parts)")
    model = ErtModel(
        initial_shape=np.empty(p2, np.float32),
        split_features=np.empty((C, T, S, 2), np.int32),
        split_thresholds=np.empty((C, T, S), np.float32),
        leaves=np.empty((C, T, L, p2), np.float32),
        anchors=np.empty((C, F), np.int32),
        deltas=np.empty((C, F, 2), np.float32),
    )
    try:
        end = _run(_kernels().parse_model, buf, dims, *model.arrays().values())
    except IndexError:
        raise ValueError(f"{path}: not a dlib shape predictor file (it ends too early)") from None
    if end < 0:
        raise ValueError(f"{path}: not a dlib shape predictor file ({_PARSE_STEPS.get(int(end), 'unreadable')})")
    if end != buf.size:
        raise ValueError(f"{path}: not a dlib shape predictor file ({buf.size - end} bytes after the model)")
    return model


def load_ert_model(path: str | os.PathLike, cache: Path | None) -> ErtModel:
    """The model of `path`, from its arrays in `cache` when they are there (else parsed and
    saved there, atomically; an unwritable or damaged cache only costs the parse).

    The leaves (99 % of the model) are kept in a `.npy` file of their own and mapped, not
    read: worker processes on one machine share one copy of them in memory."""
    path = Path(path)
    stat = path.stat()
    base = f"ert{_CACHE_VERSION}-{path.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    if cache is not None:
        model = _load_cached(cache / f"{base}.leaves.npy", cache / f"{base}.npz")
        if model is not None:
            return model
    model = parse_dlib_shape_predictor(path)
    if cache is None:
        return model
    try:
        with atomic_path(cache / f"{base}.leaves.npy") as tmp:
            with open(tmp, "wb") as fh:  # a file object: np.save would add ".npy" to a name
                np.save(fh, model.leaves)
        with atomic_path(cache / f"{base}.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **{k: v for k, v in model.arrays().items() if k != "leaves"})
    except OSError:
        return model
    return _load_cached(cache / f"{base}.leaves.npy", cache / f"{base}.npz") or model


def _load_cached(leaves_path: Path, rest_path: Path) -> ErtModel | None:
    if not (leaves_path.is_file() and rest_path.is_file()):
        return None
    try:
        leaves = np.load(leaves_path, mmap_mode="r")
        with np.load(rest_path) as data:
            rest = {k: np.ascontiguousarray(data[k]) for k in ErtModel.__dataclass_fields__ if k != "leaves"}
    except (OSError, ValueError, KeyError, EOFError):
        return None  # damaged: parsed again and rewritten
    levels_trees = rest["split_thresholds"].shape[:2]
    if leaves.ndim != 4 or leaves.shape[:2] != levels_trees or leaves.shape[3] != rest["initial_shape"].shape[0]:
        return None
    return ErtModel(leaves=leaves, **rest)


class ShapePredictor:
    """`predict(image, box)` → float32 [P, 2] landmarks in image pixels.

    Raises CompiledLoopsUnavailable (on construction or on a call) when numba cannot run the
    loops; `syncvid.face.dlib_backend.load_shape_predictor` then falls back to dlib's own."""

    def __init__(self, model: ErtModel):
        self.model = model
        ref = model.initial_shape.astype(np.float64).reshape(-1, 2)
        centred = ref - ref.mean(axis=0)
        self._ref_centred = np.ascontiguousarray(centred)
        self._ref_sigma = float(np.sum(centred * centred) / len(ref))
        self._predict = _kernels().predict

    def __call__(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """`image`: uint8 H×W×3 RGB (read as (R+G+B)/3, as dlib does) or H×W grey; `box`: the
        face box (left, top, right, bottom) with dlib's inclusive right/bottom convention."""
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(f"expected a uint8 grey or RGB image, got {image.dtype} {image.shape}")
        if image.ndim == 2:
            image = image[:, :, None]
        m = self.model
        out = np.empty((m.num_parts, 2), np.float32)
        _run(self._predict, image, np.asarray(box, dtype=np.float64), m.initial_shape, self._ref_centred,
             self._ref_sigma, m.split_features, m.split_thresholds, m.leaves, m.anchors, m.deltas, out)
        return out

