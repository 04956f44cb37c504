"""The frozen image VAE (diffusers' `AutoencoderKL`) that maps frames to latents and back.

Latents follow LatentSync: `(z − shift) · scale` with z drawn from the encoder's posterior
(scale 0.18215 and shift 0 for sd-vae-ft-mse); decoding inverts that.  diffusers is an
optional dependency (`pip install "syncvid[unet]"`); it is imported when a VAE is built.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

__all__ = ["LatentVAE"]


def _autoencoder_class():
    try:
        from diffusers import AutoencoderKL
    except ImportError as exc:
        raise ImportError(f'the VAE needs diffusers: pip install "syncvid[unet]" ({exc})') from exc
    return AutoencoderKL


class LatentVAE(nn.Module):
    """Frozen AutoencoderKL with the latent scaling of the config."""

    def __init__(self, model: nn.Module, scaling_factor: float = 0.18215, shift_factor: float = 0.0) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.scaling_factor = float(scaling_factor)
        self.shift_factor = float(shift_factor)

    @classmethod
    def from_folder(cls, path: str | os.PathLike, scaling_factor: float = 0.18215, shift_factor: float = 0.0,
                    dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> "LatentVAE":
        """A diffusers AutoencoderKL folder (config.json + weights), read locally only."""
        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise ValueError(f"{folder}: not a diffusers AutoencoderKL folder (no config.json)")
        try:
            model = _autoencoder_class().from_pretrained(folder, local_files_only=True, torch_dtype=dtype)
        except (OSError, ValueError, RuntimeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"{folder}: cannot load the VAE ({first})") from exc
        return cls(model, scaling_factor, shift_factor).to(device)

    @classmethod
    def random(cls, block_out_channels: Sequence[int] = (32, 64), latent_channels: int = 4,
               layers_per_block: int = 1, norm_num_groups: int = 8, seed: int = 0,
               scaling_factor: float = 0.18215, shift_factor: float = 0.0) -> "LatentVAE":
        """A small randomly initialised AutoencoderKL (tests, CPU configs); same seed, same weights."""
        n = len(block_out_channels)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = _autoencoder_class()(
                in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
                up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=tuple(int(c) for c in block_out_channels),
                layers_per_block=int(layers_per_block), latent_channels=int(latent_channels),
                norm_num_groups=int(norm_num_groups),
            )
        return cls(model, scaling_factor, shift_factor)

    @property
    def downscale(self) -> int:
        return 2 ** (len(self.model.config.block_out_channels) - 1)

    @property
    def latent_channels(self) -> int:
        return int(self.model.config.latent_channels)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def train(self, mode: bool = True) -> "LatentVAE":  # always frozen in eval mode
        return super().train(False)

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor, noise: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """(N, 3, H, W) in [−1, 1] → (N, C, H/d, W/d) scaled latents; the posterior sample uses
        `noise` when given (training draws it itself), else a draw from `generator`."""
        posterior = self.model.encode(pixels.to(self.dtype)).latent_dist
        if noise is None:
            noise = torch.randn(posterior.mean.shape, generator=generator, dtype=posterior.mean.dtype)
        z = posterior.mean + posterior.std * noise.to(device=posterior.mean.device, dtype=posterior.mean.dtype)
        return (z - self.shift_factor) * self.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) scaled latents → (N, 3, h·d, w·d) pixels (about [−1, 1]); differentiable."""
        z = latents.to(self.dtype) / self.scaling_factor + self.shift_factor
        return self.model.decode(z).sample
