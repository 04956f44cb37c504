"""Reading UNet checkpoints and loading them by explicit rules.

A checkpoint file is LatentSync's `{"global_step": int, "state_dict": {...}}` (what its
trainer and ours write, and the published `latentsync_unet.pt`) or a bare state dict.

Loading modes:
- `strict`: every key and shape must match (a published stage-2 model into stage 2).
- `init_stage2`: a stage-1 checkpoint into a model with motion modules: only keys of
  `motion_modules.` may be missing (they keep their identity initialisation); any other
  missing or unexpected key is an error.
- `sd_init`: LatentSync's rule for starting from an SD-1.5-style UNet: `conv_in`/`conv_out`
  and the audio cross-attention's `attn2.to_k`/`attn2.to_v` are dropped when their shapes
  differ from the model's (other input/output channels, another audio width); the rest
  loads non-strictly and what is missing keeps its initialisation.
- `auto`: `strict` when everything matches, else `init_stage2` when only motion-module keys
  are missing, else `sd_init` when only those droppable shapes differ — and an error
  otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from syncvid.torch_files import load_weights_file

__all__ = ["LoadReport", "read_unet_checkpoint", "load_unet_weights", "count_parameters", "MODES"]

MODES = ("strict", "init_stage2", "sd_init", "auto")
_DROPPABLE = ("conv_in.", "conv_out.")
_DROPPABLE_AUDIO = ("attn2.to_k.", "attn2.to_v.")
MOTION_KEY = "motion_modules."


@dataclass
class LoadReport:
    mode: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def read_unet_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], int | None]:
    """(state dict, global step or None) of a UNet checkpoint file; ValueError naming the file otherwise."""
    p = Path(path)
    payload = load_weights_file(p, "checkpoint file")
    if isinstance(payload, Mapping) and "state_dict" in payload:
        state, step = payload["state_dict"], payload.get("global_step")
    else:
        state, step = payload, None
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{p}: not a UNet checkpoint (expected a state dict or {{'global_step', 'state_dict'}})")
    return dict(state), (int(step) if step is not None else None)


def _few(keys: list[str], n: int = 4) -> str:
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def _droppable(key: str) -> bool:
    return key.startswith(_DROPPABLE) or any(part in key for part in _DROPPABLE_AUDIO)


def load_unet_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], mode: str = "strict") -> LoadReport:
    """Load `state_dict` into `model` by `mode` (see the module docstring); returns what was
    missing, unexpected and dropped.  Raises RuntimeError naming keys when the rule is broken."""
    if mode not in MODES:
        raise ValueError(f"unknown loading mode {mode!r}; expected one of {', '.join(MODES)}")
    own = model.state_dict()
    state = dict(state_dict)
    mismatched = [k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if mode == "auto":
        if not (mismatched or missing or unexpected):
            mode = "strict"
        elif not (mismatched or unexpected) and all(MOTION_KEY in k for k in missing):
            mode = "init_stage2"
        elif all(_droppable(k) for k in mismatched) and not unexpected:
            mode = "sd_init"
        else:
            problems = []
            if mismatched:
                problems.append(f"shapes differ for {_few(mismatched)}")
            if unexpected:
                problems.append(f"unexpected keys {_few(unexpected)}")
            if missing:
                problems.append(f"missing keys {_few(missing)}")
            raise RuntimeError("the checkpoint does not fit this model config: " + "; ".join(problems))
    report = LoadReport(mode)
    if mode == "strict":
        if mismatched or missing or unexpected:
            parts = []
            if mismatched:
                parts.append("shapes differ for " + _few(mismatched))
            if missing:
                parts.append("missing " + _few(missing))
            if unexpected:
                parts.append("unexpected " + _few(unexpected))
            raise RuntimeError("strict load failed: " + "; ".join(parts))
        model.load_state_dict(state, strict=True)
        return report
    if mode == "init_stage2":
        not_motion = [k for k in missing if MOTION_KEY not in k]
        if not_motion or unexpected or mismatched:
            parts = []
            if not_motion:
                parts.append("missing non-motion-module keys " + _few(not_motion))
            if unexpected:
                parts.append("unexpected " + _few(unexpected))
            if mismatched:
                parts.append("shapes differ for " + _few(mismatched))
            raise RuntimeError("a stage-1 checkpoint may lack only motion-module keys: " + "; ".join(parts))
        model.load_state_dict(state, strict=False)
        report.missing = missing
        return report
    # sd_init
    bad = [k for k in mismatched if not _droppable(k)]
    if bad:
        raise RuntimeError("shapes differ outside conv_in, conv_out and attn2.to_k/to_v: " + _few(bad))
    for k in mismatched:
        del state[k]
    result = model.load_state_dict(state, strict=False)
    report.dropped = mismatched
    report.missing = list(result.missing_keys)
    report.unexpected = list(result.unexpected_keys)
    return report


def count_parameters(model_section, trainable_modules: list[str] | tuple[str, ...] = ()) -> dict[str, int]:
    """Sizes of the UNet a `model:` section describes, built on the meta device (no memory):
    parameter tensors, state-dict entries, parameters, and parameters whose name contains any
    of `trainable_modules` (all of them when it is empty)."""
    from syncvid.unet.unet3d import UNet3DConditionModel

    with torch.device("meta"):
        model = UNet3DConditionModel.from_config(model_section)
    named = list(model.named_parameters())
    total = sum(p.numel() for _, p in named)
    if trainable_modules:
        trainable = sum(p.numel() for n, p in named if any(m in n for m in trainable_modules))
    else:
        trainable = total
    return {
        "tensors": len(named),
        "state_dict_entries": len(model.state_dict()),
        "parameters": total,
        "trainable": trainable,
    }
