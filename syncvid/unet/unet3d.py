"""LatentSync's lip-sync UNet (`UNet3DConditionModel`), built from the `model:` section of a config.

Layout (SD-1.5 style): conv_in → down blocks (resnet → spatial transformer → optional motion
module per layer, then a stride-2 conv except in the last block) → mid block → up blocks
(one more layer each, skip connections concatenated, nearest ×2 upsampling) → GroupNorm →
SiLU → conv_out.  `conv_in` and `conv_out` start at zero.  Parameter and buffer names are
LatentSync's, so its checkpoints load with `load_state_dict(..., strict=True)`.

    model = UNet3DConditionModel.from_config(cfg.model)           # typed section or plain mapping
    out = model(sample, timestep, encoder_hidden_states=audio)     # (B, 13, F, H, W), (B, F, 50, D)
    out.sample                                                     # (B, 4, F, H, W) predicted noise
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from syncvid.unet.layers import (
    Downsample3D,
    FrameConv,
    ResnetBlock3D,
    TimestepEmbedding,
    Transformer3DModel,
    Upsample3D,
    timestep_embedding,
)
from syncvid.unet.motion import MOTION_GROUPS, VanillaTemporalModule

__all__ = ["UNet3DConditionModel", "UNetOutput", "UNetSpec"]

DOWN_TYPES = ("CrossAttnDownBlock3D", "DownBlock3D")
UP_TYPES = ("CrossAttnUpBlock3D", "UpBlock3D")
MID_TYPES = ("UNetMidBlock3DCrossAttn",)
MOTION_TYPES = ("Vanilla",)


@dataclass
class UNetOutput:
    sample: torch.Tensor


@dataclass(frozen=True)
class UNetSpec:
    """The `model:` keys the UNet uses, checked.  Other keys of the section (vae, audio_encoder,
    sample_size) belong to other parts and are ignored here."""

    in_channels: int
    out_channels: int
    block_out_channels: tuple[int, ...]
    down_block_types: tuple[str, ...]
    up_block_types: tuple[str, ...]
    mid_block_type: str
    layers_per_block: int
    attention_head_dim: tuple[int, ...]
    cross_attention_dim: int
    norm_num_groups: int
    norm_eps: float
    act_fn: str
    flip_sin_to_cos: bool
    freq_shift: float
    downsample_padding: int
    mid_block_scale_factor: float
    resnet_time_scale_shift: str
    center_input_sample: bool
    add_audio_layer: bool
    use_motion_module: bool
    motion_module_resolutions: tuple[int, ...]
    motion_module_mid_block: bool
    motion_module_decoder_only: bool
    motion_module_type: str
    motion_module_kwargs: Mapping[str, Any]

    @classmethod
    def from_mapping(cls, model: Any) -> "UNetSpec":
        if dataclasses.is_dataclass(model) and not isinstance(model, type):
            model = dataclasses.asdict(model)
        if not isinstance(model, Mapping):
            model = dict(model)
        get = model.get
        blocks = tuple(int(c) for c in get("block_out_channels", (320, 640, 1280, 1280)))
        heads = get("attention_head_dim", 8)
        heads = tuple(int(h) for h in heads) if isinstance(heads, (list, tuple)) else (int(heads),) * len(blocks)
        kwargs = get("motion_module_kwargs") or {}
        if dataclasses.is_dataclass(kwargs) and not isinstance(kwargs, type):
            kwargs = dataclasses.asdict(kwargs)
        spec = cls(
            in_channels=int(get("in_channels", 13)),
            out_channels=int(get("out_channels", 4)),
            block_out_channels=blocks,
            down_block_types=tuple(get("down_block_types", ())),
            up_block_types=tuple(get("up_block_types", ())),
            mid_block_type=str(get("mid_block_type", "UNetMidBlock3DCrossAttn")),
            layers_per_block=int(get("layers_per_block", 2)),
            attention_head_dim=heads,
            cross_attention_dim=int(get("cross_attention_dim", 384)),
            norm_num_groups=int(get("norm_num_groups", 32)),
            norm_eps=float(get("norm_eps", 1e-5)),
            act_fn=str(get("act_fn", "silu")),
            flip_sin_to_cos=bool(get("flip_sin_to_cos", True)),
            freq_shift=float(get("freq_shift", 0)),
            downsample_padding=int(get("downsample_padding", 1)),
            mid_block_scale_factor=float(get("mid_block_scale_factor", 1.0)),
            resnet_time_scale_shift=str(get("resnet_time_scale_shift", "default")),
            center_input_sample=bool(get("center_input_sample", False)),
            add_audio_layer=bool(get("add_audio_layer", False)),
            use_motion_module=bool(get("use_motion_module", False)),
            motion_module_resolutions=tuple(int(r) for r in get("motion_module_resolutions", (1, 2, 4, 8))),
            motion_module_mid_block=bool(get("motion_module_mid_block", False)),
            motion_module_decoder_only=bool(get("motion_module_decoder_only", False)),
            motion_module_type=str(get("motion_module_type") or "Vanilla"),
            motion_module_kwargs=dict(kwargs),
        )
        spec.check()
        return spec

    def check(self) -> None:
        n = len(self.block_out_channels)
        if n < 1:
            raise ValueError("model.block_out_channels is empty")
        for name, allowed in (("down_block_types", DOWN_TYPES), ("up_block_types", UP_TYPES)):
            types = getattr(self, name)
            if len(types) != n:
                raise ValueError(f"model.{name} has {len(types)} entries but block_out_channels has {n}")
            for t in types:
                if t not in allowed:
                    raise ValueError(f"model.{name}: unknown block type {t!r} (known: {', '.join(allowed)})")
        if self.mid_block_type not in MID_TYPES:
            raise ValueError(f"model.mid_block_type: unknown {self.mid_block_type!r} (known: {', '.join(MID_TYPES)})")
        if self.use_motion_module and self.motion_module_type not in MOTION_TYPES:
            raise ValueError(f"model.motion_module_type: unknown {self.motion_module_type!r} (known: Vanilla)")
        if len(self.attention_head_dim) != n:
            raise ValueError(f"model.attention_head_dim has {len(self.attention_head_dim)} entries, expected {n}")
        for c in self.block_out_channels:
            if c % self.norm_num_groups:
                raise ValueError(f"model.norm_num_groups={self.norm_num_groups} does not divide {c} channels")
            if self.use_motion_module and c % MOTION_GROUPS:
                raise ValueError(f"model.block_out_channels: {c} channels cannot hold a motion module "
                                 f"(it normalises with {MOTION_GROUPS} groups)")


def _motion(spec: UNetSpec, channels: int, enabled: bool) -> VanillaTemporalModule | None:
    return VanillaTemporalModule(channels, spec.motion_module_kwargs) if enabled else None


class _LayerStack(nn.Module):
    """A block's layers: resnets[i] → attentions[i] (when present) → motion_modules[i] (when present)."""

    resnets: nn.ModuleList
    attentions: nn.ModuleList | None
    motion_modules: nn.ModuleList

    def _layer(self, i: int, x: torch.Tensor, temb: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
        x = self.resnets[i](x, temb)
        if self.attentions is not None:
            x = self.attentions[i](x, audio)
        mm = self.motion_modules[i]
        return mm(x) if mm is not None else x

    def _run_layer(self, i: int, x: torch.Tensor, temb: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return checkpoint(self._layer, i, x, temb, audio, use_reentrant=False)
        return self._layer(i, x, temb, audio)


class DownBlock3D(_LayerStack):
    """`num_layers` × (resnet → [spatial transformer] → [motion module]), then a stride-2 conv."""

    def __init__(self, spec: UNetSpec, in_ch: int, out_ch: int, temb: int, heads: int, *, cross_attention: bool,
                 motion: bool, downsample: bool) -> None:
        super().__init__()
        n = spec.layers_per_block
        self.resnets = nn.ModuleList(
            [ResnetBlock3D(in_ch if i == 0 else out_ch, out_ch, temb, groups=spec.norm_num_groups, eps=spec.norm_eps,
                           act_fn=spec.act_fn, time_embedding_norm=spec.resnet_time_scale_shift) for i in range(n)]
        )
        if cross_attention:
            self.attentions = nn.ModuleList(
                [Transformer3DModel(out_ch, heads, spec.cross_attention_dim, spec.norm_num_groups, spec.add_audio_layer)
                 for _ in range(n)]
            )
        else:
            self.attentions = None
        self.motion_modules = nn.ModuleList([_motion(spec, out_ch, motion) for _ in range(n)])
        self.downsamplers = nn.ModuleList([Downsample3D(out_ch, spec.downsample_padding)]) if downsample else None
        self.gradient_checkpointing = False

    def forward(self, x, temb, audio):
        skips = []
        for i in range(len(self.resnets)):
            x = self._run_layer(i, x, temb, audio)
            skips.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            skips.append(x)
        return x, skips


class UpBlock3D(_LayerStack):
    """`num_layers` × (concat skip → resnet → [spatial transformer] → [motion module]), then ×2 upsampling."""

    def __init__(self, spec: UNetSpec, in_ch: int, out_ch: int, prev_ch: int, temb: int, heads: int, *,
                 cross_attention: bool, motion: bool, upsample: bool) -> None:
        super().__init__()
        n = spec.layers_per_block + 1
        resnets = []
        for i in range(n):
            skip_ch = in_ch if i == n - 1 else out_ch
            res_in = prev_ch if i == 0 else out_ch
            resnets.append(ResnetBlock3D(res_in + skip_ch, out_ch, temb, groups=spec.norm_num_groups,
                                         eps=spec.norm_eps, act_fn=spec.act_fn,
                                         time_embedding_norm=spec.resnet_time_scale_shift))
        self.resnets = nn.ModuleList(resnets)
        if cross_attention:
            self.attentions = nn.ModuleList(
                [Transformer3DModel(out_ch, heads, spec.cross_attention_dim, spec.norm_num_groups, spec.add_audio_layer)
                 for _ in range(n)]
            )
        else:
            self.attentions = None
        self.motion_modules = nn.ModuleList([_motion(spec, out_ch, motion) for _ in range(n)])
        self.upsamplers = nn.ModuleList([Upsample3D(out_ch)]) if upsample else None
        self.gradient_checkpointing = False

    def forward(self, x, skips, temb, audio, size=None):
        for i in range(len(self.resnets)):
            x = self._run_layer(i, torch.cat([x, skips.pop()], dim=1), temb, audio)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x, size)
        return x


class UNetMidBlock3DCrossAttn(nn.Module):
    """resnet → (spatial transformer → [motion module] → resnet)."""

    def __init__(self, spec: UNetSpec, ch: int, temb: int, heads: int) -> None:
        super().__init__()

        def resnet() -> ResnetBlock3D:
            return ResnetBlock3D(ch, ch, temb, groups=spec.norm_num_groups, eps=spec.norm_eps, act_fn=spec.act_fn,
                                 time_embedding_norm=spec.resnet_time_scale_shift,
                                 output_scale_factor=spec.mid_block_scale_factor)

        self.resnets = nn.ModuleList([resnet(), resnet()])
        self.attentions = nn.ModuleList(
            [Transformer3DModel(ch, heads, spec.cross_attention_dim, spec.norm_num_groups, spec.add_audio_layer)]
        )
        self.motion_modules = nn.ModuleList(
            [_motion(spec, ch, spec.use_motion_module and spec.motion_module_mid_block)]
        )

    def forward(self, x, temb, audio):
        x = self.resnets[0](x, temb)
        x = self.attentions[0](x, audio)
        if self.motion_modules[0] is not None:
            x = self.motion_modules[0](x)
        return self.resnets[1](x, temb)


class UNet3DConditionModel(nn.Module):
    """See the module docstring.  Build it with `from_config`."""

    def __init__(self, spec: UNetSpec) -> None:
        super().__init__()
        self.spec = spec
        ch0 = spec.block_out_channels[0]
        temb = ch0 * 4
        n = len(spec.block_out_channels)
        self.conv_in = FrameConv(spec.in_channels, ch0, 3, padding=1)
        self.time_embedding = TimestepEmbedding(ch0, temb)  # always SiLU, whatever act_fn says

        self.down_blocks = nn.ModuleList()
        out_ch = ch0
        for i, kind in enumerate(spec.down_block_types):
            in_ch, out_ch = out_ch, spec.block_out_channels[i]
            motion = (spec.use_motion_module and 2**i in spec.motion_module_resolutions
                      and not spec.motion_module_decoder_only)
            self.down_blocks.append(DownBlock3D(
                spec, in_ch, out_ch, temb, spec.attention_head_dim[i],
                cross_attention=kind == "CrossAttnDownBlock3D", motion=motion, downsample=i < n - 1))

        self.mid_block = UNetMidBlock3DCrossAttn(spec, spec.block_out_channels[-1], temb, spec.attention_head_dim[-1])

        self.up_blocks = nn.ModuleList()
        reversed_ch = list(reversed(spec.block_out_channels))
        reversed_heads = list(reversed(spec.attention_head_dim))
        out_ch = reversed_ch[0]
        for i, kind in enumerate(spec.up_block_types):
            prev_ch, out_ch = out_ch, reversed_ch[i]
            in_ch = reversed_ch[min(i + 1, n - 1)]
            resolution = 2 ** (n - 1 - i)
            motion = spec.use_motion_module and resolution in spec.motion_module_resolutions
            self.up_blocks.append(UpBlock3D(
                spec, in_ch, out_ch, prev_ch, temb, reversed_heads[i],
                cross_attention=kind == "CrossAttnUpBlock3D", motion=motion, upsample=i < n - 1))

        self.conv_norm_out = nn.GroupNorm(spec.norm_num_groups, ch0, eps=spec.norm_eps)
        self.conv_act = nn.SiLU()
        self.conv_out = FrameConv(ch0, spec.out_channels, 3, padding=1)
        for conv in (self.conv_in, self.conv_out):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    # ---- construction -------------------------------------------------------------------

    @classmethod
    def from_config(cls, model: Any) -> "UNet3DConditionModel":
        """From the `model:` section: our typed section or a plain mapping of LatentSync's keys."""
        return cls(UNetSpec.from_mapping(model))

    @property
    def add_audio_layer(self) -> bool:
        return self.spec.add_audio_layer

    @property
    def dtype(self) -> torch.dtype:
        return self.conv_in.weight.dtype

    def enable_gradient_checkpointing(self) -> None:
        """Recompute each down/up layer in the backward pass instead of keeping its activations."""
        for block in [*self.down_blocks, *self.up_blocks]:
            block.gradient_checkpointing = True

    def disable_gradient_checkpointing(self) -> None:
        for block in [*self.down_blocks, *self.up_blocks]:
            block.gradient_checkpointing = False

    # ---- forward ------------------------------------------------------------------------

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | int | float,
                encoder_hidden_states: torch.Tensor | None = None) -> UNetOutput:
        """sample (B, in_channels, F, H, W); timestep scalar or (B,); audio (B, F, tokens, dim) or None."""
        if sample.dim() != 5:
            raise ValueError(f"sample must be (B, C, F, H, W), got shape {tuple(sample.shape)}")
        if self.spec.center_input_sample:
            sample = 2 * sample - 1.0
        t = torch.as_tensor(timestep, device=sample.device)
        if t.dim() == 0:
            t = t[None]
        t = t.expand(sample.shape[0])
        emb = timestep_embedding(t, self.spec.block_out_channels[0], self.spec.flip_sin_to_cos, self.spec.freq_shift)
        emb = self.time_embedding(emb.to(self.dtype))

        x = self.conv_in(sample)
        skips = [x]
        for block in self.down_blocks:
            x, block_skips = block(x, emb, encoder_hidden_states)
            skips.extend(block_skips)
        x = self.mid_block(x, emb, encoder_hidden_states)
        factor = 2 ** (len(self.up_blocks) - 1)
        forward_size = any(s % factor for s in sample.shape[-2:])
        for i, block in enumerate(self.up_blocks):
            n = len(block.resnets)
            block_skips, skips = skips[-n:], skips[:-n]
            size = tuple(skips[-1].shape[-2:]) if forward_size and i < len(self.up_blocks) - 1 else None
            x = block(x, block_skips, emb, encoder_hidden_states, size)
        x = self.conv_out(self.conv_act(self.conv_norm_out(x)))
        return UNetOutput(sample=x)
