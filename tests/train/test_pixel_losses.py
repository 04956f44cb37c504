"""LPIPS and TREPA networks: published weight formats load strictly, losses behave, errors are clear."""

from __future__ import annotations

import pytest
import torch

from syncvid.train.lpips import LPIPS, LPIPS_CHANNELS, VGG_CONVS
from syncvid.train.pixel_losses import lpips_loss
from syncvid.train.trepa import TREPAArch, TREPALoss, VideoMAEEncoder, vit_g_parameter_count

TINY_VIT = TREPAArch(img_size=28, patch_size=14, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0, num_frames=4,
                     num_classes=5)


def vgg16_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under torchvision's vgg16 key names, classifier included."""
    g = torch.Generator().manual_seed(seed)
    state, in_ch = {}, 3
    for index, out_ch in VGG_CONVS:
        state[f"features.{index}.weight"] = torch.randn(out_ch, in_ch, 3, 3, generator=g) * (2 / (9 * in_ch)) ** 0.5
        state[f"features.{index}.bias"] = torch.zeros(out_ch)
        in_ch = out_ch
    for i, (o, n) in zip((0, 3, 6), ((4096, 25088), (4096, 4096), (1000, 4096))):
        state[f"classifier.{i}.weight"] = torch.zeros(o, n)
        state[f"classifier.{i}.bias"] = torch.zeros(o)
    return state


def lin_state() -> dict[str, torch.Tensor]:
    return {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(LPIPS_CHANNELS)}


@pytest.fixture(scope="module")
def lpips_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("lpips")
    torch.save(vgg16_state(), root / "vgg16-397923af.pth")
    torch.save(lin_state(), root / "vgg.pth")
    return root / "vgg16-397923af.pth", root / "vgg.pth"


def test_lpips_loads_published_formats_and_measures_distance(lpips_files):
    model = LPIPS.from_files(*lpips_files)
    assert sum(p.numel() for p in model.features.parameters()) == 14_714_688  # VGG16's conv trunk
    g = torch.Generator().manual_seed(1)
    a = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    b = (a + 0.3 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    assert model(a, a).abs().max() < 1e-6
    d = model(a, b)
    assert d.shape == (2, 1, 1, 1) and (d > 0).all()
    far = model(a, torch.rand(2, 3, 64, 64, generator=g) * 2 - 1)
    assert (far > d).all()
    pred = b.clone().requires_grad_(True)
    lpips_loss(model, pred, a).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert pred.grad[:, :, :32].abs().sum() == 0  # only the lower half counts
    assert all(p.grad is None for p in model.parameters())


def test_lpips_file_errors(lpips_files, tmp_path):
    vgg, lin = lpips_files
    with pytest.raises(ValueError, match="no such VGG16 weights file"):
        LPIPS.from_files(tmp_path / "none.pth", lin)
    broken = lin_state()
    broken["lin2.model.1.weight"] = torch.rand(1, 7, 1, 1)
    torch.save(broken, tmp_path / "bad_lin.pth")
    with pytest.raises(ValueError, match=r"bad_lin.pth: lin2.model.1.weight has shape \(1, 7, 1, 1\)"):
        LPIPS.from_files(vgg, tmp_path / "bad_lin.pth")
    state = vgg16_state()
    del state["features.28.bias"]
    torch.save(state, tmp_path / "bad_vgg.pth")
    with pytest.raises(ValueError, match="bad_vgg.pth: not torchvision's VGG16 weights"):
        LPIPS.from_files(tmp_path / "bad_vgg.pth", lin)


def test_vit_g_has_the_published_size():
    with torch.device("meta"):
        encoder = VideoMAEEncoder(TREPAArch())
    count = sum(p.numel() for p in encoder.parameters())
    assert count == vit_g_parameter_count() and 1_000_000_000 < count < 1_020_000_000


def test_trepa_loads_the_published_format_and_is_differentiable(tmp_path):
    torch.manual_seed(0)
    source = VideoMAEEncoder(TINY_VIT)
    torch.save({"module": source.state_dict()}, tmp_path / "vit.pth")
    loss = TREPALoss.from_checkpoint(tmp_path / "vit.pth", TINY_VIT)
    g = torch.Generator().manual_seed(2)
    gt = torch.rand(1, 3, 4, 40, 40, generator=g) * 2 - 1
    assert loss(gt, gt) < 1e-10
    pred = (gt + 0.5 * torch.randn(gt.shape, generator=g)).requires_grad_(True)
    value = loss(pred, gt)
    assert value > 0
    value.backward()
    assert pred.grad.abs().sum() > 0 and all(p.grad is None for p in loss.parameters())
    # 8 frames (another tubelet count) interpolate the positions instead of failing
    assert loss(torch.zeros(1, 3, 8, 28, 28), torch.zeros(1, 3, 8, 28, 28)).item() == pytest.approx(0.0, abs=1e-10)


def test_trepa_file_errors(tmp_path):
    state = VideoMAEEncoder(TINY_VIT).state_dict()
    del state["head.bias"]
    torch.save({"model": state}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="partial.pth: does not match the VideoMAEv2 ViT"):
        TREPALoss.from_checkpoint(tmp_path / "partial.pth", TINY_VIT)
    with pytest.raises(ValueError, match="no such VideoMAEv2 checkpoint"):
        TREPALoss.from_checkpoint(tmp_path / "absent.pth", TINY_VIT)
