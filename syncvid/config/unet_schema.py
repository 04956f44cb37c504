"""Schema of the UNet training configuration (configs/unet/*.yaml).

Sections and key names follow LatentSync's `configs/unet/stage1.yaml` and
`stage2.yaml`, so those files load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class MaskSection:
    """The generated lower-face mask, in fractions of the image (see syncvid.data.masks.MaskSpec)."""

    shape: str = "rect"  # rect | ellipse
    top: float = 0.5
    bottom: float = 1.0
    left: float = 0.0
    right: float = 1.0
    feather: float = 0.0

    def check_values(self) -> List[str]:
        problems = []
        if self.shape not in ("rect", "ellipse"):
            problems.append(f"shape must be rect or ellipse, got {self.shape!r}")
        if not 0.0 <= self.top < self.bottom <= 1.0:
            problems.append(f"needs 0 <= top < bottom <= 1, got top={self.top}, bottom={self.bottom}")
        if not 0.0 <= self.left < self.right <= 1.0:
            problems.append(f"needs 0 <= left < right <= 1, got left={self.left}, right={self.right}")
        if not 0.0 <= self.feather <= 0.5:
            problems.append(f"feather must be in [0, 0.5], got {self.feather}")
        return problems


@dataclass
class UNetDataSection:
    syncnet_config_path: str = "configs/syncnet/pixel.yaml"
    audio_config_path: str = "configs/audio.yaml"
    train_output_dir: str = "debug/unet"
    train_fileslist: str = ""
    train_data_dir: str = ""
    audio_embeds_cache_dir: str = "audio_cache/embeds"
    audio_mel_cache_dir: str = "audio_cache/mel"
    val_video_path: str = ""
    val_audio_path: str = ""
    batch_size: int = 1
    num_workers: int = 4
    num_frames: int = 16
    resolution: int = 256
    mask_image_path: Optional[str] = None  # null: the lower-face mask is generated from `mask`
    mask: MaskSection = field(default_factory=MaskSection)
    audio_sample_rate: int = 16000
    video_fps: int = 25
    audio_feat_length: List[int] = field(default_factory=lambda: [2, 2])

    def check_values(self) -> List[str]:
        problems = []
        for name in ("num_frames", "resolution", "batch_size", "audio_sample_rate", "video_fps"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_workers < 0:
            problems.append(f"num_workers must be >= 0, got {self.num_workers}")
        if len(self.audio_feat_length) != 2:
            problems.append(f"audio_feat_length must have 2 entries, got {self.audio_feat_length}")
        return problems


@dataclass
class UNetCkptSection:
    resume_ckpt_path: str = ""
    save_ckpt_steps: int = 10000


@dataclass
class UNetRunSection:
    pixel_space_supervise: bool = False
    use_syncnet: bool = False
    sync_loss_weight: float = 0.05
    perceptual_loss_weight: float = 0.1
    recon_loss_weight: float = 1.0
    guidance_scale: float = 2.0
    trepa_loss_weight: float = 10.0
    inference_steps: int = 20
    trainable_modules: List[str] = field(default_factory=list)  # empty: every module trains
    seed: int = 1247
    use_mixed_noise: bool = True
    mixed_noise_alpha: float = 1.0
    mixed_precision_training: bool = True
    enable_gradient_checkpointing: bool = True
    max_train_steps: int = 10_000_000
    max_train_epochs: int = -1  # -1: no limit


@dataclass
class UNetOptimizerSection:
    lr: float = 1e-5
    scale_lr: bool = False
    max_grad_norm: float = 1.0
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0


@dataclass
class MotionModuleKwargs:
    num_attention_heads: int = 8
    num_transformer_block: int = 1
    attention_block_types: List[str] = field(default_factory=lambda: ["Temporal_Self", "Temporal_Self"])
    temporal_position_encoding: bool = True
    temporal_position_encoding_max_len: int = 24
    temporal_attention_dim_div: int = 1
    zero_initialize: bool = True


@dataclass
class UNetModelSection:
    act_fn: str = "silu"
    add_audio_layer: bool = True
    attention_head_dim: int = 8
    block_out_channels: List[int] = field(default_factory=lambda: [320, 640, 1280, 1280])
    center_input_sample: bool = False
    cross_attention_dim: int = 384
    down_block_types: List[str] = field(
        default_factory=lambda: ["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"]
    )
    mid_block_type: str = "UNetMidBlock3DCrossAttn"
    up_block_types: List[str] = field(
        default_factory=lambda: ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"]
    )
    downsample_padding: int = 1
    flip_sin_to_cos: bool = True
    freq_shift: int = 0
    in_channels: int = 13
    layers_per_block: int = 2
    mid_block_scale_factor: float = 1.0
    norm_eps: float = 1e-5
    norm_num_groups: int = 32
    out_channels: int = 4
    sample_size: int = 64
    resnet_time_scale_shift: str = "default"  # default | scale_shift
    use_motion_module: bool = False
    motion_module_resolutions: List[int] = field(default_factory=lambda: [1, 2, 4, 8])
    motion_module_mid_block: bool = False
    motion_module_decoder_only: bool = False
    motion_module_type: str = "Vanilla"
    motion_module_kwargs: MotionModuleKwargs = field(default_factory=MotionModuleKwargs)

    def check_values(self) -> List[str]:
        problems = []
        n = len(self.block_out_channels)
        for name in ("down_block_types", "up_block_types"):
            if len(getattr(self, name)) != n:
                problems.append(f"{name} has {len(getattr(self, name))} entries, block_out_channels {n}")
        if self.resnet_time_scale_shift not in ("default", "scale_shift"):
            problems.append(
                f"resnet_time_scale_shift must be 'default' or 'scale_shift', got {self.resnet_time_scale_shift!r}"
            )
        return problems


@dataclass
class UNetConfig:
    data: UNetDataSection = field(default_factory=UNetDataSection)
    ckpt: UNetCkptSection = field(default_factory=UNetCkptSection)
    run: UNetRunSection = field(default_factory=UNetRunSection)
    optimizer: UNetOptimizerSection = field(default_factory=UNetOptimizerSection)
    model: UNetModelSection = field(default_factory=UNetModelSection)
