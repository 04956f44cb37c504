"""UNet and SyncNet datasets on small synthetic clips written with the project's encoder."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from syncvid.data import SyncNetDataset, UNetDataset
from syncvid.data.masks import MaskSpec
from syncvid.data.mel import mel_start_index
from syncvid.data.unet_dataset import reference_starts
from syncvid.data.synthetic import talking_clip
from syncvid.media.encode import write_clip

from .conftest import CLICK_FRAMES, RES


def _talk(clip_dir):
    return [clip_dir / f"talk_{i}.mp4" for i in range(4)]


# ---- pure window choices -------------------------------------------------------------


@pytest.mark.parametrize(
    "num_video, start, expected",
    [
        (48, 16, [0, 32]),
        (48, 0, list(range(16, 33))),
        (50, 20, [0, 1, 2, 3, 4]),
        (60, 22, [0, 1, 2, 3, 4, 5, 6, 38, 39, 40, 41, 42, 43, 44]),
    ],
)
def test_reference_starts_never_overlap(num_video, start, expected):
    assert [int(s) for s in reference_starts(num_video, 16, start)] == expected


def test_syncnet_window_choice_properties(syncnet_cfg, clip_dir):
    ds = SyncNetDataset(syncnet_cfg(_talk(clip_dir)), negative_min_shift=3)
    aligned = 0
    for i in range(400):
        start, frames_start, is_aligned = ds.choose_windows(60, 44, np.random.default_rng(i))
        assert 0 <= start <= 44 and 0 <= frames_start <= 44
        if is_aligned:
            aligned += 1
            assert frames_start == start
        else:
            assert abs(frames_start - start) >= 3
    assert 150 < aligned < 250  # 50/50


@pytest.mark.parametrize(
    "rule, last_start, lo, hi",
    [
        ("full", 44, 0, 60 - 16),  # LatentSync: start in [0, T - f]
        ("inset", 44, 8, 60 - 16 - 8),  # older LatentSync: [f/2, T - f - f/2]
        ("full", 30, 0, 30),  # audio ends early: the window's mel must exist
        ("inset", 30, 8, 30),
    ],
)
def test_unet_window_choice_properties(unet_cfg, clip_dir, rule, last_start, lo, hi):
    ds = UNetDataset(unet_cfg(_talk(clip_dir), f"data.window_rule={rule}"))
    starts, refs = set(), set()
    for i in range(300):
        start, ref = ds.choose_windows(60, last_start, np.random.default_rng(i))
        assert lo <= start <= hi
        assert abs(ref - start) >= 16 and 0 <= ref <= 60 - 16  # references need no audio
        assert (start, ref) == ds.choose_windows(60, last_start, np.random.default_rng(i))
        assert ds.choose_windows(60, last_start, ds.rng_for(i)) == ds.choose_windows(60, last_start, ds.rng_for(i))
        starts.add(start)
        refs.add(ref)
    assert min(starts) == lo and max(starts) == hi  # the whole range is drawn
    assert min(refs) == 0 and max(refs) == 60 - 16


def test_unet_window_rule_is_checked(unet_cfg, clip_dir):
    with pytest.raises(Exception, match="window_rule must be one of full, inset"):
        UNetDataset(unet_cfg(_talk(clip_dir), "data.window_rule=middle"))


# ---- samples ---------------------------------------------------------------------------


def test_syncnet_sample_shapes_and_ranges(syncnet_cfg, clip_dir):
    ds = SyncNetDataset(syncnet_cfg(_talk(clip_dir)))
    assert len(ds) == 4
    labels = set()
    for i in range(12):
        s = ds[i]
        assert s["frames"].shape == (48, RES // 2, RES) and s["frames"].dtype == torch.float32
        assert s["audio_samples"].shape == (1, 80, 52) and s["audio_samples"].dtype == torch.float32
        assert s["y"].shape == (1,)
        assert -1.0 <= float(s["frames"].min()) and float(s["frames"].max()) <= 1.0
        assert -4.0 <= float(s["audio_samples"].min()) and float(s["audio_samples"].max()) <= 4.0
        labels.add(float(s["y"]))
        if float(s["y"]) == 1.0:
            assert s["frames_start_idx"] == s["start_idx"]
        else:
            assert s["frames_start_idx"] != s["start_idx"]
    assert labels == {0.0, 1.0}


def test_syncnet_frames_are_the_lower_half_stacked_frame_major(syncnet_cfg, clip_dir):
    cfg = syncnet_cfg(_talk(clip_dir))
    lower = SyncNetDataset(cfg)[5]
    cfg.data.lower_half = False
    full = SyncNetDataset(cfg)[5]
    assert full["frames"].shape == (48, RES, RES)
    torch.testing.assert_close(full["frames"][:, RES // 2 :, :], lower["frames"])
    # frame-major stacking: channels 3i..3i+2 are frame i's RGB; the mouth colour is red-dominant
    mouth = full["frames"].reshape(16, 3, RES, RES)[:, :, int(0.72 * RES), RES // 2]
    assert bool((mouth[:, 0] > mouth[:, 1]).all())


def test_frames_are_resized_to_the_configured_resolution(syncnet_cfg, clip_dir):
    ds = SyncNetDataset(syncnet_cfg(_talk(clip_dir), "data.resolution=32"))
    assert ds[0]["frames"].shape == (48, 16, 32)


def test_unet_sample(unet_cfg, clip_dir):
    ds = UNetDataset(unet_cfg(_talk(clip_dir)))
    s = ds[3]
    f = 16
    for key in ("gt_pixel_values", "masked_pixel_values", "ref_pixel_values"):
        assert s[key].shape == (f, 3, RES, RES) and s[key].dtype == torch.float32
        assert -1.0 <= float(s[key].min()) and float(s[key].max()) <= 1.0
    assert s["masks"].shape == (f, 1, RES, RES)
    assert s["mel"].shape == (1, 80, 52)
    assert abs(s["ref_start_idx"] - s["start_idx"]) >= f
    torch.testing.assert_close(s["masked_pixel_values"], s["gt_pixel_values"] * s["masks"])
    # LatentSync's jaw mask by default: the upper face is kept, mouth and chin are masked
    assert float(s["masks"][:, :, : int(0.37 * RES)].min()) == 1.0
    assert float(s["masks"][:, :, int(0.6 * RES):int(0.9 * RES), RES // 2].max()) == 0.0
    assert s["video_path"].endswith(".mp4")
    assert "audio_embeds" not in s


def test_unet_sample_with_whisper_conditioning(unet_cfg, clip_dir, tmp_path):
    from syncvid.data.unet_audio import AudioEncoderSpec, AudioFeatures

    spec = AudioEncoderSpec(source="random", width=32, num_layers=1, num_heads=2, seed=3)
    features = AudioFeatures(spec, tmp_path / "embeds")
    ds = UNetDataset(unet_cfg(_talk(clip_dir)), audio_features=features)
    s = ds[1]
    assert s["audio_embeds"].shape == (16, 10 * 2, 32) and s["audio_embeds"].dtype == torch.float32
    direct = spec.build().frame_features(features.embeddings(s["video_path"]), range(s["start_idx"], s["start_idx"] + 16))
    torch.testing.assert_close(s["audio_embeds"], direct)
    assert len(list((tmp_path / "embeds").glob("*_embeds.npz"))) == 1
    import pickle

    clone = pickle.loads(pickle.dumps(ds))  # what a DataLoader worker receives: no encoder inside
    assert clone.audio_features._encoder is None
    torch.testing.assert_close(clone[1]["audio_embeds"], s["audio_embeds"])


def test_unet_mask_from_spec_and_image(unet_cfg, clip_dir, tmp_path):
    import cv2

    ds = UNetDataset(unet_cfg(_talk(clip_dir)), mask=MaskSpec(top=0.75))
    assert float(ds[0]["masks"][0, 0, 40].min()) == 1.0 and float(ds[0]["masks"][0, 0, 50].max()) == 0.0
    image = np.full((RES, RES), 255, np.uint8)
    image[40:56, 16:48] = 0
    cv2.imwrite(str(tmp_path / "m.png"), image)
    ds = UNetDataset(unet_cfg(_talk(clip_dir), f"data.mask_image_path={tmp_path / 'm.png'}"))
    m = ds[0]["masks"][0, 0]
    assert float(m[45, 30]) == 0.0 and float(m[45, 5]) == 1.0 and float(m[10, 30]) == 1.0


# ---- audio/video correspondence --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CLICK_FRAMES))
def test_mel_window_contains_the_click_iff_its_frame_is_in_the_window(syncnet_cfg, clip_dir, name):
    click = CLICK_FRAMES[name]
    ds = SyncNetDataset(syncnet_cfg([clip_dir / name]))
    clip = ds.clips[0]
    mel = ds.clip_mel(clip)
    loudest = int(np.argmax(mel.mean(axis=0)))
    # the click sits mid-frame: sample 640·c + 320 -> mel frame 3.2·c + 1.6
    assert abs(loudest - (3.2 * click + 1.6)) <= 1.0
    for s in range(0, ds.last_start(clip, mel) + 1):
        window = ds.mel_window_at(mel, s)[0].numpy()
        first = mel_start_index(s)
        np.testing.assert_array_equal(window, mel[:, first : first + 52])
        has_click = first <= loudest < first + 52
        assert has_click == (s <= click < s + 16), f"window at frame {s}"
        if has_click:
            assert int(np.argmax(window.mean(axis=0))) == loudest - first


def test_dataset_samples_carry_the_click_at_the_right_place(unet_cfg, clip_dir):
    click = CLICK_FRAMES["click_a.mp4"]
    ds = UNetDataset(unet_cfg([clip_dir / "click_a.mp4"]))
    peak = float(ds.clip_mel(ds.clips[0]).mean(axis=0).max())
    seen = {True: 0, False: 0}
    for i in range(40):
        s = ds[i]
        energy = s["mel"][0].numpy().mean(axis=0)
        inside = s["start_idx"] <= click < s["start_idx"] + 16
        seen[inside] += 1
        if inside:
            expected = round(3.2 * click + 1.6) - mel_start_index(s["start_idx"])
            assert abs(int(np.argmax(energy)) - expected) <= 1
            assert float(energy.max()) == pytest.approx(peak)
        else:  # at most the tail of the analysis window reaches in from a neighbouring frame
            assert float(energy.max()) < peak - 0.5
        # the frames are the ones under the mel window: brightness encodes the frame number
        level = float(s["gt_pixel_values"][0, 0, 0, 0])
        expected_level = (s["start_idx"] * 200 // 59 + 20) / 127.5 - 1.0
        assert level == pytest.approx(expected_level, abs=0.03)
    assert seen[True] > 0 and seen[False] > 0


# ---- determinism, skipping, caching, workers --------------------------------------------


def test_samples_are_a_function_of_seed_and_index(syncnet_cfg, clip_dir):
    cfg = syncnet_cfg(_talk(clip_dir))
    a, b = SyncNetDataset(cfg), SyncNetDataset(cfg)
    for i in (0, 3, 17, 1000):  # indices past len() are further samples of the same clips
        x, y = a[i], b[i]
        assert x["start_idx"] == y["start_idx"] and x["frames_start_idx"] == y["frames_start_idx"]
        torch.testing.assert_close(x["frames"], y["frames"])
        torch.testing.assert_close(x["audio_samples"], y["audio_samples"])
    other = SyncNetDataset(cfg, seed=cfg.run.seed + 1)
    picks = [(a[i]["start_idx"], a[i]["frames_start_idx"]) for i in range(8)]
    assert picks != [(other[i]["start_idx"], other[i]["frames_start_idx"]) for i in range(8)]
    assert a[1]["video_path"] == a[5]["video_path"]
    with pytest.raises(IndexError):
        a[-1]


def test_short_missing_and_silent_clips_are_skipped_up_front(syncnet_cfg, unet_cfg, clip_dir, tmp_path, caplog):
    silent = tmp_path / "silent.mp4"
    frames, _, _ = talking_clip(60, RES, np.random.default_rng(1))
    write_clip(silent, frames, None)
    clips = _talk(clip_dir)[:2] + [clip_dir / "short_20.mp4", clip_dir / "medium_40.mp4", tmp_path / "gone.mp4", silent]
    with caplog.at_level(logging.WARNING):
        ds = SyncNetDataset(syncnet_cfg(clips))
    assert len(ds) == 3  # the 40-frame clip is long enough for two 16-frame windows
    assert {k: len(v) for k, v in ds.skipped.items()} == {"too_short": 1, "missing": 1, "no_audio": 1}
    assert "3 clips usable, 3 skipped" in caplog.text and "too_short: 1" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        u = UNetDataset(unet_cfg(clips))
    assert len(u) == 2 and len(u.skipped["too_short"]) == 2
    assert "needs 48 frames" in caplog.text


def test_no_usable_clip_is_an_error(syncnet_cfg, clip_dir):
    with pytest.raises(ValueError, match=r"no usable clips \(too_short: 1\)"):
        SyncNetDataset(syncnet_cfg([clip_dir / "short_20.mp4"]))


def test_validation_split_reads_its_own_list(syncnet_cfg, clip_dir, tmp_path):
    cfg = syncnet_cfg(_talk(clip_dir))
    with pytest.raises(ValueError, match="set data.val_fileslist or data.val_data_dir"):
        SyncNetDataset(cfg, "val")
    (tmp_path / "val.txt").write_text(f"{clip_dir / 'talk_3.mp4'}\n")
    cfg.data.val_fileslist = str(tmp_path / "val.txt")
    val = SyncNetDataset(cfg, "val", num_samples=10)
    assert len(val) == 10 and val[7]["video_path"].endswith("talk_3.mp4")
    assert val[0]["start_idx"] == SyncNetDataset(cfg, "val", num_samples=10)[0]["start_idx"]


def test_corrupt_cache_entry_is_rebuilt_by_the_dataset(syncnet_cfg, clip_dir):
    ds = SyncNetDataset(syncnet_cfg(_talk(clip_dir)[:1]))
    first = ds[0]["audio_samples"]
    entry = ds.mel_cache.path_for(ds.clips[0].path)
    assert entry.is_file() and entry.parent == ds.mel_cache.cache_dir
    entry.write_bytes(entry.read_bytes()[:100])
    again = SyncNetDataset(syncnet_cfg(_talk(clip_dir)[:1]))
    torch.testing.assert_close(again[0]["audio_samples"], first)
    assert again.mel_cache.rebuilt == 1


def test_mel_cache_defaults_beside_the_run(syncnet_cfg, clip_dir, tmp_path):
    ds = SyncNetDataset(syncnet_cfg(_talk(clip_dir)[:1]))
    assert ds.mel_cache.cache_dir == tmp_path / "run" / "mel_cache"


def test_dataloader_with_two_workers_matches_in_process(syncnet_cfg, clip_dir):
    ds = SyncNetDataset(syncnet_cfg(_talk(clip_dir)), num_samples=8)
    for i in range(4):
        ds[i]  # fill the mel cache first
    loader = DataLoader(ds, batch_size=4, num_workers=2, worker_init_fn=ds.worker_init_fn)
    batches = list(loader)
    assert len(batches) == 2
    assert batches[0]["frames"].shape == (4, 48, RES // 2, RES)
    assert batches[0]["audio_samples"].shape == (4, 1, 80, 52)
    assert batches[1]["y"].shape == (4, 1)
    for b, batch in enumerate(batches):
        for j in range(4):
            direct = ds[4 * b + j]
            torch.testing.assert_close(batch["frames"][j], direct["frames"])
            assert batch["video_path"][j] == direct["video_path"]


def test_read_audio_aligns_like_read_clip(clip_dir):
    from syncvid.data.clips import clip_info, read_audio, read_frames
    from syncvid.media.decode import read_clip

    path = clip_dir / "click_b.mp4"
    frames, audio, fps, rate = read_clip(path)
    ours = read_audio(path, rate)
    np.testing.assert_array_equal(ours, audio)
    assert int(np.argmax(np.abs(ours))) // 640 == CLICK_FRAMES["click_b.mp4"]
    np.testing.assert_array_equal(read_frames(path, 10, 5), frames[10:15])
    info = clip_info(path)
    assert (info.num_frames, info.fps, info.width, info.height) == (60, 25, RES, RES)
    assert info.audio_seconds == pytest.approx(60 / 25, abs=0.01)
    with pytest.raises(ValueError, match="ends after 60"):
        read_frames(path, 50, 16)
