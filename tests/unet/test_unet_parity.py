"""Our UNet computes what LatentSync's computes: fixture weights load strictly, outputs match."""

from __future__ import annotations

import json

import pytest
import torch

from syncvid.unet import UNet3DConditionModel
from syncvid.unet.loading import load_unet_weights

from .conftest import fixture_model_section, load_fixture


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_forward_matches_latentsync(parity_dir, stage):
    model = UNet3DConditionModel.from_config(fixture_model_section(parity_dir, stage)).eval()
    model.load_state_dict(load_fixture(parity_dir, f"unet_{stage}_state_dict.pt"), strict=True)
    io = load_fixture(parity_dir, f"unet_{stage}_io.pt")
    with torch.no_grad():
        out = model(io["sample"], io["timestep"], encoder_hidden_states=io["encoder_hidden_states"]).sample
        silent = model(io["sample"], io["timestep"],
                       encoder_hidden_states=torch.zeros_like(io["encoder_hidden_states"])).sample
    assert out.shape == io["output"].shape
    assert (out - io["output"]).abs().max().item() < 1e-4
    assert (silent - io["output_zero_audio"]).abs().max().item() < 1e-4
    assert (io["output"] - io["output_zero_audio"]).abs().max().item() > 1e-3  # the audio matters


def test_stage1_checkpoint_into_stage2_leaves_only_motion_modules_missing(parity_dir):
    stage2 = UNet3DConditionModel.from_config(fixture_model_section(parity_dir, "stage2"))
    state1 = load_fixture(parity_dir, "unet_stage1_state_dict.pt")
    report = load_unet_weights(stage2, state1, mode="init_stage2")
    expected = json.loads((parity_dir / "stage2_keys_missing_from_stage1.json").read_text())
    assert sorted(report.missing) == sorted(expected) and len(expected) == 336
    assert load_unet_weights(stage2, state1, mode="auto").mode == "init_stage2"


def test_a_fresh_stage2_model_on_stage1_weights_equals_stage1(parity_dir):
    """Motion modules start as the identity: stage 2 begins exactly where stage 1 ended."""
    section1 = fixture_model_section(parity_dir, "stage1")
    stage1 = UNet3DConditionModel.from_config(section1).eval()
    state1 = load_fixture(parity_dir, "unet_stage1_state_dict.pt")
    stage1.load_state_dict(state1)
    stage2 = UNet3DConditionModel.from_config(fixture_model_section(parity_dir, "stage2")).eval()
    load_unet_weights(stage2, state1, mode="init_stage2")
    io = load_fixture(parity_dir, "unet_stage1_io.pt")
    with torch.no_grad():
        a = stage1(io["sample"], io["timestep"], encoder_hidden_states=io["encoder_hidden_states"]).sample
        b = stage2(io["sample"], io["timestep"], encoder_hidden_states=io["encoder_hidden_states"]).sample
    assert (a - b).abs().max().item() < 1e-5
