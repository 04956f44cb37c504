"""Whisper's audio encoder as LatentSync uses it: per-50-Hz embeddings of speech for the UNet.

The log-mel (16 kHz, n_fft 400, hop 160, 80 Slaney mels from our own filterbank, log10,
floor at max − 8, (x + 4)/4) of the whole waveform is cut into 30 s (3000-frame) windows,
each zero-padded to 3000 frames; the encoder's stem output and each block's output (before
`ln_post`) are stacked, and only the frames that hold audio are kept ⇒ (T, layers+1, D) at
50 Hz.  Video frame i (25 fps) is conditioned on the 10 embeddings around it — centre
c = int(i·50/fps), indices [c − 2·before, c + 2·(after+1)) clamped to the valid range —
flattened time-major into 10·(layers+1) tokens of D.

Parameter names are OpenAI's (`conv1`, `conv2`, `positional_embedding`,
`blocks.{i}.attn.{query,key,value,out}`, `attn_ln`, `mlp.0`, `mlp.2`, `mlp_ln`, `ln_post`),
so the encoder half of `tiny.pt` / `small.pt` loads strictly.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from syncvid.data.mel import mel_filterbank

from syncvid.torch_files import load_weights_file

__all__ = ["WhisperAudioEncoder", "whisper_log_mel", "frame_indices"]

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
WINDOW_FRAMES = 3000  # 30 s of log-mel frames per encoder call
_DIMS_KEYS = ("n_mels", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer")


def whisper_log_mel(waveform: np.ndarray | torch.Tensor, n_mels: int = 80) -> torch.Tensor:
    """(n_mels, len // 160) log-mel of a 16 kHz mono float waveform, as Whisper computes it."""
    audio = torch.as_tensor(np.asarray(waveform, dtype=np.float32))
    if audio.dim() != 1:
        raise ValueError(f"expected a mono waveform (samples,), got shape {tuple(audio.shape)}")
    if audio.numel() < N_FFT // 2 + 1:
        audio = F.pad(audio, (0, N_FFT // 2 + 1 - audio.numel()))
    window = torch.hann_window(N_FFT)
    spec = torch.stft(audio, N_FFT, HOP, window=window, return_complex=True)
    power = spec[:, :-1].abs() ** 2
    filters = torch.tensor(mel_filterbank(SAMPLE_RATE, N_FFT, n_mels, 0.0, SAMPLE_RATE / 2))
    log_spec = torch.clamp(filters @ power, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def frame_indices(frame: int, length: int, audio_feat_length: Sequence[int] = (2, 2), fps: float = 25) -> list[int]:
    """The 50-Hz embedding indices that condition video frame `frame` (clamped to 0..length−1)."""
    centre = int(frame * 50 / fps)
    before, after = int(audio_feat_length[0]), int(audio_feat_length[1])
    return [min(max(i, 0), length - 1) for i in range(centre - 2 * before, centre + 2 * (after + 1))]


def _sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    increment = math.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-increment * torch.arange(channels // 2))
    t = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


class _SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width, bias=False)
        self.value = nn.Linear(width, width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

        y = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)))
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class _Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = _SelfAttention(width, heads)
        self.attn_ln = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.mlp_ln = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_ln(x))
        return x + self.mlp(self.mlp_ln(x))


class WhisperAudioEncoder(nn.Module):
    """See the module docstring.  Build with `from_checkpoint(path)` or `from_dims(...)`."""

    def __init__(self, n_mels: int = 80, n_audio_ctx: int = 1500, n_audio_state: int = 384, n_audio_head: int = 6,
                 n_audio_layer: int = 4) -> None:
        super().__init__()
        if n_audio_state % n_audio_head:
            raise ValueError(f"{n_audio_head} heads do not divide the encoder width {n_audio_state}")
        self.dims = {"n_mels": n_mels, "n_audio_ctx": n_audio_ctx, "n_audio_state": n_audio_state,
                     "n_audio_head": n_audio_head, "n_audio_layer": n_audio_layer}
        self.conv1 = nn.Conv1d(n_mels, n_audio_state, 3, padding=1)
        self.conv2 = nn.Conv1d(n_audio_state, n_audio_state, 3, stride=2, padding=1)
        self.register_buffer("positional_embedding", _sinusoids(n_audio_ctx, n_audio_state))
        self.blocks = nn.ModuleList([_Block(n_audio_state, n_audio_head) for _ in range(n_audio_layer)])
        self.ln_post = nn.LayerNorm(n_audio_state)
        self._fingerprint: str | None = None

    # ---- construction -------------------------------------------------------------------

    @classmethod
    def from_dims(cls, n_mels: int = 80, n_audio_ctx: int = 1500, n_audio_state: int = 384, n_audio_head: int = 6,
                  n_audio_layer: int = 4, seed: int = 0) -> "WhisperAudioEncoder":
        """A randomly initialised encoder (tests, CPU configs); the same seed gives the same weights."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = cls(n_mels, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer)
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if p.dim() > 1:
                        p.copy_(torch.randn(p.shape) / math.sqrt(p[0].numel()))
                    elif name.endswith("bias"):
                        p.copy_(torch.randn(p.shape) * 0.02)
        return model

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "WhisperAudioEncoder":
        """The encoder of an OpenAI Whisper checkpoint ({"dims", "model_state_dict"}), loaded strictly."""
        p = Path(path)
        payload = load_weights_file(p, "Whisper checkpoint")
        if not isinstance(payload, Mapping) or "dims" not in payload or "model_state_dict" not in payload:
            raise ValueError(f"{p}: not an OpenAI Whisper checkpoint (expected 'dims' and 'model_state_dict')")
        dims: Mapping[str, Any] = payload["dims"]
        missing_dims = [k for k in _DIMS_KEYS if k not in dims]
        if missing_dims:
            raise ValueError(f"{p}: Whisper dims lack {', '.join(missing_dims)}")
        model = cls(*(int(dims[k]) for k in _DIMS_KEYS))
        state = {k[len("encoder."):]: v for k, v in payload["model_state_dict"].items() if k.startswith("encoder.")}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise ValueError(f"{p}: its encoder weights do not match its dims ({first})") from exc
        return model.to(device).eval()

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Write OpenAI's format (encoder weights only; readers of this format need only those)."""
        dims = {**self.dims, "n_vocab": 0, "n_text_ctx": 0, "n_text_state": 0, "n_text_head": 0, "n_text_layer": 0}
        state = {f"encoder.{k}": v.detach().cpu() for k, v in self.state_dict().items()}
        torch.save({"dims": dims, "model_state_dict": state}, path)

    @property
    def width(self) -> int:
        return int(self.dims["n_audio_state"])

    @property
    def num_layers(self) -> int:
        return int(self.dims["n_audio_layer"])

    def fingerprint(self) -> str:
        """A short hash of the dims and weights: cache entries of another encoder are never reused."""
        if self._fingerprint is None:
            h = hashlib.sha1(repr(sorted(self.dims.items())).encode())
            for name, tensor in sorted(self.state_dict().items()):
                h.update(name.encode())
                h.update(tensor.detach().cpu().float().numpy().tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    # ---- computation --------------------------------------------------------------------

    def encode_window(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, 3000) log-mel → (B, layers+1, 1500, D): the stem and every block's output."""
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).permute(0, 2, 1)
        x = x + self.positional_embedding[: x.shape[1]].to(x.dtype)
        outputs = [x]
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return torch.stack(outputs, dim=1)

    @torch.no_grad()
    def embeddings(self, waveform: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(T, layers+1, D) float32 embeddings at 50 Hz of a 16 kHz mono float waveform."""
        device = self.conv1.weight.device
        mel = whisper_log_mel(waveform, int(self.dims["n_mels"]))
        total = mel.shape[-1]
        pieces = []
        for start in range(0, total, WINDOW_FRAMES):
            chunk = mel[:, start:start + WINDOW_FRAMES]
            keep = chunk.shape[-1] // 2
            chunk = F.pad(chunk, (0, WINDOW_FRAMES - chunk.shape[-1]))
            out = self.encode_window(chunk[None].to(device=device, dtype=self.conv1.weight.dtype))[0]
            pieces.append(out[:, :keep].transpose(0, 1).float().cpu())
        if not pieces:
            raise ValueError("the audio is too short for a Whisper embedding")
        return torch.cat(pieces, dim=0)

    def frame_features(self, embeddings: torch.Tensor, frames: Sequence[int] | range,
                       audio_feat_length: Sequence[int] = (2, 2), fps: float = 25) -> torch.Tensor:
        """(n, 10·(layers+1), D): the conditioning of each video frame in `frames`."""
        emb = torch.as_tensor(embeddings)
        length = emb.shape[0]
        index = torch.tensor([frame_indices(int(i), length, audio_feat_length, fps) for i in frames], dtype=torch.long)
        selected = emb[index]  # (n, window, layers+1, D)
        return selected.reshape(selected.shape[0], -1, emb.shape[-1])

    def window_features(self, embeddings: torch.Tensor, start_frame: int, num_frames: int,
                        audio_feat_length: Sequence[int] = (2, 2), fps: float = 25) -> torch.Tensor:
        """(num_frames, 10·(layers+1), D) for the training window starting at `start_frame`."""
        return self.frame_features(embeddings, range(start_frame, start_frame + num_frames), audio_feat_length, fps)
