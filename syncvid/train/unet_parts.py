"""Everything a UNet training run needs besides the loop, built and checked from the config.

`build_parts(cfg, device)` returns the UNet (with its starting weights), the frozen VAE,
the noise schedule, and — only when the config asks for them — the frozen SyncNet, LPIPS
and TREPA networks.  `check_config(cfg)` lists every problem that would stop the run
(missing weight files named by their config key, a stage-2 config with nothing to start
from) so that they are reported at once, before any model is built.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from syncvid.config import SyncNetConfig, UNetConfig
from syncvid.data.unet_audio import AudioEncoderSpec
from syncvid.train.common import TrainingSetupError

__all__ = ["UNetParts", "StartWeights", "check_config", "build_parts", "build_vae", "trainable_parameters", "load_syncnet_config"]

log = logging.getLogger(__name__)


@dataclass
class StartWeights:
    """Where the UNet's weights came from."""

    source: str  # "random", "init_from", "resume_ckpt_path" or a run state
    path: str = ""
    global_step: int = 0
    missing: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


@dataclass
class UNetParts:
    unet: torch.nn.Module
    vae: Any
    schedule: Any
    start: StartWeights
    syncnet: torch.nn.Module | None = None
    syncnet_cfg: SyncNetConfig | None = None
    lpips: torch.nn.Module | None = None
    trepa: torch.nn.Module | None = None


def _needs_pixels(cfg: UNetConfig) -> bool:
    return bool(cfg.run.pixel_space_supervise)


def _uses(cfg: UNetConfig, weight_key: str) -> bool:
    return _needs_pixels(cfg) and float(getattr(cfg.run, weight_key)) > 0


def uses_sync_loss(cfg: UNetConfig) -> bool:
    return bool(cfg.run.use_syncnet) and bool(cfg.model.add_audio_layer) and float(cfg.run.sync_loss_weight) > 0


def load_syncnet_config(cfg: UNetConfig):
    """The SyncNet config `data.syncnet_config_path` names: a path as given, else relative to
    the repository root (the shipped configs name `configs/syncnet/...`)."""
    from syncvid.config import CONFIG_ROOT, ConfigError, load_config

    path = Path(cfg.data.syncnet_config_path)
    if not path.is_absolute() and not path.exists() and (CONFIG_ROOT.parent / path).exists():
        path = CONFIG_ROOT.parent / path
    try:
        return load_config(path, family="syncnet")
    except ConfigError as exc:
        raise TrainingSetupError(f"data.syncnet_config_path: {exc}") from exc
    except FileNotFoundError as exc:
        raise TrainingSetupError(f"data.syncnet_config_path: no such file: {path}") from exc


def _file_problem(key: str, path: str, what: str) -> str | None:
    if not path:
        return f"{key} is empty: {what}"
    if not os.path.exists(path):
        return f"{key}: no such file or folder: {path}"
    return None


def freezes_conv_out(cfg: UNetConfig) -> bool:
    """True when the trainable modules leave the UNet's zero-initialised output conv frozen."""
    modules = list(cfg.run.trainable_modules)
    return bool(modules) and not any(m in "conv_out.weight" for m in modules)


def check_config(cfg: UNetConfig, *, resuming: bool = False) -> list[str]:
    """Every problem that stops a run before it starts, each naming its config key."""
    problems: list[str] = []
    ckpt, run = cfg.ckpt, cfg.run
    has_start = bool(ckpt.init_from or ckpt.resume_ckpt_path or resuming)
    if freezes_conv_out(cfg) and not has_start:
        problems.append(
            f"run.trainable_modules={list(run.trainable_modules)} trains only part of a UNet whose output "
            "layer starts at zero, so it cannot learn from random weights: set ckpt.init_from to a stage-1 "
            "checkpoint (or ckpt.resume_ckpt_path to latentsync_unet.pt)"
        )
    for key in ("init_from", "resume_ckpt_path"):
        path = getattr(ckpt, key)
        if path and not os.path.isfile(path):
            problems.append(f"ckpt.{key}: no such file: {path}")
    if cfg.model.vae.source == "pretrained":
        p = _file_problem("ckpt.vae_path", ckpt.vae_path,
                          "set it to a diffusers AutoencoderKL folder (stabilityai/sd-vae-ft-mse), "
                          "or set model.vae.source=random")
        if p:
            problems.append(p)
    if cfg.model.add_audio_layer:
        problems.extend(AudioEncoderSpec.from_config(cfg).check())
    if uses_sync_loss(cfg):
        if not _needs_pixels(cfg):
            problems.append("run.use_syncnet needs run.pixel_space_supervise: true (the sync loss reads decoded frames)")
        syncnet_path = ckpt.syncnet_path
        if not syncnet_path:
            try:
                syncnet_path = load_syncnet_config(cfg).ckpt.inference_ckpt_path
            except TrainingSetupError as exc:
                problems.append(str(exc))
                syncnet_path = None
        if syncnet_path is not None:
            p = _file_problem("ckpt.syncnet_path", syncnet_path,
                              "the sync loss needs a StableSyncNet checkpoint matching data.syncnet_config_path "
                              "(stable_syncnet.pt for configs/syncnet/pixel_attn.yaml), or set run.use_syncnet=false")
            if p:
                problems.append(p)
    if _uses(cfg, "perceptual_loss_weight"):
        for key in ("lpips_vgg_path", "lpips_lin_path"):
            p = _file_problem(f"ckpt.{key}", getattr(ckpt, key),
                              "run.perceptual_loss_weight > 0 needs the LPIPS weights (torchvision's VGG16 and "
                              "lpips' v0.1 vgg.pth), or set run.perceptual_loss_weight=0")
            if p:
                problems.append(p)
    if _uses(cfg, "trepa_loss_weight"):
        p = _file_problem("ckpt.trepa_path", ckpt.trepa_path,
                          "run.trepa_loss_weight > 0 needs the VideoMAEv2 ViT-g checkpoint, "
                          "or set run.trepa_loss_weight=0")
        if p:
            problems.append(p)
    return problems


def trainable_parameters(unet: torch.nn.Module, modules: list[str]) -> list[torch.nn.Parameter]:
    """Stage 1 (modules empty): every parameter.  Otherwise freeze all, then train the
    parameters whose name contains any of `modules` (LatentSync's rule)."""
    if not modules:
        unet.requires_grad_(True)
        return list(unet.parameters())
    unet.requires_grad_(False)
    chosen = []
    for name, param in unet.named_parameters():
        if any(m in name for m in modules):
            param.requires_grad_(True)
            chosen.append(param)
    if not chosen:
        raise TrainingSetupError(f"run.trainable_modules={modules} matches no UNet parameter")
    return chosen


def _load_start_weights(unet: torch.nn.Module, cfg: UNetConfig, state_path: Path | None) -> StartWeights:
    from syncvid.unet.loading import load_unet_weights, read_unet_checkpoint

    if state_path is not None:
        state, step = read_unet_checkpoint(state_path)
        load_unet_weights(unet, state, mode="strict")
        return StartWeights("resume", str(state_path), int(step or 0))
    for key in ("resume_ckpt_path", "init_from"):
        path = getattr(cfg.ckpt, key)
        if not path:
            continue
        try:
            state, step = read_unet_checkpoint(path)
            report = load_unet_weights(unet, state, mode="auto")
        except (ValueError, RuntimeError, OSError) as exc:
            raise TrainingSetupError(f"ckpt.{key}: {exc}") from exc
        start_step = int(step or 0) if key == "resume_ckpt_path" else 0
        return StartWeights(key, str(path), start_step, list(report.missing), list(report.dropped))
    return StartWeights("random")


def build_vae(cfg: UNetConfig, device: torch.device, dtype: torch.dtype = torch.float32):
    """The frozen VAE of `model.vae`: the diffusers folder at ckpt.vae_path, or a small random one."""
    from syncvid.unet.vae import LatentVAE

    vae_cfg = cfg.model.vae
    try:
        if vae_cfg.source == "pretrained":
            if not cfg.ckpt.vae_path:
                raise ValueError("ckpt.vae_path is empty: set it to a diffusers AutoencoderKL folder "
                                 "(stabilityai/sd-vae-ft-mse), or set model.vae.source=random")
            return LatentVAE.from_folder(cfg.ckpt.vae_path, scaling_factor=float(vae_cfg.scaling_factor),
                                         shift_factor=float(vae_cfg.shift_factor), dtype=dtype, device=device)
        return LatentVAE.random(
            block_out_channels=tuple(vae_cfg.block_out_channels), latent_channels=int(vae_cfg.latent_channels),
            layers_per_block=int(vae_cfg.layers_per_block), norm_num_groups=int(vae_cfg.norm_num_groups),
            seed=int(vae_cfg.seed), scaling_factor=float(vae_cfg.scaling_factor),
            shift_factor=float(vae_cfg.shift_factor),
        ).to(device=device, dtype=dtype)
    except (ValueError, OSError, ImportError) as exc:
        raise TrainingSetupError(f"model.vae: {exc}") from exc


def build_parts(cfg: UNetConfig, device: torch.device, *, state_path: Path | None = None, dtype_frozen=None) -> UNetParts:
    """Build and load every network of the run on `device` (see the module docstring)."""
    from syncvid.unet import UNet3DConditionModel
    from syncvid.unet.ddim import DDIMSchedule

    problems = check_config(cfg, resuming=state_path is not None)
    if problems:
        raise TrainingSetupError("; ".join(problems))
    try:
        unet = UNet3DConditionModel.from_config(cfg.model)
    except ValueError as exc:
        raise TrainingSetupError(f"model: {exc}") from exc
    start = _load_start_weights(unet, cfg, state_path)
    if cfg.run.enable_gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    unet.to(device)

    vae = build_vae(cfg, device, dtype_frozen or torch.float32)
    latent_channels = int(cfg.model.in_channels - 1) // 3
    if vae.latent_channels != latent_channels or int(cfg.model.out_channels) != latent_channels:
        raise TrainingSetupError(
            f"the VAE has {vae.latent_channels} latent channels but model.in_channels={cfg.model.in_channels} "
            f"(3 latents + a mask) and model.out_channels={cfg.model.out_channels} expect {latent_channels}"
        )
    if int(cfg.data.resolution) % vae.downscale:
        raise TrainingSetupError(
            f"data.resolution={cfg.data.resolution} is not a multiple of the VAE's downscale {vae.downscale}"
        )
    parts = UNetParts(unet=unet, vae=vae, schedule=DDIMSchedule(), start=start)
    frozen_dtype = dtype_frozen or torch.float32

    if uses_sync_loss(cfg):
        from syncvid.sync.stable_syncnet import load_stable_syncnet

        scfg = load_syncnet_config(cfg)
        path = cfg.ckpt.syncnet_path or scfg.ckpt.inference_ckpt_path
        expected = int(cfg.data.num_frames) * 3
        if int(scfg.model.visual_encoder.in_channels) != expected:
            raise TrainingSetupError(
                f"the SyncNet of {cfg.data.syncnet_config_path} takes {scfg.model.visual_encoder.in_channels} "
                f"channels but data.num_frames={cfg.data.num_frames} RGB frames stack to {expected}"
            )
        try:
            syncnet = load_stable_syncnet(path, scfg.model, device)
        except (FileNotFoundError, RuntimeError) as exc:
            raise TrainingSetupError(f"ckpt.syncnet_path: {exc}") from exc
        syncnet.requires_grad_(False)
        parts.syncnet, parts.syncnet_cfg = syncnet.to(dtype=frozen_dtype), scfg
    if _uses(cfg, "perceptual_loss_weight"):
        from syncvid.train.lpips import LPIPS

        try:
            parts.lpips = LPIPS.from_files(cfg.ckpt.lpips_vgg_path, cfg.ckpt.lpips_lin_path).to(device)
        except (ValueError, OSError, RuntimeError) as exc:
            raise TrainingSetupError(f"ckpt.lpips_*: {exc}") from exc
    if _uses(cfg, "trepa_loss_weight"):
        from syncvid.train.trepa import TREPALoss

        try:
            parts.trepa = TREPALoss.from_checkpoint(cfg.ckpt.trepa_path).to(device)
        except (ValueError, OSError, RuntimeError) as exc:
            raise TrainingSetupError(f"ckpt.trepa_path: {exc}") from exc
    return parts
