"""Lower-face masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from syncvid.data.masks import MaskSpec, apply_mask, load_mask_image, lower_face_mask


@pytest.mark.parametrize(
    "spec, h, w, masked_rows, masked_cols",
    [
        (MaskSpec(), 8, 8, range(4, 8), range(0, 8)),
        (MaskSpec(top=0.25), 8, 4, range(2, 8), range(0, 4)),
        (MaskSpec(top=0.5, bottom=0.75, left=0.25, right=0.75), 8, 8, range(4, 6), range(2, 6)),
        (MaskSpec(top=0.6), 10, 10, range(6, 10), range(0, 10)),
    ],
)
def test_rect_masks(spec, h, w, masked_rows, masked_cols):
    mask = lower_face_mask(h, w, spec)
    expected = np.ones((h, w), np.float32)
    expected[np.ix_(list(masked_rows), list(masked_cols))] = 0.0
    np.testing.assert_array_equal(mask, expected)


def test_ellipse_mask_hangs_from_the_top_row():
    mask = lower_face_mask(64, 64, MaskSpec(shape="ellipse", top=0.5, left=0.125, right=0.875))
    assert (mask[:32] == 1).all()  # upper half untouched
    assert mask[33, 32] == 0 and mask[60, 32] == 0  # centre column masked down to the chin
    assert mask[62, 10] == 1 and mask[62, 54] == 1  # jaw corners kept
    assert mask[33, 2] == 1  # outside left..right


def test_feathered_mask_is_soft_but_keeps_the_centre():
    mask = lower_face_mask(64, 64, MaskSpec(feather=0.05))
    assert mask.min() >= 0 and mask.max() <= 1
    assert mask[10, 32] == pytest.approx(1.0, abs=1e-3) and mask[60, 32] == pytest.approx(0.0, abs=1e-3)
    assert 0.2 < mask[32, 32] < 0.8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"shape": "star"}, "mask shape"),
        ({"top": 0.8, "bottom": 0.5}, "top < bottom"),
        ({"left": 0.6, "right": 0.2}, "left < right"),
        ({"feather": 0.9}, "feather"),
    ],
)
def test_mask_spec_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MaskSpec(**kwargs)


def test_load_mask_image_and_apply(tmp_path):
    image = np.full((128, 128), 255, np.uint8)
    image[64:] = 0
    path = tmp_path / "mask.png"
    cv2.imwrite(str(path), image)
    mask = load_mask_image(path, 64)
    assert mask.shape == (64, 64) and mask[:31].min() == 1.0 and mask[33:].max() == 0.0
    pixels = np.ones((3, 3, 64, 64), np.float32)
    masked, masks = apply_mask(pixels, mask)
    assert masks.shape == (3, 1, 64, 64)
    assert masked[:, :, 40:].max() == 0.0 and masked[:, :, :30].min() == 1.0
    with pytest.raises(FileNotFoundError):
        load_mask_image(tmp_path / "none.png", 64)
    with pytest.raises(ValueError, match="do not match"):
        apply_mask(np.ones((1, 3, 32, 32), np.float32), mask)


@pytest.mark.parametrize("size", [64, 256, 512])
def test_jaw_mask_has_latentsyncs_extent_and_area(size):
    spec = MaskSpec(shape="jaw", top=0.371, bottom=0.949, left=0.035, right=0.969)
    mask = lower_face_mask(size, size, spec)
    assert mask.dtype == np.float32 and set(np.unique(mask)) == {0.0, 1.0}  # 1 = keep, 0 = masked
    masked = mask == 0.0
    rows = np.nonzero(masked.any(axis=1))[0] / size
    cols = np.nonzero(masked.any(axis=0))[0] / size
    assert abs(masked.mean() - 0.407) < 0.01
    assert abs(rows.min() - 0.371) < 2 / size and abs(rows.max() - 0.949) < 3 / size
    assert abs(cols.min() - 0.035) < 2 / size and abs(cols.max() - 0.969) < 3 / size
    top_row = masked[int(0.40 * size)]
    assert not top_row[size // 2] and top_row[int(0.1 * size)]  # the nose stays visible, the cheeks do not
    assert not masked[size // 2 - 1, size // 2] and masked[size // 2, size // 2]  # the nose ends at mid-height
    bottom_row = masked[int(0.93 * size)]
    assert bottom_row[size // 2] and not bottom_row[int(0.1 * size)]  # a rounded chin
