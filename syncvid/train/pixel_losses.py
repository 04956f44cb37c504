"""The pixel-space losses of UNet stage 2 as LatentSync applies them."""

from __future__ import annotations

import torch

__all__ = ["lower_half", "lpips_loss"]


def lower_half(frames: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → the rows from H//2 down."""
    return frames[:, :, frames.shape[2] // 2:, :]


def lpips_loss(model: torch.nn.Module, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean LPIPS over frames between the lower halves of predicted and true frames (N, 3, H, W) in [−1, 1]."""
    return model(lower_half(pred).float(), lower_half(gt).float()).mean()
