"""The VAE wrapper: latent scaling, posterior draws, folders, and clear errors."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers", reason="the VAE needs the optional diffusers package")

from syncvid.unet.vae import LatentVAE  # noqa: E402


def test_random_vae_shapes_and_determinism():
    a = LatentVAE.random((16, 32), norm_num_groups=8, seed=5)
    b = LatentVAE.random((16, 32), norm_num_groups=8, seed=5)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    noise = torch.randn(2, 4, 16, 16)
    za, zb = a.encode(x, noise=noise), b.encode(x, noise=noise)
    assert za.shape == (2, 4, 16, 16) and torch.equal(za, zb) and a.downscale == 2
    assert a.decode(za).shape == (2, 3, 32, 32)
    assert all(not p.requires_grad for p in a.parameters())


def test_scaling_and_shift_follow_latentsync():
    vae = LatentVAE.random((16, 32), seed=1, scaling_factor=0.5, shift_factor=0.25)
    x = torch.zeros(1, 3, 16, 16)
    posterior = vae.model.encode(x).latent_dist
    z = vae.encode(x, noise=torch.zeros(1, 4, 8, 8))
    assert torch.allclose(z, (posterior.mean - 0.25) * 0.5)
    decoded = vae.decode(z)
    assert torch.allclose(decoded, vae.model.decode(posterior.mean).sample, atol=1e-5)


def test_folder_round_trip_and_errors(tmp_path):
    vae = LatentVAE.random((16, 32), seed=2)
    vae.model.save_pretrained(tmp_path / "vae")
    loaded = LatentVAE.from_folder(tmp_path / "vae")
    x = torch.rand(1, 3, 16, 16)
    n = torch.randn(1, 4, 8, 8)
    assert torch.allclose(loaded.encode(x, noise=n), vae.encode(x, noise=n), atol=1e-6)
    with pytest.raises(ValueError, match="not a diffusers AutoencoderKL folder"):
        LatentVAE.from_folder(tmp_path / "nothing")
