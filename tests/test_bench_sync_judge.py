"""benchmarks/bench_sync_judge.py: the test clips reach a judge through its view of the face."""

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_sync_judge as bj  # noqa: E402

from syncvid.sync.offset import OffsetEstimate  # noqa: E402


def _data(n: int = 200, sources: int = 2):
    rng = np.random.default_rng(0)
    return {f"s{i}": (rng.normal(size=(n, 68, 2)).astype(np.float32) + i, rng.normal(size=n * 640).astype(np.float32), 0.0)
            for i in range(sources)}


def test_evaluate_hands_the_judge_its_view_of_every_clip():
    data = _data()
    seen = []

    def view(d, nm, st, w):
        return (nm, st, w)

    def judge(face, au, a0):
        seen.append(face)
        return OffsetEstimate(0, 5.0, np.zeros(31), 15, False)

    t = bj.evaluate(judge, data, ["s0"], list(data), 20, view=view)
    assert seen and all(f[0] == "s0" and f[2] == 125 for f in seen)  # 200 frames: no 250-frame clips
    assert {f[1] for f in seen} == set(range(0, 200 - 125 + 1, 20))
    assert len(t.foreign) == 3  # the other voice, where it has 15 + 2 frames of audio after the clip (starts 0, 20, 40)
    assert t.own and all(c == 5.0 for c in t.own)


def test_default_view_is_the_clips_landmarks():
    data = _data()
    got = []

    def judge(lm, au, a0):
        got.append(lm)
        return OffsetEstimate(0, 0.0, np.zeros(31), 15, False)

    bj.evaluate(judge, data, ["s1"], list(data), 50)
    assert got and all(lm.shape == (125, 68, 2) for lm in got)
    assert any(np.array_equal(lm, data["s1"][0][50:175]) for lm in got)


def test_stable_syncnet_judge_is_the_production_backend(tmp_path):
    pytest.importorskip("torch")
    from syncvid.config import load_config
    from syncvid.sync.backends import SyncInput
    from syncvid.sync.stable_syncnet import StableSyncNet, save_stable_syncnet

    cfg_path = ROOT / "configs" / "syncnet" / "cpu_small.yaml"
    cfg = load_config(cfg_path)
    ckpt = save_stable_syncnet(StableSyncNet(cfg.model), tmp_path / "c.pt")
    data = _data(n=80, sources=1)
    crops = {"s0": np.random.default_rng(1).integers(0, 255, (80, 64, 64, 3), dtype=np.uint8)}
    judge, view, backend = bj.stable_syncnet_judge(ckpt, cfg_path, crops)
    assert backend.resolution == 64
    face = view(data, "s0", 20, 32)
    assert face[0].shape == (32, 64, 64, 3) and np.array_equal(face[1], data["s0"][0][20:52])
    au = data["s0"][1]
    est = judge(face, au, 20 * 640)
    ref, _ = backend.measure(SyncInput(crops["s0"][20:52], data["s0"][0][20:52], au, 20 * 640), bj.S)
    assert est.offset == ref.offset and est.conf == pytest.approx(ref.conf)


def test_pixel_features_replace_only_the_mouth_part():
    """bench_sync_pixels: the mouth pixels' principal components (+ velocities) take the landmarks'
    place; the audio part is the corpus judge's own."""
    import bench_sync_pixels as bp

    from syncvid.sync import corpus_judge as cj

    data = _data()
    rng = np.random.default_rng(1)
    crops = {nm: rng.integers(0, 255, (200, 64, 64, 3), dtype=np.uint8) for nm in data}
    pix = bp.PixelFeatures(data, crops, components=8)
    f = pix.clip("s1", 20, 125, 17)
    ref = cj.clip_features(data["s1"][0][20:145], data["s1"][1], 20 * 640, 17, group="s1")
    assert f.mouth.shape == (125, 16) and f.mouth.dtype == np.float32
    np.testing.assert_allclose(f.mouth[:, :8].mean(axis=0), 0, atol=1e-3)  # centred per clip
    np.testing.assert_array_equal(f.audio, ref.audio)
    assert len(pix.corpus(["s0", "s1"], cj.FitParams())) == 2  # one 125-frame segment of each 200-frame source
