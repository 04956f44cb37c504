"""Sync backends on synthetic clips with a known offset, and the guards of the model backends."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from syncvid.config.pipeline_schema import SyncSection
from syncvid.sync.backends import (
    BACKENDS,
    LandmarkBackend,
    SyncInput,
    create_backend,
    stable_syncnet_visual_windows,
    syncnet_crops,
    syncnet_face_box,
)
from syncvid.sync.landmark import audio_features, context_window, mouth_opening
from syncvid.sync.synthetic import synthetic_clip


def _input(clip):
    return SyncInput(clip.frames, clip.landmarks, clip.source_audio, clip.audio_start_sample)


def test_landmark_backend_recovers_offsets_minus10_to_plus10():
    backend = LandmarkBackend(SyncSection())
    backend.setup()
    errors = []
    for k in range(-10, 11):
        est, extras = backend.measure(_input(synthetic_clip(100, k, seed=k + 20)), 15)
        errors.append(est.offset - k)
        assert np.isfinite(extras["sync_score"])
    errors = np.array(errors)
    assert np.mean(np.abs(errors) <= 1) >= 0.9, errors


def test_landmark_backend_gives_low_confidence_to_a_foreign_voice():
    backend = LandmarkBackend(SyncSection())
    confs = []
    for seed in range(8):
        face, voice = synthetic_clip(100, 0, seed=seed), synthetic_clip(100, 0, seed=seed + 50)
        inp = SyncInput(face.frames, face.landmarks, voice.source_audio, voice.audio_start_sample)
        confs.append(backend.measure(inp, 15)[0].conf)
    own = backend.measure(_input(synthetic_clip(100, 0, seed=1)), 15)[0].conf
    # a foreign voice can line up by chance now and then, but not typically
    assert np.median(confs) < 3.0 < own, (confs, own)
    assert np.mean(np.array(confs) >= 3.0) <= 0.25, confs


def test_landmark_backend_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys; from syncvid.stages.sync import SyncStage; from syncvid.config.pipeline_schema import SyncSection;"
        "from syncvid.sync.synthetic import synthetic_clip; SyncStage(SyncSection()).setup();"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "source_len, start, t, s, expected",
    [
        (100_000, 0, 125, 15, (15, 155, 0)),  # nothing before the clip
        (100_000, 20 * 640, 125, 15, (0, 151, 5 * 640)),  # full context before, source ends 4 frames short
        (80_000, 0, 125, 15, (15, 140, 0)),  # nothing after the clip either
        (100_000, 100, 10, 2, (2, 14, 100)),  # start not on a frame boundary
    ],
)
def test_context_window(source_len, start, t, s, expected):
    assert context_window(source_len, start, t, s) == expected


def test_mouth_opening_is_scale_invariant_and_nan_safe():
    clip = synthetic_clip(20, 0, seed=3)
    a = mouth_opening(clip.landmarks)
    np.testing.assert_allclose(mouth_opening(clip.landmarks * 2.5), a, rtol=1e-4)
    lm = clip.landmarks.copy()
    lm[4] = np.nan
    assert np.isnan(mouth_opening(lm)[4]) and np.isfinite(mouth_opening(lm)[5])


def test_audio_features_are_per_frame():
    assert audio_features(np.zeros(640 * 7 + 100)).shape == (7, 16)


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="unknown backend 'nope'.*landmark"):
        create_backend(replace(SyncSection(), backend="nope"))
    assert set(BACKENDS) == {"landmark", "syncnet", "stable_syncnet"}


def test_syncnet_crop_geometry():
    frames = np.zeros((1, 100, 100, 3), np.uint8)
    frames[0, :, :50, 0] = 255  # red on the left half (RGB)
    lm = np.zeros((1, 68, 2), np.float32)
    lm[0, :, 0] = np.linspace(30, 70, 68)  # box 40 wide → half size 20 around x=50
    lm[0, :, 1] = np.linspace(30, 70, 68)
    box = syncnet_face_box(lm)
    np.testing.assert_allclose(box[0], [50, 50, 20])
    crop = syncnet_crops(frames, box, size=56)
    assert crop.shape == (1, 56, 56, 3) and crop.dtype == np.float32
    # BGR order: red lands in channel 2, on the left half of the crop
    assert crop[0, 28, 5, 2] == 255 and crop[0, 28, 50, 2] == 0


def test_stable_syncnet_visual_windows_layout():
    frames = np.zeros((5, 256, 256, 3), np.uint8)
    frames[:, 128:, :, 1] = 255  # green lower half
    frames[1] = 0
    wins, starts = stable_syncnet_visual_windows(frames, 2, 2)
    assert starts == [0, 2] and wins.shape == (2, 6, 128, 256)
    # frame-major channels: [f0 R, f0 G, f0 B, f1 R, f1 G, f1 B]
    assert wins[0, 1].min() == 1.0 and wins[0, 4].max() == -1.0 and wins[1, 4].min() == 1.0


torch = pytest.importorskip("torch")

TINY = {
    # both towers end at 64×1×1, like the published 2048×1×1 (80×7 mel window, 128×256 faces)
    "audio_encoder": {"in_channels": 1, "block_out_channels": [32, 64], "downsample_factors": [[40, 4], 2], "dropout": 0.0, "attn_blocks": [0, 0]},
    "visual_encoder": {"in_channels": 6, "block_out_channels": [32, 64], "downsample_factors": [[64, 128], 2], "dropout": 0.0, "attn_blocks": [0, 0]},
}


def test_untrained_stable_syncnet_gives_low_confidence(tmp_path):
    from syncvid.sync.backends import StableSyncNetBackend
    from syncvid.sync.stable_syncnet import StableSyncNet, save_stable_syncnet

    torch.manual_seed(0)
    ckpt = save_stable_syncnet(StableSyncNet(TINY), tmp_path / "random.pt")
    params = replace(SyncSection(), backend="stable_syncnet", stable_syncnet_checkpoint=str(ckpt), device="cpu")
    backend = StableSyncNetBackend(params, model_cfg=TINY)
    backend.setup()
    clip = synthetic_clip(20, 0, seed=4, size=64)
    est, extras = backend.measure(_input(clip), 15)
    assert est.curve.shape == (31,)
    assert est.conf < 3.0
    assert -1.0 <= extras["sync_similarity"] <= 1.0


def test_stable_syncnet_without_checkpoint_says_what_to_set():
    from syncvid.sync.backends import StableSyncNetBackend

    backend = StableSyncNetBackend(replace(SyncSection(), backend="stable_syncnet"), model_cfg=TINY)
    with pytest.raises(FileNotFoundError, match="stable_syncnet_checkpoint"):
        backend.setup()


def test_syncnet_backend_with_random_weights_runs_the_reference_rule(tmp_path):
    from syncvid.sync.backends import SyncNetBackend
    from syncvid.sync.syncnet_model import SyncNetV2, save_syncnet_v2

    torch.manual_seed(0)
    path = save_syncnet_v2(SyncNetV2(), tmp_path / "syncnet_v2.model")
    backend = SyncNetBackend(replace(SyncSection(), backend="syncnet", syncnet_checkpoint=str(path), device="cpu"))
    backend.setup()
    clip = synthetic_clip(9, 0, seed=5, size=96)
    est, extras = backend.measure(_input(clip), 3)
    assert est.curve.shape == (7,) and est.conf >= 0.0
    assert extras["sync_min_dist"] == pytest.approx(-est.curve.max())


def test_syncnet_backend_uses_only_frames_with_audio(tmp_path):
    from syncvid.sync.backends import SyncNetBackend
    from syncvid.sync.syncnet_model import SyncNetV2, save_syncnet_v2

    torch.manual_seed(1)
    path = save_syncnet_v2(SyncNetV2(), tmp_path / "syncnet_v2.model")
    backend = SyncNetBackend(replace(SyncSection(), backend="syncnet", syncnet_checkpoint=str(path), device="cpu"))
    backend.setup()
    clip = synthetic_clip(24, 0, seed=7, size=96, margin=0)
    hop = 640
    short_audio = clip.source_audio[: clip.audio_start_sample + 14 * hop + 300]  # 14 frames of audio, 24 of video
    whole = SyncInput(clip.frames, clip.landmarks, short_audio, clip.audio_start_sample)
    cut = SyncInput(clip.frames[:14], clip.landmarks[:14], short_audio, clip.audio_start_sample)
    counts = []
    embeddings = backend.embeddings

    def counting(crops, mfcc_ctx, num_audio):
        v, a = embeddings(crops, mfcc_ctx, num_audio)
        counts.append((len(crops), len(v), len(a)))
        return v, a

    backend.embeddings = counting
    a, _ = backend.measure(whole, 3)
    b, _ = backend.measure(cut, 3)
    # LatentSync: min(frames, floor(samples / 640)) = 14 frames, 14 - 5 windows of lips and of audio
    assert counts == [(14, 9, 9), (14, 9, 9)]
    np.testing.assert_allclose(a.curve, b.curve, rtol=1e-6)
    assert (a.offset, a.conf) == (b.offset, pytest.approx(b.conf))


def test_syncnet_backend_missing_checkpoint_is_one_clear_error(tmp_path):
    from syncvid.sync.backends import SyncNetBackend

    backend = SyncNetBackend(replace(SyncSection(), backend="syncnet", syncnet_checkpoint=str(tmp_path / "x" / "syncnet_v2.model")))
    with pytest.raises(FileNotFoundError, match="syncnet_v2.model.*joonson/syncnet_python"):
        backend.setup()


@pytest.mark.parametrize("window", [640, 1280])
def test_audio_feature_of_frame_k_is_centred_on_its_samples(window):
    from syncvid.sync.landmark import band_log_energies

    # a 1 kHz burst filling frame 5's samples [5*640, 6*640): frame 5 has the most energy,
    # and its neighbours get equal shares (the window is centred, not causal)
    audio = np.zeros(640 * 12)
    t = np.arange(640) - 319.5  # symmetric about the frame's centre
    audio[5 * 640 : 6 * 640] = np.cos(2 * np.pi * 1000 * t / 16000)
    e = band_log_energies(audio, window=window).max(axis=1)
    assert int(np.argmax(e)) == 5
    assert e[4] == pytest.approx(e[6], abs=1e-6)


def test_audio_features_use_real_audio_around_the_frames():
    from syncvid.sync.landmark import band_log_energies

    rng = np.random.default_rng(0)
    audio = rng.normal(size=640 * 10)
    inner = band_log_energies(audio, window=1280, start=3 * 640, num_frames=4)
    alone = band_log_energies(audio[3 * 640 : 7 * 640], window=1280)
    np.testing.assert_allclose(inner[1:3], alone[1:3])  # same inside, where no window reaches out
    assert not np.allclose(inner[0], alone[0])  # frame 0 sees the samples before it, not silence
