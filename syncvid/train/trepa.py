"""TREPA: a temporal perceptual loss from VideoMAEv2 features, in plain torch.

As LatentSync computes it: both videos (B, C, F, H, W) in [−1, 1] are resized to 224² per
frame (bicubic), mapped to [0, 1], and encoded by VideoMAEv2's ViT (ViT-g/14: tubelets of
2 frames × 14² pixels, 40 blocks of width 1408, 16 heads, MLP ratio 48/11, fixed sinusoidal
positions); the mean-pooled, LayerNorm-ed (`fc_norm`) features are L2-normalised and the loss
is their mean squared difference.

Weights: the published `vit_g_hybrid_pt_1200e_ssv2_ft.pth` (its state dict, possibly under a
"model" or "module" key, with the 174-class `head`), loaded strictly.  `TREPAArch` describes
the network so that tests can run a tiny one through the same code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from syncvid.torch_files import load_weights_file

__all__ = ["TREPAArch", "VideoMAEEncoder", "TREPALoss"]


@dataclass(frozen=True)
class TREPAArch:
    """VideoMAEv2 ViT-g/14 as LatentSync's TREPA loads it."""

    img_size: int = 224
    patch_size: int = 14
    embed_dim: int = 1408
    depth: int = 40
    num_heads: int = 16
    mlp_ratio: float = 48 / 11
    num_frames: int = 16
    tubelet_size: int = 2
    num_classes: int = 174

    @property
    def num_patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2 * (self.num_frames // self.tubelet_size)


def _sinusoid_table(n: int, dim: int) -> torch.Tensor:
    position = torch.arange(n, dtype=torch.float64)[:, None]
    exponent = 2 * (torch.arange(dim) // 2) / dim
    angles = position / torch.pow(10000.0, exponent)[None, :]
    table = torch.empty(n, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table.float()[None]


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        bias = torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, arch: TREPAArch) -> None:
        super().__init__()
        k = (arch.tubelet_size, arch.patch_size, arch.patch_size)
        self.proj = nn.Conv3d(3, arch.embed_dim, kernel_size=k, stride=k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class VideoMAEEncoder(nn.Module):
    """The ViT trunk: `features(video)` with video (B, 3, F, S, S) in [0, 1] → (B, embed_dim)."""

    def __init__(self, arch: TREPAArch = TREPAArch()) -> None:
        super().__init__()
        self.arch = arch
        self.patch_embed = _PatchEmbed(arch)
        self.register_buffer("pos_embed", _sinusoid_table(arch.num_patches, arch.embed_dim), persistent=False)
        self.blocks = nn.ModuleList([_Block(arch.embed_dim, arch.num_heads, arch.mlp_ratio) for _ in range(arch.depth)])
        self.fc_norm = nn.LayerNorm(arch.embed_dim, eps=1e-6)
        self.head = nn.Linear(arch.embed_dim, arch.num_classes)
        self.gradient_checkpointing = False

    def _positions(self, frames: int) -> torch.Tensor:
        groups = frames // self.arch.tubelet_size
        full = self.arch.num_frames // self.arch.tubelet_size
        if groups == full:
            return self.pos_embed
        side = self.arch.img_size // self.arch.patch_size
        grid = self.pos_embed.transpose(1, 2).reshape(1, -1, full, side, side)
        grid = F.interpolate(grid, scale_factor=((groups + 0.1) / full, 1, 1), mode="trilinear")
        return grid.reshape(1, grid.shape[1], -1).transpose(1, 2)

    def features(self, video: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(video)
        x = x + self._positions(video.shape[2]).to(x.dtype)
        for block in self.blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.fc_norm(x.mean(dim=1))


class TREPALoss(nn.Module):
    """`loss(pred, gt)` with videos (B, C, F, H, W) in [−1, 1] → scalar (see the module docstring)."""

    def __init__(self, arch: TREPAArch = TREPAArch()) -> None:
        super().__init__()
        self.encoder = VideoMAEEncoder(arch)
        self.eval().requires_grad_(False)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, arch: TREPAArch = TREPAArch()) -> "TREPALoss":
        p = Path(path)
        state = load_weights_file(p, "VideoMAEv2 checkpoint")
        for key in ("model", "module"):
            if isinstance(state, Mapping) and key in state:
                state = state[key]
                break
        if not isinstance(state, Mapping):
            raise ValueError(f"{p}: not a VideoMAEv2 state dict")
        loss = cls(arch)
        try:
            loss.encoder.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"{p}: does not match the VideoMAEv2 ViT ({str(exc).splitlines()[0]})") from exc
        return loss

    def train(self, mode: bool = True) -> "TREPALoss":  # always frozen
        return super().train(False)

    def _prepare(self, video: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = video.shape
        size = self.encoder.arch.img_size
        frames = video.transpose(1, 2).reshape(b * f, c, h, w)
        if (h, w) != (size, size):
            frames = F.interpolate(frames, size=(size, size), mode="bicubic")
        frames = (frames / 2 + 0.5).clamp(0, 1)
        return frames.reshape(b, f, c, size, size).transpose(1, 2)

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        dtype = next(self.encoder.parameters()).dtype
        a = F.normalize(self.encoder.features(self._prepare(pred).to(dtype)).float(), p=2, dim=1)
        b = F.normalize(self.encoder.features(self._prepare(gt).to(dtype)).float(), p=2, dim=1)
        return F.mse_loss(a, b)


def vit_g_parameter_count(arch: TREPAArch = TREPAArch()) -> int:
    """Parameters of the published ViT-g/14 (computed from the architecture, for documentation)."""
    d, hidden = arch.embed_dim, int(arch.embed_dim * arch.mlp_ratio)
    per_block = 4 * d + 3 * d * d + 2 * d + d * d + d + d * hidden + hidden + hidden * d + d
    patch = 3 * arch.tubelet_size * arch.patch_size**2 * d + d
    return patch + arch.depth * per_block + 2 * d + d * arch.num_classes + arch.num_classes


