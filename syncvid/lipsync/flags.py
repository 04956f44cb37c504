"""Command-line flags of `syncvid lipsync` and `scripts/inference.py` (imports nothing heavy)."""

from __future__ import annotations

import argparse

__all__ = ["add_lipsync_flags"]


def add_lipsync_flags(parser) -> None:
    """The flags of `syncvid lipsync` and `scripts/inference.py` (LatentSync's spellings accepted)."""
    parser.add_argument("--config", "--unet_config_path", dest="config", default="configs/unet/stage2.yaml",
                        help="UNet config (model, VAE, audio encoder, inference settings)")
    parser.add_argument("--unet_checkpoint", "--inference_ckpt_path", dest="unet_checkpoint", default="",
                        help="UNet weights: a checkpoint of train-unet or LatentSync's latentsync_unet.pt")
    parser.add_argument("--video", "--video_path", dest="video", required=True, help="the face video to dub")
    parser.add_argument("--audio", "--audio_path", dest="audio", required=True, help="the driving speech (any format)")
    parser.add_argument("--output", "--video_out_path", dest="output", required=True, help="the dubbed video (.mp4)")
    parser.add_argument("--inference_steps", type=int, default=None, help="DDIM steps (default: run.inference_steps)")
    parser.add_argument("--guidance_scale", type=float, default=None, help="default: run.guidance_scale")
    parser.add_argument("--seed", type=int, default=None, help="default: run.seed")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda when available)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key (repeatable), e.g. --set ckpt.vae_path=…")
    parser.add_argument("--temp_dir", help=argparse.SUPPRESS)
    parser.add_argument("--enable_deepcache", action="store_true", help=argparse.SUPPRESS)
