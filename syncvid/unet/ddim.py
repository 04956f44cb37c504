"""The DDIM noise schedule LatentSync trains and samples with, in plain torch.

Defaults are LatentSync's `configs/scheduler_config.json`: 1000 training steps, betas from
0.00085 to 0.012 on a "scaled linear" ramp (linear in √β), no clipping of x0, the last step
towards ᾱ₀ (not 1), steps offset by 1, epsilon prediction, "leading" spacing (20 steps:
951, 901, …, 51, 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["DDIMParams", "DDIMSchedule"]


@dataclass(frozen=True)
class DDIMParams:
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: str = "scaled_linear"  # scaled_linear | linear
    clip_sample: bool = False
    set_alpha_to_one: bool = False
    steps_offset: int = 1


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1, …) matching `like`'s rank, in its dtype and device."""
    v = values.to(device=like.device, dtype=like.dtype).flatten()
    return v.reshape(v.shape[0], *([1] * (like.dim() - 1)))


class DDIMSchedule:
    """ᾱ_t, forward noising, the one-step x0 estimate and the deterministic (eta 0) DDIM step."""

    def __init__(self, params: DDIMParams = DDIMParams()) -> None:
        self.params = params
        n = params.num_train_timesteps
        if params.beta_schedule == "scaled_linear":
            betas = torch.linspace(params.beta_start**0.5, params.beta_end**0.5, n, dtype=torch.float32) ** 2
        elif params.beta_schedule == "linear":
            betas = torch.linspace(params.beta_start, params.beta_end, n, dtype=torch.float32)
        else:
            raise ValueError(f"beta_schedule must be scaled_linear or linear, got {params.beta_schedule!r}")
        self.betas = betas
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self.final_alpha_cumprod = torch.tensor(1.0) if params.set_alpha_to_one else self.alphas_cumprod[0]

    @property
    def num_train_timesteps(self) -> int:
        return self.params.num_train_timesteps

    def timesteps_for(self, num_inference_steps: int) -> torch.Tensor:
        """Descending timesteps of an `num_inference_steps`-step sampling ("leading" spacing)."""
        n = self.params.num_train_timesteps
        if not 0 < num_inference_steps <= n:
            raise ValueError(f"inference steps must be in 1..{n}, got {num_inference_steps}")
        ratio = n // num_inference_steps
        steps = (torch.arange(num_inference_steps) * ratio).flip(0) + self.params.steps_offset
        return steps.long()

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t · x0 + √(1 − ᾱ_t) · noise, with one t per sample (B,)."""
        a = self.alphas_cumprod.to(device=x0.device, dtype=x0.dtype)[t.to(x0.device).long()]
        return _per_sample(a**0.5, x0) * x0 + _per_sample((1 - a) ** 0.5, x0) * noise

    def one_step_x0(self, x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x0 ≈ (x_t − √(1 − ᾱ_t) · ε) / √ᾱ_t (clipped to [−1, 1] only with clip_sample)."""
        a = self.alphas_cumprod.to(eps.device)[t.to(eps.device).long()].to(eps.dtype)
        x0 = (x_t - _per_sample((1 - a) ** 0.5, eps) * eps) / _per_sample(a**0.5, eps)
        return x0.clamp(-1, 1) if self.params.clip_sample else x0

    def step(self, eps: torch.Tensor, t: int, x_t: torch.Tensor, num_inference_steps: int, eta: float = 0.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """x_{t−Δ} from x_t and the predicted noise, Δ = num_train_timesteps // num_inference_steps."""
        t = int(t)
        prev = t - self.params.num_train_timesteps // num_inference_steps
        a_t = self.alphas_cumprod[t]
        a_prev = self.alphas_cumprod[prev] if prev >= 0 else self.final_alpha_cumprod
        x0 = (x_t - (1 - a_t) ** 0.5 * eps) / a_t**0.5
        if self.params.clip_sample:
            x0 = x0.clamp(-1, 1)
        variance = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)
        std = eta * variance**0.5
        out = a_prev**0.5 * x0 + (1 - a_prev - std**2) ** 0.5 * eps
        if eta > 0:
            noise = torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype).to(x_t.device)
            out = out + std * noise
        return out
