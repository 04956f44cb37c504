"""Train LatentSync's SyncNet ("StableSyncNet") on the pipeline's clips.

    python scripts/train_syncnet.py --config configs/syncnet/pixel.yaml --set data.train_data_dir=out/

The loss is LatentSync's: cosine similarity of the L2-normalised visual and audio
embeddings (non-negative, as both towers end in a ReLU) fed to binary cross-entropy
against y (1 aligned, 0 shifted).  AdamW, gradient-norm clipping, autocast (bf16, or
fp16 with loss scaling) on CUDA when run.mixed_precision_training is set; plain fp32 on CPU.

Every run.validation_steps steps the model is scored on held-out pairs (data.val_fileslist
/ data.val_data_dir, or else a fixed tenth of the training clips set aside by hash):
mean loss and accuracy with the decision cos > 0.5.  Every ckpt.save_ckpt_steps steps, and
at the last step, `checkpoint-<step>.pt` is written to data.train_output_dir in the
reference's layout (state_dict, global_step, loss lists) plus the optimizer state, so
that ckpt.resume_ckpt_path continues the step count, the optimizer and the sample
sequence.  The checkpoint loads into the `stable_syncnet` sync backend with the same
config (`load_stable_syncnet(path, cfg.model)`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from syncvid.config import save_config
from syncvid.data.fileslist import resolve_clip_paths
from syncvid.data.syncnet_dataset import SyncNetDataset
from syncvid.sync.stable_syncnet import StableSyncNet
from syncvid.train.common import (
    EpochSampler,
    TrainingSetupError,
    amp_settings,
    autocast,
    pick_device,
    save_checkpoint,
    split_holdout,
)

__all__ = [
    "TrainingSetupError",
    "TrainResult",
    "Validation",
    "EpochSampler",
    "cosine_bce_loss",
    "sync_scores",
    "split_holdout",
    "prepare_batch",
    "validate",
    "save_checkpoint",
    "train_syncnet",
    "main",
]

log = logging.getLogger(__name__)

VAL_FRACTION = 0.1
MAX_VAL_BATCH = 40  # the reference caps validation batches at 640 frames (40 windows of 16)


# ---------------------------------------------------------------------------------------
# Numeric cores
# ---------------------------------------------------------------------------------------


def sync_scores(vision_embeds: torch.Tensor, audio_embeds: torch.Tensor) -> torch.Tensor:
    """Cosine similarity per pair, clamped into [0, 1] (the model's sync probability)."""
    if vision_embeds.shape != audio_embeds.shape:
        raise ValueError(
            f"visual embeddings {tuple(vision_embeds.shape)} and audio embeddings "
            f"{tuple(audio_embeds.shape)} differ: the encoders' output sizes do not match "
            "(check model.*.block_out_channels / downsample_factors against data.resolution)"
        )
    sims = F.cosine_similarity(vision_embeds.float(), audio_embeds.float(), dim=1)
    return sims.clamp(0.0, 1.0)


def cosine_bce_loss(vision_embeds: torch.Tensor, audio_embeds: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean BCE between the cosine similarity and the labels y ([B] or [B, 1])."""
    scores = sync_scores(vision_embeds, audio_embeds)
    return F.binary_cross_entropy(scores, y.reshape(-1).float())


def prepare_batch(batch: dict[str, Any], device: torch.device, lower_half: bool) -> tuple[torch.Tensor, ...]:
    """(frames [B, f·c, h, w], mel [B, 1, 80, L], y [B]) on `device`.

    Frames already stacked by `SyncNetDataset` pass through; [B, f, c, h, w] frames (the
    reference dataset's layout) are stacked here and cut to their lower half.
    """
    frames = batch["frames"]
    if frames.ndim == 5:
        b, f, c, h, w = frames.shape
        frames = frames.reshape(b, f * c, h, w)
        if lower_half:
            frames = frames[:, :, h // 2 :, :]
    frames = frames.to(device, dtype=torch.float32, non_blocking=True)
    mel = batch["audio_samples"].to(device, dtype=torch.float32, non_blocking=True)
    y = batch["y"].to(device, dtype=torch.float32).reshape(-1)
    return frames, mel, y


# ---------------------------------------------------------------------------------------
# Validation and checkpoints
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Validation:
    step: int
    loss: float
    accuracy: float
    num_samples: int


@torch.no_grad()
def validate(
    model: StableSyncNet,
    loader: DataLoader,
    device: torch.device,
    lower_half: bool = True,
    amp_dtype: torch.dtype | None = None,
) -> tuple[float, float, int]:
    """(mean loss, accuracy at cos > 0.5, samples) over every batch of `loader`."""
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    try:
        for batch in loader:
            frames, mel, y = prepare_batch(batch, device, lower_half)
            with autocast(device, amp_dtype):
                vision, audio = model(frames, mel)
            scores = sync_scores(vision, audio)
            total_loss += float(F.binary_cross_entropy(scores, y, reduction="sum"))
            correct += int(((scores > 0.5).float() == y).sum())
            count += int(y.numel())
    finally:
        model.train(was_training)
    if count == 0:
        raise RuntimeError("validation produced no samples")
    return total_loss / count, correct / count, count


# ---------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    output_dir: Path
    global_step: int
    start_step: int
    train_steps: list[int] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    validations: list[Validation] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)
    samples_per_second: float = 0.0


def _build_datasets(cfg: Any) -> tuple[SyncNetDataset, SyncNetDataset | None]:
    data = cfg.data
    seed = int(cfg.run.seed)
    has_val = bool(data.val_fileslist or data.val_data_dir)
    try:
        if has_val:
            train = SyncNetDataset(cfg, "train")
            val = SyncNetDataset(cfg, "val", num_samples=int(data.num_val_samples))
            return train, val
        paths = resolve_clip_paths(data.train_fileslist, data.train_data_dir)
        train_paths, held = split_holdout(paths, VAL_FRACTION, seed)
        train = SyncNetDataset(cfg, "train", paths=train_paths)
        if not held:
            log.warning("only %d clip(s) and no validation data: validation is skipped", len(paths))
            return train, None
        log.info("no validation data configured: holding out %d of %d clips", len(held), len(paths))
        val = SyncNetDataset(cfg, "val", paths=held, num_samples=int(data.num_val_samples))
        return train, val
    except (FileNotFoundError, ValueError) as exc:
        raise TrainingSetupError(str(exc)) from exc


def _check_model_fits_data(model: StableSyncNet, cfg: Any, num_mels: int, mel_window: int) -> None:
    expected = int(cfg.data.num_frames) * 3
    if model.visual_cfg.in_channels != expected:
        raise TrainingSetupError(
            f"model.visual_encoder.in_channels is {model.visual_cfg.in_channels} but "
            f"data.num_frames={cfg.data.num_frames} RGB frames stack to {expected} channels"
        )
    if model.audio_cfg.in_channels != 1:
        raise TrainingSetupError(f"model.audio_encoder.in_channels must be 1 (a mel window), got {model.audio_cfg.in_channels}")
    r = int(cfg.data.resolution)
    h = r // 2 if cfg.data.lower_half else r
    try:
        with torch.no_grad():
            v = model.visual_encoder(torch.zeros(1, expected, h, r))
            a = model.audio_encoder(torch.zeros(1, 1, num_mels, mel_window))
    except RuntimeError as exc:
        raise TrainingSetupError(
            f"the model does not accept a {expected}x{h}x{r} frame stack and a 1x{num_mels}x{mel_window} mel window "
            f"({exc}); adjust model.*.downsample_factors or data.resolution"
        ) from exc
    if v[0].numel() != a[0].numel():
        raise TrainingSetupError(
            f"the visual encoder maps a {expected}x{h}x{r} input to {tuple(v.shape[1:])} "
            f"({v[0].numel()} values) but the audio encoder maps a mel window to {tuple(a.shape[1:])} "
            f"({a[0].numel()} values); adjust model.*.downsample_factors or data.resolution"
        )


def _loader(dataset: SyncNetDataset, batch_size: int, num_workers: int, device: torch.device, sampler=None) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        drop_last=False,
        persistent_workers=num_workers > 0,
        worker_init_fn=dataset.worker_init_fn if num_workers > 0 else None,
    )


def train_syncnet(
    cfg: Any,
    *,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> TrainResult:
    """Run (or resume) SyncNet training as `cfg` describes; returns what happened."""
    if cfg.data.latent_space:
        raise TrainingSetupError(
            "data.latent_space: true needs a VAE encoder, which syncvid does not ship; use a pixel-space config"
        )
    dev = pick_device(device)
    seed = int(cfg.run.seed)
    torch.manual_seed(seed)
    out_dir = Path(cfg.data.train_output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out_dir / "config.yaml")  # the checkpoints' config: the sync backend loads both

    train_ds, val_ds = _build_datasets(cfg)
    model = StableSyncNet(cfg.model)
    _check_model_fits_data(model, cfg, train_ds.mel_params.num_mels, train_ds.mel_window)
    model.to(dev)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=float(cfg.optimizer.lr))

    result = TrainResult(output_dir=out_dir, global_step=0, start_step=0)
    val_steps: list[int] = []
    val_losses: list[float] = []
    val_accs: list[float] = []
    resume = cfg.ckpt.resume_ckpt_path
    if resume:
        try:
            ckpt = torch.load(resume, map_location="cpu", weights_only=True)
            model.load_state_dict(ckpt["state_dict"], strict=True)
        except (FileNotFoundError, KeyError, RuntimeError) as exc:
            raise TrainingSetupError(f"cannot resume from {resume}: {exc}") from exc
        if "optimizer" in ckpt:
            optimizer.load_state_dict(ckpt["optimizer"])
        result.global_step = result.start_step = int(ckpt.get("global_step", 0))
        result.train_steps = [int(s) for s in ckpt.get("train_step_list", [])]
        result.train_losses = [float(v) for v in ckpt.get("train_loss_list", [])]
        val_steps = [int(s) for s in ckpt.get("val_step_list", [])]
        val_losses = [float(v) for v in ckpt.get("val_loss_list", [])]
        val_accs = [float(v) for v in ckpt.get("val_acc_list", [])]
        log.info("resumed from %s at step %d", resume, result.global_step)

    max_steps = int(cfg.run.max_train_steps)
    batch_size = int(cfg.data.batch_size)
    num_workers = int(cfg.data.num_workers)
    amp_dtype, use_scaler = amp_settings(bool(cfg.run.mixed_precision_training), dev)
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None
    max_grad_norm = float(cfg.optimizer.max_grad_norm)
    lower_half = bool(cfg.data.lower_half)
    validation_every = max(1, int(cfg.run.validation_steps))
    save_every = max(1, int(cfg.ckpt.save_ckpt_steps))

    log.info(
        "training SyncNet: %d clips, batch %d, %d steps (from %d), device %s%s",
        len(train_ds.clips), batch_size, max_steps, result.global_step, dev,
        f", autocast {amp_dtype}" if amp_dtype else "",
    )
    if result.global_step >= max_steps:
        log.info("nothing to do: the checkpoint is at step %d >= run.max_train_steps=%d", result.global_step, max_steps)
        return result

    sampler = EpochSampler(len(train_ds.clips), seed, start=result.global_step * batch_size)
    train_loader = _loader(train_ds, batch_size, num_workers, dev, sampler)
    val_loader = None
    if val_ds is not None:
        val_loader = _loader(val_ds, min(batch_size, MAX_VAL_BATCH), num_workers, dev)

    metrics_path = out_dir / "metrics.jsonl"
    bar = tqdm(total=max_steps, initial=result.global_step, desc="Steps", disable=not progress, dynamic_ncols=True)
    model.train()
    train_time = 0.0
    samples_seen = 0
    last_val: Validation | None = None
    t_batch = time.perf_counter()
    with open(metrics_path, "a", encoding="utf-8") as metrics:
        for batch in train_loader:
            frames, mel, y = prepare_batch(batch, dev, lower_half)
            with autocast(dev, amp_dtype):
                vision, audio = model(frames, mel)
            loss = cosine_bce_loss(vision, audio, y)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
                optimizer.step()
            now = time.perf_counter()
            train_time += now - t_batch
            samples_seen += int(y.numel())

            result.global_step += 1
            step = result.global_step
            step_loss = float(loss.detach())
            result.train_steps.append(step)
            result.train_losses.append(step_loss)
            metrics.write(json.dumps({"step": step, "train_loss": step_loss}) + "\n")
            bar.update(1)
            bar.set_postfix(step_loss=f"{step_loss:.4f}")

            if val_loader is not None and (step % validation_every == 0 or step == max_steps):
                v_loss, v_acc, v_n = validate(model, val_loader, dev, lower_half, amp_dtype)
                last_val = Validation(step, v_loss, v_acc, v_n)
                result.validations.append(last_val)
                val_steps.append(step)
                val_losses.append(v_loss)
                val_accs.append(v_acc)
                metrics.write(json.dumps({"step": step, "val_loss": v_loss, "val_accuracy": v_acc}) + "\n")
                log.info("step %d: validation loss %.4f, accuracy %.3f (%d pairs)", step, v_loss, v_acc, v_n)

            if step % save_every == 0 or step == max_steps:
                recent = result.train_losses[-min(len(result.train_losses), save_every) :]
                payload = {
                    "state_dict": model.state_dict(),
                    "global_step": step,
                    "train_loss": float(np.mean(recent)),
                    "val_loss": last_val.loss if last_val is not None else None,
                    "val_accuracy": last_val.accuracy if last_val is not None else None,
                    "train_step_list": list(result.train_steps),
                    "train_loss_list": list(result.train_losses),
                    "val_step_list": list(val_steps),
                    "val_loss_list": list(val_losses),
                    "val_acc_list": list(val_accs),
                    "optimizer": optimizer.state_dict(),
                }
                path = save_checkpoint(out_dir / f"checkpoint-{step}.pt", payload)
                result.checkpoints.append(path)
                log.info("saved %s", path)
            metrics.flush()
            if step >= max_steps:
                break
            t_batch = time.perf_counter()
    bar.close()
    result.samples_per_second = samples_seen / train_time if train_time > 0 else 0.0
    log.info("done at step %d: %.1f training samples/s", result.global_step, result.samples_per_second)
    return result


def main(config_path: str | os.PathLike, overrides: Sequence[str] | None = None) -> int:
    """Command entry: load the config, save it beside the run, train.  Returns an exit code."""
    from syncvid.config import ConfigError, load_config

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(config_path, overrides=list(overrides or []), family="syncnet")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = train_syncnet(cfg)
    except TrainingSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = f"trained to step {result.global_step}"
    if result.validations:
        v = result.validations[-1]
        summary += f"; validation loss {v.loss:.4f}, accuracy {v.accuracy:.3f}"
    if result.checkpoints:
        summary += f"; checkpoint {result.checkpoints[-1]}"
    print(summary)
    return 0
