"""Building blocks of the lip-sync UNet, in plain torch, with LatentSync's parameter names.

Video tensors are (B, C, F, H, W).  "3-D" convolutions are 2-D convolutions applied to
every frame; the resnets' GroupNorm is an ordinary GroupNorm over the whole 5-D tensor,
so its statistics span all frames (as LatentSync computes them).  Spatial attention works
per frame; the audio features (B, F, tokens, dim) are the cross-attention context of
their own frame.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "timestep_embedding",
    "TimestepEmbedding",
    "FrameConv",
    "ResnetBlock3D",
    "Downsample3D",
    "Upsample3D",
    "Attention",
    "GEGLU",
    "FeedForward",
    "BasicTransformerBlock",
    "Transformer3DModel",
    "activation",
]


def activation(name: str) -> nn.Module:
    """The UNet's nonlinearity by its config name (act_fn)."""
    if name in ("silu", "swish"):
        return nn.SiLU()
    if name == "mish":
        return nn.Mish()
    raise ValueError(f"act_fn must be silu, swish or mish, got {name!r}")


def timestep_embedding(timesteps: torch.Tensor, dim: int, flip_sin_to_cos: bool, freq_shift: float,
                       max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding (N,) -> (N, dim): frequencies exp(−ln(max_period)·i/(dim/2 − shift)),
    sines then cosines (cosines first with `flip_sin_to_cos`), zero-padded to odd `dim`."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device)
    freqs = torch.exp(exponent / (half - freq_shift))
    angles = timesteps[:, None].float() * freqs[None, :]
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class TimestepEmbedding(nn.Module):
    """Linear → activation → Linear on the sinusoidal embedding."""

    def __init__(self, in_channels: int, embed_dim: int, act_fn: str = "silu") -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, embed_dim)
        self.act = activation(act_fn)
        self.linear_2 = nn.Linear(embed_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


class FrameConv(nn.Conv2d):
    """A 2-D convolution applied to every frame of (B, C, F, H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        b, c, f, h, w = x.shape
        # Contiguous frames in, contiguous video out: oneDNN's kernels (and their backward) are
        # much slower on the strided views a plain transpose would hand them.
        y = super().forward(x.transpose(1, 2).reshape(b * f, c, h, w).contiguous())
        return y.reshape(b, f, *y.shape[1:]).transpose(1, 2).contiguous()


class ResnetBlock3D(nn.Module):
    """GroupNorm → act → conv → (+ time embedding) → GroupNorm → act → dropout → conv, plus the
    (1×1-projected when channels change) input, divided by `output_scale_factor`.

    `time_embedding_norm="scale_shift"` turns the time embedding into a scale and a shift of
    the second normalisation instead of an added bias."""

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, *, groups: int, eps: float,
                 act_fn: str = "silu", time_embedding_norm: str = "default", output_scale_factor: float = 1.0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if time_embedding_norm not in ("default", "scale_shift"):
            raise ValueError(f"resnet_time_scale_shift must be default or scale_shift, got {time_embedding_norm!r}")
        self.time_embedding_norm = time_embedding_norm
        self.output_scale_factor = output_scale_factor
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = FrameConv(in_channels, out_channels, 3, padding=1)
        proj_out = out_channels * (2 if time_embedding_norm == "scale_shift" else 1)
        self.time_emb_proj = nn.Linear(temb_channels, proj_out)
        # Present in LatentSync's scale_shift variant (used for per-frame time embeddings only).
        self.double_len_linear = nn.Linear(proj_out, 2 * proj_out) if time_embedding_norm == "scale_shift" else None
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = FrameConv(out_channels, out_channels, 3, padding=1)
        self.nonlinearity = activation(act_fn)
        self.conv_shortcut = FrameConv(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.nonlinearity(self.norm1(x)))
        t = self.time_emb_proj(self.nonlinearity(temb))[:, :, None, None, None]
        if self.time_embedding_norm == "default":
            h = self.norm2(h + t)
        else:
            scale, shift = t.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(self.nonlinearity(h)))
        skip = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        return (skip + h) / self.output_scale_factor


class Downsample3D(nn.Module):
    """Stride-2 3×3 convolution per frame."""

    def __init__(self, channels: int, padding: int = 1) -> None:
        super().__init__()
        if padding < 1:
            raise ValueError(f"downsample_padding must be >= 1, got {padding}")
        self.conv = FrameConv(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample3D(nn.Module):
    """Nearest-neighbour ×2 in height and width (or to `size`), then a 3×3 convolution per frame."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = FrameConv(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        dtype = x.dtype
        if dtype == torch.bfloat16:  # nearest interpolation lacks bf16 kernels on some devices
            x = x.float()
        if size is None:
            x = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="nearest")
        else:
            x = F.interpolate(x, size=(x.shape[2], *size), mode="nearest")
        return self.conv(x.to(dtype))


class Attention(nn.Module):
    """Multi-head attention (scaled dot product) with LatentSync's names: to_q, to_k, to_v (no
    bias), to_out.0 (with bias).  `context_dim` is the width of the keys' source (the audio)."""

    def __init__(self, query_dim: int, heads: int, head_dim: int, context_dim: int | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim or query_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim or query_dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim), nn.Dropout(dropout)])

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        n, s, d = x.shape
        return x.reshape(n, s, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, S, query_dim), context (N, T, context_dim) or None (self-attention) → (N, S, query_dim)."""
        source = x if context is None else context
        q, k, v = self._split(self.to_q(x)), self._split(self.to_k(source)), self._split(self.to_v(source))
        out = F.scaled_dot_product_attention(q, k, v)
        n, _, s, _ = out.shape
        out = out.transpose(1, 2).reshape(n, s, -1)
        return self.to_out[1](self.to_out[0](out))


class GEGLU(nn.Module):
    """Linear to twice the width; the first half gated by GELU of the second."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU (4× width) → dropout → Linear, named net.0 / net.1 / net.2."""

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        inner = dim * mult
        self.net = nn.ModuleList([GEGLU(dim, inner), nn.Dropout(dropout), nn.Linear(inner, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class BasicTransformerBlock(nn.Module):
    """Pre-norm self-attention (attn1), audio cross-attention (attn2, when the UNet has an
    audio layer and audio is given), GEGLU feed-forward; each with a residual connection."""

    def __init__(self, dim: int, heads: int, head_dim: int, context_dim: int, add_audio_layer: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads, head_dim)
        if add_audio_layer:
            self.norm2 = nn.LayerNorm(dim)
            self.attn2: Attention | None = Attention(dim, heads, head_dim, context_dim=context_dim)
        else:
            self.attn2 = None
        self.ff = FeedForward(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        x = self.attn1(self.norm1(x)) + x
        if self.attn2 is not None and context is not None:
            x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class Transformer3DModel(nn.Module):
    """Spatial transformer applied to each frame: GroupNorm → 1×1 conv in → one
    BasicTransformerBlock over the H·W positions → 1×1 conv out, plus the input.

    `heads` is the number of heads (LatentSync's `attention_head_dim` config value is passed
    here); each head is channels/heads wide."""

    def __init__(self, channels: int, heads: int, context_dim: int, groups: int, add_audio_layer: bool,
                 num_layers: int = 1) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention_head_dim={heads} (heads) does not divide the block's {channels} channels")
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, channels, 1)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(channels, heads, channels // heads, context_dim, add_audio_layer)
             for _ in range(num_layers)]
        )
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
        """x (B, C, F, H, W), audio (B, F, T, D) or (B·F, T, D) or None."""
        b, c, f, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * f, c, h, w)
        hidden = self.proj_in(self.norm(frames))
        hidden = hidden.permute(0, 2, 3, 1).reshape(b * f, h * w, c)
        context = audio.reshape(b * f, *audio.shape[-2:]) if audio is not None and audio.dim() == 4 else audio
        for block in self.transformer_blocks:
            hidden = block(hidden, context)
        hidden = hidden.reshape(b * f, h, w, c).permute(0, 3, 1, 2)
        out = self.proj_out(hidden) + frames
        return out.reshape(b, f, c, h, w).transpose(1, 2)
