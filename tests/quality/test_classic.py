"""Pure metric tests for syncvid.quality.classic on synthetic images with known properties."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from syncvid.quality import classic
from syncvid.quality.classic import (
    ClassicBackend,
    blockiness,
    box_slices,
    frame_metrics,
    laplacian_variance,
    luma,
    noise_sigma,
    sample_indices,
)


def texture(size: int = 256, seed: int = 0) -> np.ndarray:
    """A sharp, natural-looking grey texture (band-limited noise plus edges), 0-255 float32."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.normal(0.0, 1.0, (size, size)).astype(np.float32), (0, 0), 1.5)
    base = (base - base.mean()) / base.std() * 30.0 + 120.0
    yy, xx = np.mgrid[0:size, 0:size]
    base += 40.0 * ((((xx + 5) // 32) + ((yy + 5) // 32)) % 2)  # hard edges, off the 8-pixel grid
    return np.clip(base, 0, 255).astype(np.float32)


def rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(np.round(gray), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


@pytest.mark.parametrize(
    "total, count, expected",
    [
        (125, 5, [0, 31, 62, 93, 124]),
        (125, 3, [0, 62, 124]),
        (1, 5, [0]),
        (3, 5, [0, 1, 2]),
        (2, 1, [0]),
        (10, 2, [0, 9]),
    ],
)
def test_sample_indices(total, count, expected):
    assert sample_indices(total, count).tolist() == expected


@pytest.mark.parametrize("total, count", [(0, 5), (10, 0)])
def test_sample_indices_rejects_empty(total, count):
    with pytest.raises(ValueError):
        sample_indices(total, count)


@pytest.mark.parametrize(
    "colour, expected",
    [((0, 0, 0), 0.0), ((255, 255, 255), 255.0), ((255, 0, 0), 76.245), ((0, 255, 0), 149.685), ((0, 0, 255), 29.07)],
)
def test_luma_bt601(colour, expected):
    frame = np.zeros((4, 4, 3), np.uint8) + np.array(colour, np.uint8)
    assert luma(frame) == pytest.approx(np.full((4, 4), expected), abs=1e-3)


def test_sharpness_falls_with_blur():
    sharp = texture()
    values = [laplacian_variance(cv2.GaussianBlur(sharp, (0, 0), s) if s else sharp) for s in (0, 1, 2, 4, 8)]
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert values[0] > 50 * values[-1]
    assert laplacian_variance(np.full((64, 64), 90.0, np.float32)) == 0.0


def test_sharpness_is_measured_inside_the_box_only():
    img = np.full((256, 256), 100.0, np.float32)
    img[:20, :] = texture()[:20, :]  # detail only above the face box (y < 0.12 * 256)
    assert laplacian_variance(img) > 0
    assert laplacian_variance(img, classic.FACE_BOX) == 0.0


@pytest.mark.parametrize("level", [0, 16, 40, 128, 200, 255])
def test_brightness_and_contrast_of_uniform_frames(level):
    m = frame_metrics(np.full((256, 256, 3), level, np.uint8))
    assert m["brightness"] == pytest.approx(level, abs=1e-3)
    assert m["contrast"] == pytest.approx(0.0, abs=1e-3)
    assert m["sharpness"] == pytest.approx(0.0, abs=1e-6)
    assert m["blockiness"] == 1.0


@pytest.mark.parametrize("gain, expected_brightness", [(1.0, 1.0), (0.5, 0.5), (0.25, 0.25)])
def test_darkening_scales_brightness_and_contrast(gain, expected_brightness):
    frame = rgb(texture())
    ref = frame_metrics(frame)
    dark = frame_metrics(rgb(frame[..., 0].astype(np.float32) * gain))
    assert dark["brightness"] == pytest.approx(ref["brightness"] * expected_brightness, rel=0.02)
    assert dark["contrast"] == pytest.approx(ref["contrast"] * gain, rel=0.03)


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0])
@pytest.mark.parametrize("background", ["flat", "ramp", "smooth"])
def test_noise_sigma_recovers_added_noise(sigma, background):
    rng = np.random.default_rng(int(sigma * 10))
    yy, xx = np.mgrid[0:200, 0:200].astype(np.float32)
    base = {
        "flat": np.full((200, 200), 120.0, np.float32),
        "ramp": 60.0 + 0.5 * xx + 0.2 * yy,
        "smooth": cv2.GaussianBlur(texture(200), (0, 0), 4.0),
    }[background]
    noisy = base + rng.normal(0.0, sigma, base.shape).astype(np.float32)
    assert noise_sigma(noisy) == pytest.approx(sigma, rel=0.12)


def test_noise_sigma_of_clean_smooth_image_is_small():
    assert noise_sigma(cv2.GaussianBlur(texture(), (0, 0), 2.0)) < 1.0


def test_blockiness_separates_block_artifacts_from_clean_texture():
    clean = cv2.GaussianBlur(texture(), (0, 0), 1.0)
    assert blockiness(clean) == pytest.approx(1.0, abs=0.1)
    # every 8x8 block replaced by its mean: pure blocking
    blocks = clean.reshape(32, 8, 32, 8).mean(axis=(1, 3), keepdims=True)
    blocked = np.broadcast_to(blocks, (32, 8, 32, 8)).reshape(256, 256) + 0.5 * (clean - clean.mean()) / 10
    assert blockiness(blocked) > 3.0
    ok, buf = cv2.imencode(".jpg", np.clip(clean, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 8])
    assert ok
    jpeg = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32)
    assert blockiness(jpeg) > 1.5
    # the same JPEG shifted off the grid by 3 pixels is no longer blocky on the frame's grid
    assert blockiness(np.roll(jpeg, 3, axis=(0, 1))) < blockiness(jpeg)


def test_box_slices():
    rows, cols = box_slices((256, 256), (0.25, 0.5, 0.75, 1.0))
    assert (rows.start, rows.stop, cols.start, cols.stop) == (128, 256, 64, 192)


def test_metrics_agree_at_256_and_512():
    big = cv2.resize(texture(512, seed=3), (512, 512))
    small = cv2.resize(big, (256, 256), interpolation=cv2.INTER_AREA)
    m512, m256 = frame_metrics(rgb(big)), frame_metrics(rgb(small))
    for key in ("sharpness", "mouth_sharpness", "brightness", "contrast"):
        assert m512[key] == pytest.approx(m256[key], rel=0.05), key
    # blurring the 512 frame by twice the sigma gives the same sharpness as blurring the 256 frame
    # (a moderate blur: under ~2 the 8-bit quantisation noise, which the 512 -> 256 reduction averages,
    # dominates the Laplacian)
    b512 = frame_metrics(rgb(cv2.GaussianBlur(big, (0, 0), 2.0)))["sharpness"]
    b256 = frame_metrics(rgb(cv2.GaussianBlur(small, (0, 0), 1.0)))["sharpness"]
    assert b512 == pytest.approx(b256, rel=0.25)


def test_backend_averages_the_sampled_frames():
    levels = np.arange(11) * 20  # frame i has luma 20 i
    clip = np.stack([np.full((64, 64, 3), v, np.uint8) for v in levels])
    scores = ClassicBackend(num_frames=3).score(clip)  # frames 0, 5, 10
    assert set(scores) == set(classic.METRICS)
    assert scores["brightness"] == pytest.approx((0 + 100 + 200) / 3, abs=1e-3)


def test_frame_metrics_rejects_grey_input():
    with pytest.raises(ValueError, match="RGB"):
        frame_metrics(np.zeros((256, 256), np.uint8))
