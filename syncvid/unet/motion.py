"""The "Vanilla" motion module: attention across frames at every spatial position.

GroupNorm (32 groups) → Linear in → transformer blocks whose attentions run over the F frames
of each position (a sinusoidal position encoding, max length 24, is added before each) →
GEGLU feed-forward → Linear out, plus the input.  `proj_out` starts at zero, so a freshly
added module is the identity and stage 2 begins exactly where stage 1 ended.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from syncvid.unet.layers import Attention, FeedForward

__all__ = ["VanillaTemporalModule", "sinusoidal_positions"]

MOTION_GROUPS = 32  # LatentSync's motion modules always normalise with 32 groups


def sinusoidal_positions(max_len: int, dim: int) -> torch.Tensor:
    """(1, max_len, dim): sin on even channels, cos on odd ones, frequencies 10000^(−2i/dim)."""
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    freqs = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, max_len, dim)
    pe[0, :, 0::2] = torch.sin(position * freqs)
    pe[0, :, 1::2] = torch.cos(position * freqs)
    return pe


class _PositionalEncoding(nn.Module):
    def __init__(self, dim: int, max_len: int) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_positions(max_len, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pe.shape[1]:
            raise ValueError(
                f"{x.shape[1]} frames exceed the motion module's temporal_position_encoding_max_len={self.pe.shape[1]}"
            )
        return x + self.pe[:, : x.shape[1]]


class TemporalAttention(Attention):
    """Self-attention over frames: (B·F, S, C) is regrouped to (B·S, F, C)."""

    def __init__(self, dim: int, heads: int, head_dim: int, position_encoding: bool, max_len: int) -> None:
        super().__init__(dim, heads, head_dim)
        self.pos_encoder = _PositionalEncoding(dim, max_len) if position_encoding else None

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:  # type: ignore[override]
        bf, s, c = x.shape
        b = bf // num_frames
        seq = x.reshape(b, num_frames, s, c).transpose(1, 2).reshape(b * s, num_frames, c)
        if self.pos_encoder is not None:
            seq = self.pos_encoder(seq)
        out = super().forward(seq)
        return out.reshape(b, s, num_frames, c).transpose(1, 2).reshape(bf, s, c)


class TemporalTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, block_types: Sequence[str],
                 position_encoding: bool, max_len: int) -> None:
        super().__init__()
        for name in block_types:
            if name != "Temporal_Self":
                raise ValueError(f"motion module attention_block_types: only Temporal_Self is supported, got {name!r}")
        self.attention_blocks = nn.ModuleList(
            [TemporalAttention(dim, heads, head_dim, position_encoding, max_len) for _ in block_types]
        )
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in block_types])
        self.ff = FeedForward(dim)
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        for attention, norm in zip(self.attention_blocks, self.norms):
            x = attention(norm(x), num_frames) + x
        return self.ff(self.ff_norm(x)) + x


class TemporalTransformer3DModel(nn.Module):
    def __init__(self, channels: int, heads: int, head_dim: int, num_layers: int, block_types: Sequence[str],
                 position_encoding: bool, max_len: int) -> None:
        super().__init__()
        inner = heads * head_dim
        if inner != channels:
            raise ValueError(
                f"motion module: {heads} heads x {head_dim} = {inner} differs from the block's {channels} channels "
                "(temporal_attention_dim_div must be 1)"
            )
        self.norm = nn.GroupNorm(MOTION_GROUPS, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner)
        self.transformer_blocks = nn.ModuleList(
            [TemporalTransformerBlock(inner, heads, head_dim, block_types, position_encoding, max_len)
             for _ in range(num_layers)]
        )
        self.proj_out = nn.Linear(inner, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * f, c, h, w)
        hidden = self.norm(frames).permute(0, 2, 3, 1).reshape(b * f, h * w, c)
        hidden = self.proj_in(hidden)
        for block in self.transformer_blocks:
            hidden = block(hidden, f)
        hidden = self.proj_out(hidden).reshape(b * f, h, w, c).permute(0, 3, 1, 2)
        out = hidden + frames
        return out.reshape(b, f, c, h, w).transpose(1, 2)


class VanillaTemporalModule(nn.Module):
    """The motion module of one UNet layer, configured by model.motion_module_kwargs."""

    def __init__(self, channels: int, kwargs: Mapping[str, Any]) -> None:
        super().__init__()
        heads = int(kwargs.get("num_attention_heads", 8))
        div = int(kwargs.get("temporal_attention_dim_div", 1))
        self.temporal_transformer = TemporalTransformer3DModel(
            channels,
            heads,
            channels // heads // div,
            int(kwargs.get("num_transformer_block", 2)),
            list(kwargs.get("attention_block_types", ("Temporal_Self", "Temporal_Self"))),
            bool(kwargs.get("temporal_position_encoding", False)),
            int(kwargs.get("temporal_position_encoding_max_len", 24)),
        )
        if kwargs.get("zero_initialize", True):
            nn.init.zeros_(self.temporal_transformer.proj_out.weight)
            nn.init.zeros_(self.temporal_transformer.proj_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal_transformer(x)
