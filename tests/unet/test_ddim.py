"""The DDIM schedule reproduces LatentSync's scheduler (fixture tensors from its own code)."""

from __future__ import annotations

import pytest
import torch

from syncvid.unet.ddim import DDIMSchedule

from .conftest import load_fixture


@pytest.fixture(scope="module")
def io(parity_dir):
    return load_fixture(parity_dir, "ddim_io.pt")


def test_schedule_and_timesteps(io):
    s = DDIMSchedule()
    assert torch.allclose(s.alphas_cumprod, io["alphas_cumprod"], atol=1e-7, rtol=0)
    assert s.timesteps_for(20).tolist() == io["timesteps_20"].tolist()
    assert s.timesteps_for(50).tolist() == io["timesteps_50"].tolist()


def test_add_noise_and_one_step_estimate(io):
    s = DDIMSchedule()
    noisy = s.add_noise(io["latents"], io["noise"], io["timesteps"])
    assert (noisy - io["add_noise"]).abs().max() < 1e-5
    x0 = s.one_step_x0(noisy, io["noise"], io["timesteps"])
    assert (x0 - io["one_step_x0"]).abs().max() < 1e-4
    assert (x0 - io["latents"]).abs().max() < 1e-3  # the true noise recovers the latents


def test_deterministic_step(io):
    s = DDIMSchedule()
    prev = s.step(io["step_model_output"], int(io["step_t"]), io["step_sample"], 20)
    assert (prev - io["step_prev_sample_eta0_20steps"]).abs().max() < 1e-5


def test_bad_step_count():
    with pytest.raises(ValueError, match="inference steps must be in 1..1000"):
        DDIMSchedule().timesteps_for(0)
