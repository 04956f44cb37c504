"""HyperIQA (Su et al., CVPR 2020): the reference pipeline's visual quality model.

The network is laid out so that its state dict has exactly the key names and
shapes of the published KonIQ-10k checkpoint (`koniq_pretrained.pkl`, a plain
state dict of 355 tensors): a ResNet-50 backbone under `res.` with
torchvision's names plus four local-distortion branches (`res.lda1_pool`,
`res.lda1_fc`, ...), a 1x1 conv stack `conv1`, and the hyper head
(`fc1w_conv`, `fc1b_fc`, ..., `fc5w_fc`, `fc5b_fc`) that generates, per image,
the weights of a small target MLP 224 -> 112 -> 56 -> 28 -> 14 -> 1 (sigmoid
between layers, none after the last).  The target MLP's output is the
quality, about 0-100 on the KonIQ MOS scale, higher is better.

Scoring follows the reference: frames 0, len // 2 and last; RGB in [0, 1];
224 x 224 centre crop of the 256 x 256 aligned face; ImageNet mean/std; the
clip's score is the mean.  Clips aligned at another resolution are resized to
256 x 256 first, so the crop sees the same part of the face.

This module imports torch; the backend registry imports it only when the
`hyperiqa` backend is asked for.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 224
REFERENCE_RESOLUTION = 256
NUM_TENSORS = 355  # entries in the published checkpoint's state dict

# HyperNet(16, 112, 224, 112, 56, 28, 14, 7), as the reference builds it.
LDA_OUT = 16
HYPER_IN = 112
TARGET_IN = 224
TARGET_SIZES = (112, 56, 28, 14)
FEATURE_SIZE = 7


class Bottleneck(nn.Module):
    """ResNet-50 bottleneck block (stride on the 3x3 conv, as torchvision)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def _stage(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or inplanes != planes * Bottleneck.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False),
            nn.BatchNorm2d(planes * Bottleneck.expansion),
        )
    layers = [Bottleneck(inplanes, planes, stride, downsample)]
    layers += [Bottleneck(planes * Bottleneck.expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def _lda_branch(in_channels: int, out_channels: int) -> nn.Sequential:
    # 1x1 channel reduction then 7x7 average pooling (keys `<name>.0.weight`, no bias)
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.AvgPool2d(7, stride=7))


class Backbone(nn.Module):
    """ResNet-50 (no classifier) with the local-distortion-aware branches after each stage.

    For a 224 x 224 input returns the layer-4 feature map [B, 2048, 7, 7] and
    the target network's input vector [B, 224] (16 + 16 + 16 + 176 from the
    four stages).
    """

    def __init__(self, lda_out: int = LDA_OUT, target_in: int = TARGET_IN):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = _stage(64, 64, 3, 1)
        self.layer2 = _stage(256, 128, 4, 2)
        self.layer3 = _stage(512, 256, 6, 2)
        self.layer4 = _stage(1024, 512, 3, 2)
        self.lda1_pool = _lda_branch(256, 16)  # 56x56 -> 8x8
        self.lda1_fc = nn.Linear(16 * 8 * 8, lda_out)
        self.lda2_pool = _lda_branch(512, 32)  # 28x28 -> 4x4
        self.lda2_fc = nn.Linear(32 * 4 * 4, lda_out)
        self.lda3_pool = _lda_branch(1024, 64)  # 14x14 -> 2x2
        self.lda3_fc = nn.Linear(64 * 2 * 2, lda_out)
        self.lda4_pool = nn.AvgPool2d(7, stride=7)  # 7x7 -> 1x1
        self.lda4_fc = nn.Linear(2048, target_in - 3 * lda_out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        v1 = self.lda1_fc(self.lda1_pool(x).flatten(1))
        x = self.layer2(x)
        v2 = self.lda2_fc(self.lda2_pool(x).flatten(1))
        x = self.layer3(x)
        v3 = self.lda3_fc(self.lda3_pool(x).flatten(1))
        x = self.layer4(x)
        v4 = self.lda4_fc(self.lda4_pool(x).flatten(1))
        return x, torch.cat((v1, v2, v3, v4), dim=1)


class HyperNet(nn.Module):
    """Backbone + hyper head; `forward` returns per-image target-network parameters.

    Returns (input vector [B, 224], [(weight [B, out, in], bias [B, out]) for
    the five target layers]).
    """

    def __init__(self):
        super().__init__()
        self.res = Backbone()
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.conv1 = nn.Sequential(
            nn.Conv2d(2048, 1024, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(1024, 512, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(512, HYPER_IN, 1),
            nn.ReLU(inplace=True),
        )
        sizes = (TARGET_IN,) + TARGET_SIZES
        area = FEATURE_SIZE * FEATURE_SIZE
        # Target layer k's weight matrix (sizes[k+1] x sizes[k]) is read off a conv output map of
        # (sizes[k] * sizes[k+1] / 49) channels x 7 x 7.
        self.fc1w_conv = nn.Conv2d(HYPER_IN, sizes[0] * sizes[1] // area, 3, padding=1)
        self.fc1b_fc = nn.Linear(HYPER_IN, sizes[1])
        self.fc2w_conv = nn.Conv2d(HYPER_IN, sizes[1] * sizes[2] // area, 3, padding=1)
        self.fc2b_fc = nn.Linear(HYPER_IN, sizes[2])
        self.fc3w_conv = nn.Conv2d(HYPER_IN, sizes[2] * sizes[3] // area, 3, padding=1)
        self.fc3b_fc = nn.Linear(HYPER_IN, sizes[3])
        self.fc4w_conv = nn.Conv2d(HYPER_IN, sizes[3] * sizes[4] // area, 3, padding=1)
        self.fc4b_fc = nn.Linear(HYPER_IN, sizes[4])
        self.fc5w_fc = nn.Linear(HYPER_IN, sizes[4])
        self.fc5b_fc = nn.Linear(HYPER_IN, 1)

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        if img.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"HyperIQA needs {INPUT_SIZE}x{INPUT_SIZE} inputs, got {tuple(img.shape)}")
        feat, vec = self.res(img)
        b = img.shape[0]
        hyper = self.conv1(feat)  # [B, 112, 7, 7]
        pooled = self.pool(hyper).flatten(1)  # [B, 112]
        sizes = (TARGET_IN,) + TARGET_SIZES
        convs = (self.fc1w_conv, self.fc2w_conv, self.fc3w_conv, self.fc4w_conv)
        biases = (self.fc1b_fc, self.fc2b_fc, self.fc3b_fc, self.fc4b_fc)
        layers = []
        for k, (conv, fc) in enumerate(zip(convs, biases)):
            weight = conv(hyper).reshape(b, sizes[k + 1], sizes[k])  # row-major over (channel, y, x)
            layers.append((weight, fc(pooled)))
        layers.append((self.fc5w_fc(pooled).reshape(b, 1, sizes[4]), self.fc5b_fc(pooled)))
        return vec, layers


def target_network(vec: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Apply each image's own MLP to its input vector; returns the quality scores [B]."""
    x = vec
    for k, (weight, bias) in enumerate(layers):
        x = torch.bmm(weight, x.unsqueeze(-1)).squeeze(-1) + bias
        if k < len(layers) - 1:
            x = torch.sigmoid(x)
    return x.squeeze(-1)


def reference_indices(total: int) -> list[int]:
    """Frames the reference scores: first, middle (len // 2) and last."""
    if total <= 0:
        raise ValueError(f"a clip needs at least one frame, got {total}")
    return [0, total // 2, total - 1]


def preprocess(frames: np.ndarray) -> torch.Tensor:
    """RGB uint8 frames [K, r, r, 3] -> normalised 224 x 224 centre crops [K, 3, 224, 224] (float32)."""
    if frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"expected RGB frames [K, H, W, 3], got shape {frames.shape}")
    size = REFERENCE_RESOLUTION
    if frames.shape[1:3] != (size, size):
        interp = cv2.INTER_AREA if min(frames.shape[1:3]) > size else cv2.INTER_CUBIC
        frames = np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])
    top = int(round((size - INPUT_SIZE) / 2.0))
    crop = frames[:, top : top + INPUT_SIZE, top : top + INPUT_SIZE].astype(np.float32) / 255.0
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
    std = np.asarray(IMAGENET_STD, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(((crop - mean) / std).transpose(0, 3, 1, 2)))


def resolve_device(device: str) -> torch.device:
    """`auto` -> the first CUDA device when one is usable, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_hypernet(path: str | Path, device: str | torch.device = "cpu") -> HyperNet:
    """Build HyperNet and load a `koniq_pretrained.pkl`-format state dict strictly; eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"HyperIQA checkpoint not found: {path} — place the published koniq_pretrained.pkl there, "
            "set quality.hyperiqa_checkpoint to its path, or remove 'hyperiqa' from quality.backends"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable or not a torch file: one error naming the file
        raise ValueError(f"{path}: not a readable HyperIQA checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a plain state dict of tensors (the published format)")
    model = HyperNet()
    expected = model.state_dict()
    problems = []
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    wrong = [k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape)]
    if wrong:
        k = sorted(wrong)[0]
        problems.append(
            f"{len(wrong)} with wrong shapes (e.g. {k}: {tuple(state[k].shape)}, expected {tuple(expected[k].shape)})"
        )
    if problems:
        raise ValueError(f"{path}: not a HyperIQA (KonIQ) checkpoint: keys " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


class HyperIQABackend:
    """HyperIQA on frames 0, middle and last; needs a user-supplied checkpoint."""

    name = "hyperiqa"
    metrics = ("hyperiqa",)

    def __init__(self, checkpoint: str, device: str = "auto"):
        self.checkpoint = checkpoint
        self.device = device
        self.model: HyperNet | None = None
        self._device = torch.device("cpu")

    def setup(self) -> None:
        self._device = resolve_device(self.device)
        self.model = load_hypernet(self.checkpoint, self._device)

    def frame_scores(self, frames: np.ndarray) -> np.ndarray:
        """HyperIQA score of each frame [K, r, r, 3] (no frame selection)."""
        if self.model is None:
            raise RuntimeError("HyperIQABackend.setup() must run before scoring")
        with torch.inference_mode():
            vec, layers = self.model(preprocess(frames).to(self._device))
            return target_network(vec, layers).float().cpu().numpy().reshape(-1)

    def score(self, frames: np.ndarray) -> dict[str, float]:
        idx = reference_indices(len(frames))
        return {"hyperiqa": float(self.frame_scores(frames[idx]).mean())}
