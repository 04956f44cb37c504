"""TREPA (VideoMAEv2 ViT): the published checkpoint loads strictly, the loss is upstream's, errors are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from syncvid.train.pixel_losses import frames_to_video, trepa_loss
from syncvid.train.trepa import TREPAArch, TREPALoss, VideoMAEEncoder, vit_g_parameter_count

# The published geometry (224², patch 14, 16 frames, tubelet 2, 174 classes) with a tiny width.
TINY = TREPAArch(embed_dim=32, depth=2, num_heads=2)

# LatentSync's TREPALoss.__call__ (latentsync/trepa/loss.py) on its VideoMAEv2 VisionTransformer
# (videomaev2_finetune.py, built like load_videomae_model with TINY's sizes), float32, weights
# `random_vit_state(TINY, 0)`, videos of `reference_videos(frames)`: the loss, and the first
# four L2-normalised features of gt (forward_features), for 16 frames, then 8.
TREPA_REFERENCE = {
    16: (0.00018278906645718962,
         (0.06518489867448807, -0.05150775611400604, -0.026844851672649384, -0.20623190701007843)),
    8: (0.00019887019880115986,
        (0.06683914363384247, -0.048512887209653854, -0.026830853894352913, -0.20801767706871033)),
}


def published_shapes(arch: TREPAArch) -> dict[str, tuple[int, ...]]:
    """Key → shape of VideoMAEv2's fine-tuning ViT state dict, written out from the architecture."""
    d, h, p, t = arch.embed_dim, int(arch.embed_dim * arch.mlp_ratio), arch.patch_size, arch.tubelet_size
    shapes: dict[str, tuple[int, ...]] = {"patch_embed.proj.weight": (d, 3, t, p, p), "patch_embed.proj.bias": (d,)}
    for i in range(arch.depth):
        b = f"blocks.{i}."
        shapes |= {
            b + "norm1.weight": (d,), b + "norm1.bias": (d,),
            b + "attn.q_bias": (d,), b + "attn.v_bias": (d,),
            b + "attn.qkv.weight": (3 * d, d),
            b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,),
            b + "norm2.weight": (d,), b + "norm2.bias": (d,),
            b + "mlp.fc1.weight": (h, d), b + "mlp.fc1.bias": (h,),
            b + "mlp.fc2.weight": (d, h), b + "mlp.fc2.bias": (d,),
        }
    shapes |= {"fc_norm.weight": (d,), "fc_norm.bias": (d,),
               "head.weight": (arch.num_classes, d), "head.bias": (arch.num_classes,)}
    return shapes


def random_vit_state(arch: TREPAArch, seed: int) -> dict[str, torch.Tensor]:
    """Random weights in the published key layout: normal × 0.05; norm weights 1 + 0.1·normal."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in published_shapes(arch).items():
        value = torch.randn(shape, generator=g) * (0.1 if "norm" in key else 0.05)
        state[key] = value + 1 if "norm" in key and key.endswith("weight") else value
    return state


def reference_videos(frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """pred and gt (1, 3, F, 64, 64): gt uniform in [−1, 1], pred a dimmer, flatter, noisy copy
    (partly out of range, as decoded frames can be)."""
    g = torch.Generator().manual_seed(5)
    gt = torch.rand(1, 3, frames, 64, 64, generator=g) * 2 - 1
    pred = 0.5 * gt - 0.2 + 0.3 * torch.randn(gt.shape, generator=g)
    return pred, gt


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("trepa") / "vit_g_hybrid_pt_1200e_ssv2_ft.pth"
    torch.save({"module": random_vit_state(TINY, 0)}, path)
    return path


@pytest.fixture(scope="module")
def loss(checkpoint) -> TREPALoss:
    return TREPALoss.from_checkpoint(checkpoint, TINY)


def test_published_vit_g_shapes():
    with torch.device("meta"):
        encoder = VideoMAEEncoder(TREPAArch())
    shapes = {k: tuple(v.shape) for k, v in encoder.state_dict().items()}
    assert shapes == published_shapes(TREPAArch())
    assert len(shapes) == 526 and shapes["blocks.39.mlp.fc1.weight"] == (6144, 1408)
    d, h = 1408, 6144
    per_block = 4 * d * d + 2 * d * h + 8 * d + h  # qkv + proj + fc1 + fc2 weights; norms and biases
    by_hand = 40 * per_block + (3 * 2 * 14 * 14 + 1) * d + 2 * d + (d + 1) * 174
    count = sum(p.numel() for p in encoder.parameters())
    assert count == by_hand == vit_g_parameter_count() == 1_011_855_918


@pytest.mark.parametrize("frames", [16, 8])  # 8 frames: positions resampled along time
def test_matches_latentsync_reference(loss, frames):
    expected_loss, expected_features = TREPA_REFERENCE[frames]
    pred, gt = reference_videos(frames)
    with torch.no_grad():
        assert loss(pred, gt).item() == pytest.approx(expected_loss, rel=1e-4)
        torch.testing.assert_close(loss.features(gt)[0, :4], torch.tensor(expected_features), rtol=1e-5, atol=1e-6)
        assert loss(gt, gt).item() == 0.0


def test_every_published_wrapper_loads(tmp_path):
    state = random_vit_state(TINY, 0)
    for name, payload in (("bare", state), ("model", {"model": state}), ("module", {"module": state})):
        torch.save(payload, tmp_path / f"{name}.pth")
        loaded = TREPALoss.from_checkpoint(tmp_path / f"{name}.pth", embed_dim=32, depth=2, num_heads=2)
        assert loaded.arch == TINY
        assert torch.equal(loaded.encoder.blocks[1].attn.v_bias, state["blocks.1.attn.v_bias"])


def test_frozen_and_differentiable(loss):
    pred, gt = reference_videos(16)
    grads = []
    for checkpointing in (True, False):
        loss.encoder.gradient_checkpointing = checkpointing
        x = pred.clone().requires_grad_(True)
        value = loss(x, gt)
        assert value.shape == () and value.dtype == torch.float32 and value.item() > 0
        value.backward()
        assert x.grad is not None and x.grad.abs().sum() > 0 and x.grad.isfinite().all()
        grads.append(x.grad)
    loss.encoder.gradient_checkpointing = True
    torch.testing.assert_close(grads[0], grads[1])
    assert all(not p.requires_grad and p.grad is None for p in loss.parameters())
    loss.train()
    assert not loss.training and not loss.encoder.training


def test_trepa_loss_takes_vae_frame_order(loss):
    pred, gt = reference_videos(16)
    frames = lambda v: v.transpose(1, 2).reshape(-1, *v.shape[1:2], *v.shape[3:])  # (B·F, C, H, W)
    assert torch.equal(frames_to_video(frames(gt), 16), gt)
    with torch.no_grad():
        assert trepa_loss(loss, frames(pred), frames(gt), 16).item() == loss(pred, gt).item()
    with pytest.raises(ValueError, match="do not split into videos of 16"):
        frames_to_video(torch.zeros(20, 3, 8, 8), 16)


def _one_line_error(call, path: Path, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and str(path) in message and needle in message, message


def test_file_errors(tmp_path):
    _one_line_error(lambda: TREPALoss.from_checkpoint(tmp_path / "absent.pth", TINY), tmp_path / "absent.pth",
                    "no such VideoMAEv2 checkpoint")
    state = random_vit_state(TINY, 0)
    del state["head.bias"]
    torch.save({"model": state}, tmp_path / "partial.pth")
    _one_line_error(lambda: TREPALoss.from_checkpoint(tmp_path / "partial.pth", TINY), tmp_path / "partial.pth",
                    "does not match the VideoMAEv2 ViT (embed 32, depth 2): missing head.bias")
    state = random_vit_state(TINY, 0)
    state["pos_embed"] = torch.zeros(1, 2048, 32)
    torch.save({"module": state}, tmp_path / "extra.pth")
    _one_line_error(lambda: TREPALoss.from_checkpoint(tmp_path / "extra.pth", TINY), tmp_path / "extra.pth",
                    "unexpected pos_embed")
    torch.save({"module": random_vit_state(TINY, 0)}, tmp_path / "tiny.pth")
    _one_line_error(lambda: TREPALoss.from_checkpoint(tmp_path / "tiny.pth", TINY, num_classes=400),
                    tmp_path / "tiny.pth", "head.weight has shape (174, 32), expected (400, 32)")
    torch.save({"epoch": 3, **random_vit_state(TINY, 0)}, tmp_path / "mixed.pth")
    _one_line_error(lambda: TREPALoss.from_checkpoint(tmp_path / "mixed.pth", TINY), tmp_path / "mixed.pth",
                    "entries that are not named tensors: epoch")


def test_arch_and_input_checks(loss):
    with pytest.raises(ValueError, match="not a multiple of num_heads"):
        TREPAArch(embed_dim=30, num_heads=4)
    with pytest.raises(ValueError, match=r"expected videos \(B, 3, F, 224, 224\)"):
        loss.encoder(torch.zeros(1, 3, 16, 64, 64))
    with pytest.raises(ValueError, match="differ in shape"):
        loss(torch.zeros(1, 3, 16, 64, 64), torch.zeros(1, 3, 8, 64, 64))
