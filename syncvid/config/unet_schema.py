"""Schema of the UNet training configuration (configs/unet/*.yaml).

Sections and key names follow LatentSync's `configs/unet/stage1.yaml` and
`stage2.yaml`, so those files load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional


MASK_SHAPES = ("jaw", "rect", "ellipse")
WINDOW_RULES = ("full", "inset")


@dataclass
class MaskSection:
    """The generated lower-face mask, in fractions of the image (see syncvid.data.masks.MaskSpec)."""

    shape: str = "jaw"  # jaw | rect | ellipse
    top: float = 0.5
    bottom: float = 1.0
    left: float = 0.0
    right: float = 1.0
    feather: float = 0.0

    def check_values(self) -> List[str]:
        problems = []
        if self.shape not in MASK_SHAPES:
            problems.append(f"shape must be one of {', '.join(MASK_SHAPES)}, got {self.shape!r}")
        if not 0.0 <= self.top < self.bottom <= 1.0:
            problems.append(f"needs 0 <= top < bottom <= 1, got top={self.top}, bottom={self.bottom}")
        if not 0.0 <= self.left < self.right <= 1.0:
            problems.append(f"needs 0 <= left < right <= 1, got left={self.left}, right={self.right}")
        if not 0.0 <= self.feather <= 0.5:
            problems.append(f"feather must be in [0, 0.5], got {self.feather}")
        return problems


@dataclass
class UNetDataSection:
    syncnet_config_path: str = "configs/syncnet/pixel_attn.yaml"
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
    window_rule: str = "full"  # full: start in [0, T - f]; inset: [f/2, T - f - f/2] (LatentSync before 1.5)
    val_fileslist: str = ""  # held-out clips for validation losses; "" = a fixed tenth of the training clips
    num_val_samples: int = 16

    def check_values(self) -> List[str]:
        problems = []
        if self.window_rule not in WINDOW_RULES:
            problems.append(f"window_rule must be one of {', '.join(WINDOW_RULES)}, got {self.window_rule!r}")
        if self.num_val_samples < 0:
            problems.append(f"num_val_samples must be >= 0, got {self.num_val_samples}")
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
    """Where weights come from.  Paths that are "" are not used; a run that needs one says which."""

    resume_ckpt_path: str = ""  # UNet weights and step to continue from ({"global_step", "state_dict"})
    init_from: str = ""  # UNet weights to start from at step 0 (stage 2: the stage-1 checkpoint)
    save_ckpt_steps: int = 10000
    vae_path: str = ""  # diffusers AutoencoderKL folder (sd-vae-ft-mse) when model.vae.source is pretrained
    whisper_path: str = ""  # OpenAI Whisper checkpoint (tiny.pt: cross_attention_dim 384, small.pt: 768)
    syncnet_path: str = ""  # StableSyncNet checkpoint for the sync loss; "" = the SyncNet config's inference_ckpt_path
    lpips_vgg_path: str = ""  # torchvision VGG16 weights for the LPIPS loss
    lpips_lin_path: str = ""  # LPIPS linear layers (vgg.pth, v0.1)
    trepa_path: str = ""  # VideoMAEv2 ViT-g checkpoint for the TREPA loss

    def check_values(self) -> List[str]:
        if self.save_ckpt_steps <= 0:
            return [f"save_ckpt_steps must be positive, got {self.save_ckpt_steps}"]
        return []


@dataclass
class UNetRunSection:
    pixel_space_supervise: bool = False
    use_syncnet: bool = False
    sync_loss_weight: float = 0.05
    perceptual_loss_weight: float = 0.1
    recon_loss_weight: float = 1.0
    guidance_scale: float = 1.5
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
    validation_steps: int = 0  # validation losses every N steps; 0 = at every checkpoint

    def check_values(self) -> List[str]:
        problems = []
        for name in ("sync_loss_weight", "perceptual_loss_weight", "recon_loss_weight", "trepa_loss_weight"):
            value = getattr(self, name)
            if not value >= 0:
                problems.append(f"{name} must be >= 0, got {value}")
        if self.inference_steps <= 0:
            problems.append(f"inference_steps must be positive, got {self.inference_steps}")
        if self.max_train_steps <= 0 and not (self.max_train_steps == -1 and self.max_train_epochs > 0):
            problems.append(
                f"max_train_steps must be positive (or -1 with max_train_epochs > 0), got {self.max_train_steps}"
            )
        if self.validation_steps < 0:
            problems.append(f"validation_steps must be >= 0, got {self.validation_steps}")
        return problems


LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")
MODEL_SOURCES = ("pretrained", "random")


@dataclass
class UNetOptimizerSection:
    lr: float = 1e-5
    scale_lr: bool = False
    max_grad_norm: float = 1.0
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0

    def check_values(self) -> List[str]:
        problems = []
        if not self.lr > 0:
            problems.append(f"lr must be positive, got {self.lr}")
        if self.lr_scheduler not in LR_SCHEDULERS:
            problems.append(f"lr_scheduler must be one of {', '.join(LR_SCHEDULERS)}, got {self.lr_scheduler!r}")
        if self.lr_warmup_steps < 0:
            problems.append(f"lr_warmup_steps must be >= 0, got {self.lr_warmup_steps}")
        return problems


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
class VAESection:
    """The frozen VAE.  pretrained: the diffusers folder at ckpt.vae_path; random: a small
    randomly initialised AutoencoderKL built from the keys below (tests, CPU configs)."""

    source: str = "pretrained"
    scaling_factor: float = 0.18215
    shift_factor: float = 0.0
    block_out_channels: List[int] = field(default_factory=lambda: [32, 64])  # random only
    layers_per_block: int = 1  # random only
    latent_channels: int = 4  # random only
    norm_num_groups: int = 8  # random only
    seed: int = 0  # random only

    def check_values(self) -> List[str]:
        problems = []
        if self.source not in MODEL_SOURCES:
            problems.append(f"source must be one of {', '.join(MODEL_SOURCES)}, got {self.source!r}")
        if not self.scaling_factor > 0:
            problems.append(f"scaling_factor must be positive, got {self.scaling_factor}")
        if not self.block_out_channels:
            problems.append("block_out_channels must not be empty")
        return problems


@dataclass
class AudioEncoderSection:
    """The Whisper audio encoder.  pretrained: the checkpoint at ckpt.whisper_path; random: a
    randomly initialised encoder of model.cross_attention_dim width (tests, CPU configs)."""

    source: str = "pretrained"
    num_layers: int = 4  # random only
    num_heads: int = 6  # random only
    seed: int = 0  # random only

    def check_values(self) -> List[str]:
        problems = []
        if self.source not in MODEL_SOURCES:
            problems.append(f"source must be one of {', '.join(MODEL_SOURCES)}, got {self.source!r}")
        if self.num_layers <= 0 or self.num_heads <= 0:
            problems.append(f"num_layers and num_heads must be positive, got {self.num_layers}, {self.num_heads}")
        return problems


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
    vae: VAESection = field(default_factory=VAESection)
    audio_encoder: AudioEncoderSection = field(default_factory=AudioEncoderSection)

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
