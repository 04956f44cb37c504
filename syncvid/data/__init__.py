"""Training data: mel features and the UNet / SyncNet datasets.

`melspectrogram` is plain numpy; the datasets need torch and are imported on first use,
so `from syncvid.data import melspectrogram` works without torch installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from syncvid.data.mel import MelParams, load_mel_params, mel_start_index, mel_window_length, melspectrogram

__all__ = [
    "MelParams",
    "load_mel_params",
    "melspectrogram",
    "mel_window_length",
    "mel_start_index",
    "UNetDataset",
    "SyncNetDataset",
]

if TYPE_CHECKING:
    from syncvid.data.syncnet_dataset import SyncNetDataset
    from syncvid.data.unet_dataset import UNetDataset

_LAZY = {
    "UNetDataset": "syncvid.data.unet_dataset",
    "SyncNetDataset": "syncvid.data.syncnet_dataset",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'syncvid.data' has no attribute {name!r}")
