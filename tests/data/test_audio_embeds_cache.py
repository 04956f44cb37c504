"""Whisper embeddings cached per clip: hits, stale entries, corrupt files, other encoders."""

from __future__ import annotations

import os

import numpy as np
import pytest

from syncvid.data.audio_embeds_cache import AudioEmbedsCache


def test_hit_miss_stale_and_corrupt(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x" * 10)
    cache = AudioEmbedsCache(tmp_path / "cache", "enc1")
    calls = []

    def compute(path):
        calls.append(path)
        return np.full((7, 5, 4), len(calls), np.float32)

    first = cache.get(clip, compute)
    again = cache.get(clip, compute)
    assert first.shape == (7, 5, 4) and np.array_equal(first, again) and len(calls) == 1
    assert (cache.hits, cache.misses) == (1, 1)
    # another encoder never reads this entry
    assert AudioEmbedsCache(tmp_path / "cache", "enc2").load(clip) is None
    # a changed clip is recomputed
    clip.write_bytes(b"y" * 11)
    os.utime(clip, ns=(1, 1))
    assert cache.get(clip, compute)[0, 0, 0] == 2 and cache.rebuilt == 1
    # a damaged entry is rebuilt
    cache.path_for(clip).write_bytes(b"garbage")
    assert cache.get(clip, compute)[0, 0, 0] == 3 and cache.rebuilt == 2
    assert not list((tmp_path / "cache").glob("*.tmp*"))


def test_wrong_shapes_are_refused(tmp_path):
    clip = tmp_path / "c.mp4"
    clip.write_bytes(b"x")
    cache = AudioEmbedsCache(tmp_path, "e")
    with pytest.raises(ValueError, match=r"embeddings \(T, layers, D\) expected"):
        cache.store(clip, np.zeros((3, 4), np.float32))
