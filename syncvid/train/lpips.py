"""LPIPS with the VGG16 trunk, in plain torch, loading the user's published weight files.

The learned perceptual distance of Zhang et al. (2018) as the `lpips` package (v0.1,
`net="vgg"`, `normalize=False`) computes it: images in [−1, 1] are shifted and scaled per
channel, torchvision's VGG16 `features` trunk yields the activations after relu1_2, relu2_2,
relu3_3, relu4_3 and relu5_3, each is divided by its length over channels, the squared
difference between the two images is weighted per channel by a 1×1 convolution ("lin"
layer), averaged over the image, and the five layers are summed.

Weight files:

* torchvision's VGG16 state dict (`vgg16-397923af.pth`): `features.{i}.weight/bias` for the
  13 convolutions at `VGG_CONVS`; its `classifier.*` entries are ignored.
* lpips' `weights/v0.1/vgg.pth`: `lin{k}.model.1.weight` of shape (1, C_k, 1, 1) for
  C = 64, 128, 256, 512, 512 (index 0 of each `model` is a parameterless dropout).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from syncvid.train.pixel_losses import read_state_dict, require_state

__all__ = ["LPIPS", "LPIPS_CHANNELS", "VGG_CONVS", "VGG16_FEATURES_PARAMS", "vgg16_feature_shapes"]

# (index in torchvision's `vgg16().features`, output channels) of each 3×3 convolution.
VGG_CONVS: tuple[tuple[int, int], ...] = (
    (0, 64), (2, 64),
    (5, 128), (7, 128),
    (10, 256), (12, 256), (14, 256),
    (17, 512), (19, 512), (21, 512),
    (24, 512), (26, 512), (28, 512),
)
_POOLS = (4, 9, 16, 23)  # 2×2 max pools; index 30 (the last pool) is never reached
_TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
LPIPS_CHANNELS: tuple[int, ...] = (64, 128, 256, 512, 512)
VGG16_FEATURES_PARAMS = 14_714_688
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10


def vgg16_feature_shapes() -> dict[str, tuple[int, ...]]:
    """Key → shape of every `features.*` tensor in torchvision's VGG16 state dict."""
    shapes: dict[str, tuple[int, ...]] = {}
    in_ch = 3
    for index, out_ch in VGG_CONVS:
        shapes[f"features.{index}.weight"] = (out_ch, in_ch, 3, 3)
        shapes[f"features.{index}.bias"] = (out_ch,)
        in_ch = out_ch
    return shapes


class _LinHead(nn.Module):
    """lpips' per-layer weighting: `model.0` dropout (never active here), `model.1` a bias-free
    1×1 conv C → 1.  (N, C, H, W) → (N, 1, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, kernel_size=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model[1](x)


def _unit_channels(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) divided by its L2 norm over C (+1e-10, as lpips)."""
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)


class LPIPS(nn.Module):
    """`forward(a, b)`: images (N, 3, H, W) in [−1, 1] → distances (N, 1, 1, 1).

    Always in eval mode with every parameter frozen; gradients flow to the inputs."""

    def __init__(self) -> None:
        super().__init__()
        convs = dict(VGG_CONVS)
        layers: list[nn.Module] = []
        in_ch = 3
        for index in range(max(_TAPS) + 1):
            if index in convs:
                layers.append(nn.Conv2d(in_ch, convs[index], kernel_size=3, padding=1))
                in_ch = convs[index]
            elif index in _POOLS:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers.append(nn.ReLU())
        self.features = nn.Sequential(*layers)
        self.lin0 = _LinHead(LPIPS_CHANNELS[0])
        self.lin1 = _LinHead(LPIPS_CHANNELS[1])
        self.lin2 = _LinHead(LPIPS_CHANNELS[2])
        self.lin3 = _LinHead(LPIPS_CHANNELS[3])
        self.lin4 = _LinHead(LPIPS_CHANNELS[4])
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_files(cls, vgg_path: str | os.PathLike, lin_path: str | os.PathLike) -> LPIPS:
        """Load torchvision's VGG16 weights and lpips' v0.1 `vgg.pth` strictly.

        Raises ValueError (one line, naming the file) for a missing or unreadable file, missing
        or unexpected keys, or a tensor of the wrong shape."""
        model = cls()
        vgg = read_state_dict(vgg_path, "VGG16 weights file")
        trunk = {k: v for k, v in vgg.items() if not k.startswith("classifier.")}
        require_state(trunk, vgg16_feature_shapes(), vgg_path, "not torchvision's VGG16 weights")
        lin = read_state_dict(lin_path, "LPIPS linear-layer file")
        lin_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("lin")}
        require_state(lin, lin_shapes, lin_path, "not lpips' v0.1 vgg.pth")
        model.load_state_dict({**trunk, **lin}, strict=True)
        return model

    def train(self, mode: bool = True) -> LPIPS:
        """Stays in eval mode: the network is a fixed metric."""
        return super().train(False)

    def _layers(self) -> list[_LinHead]:
        return [self.lin0, self.lin1, self.lin2, self.lin3, self.lin4]

    def features_at_taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Channel-normalised VGG activations at the five taps for images (N, 3, H, W) in [−1, 1]."""
        h = (x - self.shift.to(x.dtype)) / self.scale.to(x.dtype)
        taps = []
        for index, layer in enumerate(self.features):
            h = layer(h)
            if index in _TAPS:
                taps.append(_unit_channels(h))
        return taps

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        dtype = self.lin0.model[1].weight.dtype
        total: torch.Tensor | None = None
        for head, fa, fb in zip(self._layers(), self.features_at_taps(a.to(dtype)), self.features_at_taps(b.to(dtype))):
            term = head((fa - fb) ** 2).mean(dim=(2, 3), keepdim=True)
            total = term if total is None else total + term
        assert total is not None
        return total

