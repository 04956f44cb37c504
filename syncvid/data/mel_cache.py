"""On-disk cache of each clip's full mel spectrogram.

One `.npz` file per (clip path, mel parameters): the mel array plus the clip's size and
modification time when it was computed.  Files are written under a temporary name in
the cache folder and renamed into place, so concurrent DataLoader workers never read a
half-written entry.  An entry that cannot be read, has the wrong shape or type, holds
non-finite values, or belongs to a different version of the clip is logged, removed and
rebuilt.  No file handle is kept open between calls, so the cache is safe across fork.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from syncvid.atomic import atomic_path
from syncvid.data.mel import MelParams

__all__ = ["ClipArrayCache", "MelCache", "CorruptCacheEntry"]

log = logging.getLogger(__name__)


class CorruptCacheEntry(ValueError):
    """A cache file exists but cannot be used."""


def _source_stamp(path: str) -> np.ndarray:
    st = os.stat(path)
    return np.array([st.st_size, st.st_mtime_ns], dtype=np.int64)


class ClipArrayCache:
    """Per-clip arrays computed once and kept in `cache_dir` (see the module docstring).

    Subclasses name the entry (`SUFFIX`, `FIELD`), say what a valid array looks like
    (`check`), and pass a `fingerprint` of whatever computed the array, so that entries of
    other parameters or another model are never reused.
    """

    SUFFIX = "_array.npz"
    FIELD = "array"
    WHAT = "array"

    def __init__(self, cache_dir: str | os.PathLike, fingerprint: str) -> None:
        self.cache_dir = Path(cache_dir).expanduser()
        self._fingerprint = fingerprint
        self.hits = 0
        self.misses = 0
        self.rebuilt = 0

    def check(self, array: np.ndarray) -> str | None:
        """What is wrong with a loaded or computed array, or None."""
        return None

    def path_for(self, video_path: str | os.PathLike) -> Path:
        """The cache file of a clip: `<stem>_<hash of path and fingerprint><SUFFIX>`."""
        full = os.path.abspath(os.fspath(video_path))
        key = hashlib.sha1(f"{full}\0{self._fingerprint}".encode()).hexdigest()[:16]
        return self.cache_dir / f"{Path(full).stem}_{key}{self.SUFFIX}"

    def load(self, video_path: str | os.PathLike) -> np.ndarray | None:
        """The cached array of a clip, None when absent; CorruptCacheEntry when unusable."""
        cache_path = self.path_for(video_path)
        if not cache_path.is_file():
            return None
        try:
            with np.load(cache_path, allow_pickle=False) as npz:
                array = np.array(npz[self.FIELD])
                stamp = np.array(npz["source"])
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise CorruptCacheEntry(f"{cache_path}: unreadable ({type(exc).__name__}: {exc})") from exc
        problem = self.check(array)
        if problem:
            raise CorruptCacheEntry(f"{cache_path}: {problem}")
        if not np.isfinite(array).all():
            raise CorruptCacheEntry(f"{cache_path}: non-finite values")
        if stamp.shape != (2,) or not np.array_equal(stamp, _source_stamp(os.fspath(video_path))):
            raise CorruptCacheEntry(f"{cache_path}: computed from a different version of {video_path}")
        return array

    def store(self, video_path: str | os.PathLike, array: np.ndarray) -> Path:
        """Write a clip's array atomically (temporary file in the cache folder, then rename)."""
        array = np.ascontiguousarray(array, dtype=np.float32)
        problem = self.check(array)
        if problem:
            raise ValueError(problem)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        cache_path = self.path_for(video_path)
        with atomic_path(cache_path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **{self.FIELD: array, "source": _source_stamp(os.fspath(video_path))})
        return cache_path

    def get(self, video_path: str | os.PathLike, compute: Callable[[str], np.ndarray]) -> np.ndarray:
        """The clip's array from the cache, computing and storing it when absent or corrupt."""
        try:
            array = self.load(video_path)
        except CorruptCacheEntry as exc:
            log.warning("rebuilding %s cache entry: %s", self.WHAT, exc)
            self.rebuilt += 1
            try:
                self.path_for(video_path).unlink()
            except FileNotFoundError:
                pass
            array = None
        if array is not None:
            self.hits += 1
            return array
        self.misses += 1
        array = np.asarray(compute(os.fspath(video_path)), dtype=np.float32)
        self.store(video_path, array)
        return array


class MelCache(ClipArrayCache):
    """Mel spectrograms of clips, computed once and kept in `cache_dir`.

    `get(video_path, compute)` returns the cached array or calls `compute(video_path)`
    (which must return float32 [num_mels, T]) and stores its result.
    Counters `hits`, `misses` and `rebuilt` describe this process's use of the cache.
    """

    SUFFIX = "_mel.npz"
    FIELD = "mel"
    WHAT = "mel"

    def __init__(self, cache_dir: str | os.PathLike, params: MelParams) -> None:
        super().__init__(cache_dir, params.fingerprint())
        self.params = params

    def check(self, array: np.ndarray) -> str | None:
        if array.dtype != np.float32 or array.ndim != 2 or array.shape[0] != self.params.num_mels or array.shape[1] < 1:
            return f"unexpected array {array.dtype} {array.shape} (a mel of {self.params.num_mels} bands expected)"
        return None
