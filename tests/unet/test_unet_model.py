"""UNet behaviour that needs no fixture: sizes of the shipped configs, initialisation, checkpointing,
loading rules and configuration errors."""

from __future__ import annotations

import copy

import pytest
import torch

from syncvid.config import load_config
from syncvid.unet import UNet3DConditionModel
from syncvid.unet.loading import count_parameters, load_unet_weights, read_unet_checkpoint

TINY = {
    "in_channels": 13, "out_channels": 4, "block_out_channels": [32, 64], "layers_per_block": 1,
    "down_block_types": ["CrossAttnDownBlock3D", "DownBlock3D"], "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D"],
    "attention_head_dim": 2, "cross_attention_dim": 8, "norm_num_groups": 8, "add_audio_layer": True,
    "use_motion_module": True, "motion_module_resolutions": [1, 2],
    "motion_module_kwargs": {"num_attention_heads": 2, "num_transformer_block": 1,
                             "attention_block_types": ["Temporal_Self", "Temporal_Self"],
                             "temporal_position_encoding": True, "temporal_position_encoding_max_len": 24},
}


def randomise(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def inputs(b=1, f=4, size=8, dim=8):
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, 13, f, size, size, generator=g), torch.tensor(500), torch.randn(b, f, 5, dim, generator=g)


@pytest.mark.parametrize(
    "config,overrides,tensors,entries,params,trainable",
    [
        ("stage1.yaml", [], 686, 686, 849_962_244, 849_962_244),
        ("stage2.yaml", [], 1206, 1246, 1_267_099_844, 674_792_320),
        ("stage2.yaml", ["model.motion_module_decoder_only=true", "run.trainable_modules=[motion_modules.,attn2.]"],
         998, 1022, 1_100_244_804, 284_660_480),
    ],
)
def test_shipped_configs_have_latentsyncs_sizes(repo_root, config, overrides, tensors, entries, params, trainable):
    cfg = load_config(repo_root / "configs" / "unet" / config, overrides=overrides)
    sizes = count_parameters(cfg.model, list(cfg.run.trainable_modules))
    assert sizes == {"tensors": tensors, "state_dict_entries": entries, "parameters": params, "trainable": trainable}


def test_fresh_model_predicts_zero_and_typed_section_builds(repo_root):
    cfg = load_config(repo_root / "configs/unet/cpu_small.yaml")
    model = UNet3DConditionModel.from_config(cfg.model)
    sample = torch.randn(1, 13, 2, 16, 16)
    out = model(sample, 10, encoder_hidden_states=torch.randn(1, 2, 50, 64)).sample
    assert out.shape == (1, 4, 2, 16, 16) and torch.count_nonzero(out) == 0


def test_fresh_motion_modules_are_the_identity():
    with_motion = UNet3DConditionModel.from_config(TINY).eval()
    randomise(with_motion)
    for name, module in with_motion.named_modules():
        if name.endswith("temporal_transformer"):
            torch.nn.init.zeros_(module.proj_out.weight)
            torch.nn.init.zeros_(module.proj_out.bias)
    without = UNet3DConditionModel.from_config({**TINY, "use_motion_module": False}).eval()
    state = {k: v for k, v in with_motion.state_dict().items() if "motion_modules." not in k}
    without.load_state_dict(state, strict=True)
    x, t, a = inputs()
    with torch.no_grad():
        assert torch.allclose(with_motion(x, t, a).sample, without(x, t, a).sample, atol=1e-6)


def test_gradient_checkpointing_gives_the_same_gradients():
    model = UNet3DConditionModel.from_config(TINY)
    randomise(model, 3)
    twin = copy.deepcopy(model)
    twin.enable_gradient_checkpointing()
    x, t, a = inputs(b=2)
    for m in (model, twin):
        m(x, t, a).sample.square().mean().backward()
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6), name


@pytest.mark.parametrize("b,f,size", [(2, 3, 8), (1, 1, 16), (1, 5, 12)])
def test_batches_frames_and_odd_sizes(b, f, size):
    model = UNet3DConditionModel.from_config(TINY)
    randomise(model)
    x, t, a = inputs(b, f, size)
    out = model(x, torch.full((b,), 7), encoder_hidden_states=a).sample
    assert out.shape == (b, 4, f, size, size) and torch.isfinite(out).all()


def test_frames_beyond_the_position_encoding_are_refused():
    model = UNet3DConditionModel.from_config(TINY)
    x, t, a = inputs(f=25)
    with pytest.raises(ValueError, match="temporal_position_encoding_max_len=24"):
        model(x, t, a)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"down_block_types": ["CrossAttnDownBlock3D", "DownBlok3D"]}, "unknown block type 'DownBlok3D'"),
        ({"up_block_types": ["UpBlock3D"]}, "up_block_types has 1 entries"),
        ({"mid_block_type": "UNetMidBlock2D"}, "mid_block_type"),
        ({"motion_module_type": "Sparse"}, "motion_module_type: unknown 'Sparse'"),
        ({"norm_num_groups": 5}, "norm_num_groups=5"),
        ({"attention_head_dim": 3}, "attention_head_dim=3"),
    ],
)
def test_bad_configs_are_one_clear_line(change, message):
    with pytest.raises(ValueError, match=message):
        UNet3DConditionModel.from_config({**TINY, **change})


def test_loading_rules(tmp_path):
    model = UNet3DConditionModel.from_config(TINY)
    randomise(model)
    state = model.state_dict()
    # strict: a missing key is named
    partial = {k: v for k, v in state.items() if k != "conv_out.bias"}
    with pytest.raises(RuntimeError, match="missing conv_out.bias"):
        load_unet_weights(UNet3DConditionModel.from_config(TINY), partial, mode="strict")
    # init_stage2 refuses a missing non-motion key
    with pytest.raises(RuntimeError, match="non-motion-module keys conv_out.bias"):
        load_unet_weights(UNet3DConditionModel.from_config(TINY), partial, mode="init_stage2")
    # sd_init drops a conv_in of another input width and an attn2 of another audio width
    sd_like = dict(state)
    sd_like["conv_in.weight"] = torch.randn(32, 4, 3, 3)
    key = next(k for k in state if "attn2.to_k.weight" in k)
    sd_like[key] = torch.randn(state[key].shape[0], 768)
    target = UNet3DConditionModel.from_config(TINY)
    report = load_unet_weights(target, sd_like, mode="auto")
    assert report.mode == "sd_init" and sorted(report.dropped) == sorted(["conv_in.weight", key])
    assert torch.count_nonzero(target.conv_in.weight) == 0  # kept its (zero) initialisation
    assert torch.equal(target.conv_out.weight, state["conv_out.weight"])
    # other mismatches are refused by auto
    wrong = dict(state)
    first_norm = next(k for k in state if k.endswith("norm1.weight"))
    wrong[first_norm] = torch.ones(3)
    with pytest.raises(RuntimeError, match="does not fit"):
        load_unet_weights(UNet3DConditionModel.from_config(TINY), wrong, mode="auto")


def test_checkpoint_files(tmp_path):
    model = UNet3DConditionModel.from_config(TINY)
    torch.save({"global_step": 12, "state_dict": model.state_dict()}, tmp_path / "ckpt.pt")
    state, step = read_unet_checkpoint(tmp_path / "ckpt.pt")
    assert step == 12 and set(state) == set(model.state_dict())
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    assert read_unet_checkpoint(tmp_path / "bare.pt")[1] is None
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt: not a readable torch file"):
        read_unet_checkpoint(tmp_path / "junk.pt")
    torch.save({"global_step": 3}, tmp_path / "empty.pt")
    with pytest.raises(ValueError, match="empty.pt: not a UNet checkpoint"):
        read_unet_checkpoint(tmp_path / "empty.pt")
    with pytest.raises(ValueError, match="no such checkpoint file"):
        read_unet_checkpoint(tmp_path / "missing.pt")
