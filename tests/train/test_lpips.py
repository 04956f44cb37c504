"""LPIPS (VGG): the published weight formats load strictly, the distance is lpips' own, errors are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from syncvid.train.lpips import LPIPS, LPIPS_CHANNELS, VGG16_FEATURES_PARAMS
from syncvid.train.pixel_losses import lower_half, lpips_loss

# torchvision's vgg16 state dict: conv index in `features` → (out, in) channels.
TORCHVISION_CONVS = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256),
                     14: (256, 256), 17: (512, 256), 19: (512, 512), 21: (512, 512), 24: (512, 512),
                     26: (512, 512), 28: (512, 512)}
TORCHVISION_CLASSIFIER = {0: (4096, 25088), 3: (4096, 4096), 6: (1000, 4096)}

# lpips 0.1.4's own LPIPS(net="vgg") (its lpips.py run with a stand-in torchvision whose vgg16
# has torchvision's layer layout) on `random_vgg16_state(0)`, `random_lin_state(1)` and the
# inputs of `reference_inputs()`, float32: forward(x, y) per image, then forward(x, z).
LPIPS_REFERENCE_XY = (0.10082942247390747, 0.10120236128568649)
LPIPS_REFERENCE_XZ = (0.7312312722206116, 0.7283221483230591)


def random_vgg16_state(seed: int) -> dict[str, torch.Tensor]:
    """Random weights in the layout of torchvision's `vgg16-397923af.pth` (He-scaled so the 13
    layers keep activations of order one).  The classifier tensors have their real shapes but
    share one stored element, so the file stays small."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for index, (out_ch, in_ch) in TORCHVISION_CONVS.items():
        state[f"features.{index}.weight"] = torch.randn(out_ch, in_ch, 3, 3, generator=g) * (2 / (9 * in_ch)) ** 0.5
        state[f"features.{index}.bias"] = torch.randn(out_ch, generator=g) * 0.01
    for index, (out_f, in_f) in TORCHVISION_CLASSIFIER.items():
        state[f"classifier.{index}.weight"] = torch.zeros(1).expand(out_f, in_f)
        state[f"classifier.{index}.bias"] = torch.zeros(1).expand(out_f)
    return state


def random_lin_state(seed: int) -> dict[str, torch.Tensor]:
    """Random weights in the layout of lpips' `weights/v0.1/vgg.pth` (non-negative, like the real ones)."""
    g = torch.Generator().manual_seed(seed)
    return {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for k, c in enumerate(LPIPS_CHANNELS)}


def reference_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x, a perturbation y of x, an unrelated z: (2, 3, 64, 64) in [−1, 1]."""
    g = torch.Generator().manual_seed(7)
    x = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    y = (x + 0.2 * torch.randn(2, 3, 64, 64, generator=g)).clamp(-1, 1)
    z = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    return x, y, z


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("lpips")
    vgg, lin = root / "vgg16-397923af.pth", root / "vgg.pth"
    torch.save(random_vgg16_state(0), vgg)
    torch.save(random_lin_state(1), lin)
    return vgg, lin


@pytest.fixture(scope="module")
def model(files) -> LPIPS:
    return LPIPS.from_files(*files)


def test_published_layout():
    with torch.device("meta"):
        net = LPIPS()
    trunk = {k: tuple(v.shape) for k, v in net.features.state_dict().items()}
    expected = {}
    for index, (out_ch, in_ch) in TORCHVISION_CONVS.items():
        expected[f"{index}.weight"] = (out_ch, in_ch, 3, 3)
        expected[f"{index}.bias"] = (out_ch,)
    assert trunk == expected
    assert sum(p.numel() for p in net.features.parameters()) == VGG16_FEATURES_PARAMS == 14_714_688
    lin = {k: tuple(v.shape) for k, v in net.state_dict().items() if k.startswith("lin")}
    assert lin == {f"lin{k}.model.1.weight": (1, c, 1, 1) for k, c in enumerate((64, 128, 256, 512, 512))}
    assert all(isinstance(getattr(net, f"lin{k}").model[0], nn.Dropout) for k in range(5))
    assert set(net.state_dict()) == {f"features.{k}" for k in expected} | set(lin)  # no buffers saved


def test_matches_lpips_reference(model):
    x, y, z = reference_inputs()
    with torch.no_grad():
        xy, xz = model(x, y), model(x, z)
    assert xy.shape == (2, 1, 1, 1)
    torch.testing.assert_close(xy.flatten(), torch.tensor(LPIPS_REFERENCE_XY), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(xz.flatten(), torch.tensor(LPIPS_REFERENCE_XZ), rtol=1e-5, atol=1e-6)
    assert (xz > xy).all()
    assert model(x, x).abs().max().item() == 0.0


def test_frozen_and_differentiable(model):
    x, y, _ = reference_inputs()
    pred = y.clone().requires_grad_(True)
    loss = lpips_loss(model, pred, x)
    assert loss.shape == () and loss.dtype == torch.float32
    with torch.no_grad():
        expected = model(y[:, :, 32:], x[:, :, 32:]).mean()
    torch.testing.assert_close(loss.detach(), expected)
    loss.backward()
    assert pred.grad is not None and pred.grad[:, :, 32:].abs().sum() > 0 and pred.grad.isfinite().all()
    assert pred.grad[:, :, :32].abs().sum() == 0  # the upper half plays no part
    assert all(not p.requires_grad and p.grad is None for p in model.parameters())
    model.train()
    assert not model.training and not model.lin0.training


def test_lower_half_rows():
    frames = torch.arange(5.0).view(1, 1, 5, 1).expand(2, 3, 5, 4)
    assert lower_half(frames)[0, 0, :, 0].tolist() == [2.0, 3.0, 4.0]  # rows H//2 … H−1


def _one_line_error(call, path: Path, needle: str) -> str:
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and str(path) in message and needle in message, message
    return message


def test_file_errors(files, tmp_path):
    vgg, lin = files
    _one_line_error(lambda: LPIPS.from_files(tmp_path / "none.pth", lin), tmp_path / "none.pth",
                    "no such VGG16 weights file")
    _one_line_error(lambda: LPIPS.from_files(vgg, tmp_path / "nolin.pth"), tmp_path / "nolin.pth",
                    "no such LPIPS linear-layer file")

    state = random_vgg16_state(0)
    del state["features.28.bias"]
    torch.save(state, tmp_path / "short.pth")
    _one_line_error(lambda: LPIPS.from_files(tmp_path / "short.pth", lin), tmp_path / "short.pth",
                    "not torchvision's VGG16 weights: missing features.28.bias")

    state = random_vgg16_state(0)
    state["features.1.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "extra.pth")
    _one_line_error(lambda: LPIPS.from_files(tmp_path / "extra.pth", lin), tmp_path / "extra.pth",
                    "unexpected features.1.weight")

    state = random_vgg16_state(0)
    state["features.5.weight"] = torch.zeros(128, 32, 3, 3)
    torch.save(state, tmp_path / "narrow.pth")
    _one_line_error(lambda: LPIPS.from_files(tmp_path / "narrow.pth", lin), tmp_path / "narrow.pth",
                    "features.5.weight has shape (128, 32, 3, 3), expected (128, 64, 3, 3)")

    bad = random_lin_state(1)
    bad["lin2.model.1.weight"] = torch.zeros(1, 7, 1, 1)
    torch.save(bad, tmp_path / "bad_lin.pth")
    _one_line_error(lambda: LPIPS.from_files(vgg, tmp_path / "bad_lin.pth"), tmp_path / "bad_lin.pth",
                    "lin2.model.1.weight has shape (1, 7, 1, 1), expected (1, 256, 1, 1)")

    no_dropout = {k.replace("model.1", "model.0"): v for k, v in random_lin_state(1).items()}
    torch.save(no_dropout, tmp_path / "v0_layout.pth")
    _one_line_error(lambda: LPIPS.from_files(vgg, tmp_path / "v0_layout.pth"), tmp_path / "v0_layout.pth",
                    "not lpips' v0.1 vgg.pth: missing lin0.model.1.weight")

    torch.save([1, 2, 3], tmp_path / "list.pth")
    _one_line_error(lambda: LPIPS.from_files(vgg, tmp_path / "list.pth"), tmp_path / "list.pth",
                    "not a state dict")
    (tmp_path / "text.pth").write_text("not a checkpoint\n")
    _one_line_error(lambda: LPIPS.from_files(tmp_path / "text.pth", lin), tmp_path / "text.pth",
                    "not a readable torch file")
