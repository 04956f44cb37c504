"""Contact sheet grid and atomic PNG writing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from syncvid.outputs.contact_sheet import make_contact_sheet, save_png


def test_grid_geometry_and_content():
    tiles = [np.full((32, 32, 3), 40 * i, np.uint8) for i in range(5)]
    sheet = make_contact_sheet(tiles, [f"f{i}" for i in range(5)], columns=3)
    assert sheet.dtype == np.uint8 and sheet.ndim == 3
    assert sheet.shape[1] == 3 * 32 + 4 * 4
    assert sheet.shape[0] == 2 * (32 + 18 + 4) + 4
    # Tile 4 sits in row 1, column 1.
    y, x = 4 + (32 + 18 + 4) + 10, 4 + (32 + 4) + 10
    assert (sheet[y, x] == 160).all()


def test_errors():
    with pytest.raises(ValueError):
        make_contact_sheet([], None, 2)
    with pytest.raises(ValueError):
        make_contact_sheet([np.zeros((4, 4, 3), np.uint8)], ["a", "b"], 2)


def test_save_png_roundtrip(tmp_path):
    img = np.zeros((8, 10, 3), np.uint8)
    img[..., 0] = 200  # red in RGB
    out = save_png(tmp_path / "sub" / "sheet.png", img)
    back = cv2.imread(str(out))[:, :, ::-1]
    assert np.array_equal(back, img)
    assert [p.name for p in out.parent.iterdir()] == ["sheet.png"]
