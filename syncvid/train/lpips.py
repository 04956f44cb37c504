"""LPIPS (VGG variant) in plain torch, loading the user's published weight files.

The perceptual distance of Zhang et al. as the `lpips` package computes it with `net="vgg"`:
inputs in [−1, 1] are shifted and scaled per channel, VGG16's `features` trunk gives the
activations after relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3; each is normalised to unit
length over channels, the squared difference of the two images is weighted per channel by a
1×1 "linear" layer, averaged over the image, and the five layers are summed ⇒ (N, 1, 1, 1).

Weights: torchvision's VGG16 state dict (`features.{0,2,5,…,28}.weight/bias`; the classifier
is ignored) and lpips' `weights/v0.1/vgg.pth` (`lin{0..4}.model.1.weight`, shape (1, C, 1, 1)).
Both load strictly; the network is frozen but differentiable with respect to its inputs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from syncvid.torch_files import load_weights_file

__all__ = ["LPIPS", "VGG_CONVS", "LPIPS_CHANNELS"]

# torchvision's VGG16 `features`: (index of each conv, its output channels); a ReLU follows every
# conv and max pooling follows indices 2 (after the relu at 3), 7, 14, 21, 28.
VGG_CONVS = ((0, 64), (2, 64), (5, 128), (7, 128), (10, 256), (12, 256), (14, 256),
             (17, 512), (19, 512), (21, 512), (24, 512), (26, 512), (28, 512))
_POOL_AFTER = (3, 8, 15, 22)  # indices of the max-pool layers
_TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def _load(path: str | os.PathLike, what: str) -> Mapping[str, torch.Tensor]:
    p = Path(path)
    state = load_weights_file(p, f"{what} file")
    if not isinstance(state, Mapping):
        raise ValueError(f"{p}: not a state dict")
    return state


class _Linear(nn.Module):
    """lpips' NetLinLayer: dropout (inactive at eval), then a 1×1 conv without bias (`model.1`)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """See the module docstring.  `forward(a, b)` with images (N, 3, H, W) in [−1, 1] → (N, 1, 1, 1)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        convs = dict(VGG_CONVS)
        in_ch = 3
        for index in range(30):
            if index in convs:
                layers.append(nn.Conv2d(in_ch, convs[index], 3, padding=1))
                in_ch = convs[index]
            elif index in _POOL_AFTER:
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers.append(nn.ReLU(inplace=False))
        self.features = nn.Sequential(*layers)
        for i, ch in enumerate(LPIPS_CHANNELS):
            setattr(self, f"lin{i}", _Linear(ch))
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.eval().requires_grad_(False)

    @classmethod
    def from_files(cls, vgg_path: str | os.PathLike, lin_path: str | os.PathLike) -> "LPIPS":
        model = cls()
        vgg = {k[len("features."):]: v for k, v in _load(vgg_path, "VGG16 weights").items() if k.startswith("features.")}
        try:
            model.features.load_state_dict(vgg, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"{vgg_path}: not torchvision's VGG16 weights ({str(exc).splitlines()[0]})") from exc
        lin = _load(lin_path, "LPIPS linear-layer")
        own = {k: v for k, v in model.state_dict().items() if k.startswith("lin")}
        extra = sorted(set(lin) - set(own))
        missing = sorted(set(own) - set(lin))
        if missing or extra:
            raise ValueError(f"{lin_path}: not lpips' vgg.pth (missing {missing[:3]}, unexpected {extra[:3]})")
        for key, value in lin.items():
            if tuple(value.shape) != tuple(own[key].shape):
                raise ValueError(f"{lin_path}: {key} has shape {tuple(value.shape)}, expected {tuple(own[key].shape)}")
        model.load_state_dict(lin, strict=False)
        return model

    def train(self, mode: bool = True) -> "LPIPS":  # always frozen in eval mode (no dropout)
        return super().train(False)

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        h = (x - self.shift) / self.scale
        for index, layer in enumerate(self.features):
            h = layer(h)
            if index in _TAPS:
                out.append(h / (h.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        total = None
        for i, (fa, fb) in enumerate(zip(self._taps(a), self._taps(b))):
            layer = getattr(self, f"lin{i}")((fa - fb) ** 2).mean(dim=(2, 3), keepdim=True)
            total = layer if total is None else total + layer
        assert total is not None
        return total
