"""Train LatentSync's lip-sync UNet (stage 1, then stage 2 with motion modules) on syncvid clips.

    python scripts/train_unet.py --config configs/unet/stage1.yaml --set data.train_fileslist=out/fileslist.txt
    torchrun --nproc_per_node 8 -m scripts.train_unet --unet_config_path configs/unet/stage2.yaml

One step, as LatentSync trains it: the frames, their masked copy and a reference window are
encoded by the frozen VAE; noise (a part shared by all frames plus an independent part) is
added at a random timestep per video; the UNet sees [noisy latents, mask, masked latents,
reference latents] and the clip's Whisper features and predicts the noise.  The loss is the
MSE to the noise (× recon_loss_weight); with run.pixel_space_supervise the one-step x0
estimate is decoded and LPIPS on the lower half (× perceptual_loss_weight), TREPA
(× trepa_loss_weight) and, with run.use_syncnet, the frozen SyncNet's BCE(cos, 1)
(× sync_loss_weight) are added.

Determinism: the noise, the timestep and the VAE's posterior sample of the j-th video of
global step s are drawn from a generator seeded by (seed, s, j), and the sampler hands
every process its slice of each global batch, so N processes (DDP) compute what one
process with the same global batch computes, and a resumed run continues exactly.

Outputs in `<data.train_output_dir>/train-<time>/`: `checkpoints/checkpoint-<step>.pt`
(LatentSync's format: {"global_step", "state_dict"}, loadable by LatentSync), the
resumable `training_state.pt` (optimizer, loss scaler, lr schedule, RNG, step), the
resolved `config.yaml` (and the SyncNet's), `metrics.jsonl` and `loss.png`.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from syncvid.config import save_config
from syncvid.data.fileslist import resolve_clip_paths
from syncvid.data.unet_audio import AudioEncoderSpec, AudioFeatures
from syncvid.train.common import (
    EpochSampler,
    MetricsLog,
    TrainingSetupError,
    amp_settings,
    autocast,
    lr_lambda,
    pick_device,
    save_checkpoint,
    split_holdout,
)
from syncvid.train.plots import plot_curves
from syncvid.train.unet_parts import UNetParts, build_parts, trainable_parameters

__all__ = ["StepDraws", "draw_step", "latent_inputs", "training_losses", "TrainResult", "train_unet", "find_run_to_resume", "main"]

log = logging.getLogger(__name__)

STATE_FILE = "training_state.pt"
VAL_FRACTION = 0.1
_VAL_STEP = -1  # the draws of validation samples use this step number: the same at every validation


# ---------------------------------------------------------------------------------------
# Random draws of one step
# ---------------------------------------------------------------------------------------


@dataclass
class StepDraws:
    """What is random in one step, for the videos this process handles."""

    timesteps: torch.Tensor  # (B,) int64
    noise: torch.Tensor  # (B, C, F, h, w)
    vae_noise: torch.Tensor  # (3, B·F, C, h, w): posterior samples of gt, masked, reference


def draw_step(
    seed: int, step: int, global_indices: Sequence[int], latent_shape: tuple[int, int, int, int],
    num_train_timesteps: int, mixed_noise: bool, mixed_noise_alpha: float,
) -> StepDraws:
    """Draws for the videos at `global_indices` of the global batch of `step` (latent_shape = C, F, h, w).

    Noise: with mixed noise (alpha a) a part shared by all frames (std √(a²/(1+a²))) plus an
    independent part (std √(1/(1+a²))); without it, one noise frame repeated over all frames.
    """
    c, f, h, w = latent_shape
    ts, noises, vae = [], [], []
    for j in global_indices:
        g = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(step) * 7_919 + int(j)) % (2**63))
        ts.append(torch.randint(0, num_train_timesteps, (1,), generator=g))
        if mixed_noise:
            shared_std = (mixed_noise_alpha**2 / (1 + mixed_noise_alpha**2)) ** 0.5
            ind_std = (1 / (1 + mixed_noise_alpha**2)) ** 0.5
            shared = torch.randn((c, 1, h, w), generator=g) * shared_std
            ind = torch.randn((c, f, h, w), generator=g) * ind_std
            noises.append(ind + shared.expand(c, f, h, w))
        else:
            noises.append(torch.randn((c, 1, h, w), generator=g).expand(c, f, h, w).clone())
        vae.append(torch.randn((3, f, c, h, w), generator=g))
    return StepDraws(
        timesteps=torch.cat(ts).long(),
        noise=torch.stack(noises),
        vae_noise=torch.stack(vae, dim=1).reshape(3, len(global_indices) * f, c, h, w),
    )


# ---------------------------------------------------------------------------------------
# The step
# ---------------------------------------------------------------------------------------


def _frames_first(x: torch.Tensor) -> torch.Tensor:
    """(B, F, C, H, W) -> (B·F, C, H, W)."""
    b, f = x.shape[:2]
    return x.reshape(b * f, *x.shape[2:])


def _to_video(x: torch.Tensor, b: int) -> torch.Tensor:
    """(B·F, C, h, w) -> (B, C, F, h, w)."""
    bf, c, h, w = x.shape
    return x.reshape(b, bf // b, c, h, w).permute(0, 2, 1, 3, 4)


def latent_inputs(parts: UNetParts, batch: dict[str, Any], draws: StepDraws, device: torch.device) -> dict[str, torch.Tensor]:
    """VAE latents of the batch (B, C, F, h, w), the mask at latent size (B, 1, F, h, w), and the
    pixels as (B·F, 3, H, W) for the pixel-space losses."""
    vae = parts.vae
    dtype = vae.dtype
    gt = batch["gt_pixel_values"].to(device)
    b = gt.shape[0]
    gt_pixels = _frames_first(gt)
    masked_pixels = _frames_first(batch["masked_pixel_values"].to(device))
    ref_pixels = _frames_first(batch["ref_pixel_values"].to(device))
    vae_noise = draws.vae_noise.to(device=device, dtype=dtype)
    with torch.no_grad():  # one VAE pass over the three stacks
        pixels = torch.cat([gt_pixels, masked_pixels, ref_pixels]).to(dtype)
        latents = vae.encode(pixels, noise=vae_noise.reshape(-1, *vae_noise.shape[2:])).float()
        gt_lat, masked_lat, ref_lat = latents.chunk(3)
    masks = _frames_first(batch["masks"].to(device).float())
    masks = F.interpolate(masks, size=gt_lat.shape[-2:])  # nearest, as LatentSync
    return {
        "gt": _to_video(gt_lat, b),
        "masked": _to_video(masked_lat, b),
        "ref": _to_video(ref_lat, b),
        "mask": _to_video(masks, b),
        "gt_pixels": gt_pixels.float(),
    }


def _unet_forward(unet: torch.nn.Module, sample: torch.Tensor, timesteps: torch.Tensor, audio: torch.Tensor | None):
    out = unet(sample, timesteps, encoder_hidden_states=audio)
    return out.sample if hasattr(out, "sample") else out


def training_losses(
    parts: UNetParts,
    unet: torch.nn.Module,
    cfg: Any,
    batch: dict[str, Any],
    draws: StepDraws,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """The weighted total `loss` and each part by name (recon_loss, and with pixel-space
    supervision lpips_loss, trepa_loss, sync_loss) for one batch."""
    run = cfg.run
    lat = latent_inputs(parts, batch, draws, device)
    noise = draws.noise.to(device)
    timesteps = draws.timesteps.to(device)
    noisy = parts.schedule.add_noise(lat["gt"], noise, timesteps)
    unet_input = torch.cat([noisy, lat["mask"], lat["masked"], lat["ref"]], dim=1)
    audio = batch["audio_embeds"].to(device) if cfg.model.add_audio_layer else None
    with autocast(device, amp_dtype):
        pred_noise = _unet_forward(unet, unet_input, timesteps, audio)
    pred_noise = pred_noise.float()
    losses: dict[str, torch.Tensor] = {}
    total = torch.zeros((), device=device)
    if float(run.recon_loss_weight) != 0:
        losses["recon_loss"] = F.mse_loss(pred_noise, noise, reduction="mean")
        total = total + losses["recon_loss"] * float(run.recon_loss_weight)
    if run.pixel_space_supervise and (parts.lpips is not None or parts.trepa is not None or parts.syncnet is not None):
        b = noisy.shape[0]
        pred_latents = parts.schedule.one_step_x0(noisy, pred_noise, timesteps)
        vae = parts.vae
        pred_pixels = vae.decode(_frames_first(pred_latents.permute(0, 2, 1, 3, 4)).to(vae.dtype)).float()
        gt_pixels = lat["gt_pixels"]
        if parts.lpips is not None:
            from syncvid.train.pixel_losses import lpips_loss

            losses["lpips_loss"] = lpips_loss(parts.lpips, pred_pixels, gt_pixels)
            total = total + losses["lpips_loss"] * float(run.perceptual_loss_weight)
        if parts.trepa is not None:
            losses["trepa_loss"] = parts.trepa(_to_video(pred_pixels, b), _to_video(gt_pixels, b))
            total = total + losses["trepa_loss"] * float(run.trepa_loss_weight)
        if parts.syncnet is not None:
            losses["sync_loss"] = sync_loss(parts, pred_pixels, batch["mel"].to(device), b)
            total = total + losses["sync_loss"] * float(run.sync_loss_weight)
    losses["loss"] = total
    return losses


def sync_loss(parts: UNetParts, pred_pixels: torch.Tensor, mel: torch.Tensor, b: int) -> torch.Tensor:
    """BCE(cos(visual, audio), 1) of the frozen SyncNet on the decoded frames: resized to the
    SyncNet's resolution (bicubic), frames stacked on channels, lower half when it uses one."""
    scfg = parts.syncnet_cfg
    r = int(scfg.data.resolution)
    x = pred_pixels
    if x.shape[-1] != r or x.shape[-2] != r:
        x = F.interpolate(x, size=(r, r), mode="bicubic")
    bf, c, h, w = x.shape
    x = x.reshape(b, (bf // b) * c, h, w)
    if scfg.data.lower_half:
        x = x[:, :, h // 2 :, :]
    dtype = next(parts.syncnet.parameters()).dtype
    vision, audio = parts.syncnet(x.to(dtype), mel.to(dtype))
    cos = F.cosine_similarity(vision.float(), audio.float(), dim=1).clamp(0.0, 1.0)
    return F.binary_cross_entropy(cos, torch.ones_like(cos))


# ---------------------------------------------------------------------------------------
# Distributed set-up
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _init_processes(device: torch.device | None) -> tuple[Processes, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Processes(), pick_device(device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Processes(rank, world, local_rank), dev


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


def _datasets(cfg: Any, audio: AudioFeatures | None):
    from syncvid.data.unet_dataset import UNetDataset

    data = cfg.data
    seed = int(cfg.run.seed)
    try:
        if data.val_fileslist:
            train = UNetDataset(cfg, "train", audio_features=audio)
            val = UNetDataset(cfg, "val", num_samples=max(1, int(data.num_val_samples)), audio_features=audio)
            return train, val
        paths = resolve_clip_paths(data.train_fileslist, data.train_data_dir,
                                   ("data.train_fileslist", "data.train_data_dir"))
        train_paths, held = split_holdout(paths, VAL_FRACTION, seed)
        train = UNetDataset(cfg, "train", paths=train_paths, audio_features=audio)
        if not held or int(data.num_val_samples) == 0:
            return train, None
        val = UNetDataset(cfg, "val", paths=held, num_samples=int(data.num_val_samples), audio_features=audio)
        return train, val
    except (FileNotFoundError, ValueError) as exc:
        raise TrainingSetupError(str(exc)) from exc


def _loader(dataset, batch_size: int, num_workers: int, device: torch.device, sampler=None) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=num_workers > 0,
        worker_init_fn=dataset.worker_init_fn if num_workers > 0 else None,
    )


# ---------------------------------------------------------------------------------------
# Run folders, checkpoints and the resumable state
# ---------------------------------------------------------------------------------------


def find_run_to_resume(train_output_dir: str | os.PathLike, given: str | os.PathLike | None = None) -> Path:
    """The run folder to continue: `given` (a run folder or its training_state.pt), else the
    newest `train-*` folder under `train_output_dir` that has a training state."""
    if given:
        p = Path(given)
        folder = p.parent if p.name == STATE_FILE else p
        if not (folder / STATE_FILE).is_file():
            raise TrainingSetupError(f"--resume: {folder} has no {STATE_FILE} (nothing to resume)")
        return folder
    root = Path(train_output_dir)
    runs = sorted((d for d in root.glob("train-*") if (d / STATE_FILE).is_file()), key=lambda d: d.stat().st_mtime)
    if not runs:
        raise TrainingSetupError(f"--resume: no run with a {STATE_FILE} under {root}")
    return runs[-1]


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _save_state(run_dir: Path, step: int, unet: torch.nn.Module, optimizer, scaler, scheduler) -> Path:
    ckpt = save_checkpoint(run_dir / "checkpoints" / f"checkpoint-{step}.pt",
                           {"global_step": step, "state_dict": unet.state_dict()})
    save_checkpoint(run_dir / STATE_FILE, {
        "global_step": step,
        "checkpoint": str(ckpt.relative_to(run_dir)),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "lr_scheduler": scheduler.state_dict(),
        "rng": _rng_state(),
    })
    return ckpt


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------


@torch.no_grad()
def validation_losses(parts: UNetParts, unet: torch.nn.Module, cfg: Any, loader: DataLoader, device: torch.device,
                      amp_dtype: torch.dtype | None) -> dict[str, float]:
    """Mean losses over the held-out windows, with the same draws at every validation."""
    was_training = unet.training
    unet.eval()
    totals: dict[str, float] = {}
    count = 0
    index = 0
    try:
        for batch in loader:
            b = batch["gt_pixel_values"].shape[0]
            draws = _draws_for(cfg, parts, _VAL_STEP, range(index, index + b), batch)
            index += b
            losses = training_losses(parts, unet, cfg, batch, draws, device, amp_dtype)
            for name, value in losses.items():
                totals[name] = totals.get(name, 0.0) + float(value) * b
            count += b
    finally:
        unet.train(was_training)
    return {f"val_{k}": v / max(1, count) for k, v in totals.items()}


def validation_video(parts: UNetParts, unet: torch.nn.Module, cfg: Any, run_dir: Path, step: int) -> dict | None:
    """Dub data.val_video_path with data.val_audio_path into val_videos/val_video_<step>.mp4 and
    measure its sync with the pipeline's sync backend; None when no validation video is set."""
    data = cfg.data
    if not (data.val_video_path and data.val_audio_path):
        return None
    from syncvid.data.unet_audio import AudioEncoderSpec
    from syncvid.lipsync.dub import LipsyncError, LipsyncModels, lipsync
    from syncvid.lipsync.score import score_sync

    was_training = unet.training
    unet.eval()
    out = run_dir / "val_videos" / f"val_video_{step}.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        encoder = AudioEncoderSpec.from_config(cfg).build(next(unet.parameters()).device)
        models = LipsyncModels(unet, parts.vae, encoder, parts.schedule, cfg)
        result = lipsync(models, data.val_video_path, data.val_audio_path, out, progress=False)
        score = score_sync(out)
    except (LipsyncError, ValueError, OSError) as exc:
        log.warning("validation video at step %d failed: %s", step, exc)
        return None
    finally:
        unet.train(was_training)
    log.info("step %d: validation video %s (%d frames, %.1f frames/s): sync offset %d, confidence %.2f (%s)",
             step, out, result.num_frames, result.frames_per_second, score.offset_frames, score.conf, score.backend)
    return {"val_sync_conf": round(score.conf, 4), "val_sync_offset": score.offset_frames}


def _draws_for(cfg: Any, parts: UNetParts, step: int, indices, batch: dict[str, Any]) -> StepDraws:
    _, f, _, r, _ = batch["gt_pixel_values"].shape
    down = parts.vae.downscale
    shape = (parts.vae.latent_channels, f, r // down, r // down)
    return draw_step(int(cfg.run.seed), step, list(indices), shape, parts.schedule.num_train_timesteps,
                     bool(cfg.run.use_mixed_noise), float(cfg.run.mixed_noise_alpha))


# ---------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    run_dir: Path
    global_step: int
    start_step: int
    steps: list[int] = field(default_factory=list)
    losses: list[dict[str, float]] = field(default_factory=list)
    validations: list[dict[str, float]] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)
    steps_per_second: float = 0.0
    peak_rss_mb: float = 0.0


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _max_steps(cfg: Any, num_clips: int, global_batch: int) -> int:
    steps = int(cfg.run.max_train_steps)
    if steps > 0:
        return steps
    epochs = int(cfg.run.max_train_epochs)
    return max(1, epochs * math.ceil(num_clips / global_batch))


def train_unet(
    cfg: Any,
    *,
    device: str | torch.device | None = None,
    progress: bool = True,
    resume: bool | str | os.PathLike = False,
    config_path: str | os.PathLike | None = None,
) -> TrainResult:
    """Run (or with `resume`, continue) UNet training as `cfg` describes."""
    procs, dev = _init_processes(device)
    try:
        return _train(cfg, procs, dev, progress=progress, resume=resume, config_path=config_path)
    finally:
        if procs.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _broadcast_path(procs: Processes, path: Path | None) -> Path | None:
    if procs.world_size == 1:
        return path
    box = [str(path) if path is not None else None]
    dist.broadcast_object_list(box, src=0)
    return Path(box[0]) if box[0] is not None else None


def _train(cfg: Any, procs: Processes, dev: torch.device, *, progress: bool, resume, config_path) -> TrainResult:
    seed = int(cfg.run.seed)
    torch.manual_seed(seed)
    out_root = Path(cfg.data.train_output_dir)

    run_dir: Path | None = None
    state_path: Path | None = None
    if resume:
        run_dir = find_run_to_resume(out_root, None if resume is True else resume)
        state_path = run_dir / STATE_FILE
    elif procs.is_main:
        run_dir = out_root / ("train-" + datetime.datetime.now().strftime("%Y_%m_%d-%H-%M-%S-%f"))
    run_dir = _broadcast_path(procs, run_dir)
    assert run_dir is not None

    state = None
    weights_path = None
    if state_path is not None:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        weights_path = run_dir / state["checkpoint"]
    parts = build_parts(cfg, dev, state_path=weights_path)
    unet = parts.unet
    params = trainable_parameters(unet, list(cfg.run.trainable_modules))
    lr = float(cfg.optimizer.lr) * (procs.world_size if cfg.optimizer.scale_lr else 1)
    optimizer = torch.optim.AdamW(params, lr=lr)

    audio = AudioFeatures(
        AudioEncoderSpec.from_config(cfg), _embeds_cache_dir(cfg),
        sample_rate=int(cfg.data.audio_sample_rate), fps=int(cfg.data.video_fps),
        audio_feat_length=tuple(cfg.data.audio_feat_length),
    ) if cfg.model.add_audio_layer else None
    train_ds, val_ds = _datasets(cfg, audio)
    batch_size = int(cfg.data.batch_size)
    global_batch = batch_size * procs.world_size
    max_steps = _max_steps(cfg, len(train_ds.clips), global_batch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(cfg.optimizer.lr_scheduler, int(cfg.optimizer.lr_warmup_steps), max_steps))
    amp_dtype, use_scaler = amp_settings(bool(cfg.run.mixed_precision_training), dev)
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None

    start_step = parts.start.global_step
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["lr_scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        start_step = int(state["global_step"])

    if procs.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
        if parts.syncnet_cfg is not None:
            save_config(parts.syncnet_cfg, run_dir / "syncnet_config.yaml")
        if config_path is not None and Path(config_path).is_file():
            shutil.copy(config_path, run_dir / ("source_" + Path(config_path).name))
    model: torch.nn.Module = unet
    if procs.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(unet, device_ids=[procs.local_rank] if dev.type == "cuda" else None)

    n_trainable = sum(p.numel() for p in params)
    n_total = sum(p.numel() for p in unet.parameters())
    result = TrainResult(run_dir=run_dir, global_step=start_step, start_step=start_step)
    if procs.is_main:
        log.info("UNet: %.3f M parameters, %.3f M trainable; weights: %s%s", n_total / 1e6, n_trainable / 1e6,
                 parts.start.source, f" {parts.start.path}" if parts.start.path else "")
        log.info("training on %d clips, %d process(es) x batch %d, steps %d -> %d, device %s%s; output %s",
                 len(train_ds.clips), procs.world_size, batch_size, start_step, max_steps, dev,
                 f", autocast {amp_dtype}" if amp_dtype else "", run_dir)
    if start_step >= max_steps:
        log.info("nothing to do: already at step %d >= %d", start_step, max_steps)
        return result

    num_workers = int(cfg.data.num_workers)
    sampler = EpochSampler(len(train_ds.clips), seed, start=start_step * global_batch,
                           batch_size=batch_size, num_replicas=procs.world_size, rank=procs.rank)
    train_loader = _loader(train_ds, batch_size, num_workers, dev, sampler)
    val_loader = _loader(val_ds, min(batch_size, 4), 0, dev) if (val_ds is not None and procs.is_main) else None
    save_every = int(cfg.ckpt.save_ckpt_steps)
    val_every = int(cfg.run.validation_steps) or save_every
    max_grad_norm = float(cfg.optimizer.max_grad_norm)

    metrics = MetricsLog(run_dir / "metrics.jsonl", resume_step=start_step) if procs.is_main else None
    bar = tqdm(total=max_steps, initial=start_step, desc="UNet steps", disable=not (progress and procs.is_main),
               dynamic_ncols=True)
    model.train()
    step = start_step
    t0 = time.perf_counter()
    try:
        for batch in train_loader:
            b = batch["gt_pixel_values"].shape[0]
            first = procs.rank * batch_size
            draws = _draws_for(cfg, parts, step, range(first, first + b), batch)
            losses = training_losses(parts, model, cfg, batch, draws, dev, amp_dtype)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(losses["loss"]).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
            else:
                losses["loss"].backward()
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
                optimizer.step()
            scheduler.step()
            step += 1
            values = _reduce(losses, procs)
            values["lr"] = scheduler.get_last_lr()[0]
            elapsed = time.perf_counter() - t0
            values["steps_per_s"] = (step - start_step) / elapsed if elapsed > 0 else 0.0
            result.global_step = step
            result.steps.append(step)
            result.losses.append(values)
            if metrics is not None:
                metrics.write({"step": step, **{k: round(v, 7) for k, v in values.items()}})
            bar.update(1)
            bar.set_postfix({k.replace("_loss", ""): f"{v:.4f}" for k, v in values.items() if k.endswith("loss")})

            last = step >= max_steps
            if procs.is_main and val_loader is not None and (step % val_every == 0 or last):
                val = validation_losses(parts, unet, cfg, val_loader, dev, amp_dtype)
                result.validations.append({"step": step, **val})
                assert metrics is not None
                metrics.write({"step": step, **{k: round(v, 7) for k, v in val.items()}})
                log.info("step %d: %s", step, ", ".join(f"{k} {v:.4f}" for k, v in val.items()))
            if procs.is_main and (step % save_every == 0 or last):
                ckpt = _save_state(run_dir, step, unet, optimizer, scaler, scheduler)
                result.checkpoints.append(ckpt)
                log.info("saved %s", ckpt)
                dubbed = validation_video(parts, unet, cfg, run_dir, step)
                if dubbed is not None:
                    assert metrics is not None
                    metrics.write({"step": step, **dubbed})
                    result.validations.append({"step": step, **dubbed})
                _plot(metrics, run_dir)
            if procs.world_size > 1 and (step % save_every == 0 or last):
                dist.barrier()
            if last:
                break
    finally:
        bar.close()
        if metrics is not None:
            metrics.close()
    elapsed = time.perf_counter() - t0
    result.steps_per_second = (step - start_step) / elapsed if elapsed > 0 else 0.0
    result.peak_rss_mb = _peak_rss_mb()
    return result


def _embeds_cache_dir(cfg: Any) -> Path:
    configured = cfg.data.audio_embeds_cache_dir
    return Path(configured).expanduser() if configured else Path(cfg.data.train_output_dir) / "embeds_cache"


def _reduce(losses: dict[str, torch.Tensor], procs: Processes) -> dict[str, float]:
    """Loss values averaged over the processes (what one process with the global batch reports)."""
    names = sorted(losses)
    values = torch.stack([losses[n].detach().float().reshape(()) for n in names])
    if procs.world_size > 1:
        values = values.to(next(iter(losses.values())).device)
        dist.all_reduce(values)
        values = values / procs.world_size
    return {n: float(v) for n, v in zip(names, values.cpu())}


def _plot(metrics: MetricsLog | None, run_dir: Path) -> None:
    if metrics is None:
        return
    lines = metrics.read()
    series: dict[str, tuple[list[float], list[float]]] = {}
    for line in lines:
        for key, value in line.items():
            if key.endswith("loss") and key != "loss":
                xs, ys = series.setdefault(key, ([], []))
                xs.append(line["step"])
                ys.append(value)
    sync = [(line["step"], line["val_sync_conf"]) for line in lines if "val_sync_conf" in line]
    try:
        if series:
            plot_curves(run_dir / "loss.png", series, title="UNet training losses", log_y=True)
        if sync:
            plot_curves(run_dir / "sync_conf.png", {"validation video sync confidence": tuple(zip(*sync))},
                        title="Sync confidence of the validation video")
    except OSError as exc:
        log.warning("cannot write the charts: %s", exc)


# ---------------------------------------------------------------------------------------
# Command
# ---------------------------------------------------------------------------------------


def main(config_path: str | os.PathLike, overrides: Sequence[str] | None = None, *,
         resume: bool | str = False, progress: bool = True) -> int:
    """Command entry: load the config, train, print one summary line.  Returns an exit code."""
    from syncvid.config import ConfigError, load_config

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(config_path, overrides=list(overrides or []), family="unet")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = train_unet(cfg, resume=resume, config_path=config_path, progress=progress)
    except TrainingSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        summary = f"trained to step {result.global_step} ({result.steps_per_second:.2f} steps/s)"
        if result.losses:
            summary += f"; recon_loss {result.losses[-1].get('recon_loss', float('nan')):.4f}"
        if result.validations:
            summary += f"; val_recon_loss {result.validations[-1].get('val_recon_loss', float('nan')):.4f}"
        if result.checkpoints:
            summary += f"; checkpoint {result.checkpoints[-1]}"
        print(summary)
    return 0
