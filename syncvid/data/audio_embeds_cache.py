"""On-disk cache of each clip's Whisper embeddings (T, layers+1, D) at 50 Hz.

Same rules as the mel cache (syncvid.data.mel_cache): one `.npz` per (clip path, encoder
fingerprint), stamped with the clip's size and modification time, written atomically, and
rebuilt with a log line when unreadable, malformed or stale.  Stored as float32: a 5 s clip
with the tiny encoder is 250×5×384 values (1.9 MB), small next to the clip's frames, and
exact.
"""

from __future__ import annotations

import os

import numpy as np

from syncvid.data.mel_cache import ClipArrayCache

__all__ = ["AudioEmbedsCache"]


class AudioEmbedsCache(ClipArrayCache):
    """`get(video_path, compute)` → float32 (T, layers+1, D), computed once per clip and encoder."""

    SUFFIX = "_embeds.npz"
    FIELD = "embeds"
    WHAT = "audio embedding"

    def __init__(self, cache_dir: str | os.PathLike, encoder_fingerprint: str) -> None:
        super().__init__(cache_dir, f"whisper:{encoder_fingerprint}")

    def check(self, array: np.ndarray) -> str | None:
        if array.dtype != np.float32 or array.ndim != 3 or min(array.shape) < 1:
            return f"unexpected array {array.dtype} {array.shape} (embeddings (T, layers, D) expected)"
        return None
