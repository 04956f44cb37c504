"""Stage 2's pixel-space losses as LatentSync's trainer applies them, and their start-up checks.

`lpips_loss` and `trepa_loss` take decoded frames (B·F, 3, H, W) in [−1, 1] (the VAE's output
order, frames of one video consecutive) exactly as upstream's `train_unet.py` feeds `lpips` and
TREPA (`unet_parts.check_config` refuses a positive weight without its files before any work).
`read_state_dict`/`require_state` are the strict, one-line-error checks
shared by the LPIPS and TREPA loaders.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import torch

from syncvid.torch_files import load_weights_file

if TYPE_CHECKING:
    from syncvid.train.lpips import LPIPS
    from syncvid.train.trepa import TREPALoss

__all__ = [
    "frames_to_video",
    "lower_half",
    "lpips_loss",
    "read_state_dict",
    "require_state",
    "trepa_loss",
]

_MAX_MESSAGE = 400


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_MESSAGE else flat[: _MAX_MESSAGE - 1] + "…"


def _some(keys: Iterable[str], n: int = 3) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:n])
    return shown + (f", … ({len(keys)} in all)" if len(keys) > n else "")


def read_state_dict(
    path: str | os.PathLike, what: str, wrappers: tuple[str, ...] = ()
) -> Mapping[str, torch.Tensor]:
    """`torch.load(path, weights_only=True)` of a state dict, unwrapped from the first of
    `wrappers` (e.g. "model", "module") the file holds.  ValueError naming the file on one line
    when it is missing, unreadable or not a mapping of names to tensors."""
    p = Path(path)
    try:
        state: Any = load_weights_file(p, what)
    except ValueError as exc:
        raise ValueError(_one_line(str(exc))) from exc
    if isinstance(state, Mapping):
        for key in wrappers:
            if key in state and isinstance(state[key], Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping):
        raise ValueError(f"{p}: holds a {type(state).__name__}, not a state dict ({what})")
    odd = [str(k) for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if odd:
        raise ValueError(f"{p}: entries that are not named tensors: {_some(odd)} ({what})")
    return state


def require_state(
    state: Mapping[str, torch.Tensor],
    shapes: Mapping[str, tuple[int, ...]],
    path: str | os.PathLike,
    mismatch: str,
) -> None:
    """Strict check of `state` against the expected key → shape map; ValueError naming the file
    (one line) for missing keys, unexpected keys (`mismatch` says what the file is not) or the
    first wrong shape."""
    missing = set(shapes) - set(state)
    unexpected = set(state) - set(shapes)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_some(missing)}")
        if unexpected:
            parts.append(f"unexpected {_some(unexpected)}")
        raise ValueError(f"{Path(path)}: {mismatch}: {'; '.join(parts)}")
    for key, shape in shapes.items():
        got = tuple(state[key].shape)
        if got != tuple(shape):
            raise ValueError(f"{Path(path)}: {key} has shape {got}, expected {tuple(shape)}")


def lower_half(frames: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → (N, C, H − H//2, W): the rows from H//2 down."""
    return frames[:, :, frames.shape[2] // 2 :, :]


def frames_to_video(frames: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B·F, C, H, W), frames of a video consecutive → (B, C, F, H, W)."""
    n, c, h, w = frames.shape
    if num_frames <= 0 or n % num_frames:
        raise ValueError(f"{n} frames do not split into videos of {num_frames}")
    return frames.reshape(n // num_frames, num_frames, c, h, w).transpose(1, 2)


def lpips_loss(model: LPIPS, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """LPIPS between the lower halves of predicted and true frames (N, 3, H, W) in [−1, 1],
    computed in float32 and averaged over the N frames → scalar."""
    return model(lower_half(pred).float(), lower_half(gt).float()).float().mean()


def trepa_loss(model: TREPALoss, pred: torch.Tensor, gt: torch.Tensor, num_frames: int) -> torch.Tensor:
    """TREPA between predicted and true frames (B·F, 3, H, W) in [−1, 1], F = `num_frames` → scalar."""
    return model(frames_to_video(pred, num_frames), frames_to_video(gt, num_frames))
