"""Reading user-supplied weight files: one place for the checks and the one-line errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["load_weights_file"]


def load_weights_file(path: str | os.PathLike, what: str) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU; ValueError naming the file when it is
    missing or is not a readable torch file (`what` names it in the message, e.g. "Whisper checkpoint")."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such {what}")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a file that is not a checkpoint
        raise ValueError(f"{p}: not a readable torch file ({type(exc).__name__}: {exc})") from exc
