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

__all__ = ["MelCache", "CorruptCacheEntry"]

log = logging.getLogger(__name__)


class CorruptCacheEntry(ValueError):
    """A cache file exists but cannot be used."""


def _source_stamp(path: str) -> np.ndarray:
    st = os.stat(path)
    return np.array([st.st_size, st.st_mtime_ns], dtype=np.int64)


class MelCache:
    """Mel spectrograms of clips, computed once and kept in `cache_dir`.

    `get(video_path, compute)` returns the cached array or calls `compute(video_path)`
    (which must return float32 [num_mels, T]) and stores its result.
    Counters `hits`, `misses` and `rebuilt` describe this process's use of the cache.
    """

    SUFFIX = "_mel.npz"

    def __init__(self, cache_dir: str | os.PathLike, params: MelParams) -> None:
        self.cache_dir = Path(cache_dir).expanduser()
        self.params = params
        self._fingerprint = params.fingerprint()
        self.hits = 0
        self.misses = 0
        self.rebuilt = 0

    def path_for(self, video_path: str | os.PathLike) -> Path:
        """The cache file of a clip: `<stem>_<hash of path and parameters>_mel.npz`."""
        full = os.path.abspath(os.fspath(video_path))
        key = hashlib.sha1(f"{full}\0{self._fingerprint}".encode()).hexdigest()[:16]
        return self.cache_dir / f"{Path(full).stem}_{key}{self.SUFFIX}"

    def load(self, video_path: str | os.PathLike) -> np.ndarray | None:
        """The cached mel of a clip, None when absent; CorruptCacheEntry when unusable."""
        cache_path = self.path_for(video_path)
        if not cache_path.is_file():
            return None
        try:
            with np.load(cache_path, allow_pickle=False) as npz:
                mel = np.array(npz["mel"])
                stamp = np.array(npz["source"])
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise CorruptCacheEntry(f"{cache_path}: unreadable ({type(exc).__name__}: {exc})") from exc
        if mel.dtype != np.float32 or mel.ndim != 2 or mel.shape[0] != self.params.num_mels or mel.shape[1] < 1:
            raise CorruptCacheEntry(f"{cache_path}: unexpected array {mel.dtype} {mel.shape}")
        if not np.isfinite(mel).all():
            raise CorruptCacheEntry(f"{cache_path}: non-finite values")
        if stamp.shape != (2,) or not np.array_equal(stamp, _source_stamp(os.fspath(video_path))):
            raise CorruptCacheEntry(f"{cache_path}: computed from a different version of {video_path}")
        return mel

    def store(self, video_path: str | os.PathLike, mel: np.ndarray) -> Path:
        """Write a clip's mel atomically (temporary file in the cache folder, then rename)."""
        mel = np.ascontiguousarray(mel, dtype=np.float32)
        if mel.ndim != 2 or mel.shape[0] != self.params.num_mels:
            raise ValueError(f"mel of shape {mel.shape} does not have {self.params.num_mels} bands")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        cache_path = self.path_for(video_path)
        with atomic_path(cache_path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, mel=mel, source=_source_stamp(os.fspath(video_path)))
        return cache_path

    def get(self, video_path: str | os.PathLike, compute: Callable[[str], np.ndarray]) -> np.ndarray:
        """The clip's mel from the cache, computing and storing it when absent or corrupt."""
        try:
            mel = self.load(video_path)
        except CorruptCacheEntry as exc:
            log.warning("rebuilding mel cache entry: %s", exc)
            self.rebuilt += 1
            try:
                self.path_for(video_path).unlink()
            except FileNotFoundError:
                pass
            mel = None
        if mel is not None:
            self.hits += 1
            return mel
        self.misses += 1
        mel = np.asarray(compute(os.fspath(video_path)), dtype=np.float32)
        self.store(video_path, mel)
        return mel
