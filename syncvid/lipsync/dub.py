"""Dub a video with a trained lip-sync UNet: `syncvid lipsync --video face.mp4 --audio speech.wav`.

As LatentSync's inference does: the video is read at 25 fps; the driving audio's Whisper
features give one conditioning per output frame (the audio's length at 25 fps); a video
shorter than the audio is looped back and forth (ping-pong); every frame's face is tracked
and aligned to the 3-point template at the config's resolution; output frames go through
the UNet in chunks of `data.num_frames` with one seeded noise frame repeated over the chunk,
classifier-free guidance (all-zero audio as the unconditional branch) and the DDIM steps of
the config; the decoded face keeps the reference outside the mask
(decoded · (1 − mask) + reference · mask) and is pasted back with the inverse warp and a
soft edge; H.264 + AAC with the driving audio, at the video's own resolution.

Memory stays bounded whatever the length: pass one streams the video once and keeps only
the aligned faces and the full frames in memory-mapped temporary files; pass two reads them
chunk by chunk and streams the output to the encoder.  Frames without a face pass through
unchanged (and are counted).  The output appears under its name only when complete.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from syncvid.config import UNetConfig
from syncvid.lipsync.frames import paste_back, pingpong_indices

__all__ = ["LipsyncError", "LipsyncModels", "LipsyncResult", "lipsync"]

log = logging.getLogger(__name__)
FPS = 25
SAMPLE_RATE = 16000
HOP = SAMPLE_RATE // FPS


class LipsyncError(RuntimeError):
    """A problem the user can fix (a missing file, weights, no face); the message is one line."""


@dataclass
class LipsyncResult:
    output: Path
    num_frames: int
    frames_without_face: int
    video_frames: int
    seconds: float
    frames_per_second: float
    peak_rss_mb: float


@dataclass
class LipsyncModels:
    """What inference needs, built once (the trainer's validation reuses its own UNet)."""

    unet: torch.nn.Module
    vae: Any
    audio_encoder: Any
    schedule: Any
    cfg: UNetConfig

    @classmethod
    def load(cls, cfg: UNetConfig, unet_checkpoint: str | os.PathLike | None, device: str | torch.device = "cpu") -> "LipsyncModels":
        from syncvid.data.unet_audio import AudioEncoderSpec
        from syncvid.train.common import TrainingSetupError
        from syncvid.train.unet_parts import build_vae
        from syncvid.unet import UNet3DConditionModel
        from syncvid.unet.ddim import DDIMSchedule
        from syncvid.unet.loading import load_unet_weights, read_unet_checkpoint

        spec = AudioEncoderSpec.from_config(cfg)
        problems = spec.check()
        if problems:
            raise LipsyncError(problems[0])
        unet = UNet3DConditionModel.from_config(cfg.model)
        if unet_checkpoint:
            try:
                state, _ = read_unet_checkpoint(unet_checkpoint)
                report = load_unet_weights(unet, state, mode="auto")
            except (ValueError, RuntimeError) as exc:
                raise LipsyncError(f"--unet_checkpoint: {exc}") from exc
            if report.missing:
                log.warning("%s lacks %d motion-module tensors: they act as the identity", unet_checkpoint,
                            len(report.missing))
        else:
            log.warning("no UNet checkpoint given: the UNet is untrained (its output is zero noise)")
        try:
            vae = build_vae(cfg, torch.device(device))
        except TrainingSetupError as exc:
            raise LipsyncError(str(exc)) from exc
        encoder = spec.build(device)
        return cls(unet.to(device).eval(), vae, encoder, DDIMSchedule(), cfg)


def _read_audio(path: str | os.PathLike) -> np.ndarray:
    from syncvid.media.decode import decode_audio

    if not Path(path).is_file():
        raise LipsyncError(f"--audio: no such file: {path}")
    try:
        samples, _, _ = decode_audio(path, SAMPLE_RATE)
    except Exception as exc:  # PyAV and our decoder raise several types for unreadable files
        raise LipsyncError(f"--audio: cannot read {path}: {exc}") from exc
    if samples.size < HOP:
        raise LipsyncError(f"--audio: {path} has no audio (or less than one frame of it)")
    return samples


class _FrameStore:
    """Full frames and aligned faces of the video, in memory-mapped temporary files."""

    def __init__(self, folder: Path, capacity: int, height: int, width: int, resolution: int) -> None:
        self.frames = np.lib.format.open_memmap(folder / "frames.npy", "w+", np.uint8, (capacity, height, width, 3))
        self.faces = np.lib.format.open_memmap(folder / "faces.npy", "w+", np.uint8,
                                               (capacity, resolution, resolution, 3))
        self.matrices = np.full((capacity, 2, 3), np.nan)
        self.count = 0


def _track_video(video: str | os.PathLike, needed: int, resolution: int, folder: Path, progress: bool) -> _FrameStore:
    """Pass one: decode at 25 fps, track and align each frame; keep at most `needed` frames."""
    from syncvid.config import load_pipeline_config
    from syncvid.media.decode import SourceReader
    from syncvid.records import Rejected
    from syncvid.stages.face import FaceStage

    if not Path(video).is_file():
        raise LipsyncError(f"--video: no such file: {video}")
    face_params = load_pipeline_config(overrides=[f"face.resolution={resolution}"]).face
    stage = FaceStage(face_params)
    stage.setup()
    aligner = stage.new_aligner()
    try:
        reader = SourceReader(video, fps=FPS, require_audio=False)
    except Rejected as exc:
        raise LipsyncError(f"--video: cannot read {video}: {exc}") from exc
    store = None
    with reader:
        duration = float(reader.info.duration_s or 0.0)
        estimate = min(needed, int(math.ceil(duration * FPS)) + 2) if duration > 0 else needed
        bar = tqdm(total=estimate, desc="faces", unit="frame", disable=not progress, dynamic_ncols=True)
        try:
            for picture in reader.pictures():
                rgb = picture.rgb()
                if store is None:
                    h, w = rgb.shape[:2]
                    store = _FrameStore(folder, estimate, h - h % 2, w - w % 2, resolution)
                if store.count >= store.frames.shape[0]:
                    break
                face = stage.track(picture, store.count == 0)
                result = aligner.align(picture, face)
                store.frames[store.count] = rgb[: store.frames.shape[1], : store.frames.shape[2]]
                store.faces[store.count] = result.crop
                if face.has_face:
                    store.matrices[store.count] = result.matrix
                store.count += 1
                bar.update(1)
        except Rejected as exc:
            raise LipsyncError(f"--video: cannot decode {video}: {exc}") from exc
        finally:
            bar.close()
    if store is None or store.count == 0:
        raise LipsyncError(f"--video: {video} has no frames")
    if not np.isfinite(store.matrices[: store.count]).any():
        raise LipsyncError(f"--video: no face found in any frame of {video}")
    return store


def _mask(cfg: UNetConfig, resolution: int) -> np.ndarray:
    from syncvid.data.masks import MaskSpec, load_mask_image, lower_face_mask

    data = cfg.data
    if data.mask_image_path:
        return load_mask_image(data.mask_image_path, resolution)
    section = data.mask
    return lower_face_mask(resolution, resolution, MaskSpec(section.shape, section.top, section.bottom, section.left,
                                                            section.right, section.feather))


@torch.no_grad()
def _generate_chunk(models: LipsyncModels, faces: np.ndarray, audio_feats: torch.Tensor, mask: torch.Tensor,
                    noise: torch.Tensor, steps: int, guidance: float, generator: torch.Generator,
                    device: torch.device) -> np.ndarray:
    """faces (f, r, r, 3) uint8 → generated faces (f, r, r, 3) uint8."""
    vae, unet, schedule = models.vae, models.unet, models.schedule
    f = faces.shape[0]
    ref = torch.from_numpy(faces).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (f, 3, r, r)
    masked = ref * mask
    lat = vae.encode(torch.cat([masked, ref]), generator=generator).float()
    masked_lat, ref_lat = lat[:f], lat[f:]

    def video(x: torch.Tensor) -> torch.Tensor:  # (f, C, h, w) -> (1, C, f, h, w)
        return x.permute(1, 0, 2, 3)[None]

    h, w = lat.shape[-2:]
    mask_lat = F.interpolate(mask[None].expand(f, 1, *mask.shape[-2:]), size=(h, w))
    cond = torch.cat([video(mask_lat), video(masked_lat), video(ref_lat)], dim=1)
    latents = noise[:, :, :1].expand(1, noise.shape[1], f, h, w).clone()
    audio = audio_feats[None].to(device) if unet.add_audio_layer else None
    use_cfg = guidance > 1.0 and audio is not None
    if use_cfg:
        cond = torch.cat([cond, cond])
        audio = torch.cat([torch.zeros_like(audio), audio])
    for t in schedule.timesteps_for(steps).tolist():
        x = torch.cat([latents, latents]) if use_cfg else latents
        eps = unet(torch.cat([x, cond], dim=1), torch.tensor([t], device=device), encoder_hidden_states=audio).sample
        if use_cfg:
            uncond, conditioned = eps.chunk(2)
            eps = uncond + guidance * (conditioned - uncond)
        latents = schedule.step(eps, t, latents, steps)
    decoded = vae.decode(latents[0].permute(1, 0, 2, 3)).float().clamp(-1, 1)
    combined = decoded * (1 - mask) + ref * mask
    return ((combined + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()


def lipsync(
    models: LipsyncModels,
    video: str | os.PathLike,
    audio: str | os.PathLike,
    output: str | os.PathLike,
    *,
    inference_steps: int | None = None,
    guidance_scale: float | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> LipsyncResult:
    """Dub `video` with `audio` into `output` (see the module docstring)."""
    from syncvid.media.encode import ClipWriter

    cfg = models.cfg
    steps = int(inference_steps or cfg.run.inference_steps)
    guidance = float(cfg.run.guidance_scale if guidance_scale is None else guidance_scale)
    seed = int(cfg.run.seed if seed is None else seed)
    resolution = int(cfg.data.resolution)
    chunk = int(cfg.data.num_frames)
    device = next(models.unet.parameters()).device
    t0 = time.perf_counter()

    samples = _read_audio(audio)
    num_out = len(samples) // HOP
    embeddings = models.audio_encoder.embeddings(samples)
    folder = Path(tempfile.mkdtemp(prefix=".syncvid-lipsync-", dir=Path(output).resolve().parent))
    try:
        store = _track_video(video, num_out, resolution, folder, progress)
        order = pingpong_indices(store.count, num_out)
        generator = torch.Generator().manual_seed(seed)
        down = models.vae.downscale
        noise = torch.randn((1, models.vae.latent_channels, 1, resolution // down, resolution // down),
                            generator=generator).to(device)
        mask = torch.from_numpy(_mask(cfg, resolution)).to(device)[None]  # (1, r, r), 1 = keep
        without_face = 0
        h, w = store.frames.shape[1:3]
        writer = ClipWriter(output, w, h, fps=FPS, sample_rate=SAMPLE_RATE, crf=18, preset="veryfast",
                             x264_params="", aac_coder="twoloop")
        bar = tqdm(total=num_out, desc="lipsync", unit="frame", disable=not progress, dynamic_ncols=True)
        try:
            for start in range(0, num_out, chunk):
                idx = order[start:start + chunk]
                feats = models.audio_encoder.frame_features(embeddings, range(start, start + len(idx)))
                faces = _generate_chunk(models, np.ascontiguousarray(store.faces[idx]), feats, mask, noise, steps,
                                        guidance, generator, device)
                for k, src in enumerate(idx):
                    frame = np.ascontiguousarray(store.frames[src])
                    matrix = store.matrices[src]
                    if np.isfinite(matrix).all():
                        frame = paste_back(frame, faces[k], matrix, _crop_size(resolution))
                    else:
                        without_face += 1
                    writer.write_frame(frame)
                bar.update(len(idx))
            writer.write_audio(samples[: num_out * HOP])
            writer.close()
        except BaseException:
            writer.abort()
            raise
        finally:
            bar.close()
        if without_face:
            log.warning("%d of %d output frames had no face and were left unchanged", without_face, num_out)
        seconds = time.perf_counter() - t0
        return LipsyncResult(Path(output), num_out, without_face, store.count, seconds, num_out / seconds,
                             resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _crop_size(resolution: int) -> tuple[int, int]:
    from syncvid.face.align import crop_size

    return crop_size(resolution)


def main(args) -> int:
    """Command entry for parsed `add_lipsync_flags` arguments; prints one summary line."""
    import sys

    from syncvid.config import ConfigError, load_config
    from syncvid.train.common import pick_device

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config, overrides=list(args.overrides), family="unet")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for flag, path in (("--video", args.video), ("--audio", args.audio)):
        if not Path(path).is_file():
            print(f"error: {flag}: no such file: {path}", file=sys.stderr)
            return 2
    if args.unet_checkpoint and not Path(args.unet_checkpoint).is_file():
        print(f"error: --unet_checkpoint: no such file: {args.unet_checkpoint}", file=sys.stderr)
        return 2
    if args.inference_steps is not None and args.inference_steps <= 0:
        print(f"error: --inference_steps must be positive, got {args.inference_steps}", file=sys.stderr)
        return 2
    try:
        models = LipsyncModels.load(cfg, args.unet_checkpoint or None, pick_device(args.device))
        result = lipsync(models, args.video, args.audio, args.output, inference_steps=args.inference_steps,
                         guidance_scale=args.guidance_scale, seed=args.seed)
    except LipsyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {result.output}: {result.num_frames} frames ({result.num_frames / FPS:.2f} s) from "
          f"{result.video_frames} video frames, {result.frames_without_face} without a face, "
          f"{result.frames_per_second:.2f} frames/s")
    return 0
