"""Schema of the SyncNet training configuration (configs/syncnet/*.yaml).

Key names follow LatentSync's `configs/syncnet/syncnet_16_pixel*.yaml`, so those
files load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Union

# A downsampling factor: one stride for both axes, or [height, width] strides.
Factor = Union[int, List[int]]


@dataclass
class EncoderSection:
    """One DownEncoder2D: a stage per entry of block_out_channels."""

    in_channels: int = 1
    block_out_channels: List[int] = field(default_factory=lambda: [32, 64, 128, 256, 512, 1024, 2048])
    downsample_factors: List[Factor] = field(default_factory=lambda: [[2, 1], 2, 2, 1, 2, 2, [2, 3]])
    attn_blocks: List[int] = field(default_factory=lambda: [0, 0, 0, 0, 0, 0, 0])
    dropout: float = 0.0
    norm_num_groups: int = 32  # GroupNorm groups (the published model uses 32)

    def check_values(self) -> List[str]:
        problems = []
        n = len(self.block_out_channels)
        if len(self.downsample_factors) != n:
            problems.append(
                f"downsample_factors has {len(self.downsample_factors)} entries, block_out_channels {n}"
            )
        if len(self.attn_blocks) != n:
            problems.append(f"attn_blocks has {len(self.attn_blocks)} entries, block_out_channels {n}")
        for i, f in enumerate(self.downsample_factors):
            strides = f if isinstance(f, list) else [f]
            if len(strides) not in (1, 2) or any(s < 1 for s in strides):
                problems.append(f"downsample_factors[{i}] must be a positive int or [h, w], got {f}")
        if self.in_channels < 1 or any(c < 1 for c in self.block_out_channels):
            problems.append("channel counts must be positive")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        return problems


def _visual_encoder() -> EncoderSection:
    return EncoderSection(
        in_channels=48,
        block_out_channels=[64, 128, 256, 256, 512, 1024, 2048, 2048],
        downsample_factors=[[1, 2], 2, 2, 2, 2, 2, 2, 2],
        attn_blocks=[0, 0, 0, 0, 0, 0, 0, 0],
        dropout=0.0,
    )


@dataclass
class SyncNetModelSection:
    audio_encoder: EncoderSection = field(default_factory=EncoderSection)
    visual_encoder: EncoderSection = field(default_factory=_visual_encoder)


@dataclass
class SyncNetCkptSection:
    resume_ckpt_path: str = ""
    inference_ckpt_path: str = ""
    save_ckpt_steps: int = 2500


@dataclass
class SyncNetDataSection:
    train_output_dir: str = "debug/syncnet"
    train_fileslist: str = ""
    train_data_dir: str = ""
    val_fileslist: str = ""
    val_data_dir: str = ""
    audio_mel_cache_dir: str = "audio_cache/mel"
    audio_config_path: str = "configs/audio.yaml"
    num_val_samples: int = 2048
    batch_size: int = 64
    num_workers: int = 4
    latent_space: bool = False
    num_frames: int = 16
    resolution: int = 256
    lower_half: bool = True
    audio_sample_rate: int = 16000
    video_fps: int = 25

    def check_values(self) -> List[str]:
        problems = []
        for name in ("num_frames", "resolution", "batch_size", "audio_sample_rate", "video_fps"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_workers < 0:
            problems.append(f"num_workers must be >= 0, got {self.num_workers}")
        return problems


@dataclass
class SyncNetOptimizerSection:
    lr: float = 1e-5
    max_grad_norm: float = 1.0


@dataclass
class SyncNetRunSection:
    max_train_steps: int = 10_000_000
    validation_steps: int = 2500
    mixed_precision_training: bool = True
    seed: int = 42


@dataclass
class SyncNetConfig:
    model: SyncNetModelSection = field(default_factory=SyncNetModelSection)
    ckpt: SyncNetCkptSection = field(default_factory=SyncNetCkptSection)
    data: SyncNetDataSection = field(default_factory=SyncNetDataSection)
    optimizer: SyncNetOptimizerSection = field(default_factory=SyncNetOptimizerSection)
    run: SyncNetRunSection = field(default_factory=SyncNetRunSection)
