"""TREPA: LatentSync's temporal representation alignment loss, from VideoMAEv2 features, in plain torch.

Both videos (B, C, F, H, W) in [−1, 1] are resized per frame to 224² (bicubic), mapped to
[0, 1] (x/2 + 0.5, clamped) and encoded by VideoMAEv2's fine-tuned ViT-g/14: tubelets of
2 frames × 14² pixels through a Conv3d, fixed sinusoidal positions, 40 pre-norm blocks of
width 1408 (16 heads, q/v biases, MLP 6144 with exact GELU), then the mean over tokens and
`fc_norm`.  The features are L2-normalised per video and the loss is their mean squared
difference.  The classification head is loaded but unused.

Weights: the published `vit_g_hybrid_pt_1200e_ssv2_ft.pth` — a state dict (526 tensors,
1,011,855,918 parameters with the 174-class `head`), possibly wrapped under "model" or
"module" — loaded strictly.  `TREPAArch` describes the network, so a tiny one runs through
the same code.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from syncvid.train.pixel_losses import read_state_dict, require_state

__all__ = ["TREPAArch", "TREPALoss", "VideoMAEEncoder", "sinusoid_positions", "vit_g_parameter_count"]


@dataclass(frozen=True)
class TREPAArch:
    """VideoMAEv2 ViT geometry; the defaults are the published ViT-g/14 that TREPA loads."""

    img_size: int = 224
    patch_size: int = 14
    embed_dim: int = 1408
    depth: int = 40
    num_heads: int = 16
    mlp_ratio: float = 48 / 11
    num_frames: int = 16
    tubelet_size: int = 2
    num_classes: int = 174

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not a multiple of num_heads {self.num_heads}")
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.num_frames % self.tubelet_size:
            raise ValueError(f"num_frames {self.num_frames} is not a multiple of tubelet_size {self.tubelet_size}")

    @property
    def grid(self) -> int:
        """Patches along each side of a frame."""
        return self.img_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """Tokens of a `num_frames`-frame video."""
        return self.grid**2 * (self.num_frames // self.tubelet_size)

    @property
    def mlp_hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)


def vit_g_parameter_count(arch: TREPAArch = TREPAArch()) -> int:
    """Parameters of the encoder for `arch`, counted from the architecture (no model built)."""
    d, h = arch.embed_dim, arch.mlp_hidden
    block = (
        2 * d  # norm1
        + 3 * d * d + 2 * d  # qkv weight, q_bias, v_bias
        + d * d + d  # proj
        + 2 * d  # norm2
        + d * h + h  # fc1
        + h * d + d  # fc2
    )
    patch = 3 * arch.tubelet_size * arch.patch_size**2 * d + d
    return patch + arch.depth * block + 2 * d + (d + 1) * arch.num_classes


def sinusoid_positions(n: int, dim: int) -> torch.Tensor:
    """(1, n, dim) fixed table: angle(p, j) = p / 10000^(2·⌊j/2⌋/dim), sin on even j, cos on odd j."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)
    exponent = 2 * torch.div(j, 2, rounding_mode="floor") / dim
    angles = pos / torch.pow(torch.tensor(10000.0, dtype=torch.float64), exponent)
    table = torch.where(j.remainder(2) == 0, torch.sin(angles), torch.cos(angles))
    return table.to(torch.float32).unsqueeze(0)


class _Attention(nn.Module):
    """Multi-head self-attention with a bias-free qkv projection plus learned q and v biases."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) → (B, N, D)."""
        b, n, d = x.shape
        bias = torch.cat([self.q_bias, self.q_bias.new_zeros(d), self.v_bias])
        q, k, v = F.linear(x, self.qkv.weight, bias).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, arch: TREPAArch) -> None:
        super().__init__()
        d = arch.embed_dim
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.attn = _Attention(d, arch.num_heads)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = _Mlp(d, arch.mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) → (B, N, D)."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, arch: TREPAArch) -> None:
        super().__init__()
        size = (arch.tubelet_size, arch.patch_size, arch.patch_size)
        self.proj = nn.Conv3d(3, arch.embed_dim, kernel_size=size, stride=size)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, F, S, S) → (B, F/t · (S/p)², D) in (time, row, column) order."""
        return self.proj(video).flatten(2).transpose(1, 2)


class VideoMAEEncoder(nn.Module):
    """VideoMAEv2's fine-tuning ViT with mean pooling; state-dict keys as the published checkpoint.

    `forward(video)`: (B, 3, F, S, S) in [0, 1], S = `arch.img_size` → features (B, embed_dim)."""

    def __init__(self, arch: TREPAArch = TREPAArch()) -> None:
        super().__init__()
        self.arch = arch
        self.patch_embed = _PatchEmbed(arch)
        self.register_buffer("pos_embed", sinusoid_positions(arch.num_patches, arch.embed_dim), persistent=False)
        self.blocks = nn.ModuleList(_Block(arch) for _ in range(arch.depth))
        self.fc_norm = nn.LayerNorm(arch.embed_dim, eps=1e-6)
        self.head = nn.Linear(arch.embed_dim, arch.num_classes)
        self.gradient_checkpointing = False

    def positions(self, frames: int) -> torch.Tensor:
        """(1, N, D) positions for `frames` frames: the table itself at `arch.num_frames`, else
        resampled along time (trilinear, scale (t + 0.1)/T as VideoMAEv2 does)."""
        t = frames // self.arch.tubelet_size
        full = self.arch.num_frames // self.arch.tubelet_size
        if t == full:
            return self.pos_embed
        g, d = self.arch.grid, self.arch.embed_dim
        grid = self.pos_embed.transpose(1, 2).reshape(1, d, full, g, g)
        grid = F.interpolate(grid, scale_factor=((t + 0.1) / full, 1.0, 1.0), mode="trilinear")
        return grid.reshape(1, d, -1).transpose(1, 2)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        s = self.arch.img_size
        if video.ndim != 5 or video.shape[1] != 3 or tuple(video.shape[3:]) != (s, s):
            raise ValueError(f"expected videos (B, 3, F, {s}, {s}), got {tuple(video.shape)}")
        if video.shape[2] < self.arch.tubelet_size:
            raise ValueError(f"a video needs at least {self.arch.tubelet_size} frames, got {video.shape[2]}")
        x = self.patch_embed(video)
        x = x + self.positions(video.shape[2]).to(dtype=x.dtype)
        for block in self.blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled() and x.requires_grad:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.fc_norm(x.mean(dim=1))

    def logits(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, F, S, S) → class scores (B, num_classes) (not part of the loss)."""
        return self.head(self.forward(video))


class TREPALoss(nn.Module):
    """`forward(pred, gt)`: videos (B, C, F, H, W) in [−1, 1] → scalar float32 loss.

    Frozen and always in eval mode; gradients flow to `pred` (and to `gt` if it needs them)."""

    def __init__(self, arch: TREPAArch = TREPAArch(), gradient_checkpointing: bool = True) -> None:
        super().__init__()
        self.encoder = VideoMAEEncoder(arch)
        self.encoder.gradient_checkpointing = gradient_checkpointing
        self.requires_grad_(False)
        self.eval()

    @property
    def arch(self) -> TREPAArch:
        return self.encoder.arch

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        arch: TREPAArch | None = None,
        *,
        gradient_checkpointing: bool = True,
        **fields: Any,
    ) -> TREPALoss:
        """Load a VideoMAEv2 checkpoint strictly; `arch` and/or TREPAArch `fields` override the
        ViT-g defaults.  ValueError (one line, naming the file) for a missing or unreadable file,
        missing or unexpected keys, or a tensor of the wrong shape."""
        arch = dataclasses.replace(arch or TREPAArch(), **fields)
        loss = cls(arch, gradient_checkpointing=gradient_checkpointing)
        state = read_state_dict(path, "VideoMAEv2 checkpoint", wrappers=("model", "module"))
        shapes = {k: tuple(v.shape) for k, v in loss.encoder.state_dict().items()}
        mismatch = f"does not match the VideoMAEv2 ViT (embed {arch.embed_dim}, depth {arch.depth})"
        require_state(state, shapes, path, mismatch)
        loss.encoder.load_state_dict(state, strict=True)
        return loss

    def train(self, mode: bool = True) -> TREPALoss:
        """Stays in eval mode: the network is a fixed feature extractor."""
        return super().train(False)

    def prepare(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, F, H, W) in [−1, 1] → (B, C, F, S, S) in [0, 1] in the encoder's dtype."""
        if video.ndim != 5:
            raise ValueError(f"expected videos (B, C, F, H, W), got {tuple(video.shape)}")
        b, c, f, h, w = video.shape
        s = self.arch.img_size
        frames = video.transpose(1, 2).reshape(b * f, c, h, w)
        if (h, w) != (s, s):
            frames = F.interpolate(frames, size=(s, s), mode="bicubic")
        frames = (frames / 2 + 0.5).clamp(0, 1)
        dtype = self.encoder.patch_embed.proj.weight.dtype
        return frames.reshape(b, f, c, s, s).transpose(1, 2).to(dtype)

    def features(self, video: torch.Tensor) -> torch.Tensor:
        """(B, C, F, H, W) in [−1, 1] → L2-normalised features (B, embed_dim), float32."""
        return F.normalize(self.encoder(self.prepare(video)).float(), p=2, dim=1)

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        if pred.shape != gt.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)} differ in shape")
        fp = self.features(pred)
        if gt.requires_grad:
            fg = self.features(gt)
        else:
            with torch.no_grad():
                fg = self.features(gt)
        return F.mse_loss(fp, fg)

