"""The on-disk mel cache: hits, atomic writes, corrupt and stale entries rebuilt."""

from __future__ import annotations

import os

import numpy as np
import pytest

from syncvid.data.mel import DEFAULT_MEL_PARAMS, MelParams
from syncvid.data.mel_cache import CorruptCacheEntry, MelCache


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"not really a clip")
    return path


class Counter:
    def __init__(self, value):
        self.calls = 0
        self.value = value

    def __call__(self, path):
        self.calls += 1
        return self.value


def _mel(seed=0, frames=11):
    return np.random.default_rng(seed).uniform(-4, 4, (80, frames)).astype(np.float32)


def test_computes_once_then_hits(tmp_path, clip):
    cache = MelCache(tmp_path / "cache", DEFAULT_MEL_PARAMS)
    compute = Counter(_mel())
    a = cache.get(clip, compute)
    b = cache.get(clip, compute)
    assert compute.calls == 1 and (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(a, b)
    files = os.listdir(tmp_path / "cache")
    assert len(files) == 1 and files[0].startswith("clip_") and files[0].endswith("_mel.npz")


def test_keyed_by_path_and_parameters(tmp_path, clip):
    a = MelCache(tmp_path, DEFAULT_MEL_PARAMS)
    b = MelCache(tmp_path, MelParams(fmax=7000.0))
    other = clip.with_name("sub_clip.mp4")
    assert a.path_for(clip) != b.path_for(clip)
    assert a.path_for(clip) != a.path_for(other)


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b""),
        lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
        lambda p: p.write_bytes(b"garbage" * 100),
    ],
    ids=["empty", "truncated", "garbage"],
)
def test_corrupt_entry_is_rebuilt(tmp_path, clip, damage, caplog):
    cache = MelCache(tmp_path, DEFAULT_MEL_PARAMS)
    cache.get(clip, Counter(_mel(1)))
    damage(cache.path_for(clip))
    with pytest.raises(CorruptCacheEntry):
        cache.load(clip)
    compute = Counter(_mel(2))
    out = cache.get(clip, compute)
    assert compute.calls == 1 and cache.rebuilt == 1
    np.testing.assert_array_equal(out, _mel(2))
    np.testing.assert_array_equal(cache.load(clip), _mel(2))
    assert "rebuilding mel cache entry" in caplog.text


def test_wrong_shape_or_nan_is_corrupt(tmp_path, clip):
    cache = MelCache(tmp_path, DEFAULT_MEL_PARAMS)
    path = cache.path_for(clip)
    stamp = np.array([os.stat(clip).st_size, os.stat(clip).st_mtime_ns], np.int64)
    np.savez(path, mel=np.zeros((40, 5), np.float32), source=stamp)
    with pytest.raises(CorruptCacheEntry, match="unexpected array"):
        cache.load(clip)
    bad = _mel()
    bad[3, 3] = np.nan
    np.savez(path, mel=bad, source=stamp)
    with pytest.raises(CorruptCacheEntry, match="non-finite"):
        cache.load(clip)


def test_stale_entry_for_a_rewritten_clip_is_rebuilt(tmp_path, clip):
    cache = MelCache(tmp_path, DEFAULT_MEL_PARAMS)
    cache.get(clip, Counter(_mel(1)))
    clip.write_bytes(b"a different, longer clip file")
    with pytest.raises(CorruptCacheEntry, match="different version"):
        cache.load(clip)
    np.testing.assert_array_equal(cache.get(clip, Counter(_mel(3))), _mel(3))


def test_store_leaves_no_temporary_files(tmp_path, clip):
    cache = MelCache(tmp_path / "c", DEFAULT_MEL_PARAMS)
    cache.store(clip, _mel())
    assert [p for p in os.listdir(tmp_path / "c") if p.endswith(".part")] == []
    with pytest.raises(ValueError, match="bands"):
        cache.store(clip, np.zeros((10, 3), np.float32))
