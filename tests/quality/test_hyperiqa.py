"""HyperIQA: the published checkpoint's layout, strict loading, the target network, preprocessing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from syncvid.quality import hyperiqa as hq  # noqa: E402


def torchvision_resnet50_keys() -> set[str]:
    """torchvision's ResNet-50 state-dict keys without the classifier (`fc.*`), written out independently."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"conv1.weight"} | {f"bn1.{p}" for p in bn}
    for layer, blocks in enumerate((3, 4, 6, 3), start=1):
        for b in range(blocks):
            prefix = f"layer{layer}.{b}"
            for i in (1, 2, 3):
                keys.add(f"{prefix}.conv{i}.weight")
                keys |= {f"{prefix}.bn{i}.{p}" for p in bn}
            if b == 0:
                keys.add(f"{prefix}.downsample.0.weight")
                keys |= {f"{prefix}.downsample.1.{p}" for p in bn}
    return keys


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return hq.HyperNet().eval()


def test_state_dict_has_the_published_layout(model):
    sd = model.state_dict()
    assert len(sd) == hq.NUM_TENSORS == 355
    backbone = {k[len("res."):] for k in sd if k.startswith("res.") and ".lda" not in f".{k[4:]}"}
    assert backbone == torchvision_resnet50_keys()
    shapes = {
        "res.conv1.weight": (64, 3, 7, 7),
        "res.layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "res.layer4.2.bn3.running_var": (2048,),
        "res.lda1_pool.0.weight": (16, 256, 1, 1),
        "res.lda1_fc.weight": (16, 1024),
        "res.lda2_pool.0.weight": (32, 512, 1, 1),
        "res.lda2_fc.weight": (16, 512),
        "res.lda3_pool.0.weight": (64, 1024, 1, 1),
        "res.lda3_fc.weight": (16, 256),
        "res.lda4_fc.weight": (176, 2048),
        "conv1.0.weight": (1024, 2048, 1, 1),
        "conv1.2.weight": (512, 1024, 1, 1),
        "conv1.4.weight": (112, 512, 1, 1),
        "fc1w_conv.weight": (512, 112, 3, 3),  # 224 * 112 / 49 channels
        "fc1b_fc.weight": (112, 112),
        "fc2w_conv.weight": (128, 112, 3, 3),
        "fc2b_fc.weight": (56, 112),
        "fc3w_conv.weight": (32, 112, 3, 3),
        "fc3b_fc.weight": (28, 112),
        "fc4w_conv.weight": (8, 112, 3, 3),
        "fc4b_fc.weight": (14, 112),
        "fc5w_fc.weight": (14, 112),
        "fc5b_fc.weight": (1, 112),
    }
    for key, shape in shapes.items():
        assert tuple(sd[key].shape) == shape, key
    # 318 backbone tensors + 11 in the distortion branches + 26 in the hyper head
    assert len(torchvision_resnet50_keys()) == 318
    assert len([k for k in sd if k.startswith("res.lda")]) == 11
    assert len([k for k in sd if not k.startswith("res.")]) == 26


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory):
    """Random weights saved as the published file is: a plain state dict."""
    path = tmp_path_factory.mktemp("hyperiqa") / "koniq_pretrained.pkl"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def loaded(checkpoint):
    return hq.load_hypernet(checkpoint)


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key, value in sa.items():
        assert torch.equal(sb[key], value), key


def test_loader_is_strict_and_exact(loaded, model):
    assert not loaded.training
    assert_same_weights(loaded, model)


def test_loader_reads_the_legacy_serialisation(tmp_path, model):
    path = tmp_path / "koniq_pretrained.pkl"
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=False)
    assert_same_weights(hq.load_hypernet(path), model)


def test_forward_on_a_224_crop_gives_one_score_per_image(loaded):
    net = loaded
    x = hq.preprocess(np.random.default_rng(0).integers(0, 256, (2, 256, 256, 3), dtype=np.uint8))
    assert tuple(x.shape) == (2, 3, 224, 224)
    with torch.inference_mode():
        vec, layers = net(x)
        scores = hq.target_network(vec, layers)
        single = hq.target_network(*net(x[:1]))
    assert tuple(vec.shape) == (2, 224)
    assert [tuple(w.shape) for w, _ in layers] == [(2, 112, 224), (2, 56, 112), (2, 28, 56), (2, 14, 28), (2, 1, 14)]
    assert tuple(scores.shape) == (2,) and torch.isfinite(scores).all()
    assert single.ndim == 0 or tuple(single.shape) == (1,)
    assert float(single.reshape(-1)[0]) == pytest.approx(float(scores[0]), rel=1e-4, abs=1e-5)


def test_forward_refuses_other_sizes(model):
    with pytest.raises(ValueError, match="224"):
        model(torch.zeros(1, 3, 256, 256))


def test_target_network_equals_grouped_convolution():
    """Each image's own MLP, written as the reference writes it: a grouped 1x1 convolution per layer."""
    g = torch.Generator().manual_seed(1)
    b, sizes = 3, (224, 112, 56, 28, 14, 1)
    vec = torch.randn(b, sizes[0], generator=g)
    layers = [(torch.randn(b, o, i, generator=g) * 0.1, torch.randn(b, o, generator=g))
              for i, o in zip(sizes, sizes[1:])]
    x = vec.reshape(1, b * sizes[0], 1, 1)
    for k, (w, bias) in enumerate(layers):
        x = F.conv2d(x, w.reshape(-1, w.shape[2], 1, 1), bias.reshape(-1), groups=b)
        if k < len(layers) - 1:
            x = torch.sigmoid(x)
    assert torch.allclose(hq.target_network(vec, layers), x.reshape(b), atol=1e-5)


@pytest.mark.parametrize("size", [256, 512, 200])
def test_preprocess_crops_the_centre_of_the_256_face(size):
    frame = np.zeros((size, size, 3), np.uint8)
    frame[:, :] = (124, 116, 104)  # ImageNet mean * 255
    c = size // 2
    frame[c - 4 : c + 4, c - 4 : c + 4] = 255
    x = hq.preprocess(frame[None])
    assert tuple(x.shape) == (1, 3, 224, 224)
    assert float(x[0, :, 0, 0].abs().max()) < 0.02  # border of the crop: the mean colour -> ~0
    assert float(x[0, 0, 112, 112]) == pytest.approx((1.0 - 0.485) / 0.229, rel=0.05)


@pytest.mark.parametrize("total, expected", [(125, [0, 62, 124]), (1, [0, 0, 0]), (2, [0, 1, 1])])
def test_reference_indices(total, expected):
    assert hq.reference_indices(total) == expected


def test_backend_scores_frames_first_middle_last(checkpoint):
    backend = hq.HyperIQABackend(str(checkpoint), device="cpu")
    backend.setup()
    clip = np.random.default_rng(3).integers(0, 256, (9, 256, 256, 3), dtype=np.uint8)
    seen, real = [], backend.frame_scores

    def spy(frames):
        seen.append(frames.copy())
        return real(frames)

    backend.frame_scores = spy
    result = backend.score(clip)
    assert len(seen) == 1 and np.array_equal(seen[0], clip[[0, 4, 8]])
    assert set(result) == {"hyperiqa"} and np.isfinite(result["hyperiqa"])


def test_missing_checkpoint_names_the_path(tmp_path):
    path = tmp_path / "checkpoints" / "koniq_pretrained.pkl"
    with pytest.raises(FileNotFoundError, match="koniq_pretrained.pkl") as info:
        hq.load_hypernet(path)
    assert str(path) in str(info.value)


def test_wrong_keys_are_refused_naming_the_file(tmp_path, model):
    sd = dict(model.state_dict())
    sd.pop("fc5b_fc.bias")
    sd["res.fc.weight"] = torch.zeros(1000, 2048)
    path = tmp_path / "bad.pkl"
    torch.save(sd, path)
    with pytest.raises(ValueError, match=r"bad\.pkl.*1 missing \(e\.g\. fc5b_fc\.bias\).*1 unexpected"):
        hq.load_hypernet(path)


def test_wrong_shapes_and_non_state_dicts_are_refused(tmp_path, model):
    sd = dict(model.state_dict())
    sd["fc1b_fc.bias"] = torch.zeros(7)
    torch.save(sd, tmp_path / "shape.pkl")
    with pytest.raises(ValueError, match="wrong shapes"):
        hq.load_hypernet(tmp_path / "shape.pkl")
    torch.save({"state_dict": {"a": torch.zeros(1)}, "epoch": 3}, tmp_path / "wrapped.pkl")
    with pytest.raises(ValueError, match="plain state dict"):
        hq.load_hypernet(tmp_path / "wrapped.pkl")
    (tmp_path / "text.pkl").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="text.pkl"):
        hq.load_hypernet(tmp_path / "text.pkl")


def test_default_backends_do_not_import_torch(repo_root):
    code = (
        "import sys, numpy as np\n"
        "from syncvid.config.pipeline_schema import QualitySection\n"
        "from syncvid.stages.quality import QualityStage\n"
        "stage = QualityStage(QualitySection(backends=['classic'])); stage.setup()\n"
        "stage.score(np.zeros((3, 64, 64, 3), np.uint8))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=repo_root, check=True, timeout=120)


@pytest.mark.parametrize("requested, cuda, expected", [
    ("auto", False, "cpu"), ("auto", True, "cuda"), ("cpu", True, "cpu"), ("cuda:1", False, "cuda:1"),
])
def test_device_resolution(monkeypatch, requested, cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert str(hq.resolve_device(requested)) == expected
