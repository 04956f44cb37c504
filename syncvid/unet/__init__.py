"""LatentSync's lip-sync models in plain torch: the UNet, the Whisper audio encoder, the DDIM
noise schedule and the VAE wrapper.

    from syncvid.unet import UNet3DConditionModel, WhisperAudioEncoder
    unet = UNet3DConditionModel.from_config(cfg.model)

Parameter names are LatentSync's (and OpenAI Whisper's), so published checkpoints load
strictly.  Submodules are imported on first use: `import syncvid.unet` needs only torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "UNet3DConditionModel",
    "UNetOutput",
    "LoadReport",
    "read_unet_checkpoint",
    "load_unet_weights",
    "count_parameters",
    "WhisperAudioEncoder",
    "DDIMSchedule",
    "LatentVAE",
]

_LAZY = {
    "UNet3DConditionModel": "syncvid.unet.unet3d",
    "UNetOutput": "syncvid.unet.unet3d",
    "LoadReport": "syncvid.unet.loading",
    "read_unet_checkpoint": "syncvid.unet.loading",
    "load_unet_weights": "syncvid.unet.loading",
    "count_parameters": "syncvid.unet.loading",
    "WhisperAudioEncoder": "syncvid.unet.whisper",
    "DDIMSchedule": "syncvid.unet.ddim",
    "LatentVAE": "syncvid.unet.vae",
}

if TYPE_CHECKING:
    from syncvid.unet.ddim import DDIMSchedule
    from syncvid.unet.loading import LoadReport, count_parameters, load_unet_weights, read_unet_checkpoint
    from syncvid.unet.unet3d import UNet3DConditionModel, UNetOutput
    from syncvid.unet.vae import LatentVAE
    from syncvid.unet.whisper import WhisperAudioEncoder


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'syncvid.unet' has no attribute {name!r}")
