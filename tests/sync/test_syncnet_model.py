"""The original SyncNet: published key names, strict weights_only loading, shapes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from syncvid.sync.syncnet_model import SyncNetV2, load_syncnet_v2, save_syncnet_v2  # noqa: E402

PUBLISHED_CONV_BN = {
    "netcnnaud": [0, 1, 4, 5, 8, 9, 11, 12, 14, 15, 18, 19],
    "netcnnlip": [0, 1, 4, 5, 8, 9, 11, 12, 14, 15, 18, 19],
}


def test_state_dict_has_exactly_the_published_names():
    keys = set(SyncNetV2().state_dict())
    expected = set()
    for tower, idx in PUBLISHED_CONV_BN.items():
        for i in idx:
            expected |= {f"{tower}.{i}.weight", f"{tower}.{i}.bias"}
            if i % 4 == 1 or i in (9, 12, 15, 19):  # BatchNorm layers
                expected |= {f"{tower}.{i}.running_mean", f"{tower}.{i}.running_var", f"{tower}.{i}.num_batches_tracked"}
    for head in ("netfcaud", "netfclip"):
        expected |= {f"{head}.0.weight", f"{head}.0.bias", f"{head}.3.weight", f"{head}.3.bias"}
        expected |= {f"{head}.1.weight", f"{head}.1.bias", f"{head}.1.running_mean", f"{head}.1.running_var", f"{head}.1.num_batches_tracked"}
    assert keys == expected
    assert tuple(SyncNetV2().state_dict()["netcnnaud.18.weight"].shape) == (512, 256, 5, 4)
    assert tuple(SyncNetV2().state_dict()["netcnnlip.0.weight"].shape) == (96, 3, 5, 7, 7)


def test_random_weights_round_trip_strictly(tmp_path):
    torch.manual_seed(0)
    model = SyncNetV2()
    path = save_syncnet_v2(model, tmp_path / "syncnet_v2.model")
    raw = torch.load(path, weights_only=True)
    assert "netcnnaud.0.weight" in raw and "netfclip.3.bias" in raw
    loaded = load_syncnet_v2(path)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    assert not loaded.training


def test_file_without_num_batches_tracked_loads(tmp_path):
    state = {k: v for k, v in SyncNetV2().state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.model")
    load_syncnet_v2(tmp_path / "old.model")


def test_unexpected_or_missing_keys_fail_naming_the_file(tmp_path):
    state = SyncNetV2().state_dict()
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.model")
    with pytest.raises(RuntimeError, match="bad.model.*unexpected \\['extra.weight'\\]"):
        load_syncnet_v2(tmp_path / "bad.model")
    state = SyncNetV2().state_dict()
    del state["netfcaud.3.bias"]
    torch.save(state, tmp_path / "short.model")
    with pytest.raises(RuntimeError, match="missing \\['netfcaud.3.bias'\\]"):
        load_syncnet_v2(tmp_path / "short.model")


def test_missing_file_names_the_path_and_what_to_put_there(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.model.*syncnet_v2.model"):
        load_syncnet_v2(tmp_path / "nowhere.model")


def test_forward_shapes():
    model = SyncNetV2()
    with torch.inference_mode():
        assert model.forward_aud(torch.randn(3, 1, 13, 20)).shape == (3, 1024)
        assert model.forward_lip(torch.randn(2, 3, 5, 224, 224)).shape == (2, 1024)
