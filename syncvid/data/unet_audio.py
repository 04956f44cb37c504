"""Whisper audio conditioning for UNet samples, computed in the DataLoader workers.

LatentSync computes a clip's Whisper embeddings in the training loop's main process (one
clip after another, on the GPU's critical path).  Here each DataLoader worker builds its
own audio encoder on first use (the tiny encoder has 7.6 M parameters and takes 0.3 s per
30 s of audio on one core), computes a clip's embeddings once and keeps them in the
on-disk cache, so the training step only receives a ready (f, 50, D) tensor per sample.

`AudioEncoderSpec` is a small picklable description of the encoder (a checkpoint path, or
the dimensions and seed of a random one), so that a dataset holding it can be sent to
worker processes; the encoder itself is never pickled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["AudioEncoderSpec", "AudioFeatures"]


@dataclass(frozen=True)
class AudioEncoderSpec:
    """How to build the Whisper encoder: from `path` (OpenAI checkpoint), or random.

    A random encoder (tests, CPU configs) has width `width` (= the UNet's
    cross_attention_dim), `num_layers` blocks of `num_heads` heads, and weights drawn
    from `seed`, so every process that builds it gets the same weights.
    """

    source: str
    path: str = ""
    width: int = 384
    num_layers: int = 4
    num_heads: int = 6
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: Any) -> "AudioEncoderSpec":
        section = cfg.model.audio_encoder
        return cls(
            source=str(section.source),
            path=str(cfg.ckpt.whisper_path),
            width=int(cfg.model.cross_attention_dim),
            num_layers=int(section.num_layers),
            num_heads=int(section.num_heads),
            seed=int(section.seed),
        )

    def check(self) -> list[str]:
        """Problems that stop a run before it starts (config keys named)."""
        if self.source == "pretrained":
            if not self.path:
                return [
                    "ckpt.whisper_path is empty: set it to an OpenAI Whisper checkpoint (tiny.pt for "
                    "cross_attention_dim 384, small.pt for 768), or set model.audio_encoder.source=random"
                ]
            if not os.path.isfile(self.path):
                return [f"ckpt.whisper_path: no such file: {self.path}"]
        elif self.width % self.num_heads:
            return [
                f"model.audio_encoder.num_heads={self.num_heads} does not divide the encoder width "
                f"{self.width} (model.cross_attention_dim)"
            ]
        return []

    def build(self, device: str | torch.device = "cpu"):
        from syncvid.unet.whisper import WhisperAudioEncoder

        if self.source == "pretrained":
            encoder = WhisperAudioEncoder.from_checkpoint(self.path, device=device)
        else:
            encoder = WhisperAudioEncoder.from_dims(
                n_mels=80,
                n_audio_ctx=1500,
                n_audio_state=self.width,
                n_audio_head=self.num_heads,
                n_audio_layer=self.num_layers,
                seed=self.seed,
            ).to(device)
        return encoder.eval()


class AudioFeatures:
    """(f, tokens, D) Whisper conditioning of a window of a clip, cached per clip on disk."""

    def __init__(
        self,
        spec: AudioEncoderSpec,
        cache_dir: str | os.PathLike,
        *,
        sample_rate: int = 16000,
        fps: int = 25,
        audio_feat_length: tuple[int, int] = (2, 2),
    ) -> None:
        self.spec = spec
        self.cache_dir = Path(cache_dir)
        self.sample_rate = int(sample_rate)
        self.fps = int(fps)
        self.audio_feat_length = (int(audio_feat_length[0]), int(audio_feat_length[1]))
        self._encoder = None
        self._cache = None

    def __getstate__(self) -> dict[str, Any]:  # workers build their own encoder
        state = dict(self.__dict__)
        state["_encoder"] = None
        state["_cache"] = None
        return state

    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = self.spec.build("cpu")
        return self._encoder

    @property
    def width(self) -> int:
        return self.spec.width

    def _cache_for(self):
        if self._cache is None:
            from syncvid.data.audio_embeds_cache import AudioEmbedsCache

            self._cache = AudioEmbedsCache(self.cache_dir, self.encoder.fingerprint())
        return self._cache

    def embeddings(self, clip_path: str, audio: np.ndarray | None = None) -> torch.Tensor:
        """The clip's (T, layers+1, D) embeddings at 50 Hz (computed once, then cached)."""
        from syncvid.data.clips import read_audio

        def compute(path: str) -> np.ndarray:
            waveform = audio if audio is not None else read_audio(path, self.sample_rate)
            with torch.inference_mode():
                emb = self.encoder.embeddings(np.asarray(waveform, np.float32))
            return emb.float().cpu().numpy()

        return torch.as_tensor(np.asarray(self._cache_for().get(clip_path, compute)), dtype=torch.float32)

    def window(self, clip_path: str, start: int, num_frames: int) -> torch.Tensor:
        """(num_frames, 10·(layers+1), D) conditioning of frames [start, start+num_frames)."""
        emb = self.embeddings(clip_path)
        indices = list(range(int(start), int(start) + int(num_frames)))
        return self.encoder.frame_features(emb, indices, audio_feat_length=self.audio_feat_length, fps=self.fps)
