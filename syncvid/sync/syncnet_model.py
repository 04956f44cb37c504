"""The original SyncNet (syncnet_python's `S`, file `syncnet_v2.model`) and its loader.

Layer indices inside the four `nn.Sequential` towers are the published ones, so the flat
state dict (`netcnnaud.0.weight` ... `netfclip.3.bias`) loads by name.  Embeddings are
1024-d and not normalised; the offset rule lives in `syncvid.sync.offset`.

This module imports torch at import time; import it only where torch is wanted.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from syncvid.atomic import atomic_path

__all__ = ["SyncNetV2", "load_syncnet_v2", "save_syncnet_v2", "missing_checkpoint_message"]


class SyncNetV2(nn.Module):
    """Audio: N×1×13×20 MFCC → 1024; lip: N×3×5×224×224 (BGR 0-255) → 1024."""

    def __init__(self, embed_dim: int = 1024) -> None:
        super().__init__()
        self.netcnnaud = nn.Sequential(
            nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1),  # 0
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=1, stride=1),  # 3
            nn.Conv2d(64, 192, kernel_size=3, stride=1, padding=1),  # 4
            nn.BatchNorm2d(192),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=(1, 2)),  # 7
            nn.Conv2d(192, 384, kernel_size=3, padding=1),  # 8
            nn.BatchNorm2d(384),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),  # 11
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),  # 14
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 17
            nn.Conv2d(256, 512, kernel_size=(5, 4), padding=0),  # 18
            nn.BatchNorm2d(512),
            nn.ReLU(),
        )
        self.netfcaud = nn.Sequential(
            nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embed_dim)
        )
        self.netfclip = nn.Sequential(
            nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embed_dim)
        )
        self.netcnnlip = nn.Sequential(
            nn.Conv3d(3, 96, kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=0),  # 0
            nn.BatchNorm3d(96),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),  # 3
            nn.Conv3d(96, 256, kernel_size=(1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)),  # 4
            nn.BatchNorm3d(256),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),  # 7
            nn.Conv3d(256, 256, kernel_size=(1, 3, 3), padding=(0, 1, 1)),  # 8
            nn.BatchNorm3d(256),
            nn.ReLU(inplace=True),
            nn.Conv3d(256, 256, kernel_size=(1, 3, 3), padding=(0, 1, 1)),  # 11
            nn.BatchNorm3d(256),
            nn.ReLU(inplace=True),
            nn.Conv3d(256, 256, kernel_size=(1, 3, 3), padding=(0, 1, 1)),  # 14
            nn.BatchNorm3d(256),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),  # 17
            nn.Conv3d(256, 512, kernel_size=(1, 6, 6), padding=0),  # 18
            nn.BatchNorm3d(512),
            nn.ReLU(inplace=True),
        )
        self.eval()

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.netcnnaud(x)
        return self.netfcaud(mid.reshape(mid.shape[0], -1))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.netcnnlip(x)
        return self.netfclip(mid.reshape(mid.shape[0], -1))

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_lip(video), self.forward_aud(audio)


def missing_checkpoint_message(path: Path) -> str:
    return (
        f"SyncNet checkpoint not found: {path}. Put the original SyncNet weights "
        "(syncnet_v2.model from joonson/syncnet_python) there, set sync.syncnet_checkpoint "
        "to their location, or use sync.backend=landmark, which needs no weights."
    )


def save_syncnet_v2(model: SyncNetV2, path: str | Path) -> Path:
    """Write the flat state dict in the published layout (no prefix, no wrapper dict)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)
    return path


def load_syncnet_v2(path: str | Path, device: str | torch.device = "cpu") -> SyncNetV2:
    """Load `syncnet_v2.model` strictly (weights_only) and return the model in eval mode.

    Every parameter and running statistic must be present with its published name and
    shape, and no other key may appear.  The BatchNorm `num_batches_tracked` counters,
    which files written by old PyTorch versions lack, are the only optional keys (they
    play no part in inference).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(missing_checkpoint_message(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise RuntimeError(f"{path}: expected a flat state dict, got {type(state).__name__}")
    model = SyncNetV2()
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise RuntimeError(
            f"{path}: not a syncnet_v2 state dict (missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})"
        )
    merged = dict(own)
    merged.update(state)
    try:
        model.load_state_dict(merged, strict=True)
    except RuntimeError as exc:
        raise RuntimeError(f"{path}: {exc}") from exc
    return model.to(device).eval()
