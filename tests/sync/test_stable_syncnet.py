"""LatentSync's SyncNet built from a config: shapes, normalisation, checkpoint format."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from syncvid.sync.stable_syncnet import StableSyncNet, encoder_config, load_stable_syncnet, save_stable_syncnet  # noqa: E402

TINY = {
    "audio_encoder": {"in_channels": 1, "block_out_channels": [32, 64], "downsample_factors": [[2, 1], 2], "dropout": 0.0, "attn_blocks": [0, 1]},
    "visual_encoder": {"in_channels": 6, "block_out_channels": [32, 32, 64], "downsample_factors": [[1, 2], 2, [2, 3]], "dropout": 0.0, "attn_blocks": [1, 0, 0]},
}


def test_forward_shapes_and_unit_norm():
    model = StableSyncNet(TINY)
    assert not model.training and model.num_frames == 2
    with torch.inference_mode():
        v, a = model(torch.randn(3, 6, 16, 32), torch.randn(3, 1, 16, 8))
    # visual 16x32 → (1,2): 16x16 → 2: 8x8 → (2,3): 4x3 ; audio 16x8 → (2,1): 8x8 → 2: 4x4
    assert v.shape == (3, 64 * 4 * 3) and a.shape == (3, 64 * 4 * 4)
    torch.testing.assert_close(v.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(a.norm(dim=1), torch.ones(3))


@pytest.mark.parametrize(
    "factor, in_hw, out_hw",
    [(2, (8, 8), (4, 4)), ([2, 1], (8, 8), (4, 8)), ([1, 2], (8, 8), (8, 4)), ([2, 3], (4, 6), (2, 2)), (1, (8, 8), (8, 8))],
)
def test_downsampling_padding_keeps_the_reference_sizes(factor, in_hw, out_hw):
    cfg = {"in_channels": 1, "block_out_channels": [32], "downsample_factors": [factor], "attn_blocks": [0], "dropout": 0.0}
    model = StableSyncNet({"audio_encoder": cfg, "visual_encoder": cfg})
    with torch.inference_mode():
        out = model.audio_encoder(torch.randn(1, 1, *in_hw))
    assert tuple(out.shape[-2:]) == out_hw


def test_published_submodule_names():
    keys = set(StableSyncNet(TINY).state_dict())
    for k in [
        "audio_encoder.conv_in.weight",
        "audio_encoder.down_blocks.1.conv_shortcut.weight",
        "audio_encoder.down_blocks.0.downsample_conv.weight",
        "audio_encoder.down_blocks.2.attn.to_q.bias",
        "audio_encoder.down_blocks.2.attn.to_out.0.weight",
        "audio_encoder.down_blocks.2.ff.net.0.proj.weight",
        "audio_encoder.down_blocks.2.ff.net.2.weight",
        "audio_encoder.norm_out.weight",
        "visual_encoder.down_blocks.1.norm1.weight",
        "visual_encoder.down_blocks.3.conv2.bias",
    ]:
        assert k in keys, k
    assert "visual_encoder.down_blocks.2.conv_shortcut.weight" not in keys  # 32 → 32 needs none


def test_checkpoint_in_published_format_loads_strictly(tmp_path):
    torch.manual_seed(0)
    model = StableSyncNet(TINY)
    path = save_stable_syncnet(model, tmp_path / "ckpt" / "stable_syncnet.pt", global_step=7, train_loss=0.5)
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"state_dict", "global_step", "train_loss"} and payload["global_step"] == 7
    loaded = load_stable_syncnet(path, TINY)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_checkpoint_of_another_config_fails_naming_the_file(tmp_path):
    path = save_stable_syncnet(StableSyncNet(TINY), tmp_path / "a.pt")
    other = {**TINY, "audio_encoder": {**TINY["audio_encoder"], "attn_blocks": [0, 0]}}
    with pytest.raises(RuntimeError, match="a.pt: checkpoint does not match"):
        load_stable_syncnet(path, other)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_stable_syncnet(tmp_path / "missing.pt", TINY)


@pytest.mark.parametrize(
    "section, message",
    [
        ({"in_channels": 1, "block_out_channels": [32, 64], "downsample_factors": [2], "attn_blocks": [0, 0]}, "downsample_factors has 1"),
        ({"in_channels": 1, "block_out_channels": [48], "downsample_factors": [2], "attn_blocks": [0]}, "not divisible"),
        ({"block_out_channels": [32], "downsample_factors": [2]}, "in_channels"),
    ],
)
def test_bad_encoder_sections_are_reported(section, message):
    with pytest.raises((ValueError, KeyError), match=message):
        encoder_config(section)


def test_accepts_the_typed_config_section():
    schema = pytest.importorskip("syncvid.config.syncnet_schema")
    model_section = schema.SyncNetModelSection()
    cfg = encoder_config(model_section.visual_encoder)
    assert cfg.in_channels == 48 and cfg.downsample_factors[0] == (1, 2)
