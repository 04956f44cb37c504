"""LatentSync's SyncNet ("StableSyncNet"), built from the `model` section of a SyncNet config.

Two `DownEncoder2D` towers map a mel window (1×80×52) and a stack of lower-half face
frames (48×128×256 for 16 RGB frames) to 2048-d embeddings that are L2-normalised;
training pushes their cosine similarity up for aligned pairs and down for shifted ones.
Module and parameter names follow the published checkpoints exactly
(`audio_encoder.conv_in.weight`, `visual_encoder.down_blocks.4.attn.to_q.weight`, ...),
so a checkpoint's `state_dict` loads with `strict=True`.

This module imports torch at import time; import it only where torch is wanted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from syncvid.atomic import atomic_path

__all__ = [
    "EncoderConfig",
    "ResnetBlock2D",
    "AttentionBlock2D",
    "DownEncoder2D",
    "StableSyncNet",
    "encoder_config",
    "load_stable_syncnet",
    "save_stable_syncnet",
]

@dataclass(frozen=True)
class EncoderConfig:
    """Parameters of one encoder tower (the `audio_encoder` / `visual_encoder` sub-sections)."""

    in_channels: int
    block_out_channels: tuple[int, ...]
    downsample_factors: tuple[int | tuple[int, int], ...]
    dropout: float = 0.0
    attn_blocks: tuple[int, ...] = ()
    norm_num_groups: int = 32

    def __post_init__(self) -> None:
        n = len(self.block_out_channels)
        if n == 0:
            raise ValueError("block_out_channels must not be empty")
        if len(self.downsample_factors) != n:
            raise ValueError(
                f"downsample_factors has {len(self.downsample_factors)} entries, block_out_channels {n}"
            )
        if self.attn_blocks and len(self.attn_blocks) != n:
            raise ValueError(f"attn_blocks has {len(self.attn_blocks)} entries, block_out_channels {n}")
        for c in self.block_out_channels:
            if c % self.norm_num_groups:
                raise ValueError(f"channel count {c} is not divisible by norm_num_groups={self.norm_num_groups}")


def _field(section: Any, key: str, default: Any = None, *, required: bool = True) -> Any:
    if isinstance(section, Mapping) or hasattr(section, "keys"):
        if key in section:
            return section[key]
    elif hasattr(section, key):
        return getattr(section, key)
    if required:
        raise KeyError(f"model config is missing the key {key!r}")
    return default


def _factor(value: Any) -> int | tuple[int, int]:
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return int(value)
    items = tuple(int(v) for v in value)
    if len(items) != 2:
        raise ValueError(f"a downsample factor must be an int or a pair, got {value!r}")
    return items


def encoder_config(section: Any) -> EncoderConfig:
    """Build an `EncoderConfig` from a dict, an OmegaConf node or a dataclass."""
    if isinstance(section, EncoderConfig):
        return section
    attn = _field(section, "attn_blocks", None, required=False)
    n = len(_field(section, "block_out_channels"))
    return EncoderConfig(
        in_channels=int(_field(section, "in_channels")),
        block_out_channels=tuple(int(c) for c in _field(section, "block_out_channels")),
        downsample_factors=tuple(_factor(f) for f in _field(section, "downsample_factors")),
        dropout=float(_field(section, "dropout", 0.0, required=False) or 0.0),
        attn_blocks=tuple(int(a) for a in attn) if attn is not None else (0,) * n,
        norm_num_groups=int(_field(section, "norm_num_groups", 32, required=False)),
    )


def _downsample_pad(factor: int | tuple[int, int]) -> tuple[int, int, int, int]:
    """Explicit (left, right, top, bottom) padding before the stride-`factor` 3×3 conv.

    (2,1) halves the height only: it pads one column each side so the width is kept;
    (1,2) halves the width only: it pads one row each side so the height is kept.
    """
    if isinstance(factor, tuple):
        if factor[0] == 1:
            return (0, 1, 1, 1)
        if factor[1] == 1:
            return (1, 1, 0, 1)
    return (0, 1, 0, 1)


class ResnetBlock2D(nn.Module):
    """GN → SiLU → conv3 → GN → SiLU → dropout → conv3, residual, then optional downsampling."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        dropout: float = 0.0,
        norm_num_groups: int = 32,
        eps: float = 1e-6,
        downsample_factor: int | tuple[int, int] = 2,
    ) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(norm_num_groups, in_channels, eps=eps, affine=True)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.norm2 = nn.GroupNorm(norm_num_groups, out_channels, eps=eps, affine=True)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.act_fn = nn.SiLU()
        self.conv_shortcut = (
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, padding=0)
            if in_channels != out_channels
            else None
        )
        if downsample_factor == 1 or downsample_factor == (1, 1):
            self.downsample_conv = None
            self.pad: tuple[int, int, int, int] | None = None
        else:
            self.downsample_conv = nn.Conv2d(
                out_channels, out_channels, kernel_size=3, stride=downsample_factor, padding=0
            )
            self.pad = _downsample_pad(downsample_factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act_fn(self.norm1(x)))
        h = self.conv2(self.dropout(self.act_fn(self.norm2(h))))
        skip = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        h = h + skip
        if self.downsample_conv is not None:
            h = self.downsample_conv(F.pad(h, self.pad, mode="constant", value=0.0))
        return h


class _GEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class _FeedForward(nn.Module):
    """GEGLU feed-forward with a 4× inner width; parameters at `net.0.proj` and `net.2`."""

    def __init__(self, dim: int, dropout: float = 0.0, mult: int = 4) -> None:
        super().__init__()
        inner = dim * mult
        self.net = nn.ModuleList([_GEGLU(dim, inner), nn.Dropout(dropout), nn.Linear(inner, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class _SelfAttention(nn.Module):
    """Multi-head self-attention with biased q/k/v projections (`to_q`, `to_k`, `to_v`, `to_out.0`)."""

    def __init__(self, dim: int, heads: int = 8, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=True)
        self.to_k = nn.Linear(dim, dim, bias=True)
        self.to_v = nn.Linear(dim, dim, bias=True)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(dropout)])

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, d = t.shape
        return t.reshape(b, n, self.heads, d // self.heads).permute(0, 2, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.to_q(x)), self._split(self.to_k(x)), self._split(self.to_v(x))
        out = F.scaled_dot_product_attention(q, k, v)
        b, h, n, d = out.shape
        out = out.permute(0, 2, 1, 3).reshape(b, n, h * d)
        return self.to_out[1](self.to_out[0](out))


class AttentionBlock2D(nn.Module):
    """Spatial self-attention block inserted after a down block (the `attn` variants)."""

    def __init__(self, query_dim: int, *, norm_num_groups: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(norm_num_groups, query_dim, eps=1e-6, affine=True)
        self.norm2 = nn.LayerNorm(query_dim)
        self.norm3 = nn.LayerNorm(query_dim)
        self.ff = _FeedForward(query_dim, dropout=dropout)
        self.conv_in = nn.Conv2d(query_dim, query_dim, kernel_size=1)
        self.conv_out = nn.Conv2d(query_dim, query_dim, kernel_size=1)
        self.attn = _SelfAttention(query_dim, heads=8, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.conv_in(self.norm1(x)).flatten(2).transpose(1, 2)  # b, h*w, c
        tokens = self.attn(self.norm2(tokens)) + tokens
        tokens = self.ff(self.norm3(tokens)) + tokens
        y = tokens.transpose(1, 2).reshape(b, c, h, w).contiguous()
        return self.conv_out(y) + x


class DownEncoder2D(nn.Module):
    """conv_in → [ResnetBlock2D (+ AttentionBlock2D)] × n → GroupNorm → ReLU."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        channels = cfg.block_out_channels
        attn = cfg.attn_blocks or (0,) * len(channels)
        self.conv_in = nn.Conv2d(cfg.in_channels, channels[0], kernel_size=3, stride=1, padding=1)
        self.down_blocks = nn.ModuleList()
        prev = channels[0]
        for out, factor, use_attn in zip(channels, cfg.downsample_factors, attn):
            self.down_blocks.append(
                ResnetBlock2D(
                    prev,
                    out,
                    dropout=cfg.dropout,
                    norm_num_groups=cfg.norm_num_groups,
                    downsample_factor=factor,
                )
            )
            if use_attn == 1:
                self.down_blocks.append(
                    AttentionBlock2D(out, norm_num_groups=cfg.norm_num_groups, dropout=cfg.dropout)
                )
            prev = out
        self.norm_out = nn.GroupNorm(cfg.norm_num_groups, channels[-1], eps=1e-6)
        self.act_fn_out = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        return self.act_fn_out(self.norm_out(x))


class StableSyncNet(nn.Module):
    """Audio/visual embedding pair; `forward` returns L2-normalised (vision, audio) embeddings.

    `model_cfg` is the `model` section of a SyncNet config (dict, OmegaConf node or
    dataclass) with `audio_encoder` and `visual_encoder` sub-sections holding
    in_channels, block_out_channels, downsample_factors, dropout and attn_blocks.
    The model starts in eval mode, as the reference's does.
    """

    def __init__(self, model_cfg: Any) -> None:
        super().__init__()
        self.audio_cfg = encoder_config(_field(model_cfg, "audio_encoder"))
        self.visual_cfg = encoder_config(_field(model_cfg, "visual_encoder"))
        self.audio_encoder = DownEncoder2D(self.audio_cfg)
        self.visual_encoder = DownEncoder2D(self.visual_cfg)
        self.eval()

    @property
    def num_frames(self) -> int:
        """Frames per visual window implied by the visual encoder's input channels (RGB)."""
        return self.visual_cfg.in_channels // 3

    def forward(
        self, image_sequences: torch.Tensor, audio_sequences: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        vision = self.visual_encoder(image_sequences).reshape(image_sequences.shape[0], -1)
        audio = self.audio_encoder(audio_sequences).reshape(audio_sequences.shape[0], -1)
        return F.normalize(vision, p=2, dim=1), F.normalize(audio, p=2, dim=1)


def save_stable_syncnet(model: StableSyncNet, path: str | Path, *, global_step: int = 0, **extra: Any) -> Path:
    """Write a checkpoint in the published layout: {"state_dict", "global_step", ...}."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"state_dict": model.state_dict(), "global_step": int(global_step)}
    payload.update(extra)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_stable_syncnet(
    ckpt_path: str | Path | None, model_cfg: Any, device: str | torch.device = "cpu"
) -> StableSyncNet:
    """Build a `StableSyncNet` from `model_cfg` and load a checkpoint strictly, in eval mode.

    The checkpoint is either the published dict with a `state_dict` entry or a bare state
    dict.  A missing file raises `FileNotFoundError` naming the path; a key or shape
    mismatch raises `RuntimeError` naming the file.  `ckpt_path=None` returns the model
    with its random initial weights (for tests and timing only).
    """
    model = StableSyncNet(model_cfg)
    if ckpt_path is not None:
        path = Path(ckpt_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"StableSyncNet checkpoint not found: {path} (put a LatentSync SyncNet checkpoint there, "
                "e.g. stable_syncnet.pt, or set sync.stable_syncnet_checkpoint)"
            )
        payload = torch.load(path, map_location="cpu", weights_only=True)
        state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
        if not isinstance(state, Mapping):
            raise RuntimeError(f"{path}: not a SyncNet checkpoint (expected a dict with 'state_dict')")
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise RuntimeError(f"{path}: checkpoint does not match the model config: {exc}") from exc
    return model.to(device).eval()
