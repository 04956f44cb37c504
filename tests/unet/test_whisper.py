"""The Whisper audio encoder matches LatentSync's features (fixture from its own code)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from syncvid.unet import WhisperAudioEncoder
from syncvid.unet.whisper import frame_indices, whisper_log_mel

from .conftest import load_fixture


@pytest.fixture(scope="module")
def io(parity_dir):
    return load_fixture(parity_dir, "whisper_io.pt")


@pytest.fixture(scope="module")
def encoder(parity_dir):
    return WhisperAudioEncoder.from_checkpoint(parity_dir / "whisper_tiny_random.pt")


def test_log_mel(io):
    mel = whisper_log_mel(io["audio_float32"].numpy())
    assert mel.shape == io["log_mel"].shape
    assert (mel - io["log_mel"]).abs().max() < 1e-4


def test_embeddings(io, encoder):
    emb = encoder.embeddings(io["audio_float32"].numpy())
    assert emb.shape == io["embeddings"].shape == (165, 5, 64)
    assert (emb - io["embeddings"]).abs().max() < 1e-4


def test_per_frame_slices(io, encoder):
    n = io["sliced_per_frame"].shape[0]
    feats = encoder.frame_features(io["embeddings"], range(n))
    assert (feats - io["sliced_per_frame"]).abs().max() < 1e-6
    assert [frame_indices(i, 165) for i in range(n)] == io["sliced_indices"].tolist()
    window = encoder.window_features(io["embeddings"], 0, 16)
    assert (window - io["window_start0"]).abs().max() < 1e-6


def test_long_audio_is_encoded_in_30s_windows():
    encoder = WhisperAudioEncoder.from_dims(n_audio_state=32, n_audio_head=2, n_audio_layer=1, seed=1)
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(16000 * 31) * 0.1).astype(np.float32)
    emb = encoder.embeddings(audio)
    assert emb.shape == (31 * 50, 2, 32)
    # the second window starts afresh: its first frame equals a window encoded on its own
    mel = whisper_log_mel(audio)
    tail = torch.nn.functional.pad(mel[:, 3000:], (0, 3000 - (mel.shape[1] - 3000)))
    alone = encoder.encode_window(tail[None])[0, :, 0]
    assert torch.allclose(emb[1500], alone, atol=1e-5)


def test_checkpoint_round_trip_and_errors(tmp_path):
    encoder = WhisperAudioEncoder.from_dims(n_audio_state=32, n_audio_head=2, n_audio_layer=2, seed=3)
    encoder.save_checkpoint(tmp_path / "tiny.pt")
    loaded = WhisperAudioEncoder.from_checkpoint(tmp_path / "tiny.pt")
    assert loaded.fingerprint() == encoder.fingerprint()
    assert WhisperAudioEncoder.from_dims(n_audio_state=32, n_audio_head=2, n_audio_layer=2, seed=4).fingerprint() \
        != encoder.fingerprint()
    payload = torch.load(tmp_path / "tiny.pt", weights_only=True)
    del payload["model_state_dict"]["encoder.ln_post.weight"]
    torch.save(payload, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match="broken.pt: its encoder weights do not match"):
        WhisperAudioEncoder.from_checkpoint(tmp_path / "broken.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: not an OpenAI Whisper checkpoint"):
        WhisperAudioEncoder.from_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="no such Whisper checkpoint"):
        WhisperAudioEncoder.from_checkpoint(tmp_path / "absent.pt")
