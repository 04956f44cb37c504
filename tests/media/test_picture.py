"""Pictures: regions converted from their own planes equal the same pixels of the whole frame."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from syncvid.media.picture import ArrayPicture, Converters, VideoPicture, as_picture, shrink_to_width


def yuv_frame(width: int, height: int, fmt: str = "yuv420p", colorspace: int | None = None,
              color_range: int | None = None, seed: int = 0, natural: bool = False) -> av.VideoFrame:
    """A 4:2:0 frame with texture in every plane (so that any misplaced pixel shows), or with
    `natural`, an in-gamut picture: smooth colour gradients, edges and mild noise."""
    rng = np.random.default_rng(seed)
    if natural:
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        rgb = np.stack([120 + 80 * np.sin(xx / 37.0), 110 + 70 * np.cos(yy / 23.0), 90 + 60 * np.sin((xx + yy) / 51.0)], -1)
        rgb[height // 4 : height // 2, width // 3 : width // 2] = (220, 60, 40)
        rgb += rng.normal(0, 6, rgb.shape)
        frame = av.VideoFrame.from_ndarray(np.clip(rgb, 0, 255).astype(np.uint8), format="rgb24").reformat(format=fmt)
    else:
        cw, ch = (width + 1) // 2, (height + 1) // 2
        frame = av.VideoFrame(width, height, fmt)
        for plane, h in zip(frame.planes, [height, ch, ch]):
            plane.update(rng.integers(16, 240, (h, plane.line_size), dtype=np.uint8).tobytes())
    if colorspace is not None:
        frame.colorspace = colorspace
    if color_range is not None:
        frame.color_range = color_range
    return frame


RECTS = [(100, 50, 300, 260), (101.5, 51.2, 333.7, 299.9), (0, 0, 64, 64), (-40, -30, 90, 70),
         (560, 300, 700, 400), (10, 10, 11, 11), (250, 100, 252, 103), (700, 500, 800, 600)]


@pytest.mark.parametrize("fmt, colorspace, color_range", [
    ("yuv420p", None, None),  # untagged: BT.601, limited range
    ("yuv420p", 1, None),  # BT.709
    ("yuv420p", 1, 2),  # BT.709, full range
    ("yuvj420p", None, 2),  # full range (JPEG-style format)
])
def test_regions_equal_the_whole_frame(fmt, colorspace, color_range):
    frame = yuv_frame(640, 360, fmt, colorspace, color_range)
    whole = frame.reformat(format="rgb24", threads=1).to_ndarray()
    picture = VideoPicture(frame, 0, Converters())
    assert picture.planar
    for rect in RECTS:
        fresh = VideoPicture(frame, 0, picture._conv)  # no cached region: converted from the planes
        for p in (fresh, picture):  # `picture` accumulates its cached region
            pixels, ox, oy = p.rgb_region(*rect)
            x0, y0 = max(int(np.floor(rect[0])), 0), max(int(np.floor(rect[1])), 0)
            x1, y1 = min(int(np.ceil(rect[2])), 640), min(int(np.ceil(rect[3])), 360)
            assert (ox, oy) == (min(x0, 640), min(y0, 360))
            assert pixels.shape[:2] == (max(y1 - oy, 0), max(x1 - ox, 0))
            np.testing.assert_array_equal(pixels, whole[oy : oy + pixels.shape[0], ox : ox + pixels.shape[1]])
            assert not pixels.flags.writeable
        assert fresh._rgb is None  # converted from the rectangle's planes alone
    np.testing.assert_array_equal(picture.rgb(), whole)


def test_regions_of_pictures_sharing_converters_stay_as_they_were():
    conv = Converters()  # the frame the planes are copied into is reused from picture to picture
    a, b = yuv_frame(640, 360, seed=1), yuv_frame(640, 360, seed=2)
    first, _, _ = VideoPicture(a, 0, conv).rgb_region(100, 50, 300, 260)
    kept = first.copy()
    second, _, _ = VideoPicture(b, 0, conv).rgb_region(100, 50, 300, 260)
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_array_equal(second, b.reformat(format="rgb24", threads=1).to_ndarray()[50:260, 100:300])


def test_a_region_inside_the_last_one_is_a_view_of_it():
    picture = VideoPicture(yuv_frame(640, 360), 0, Converters())
    big, _, _ = picture.rgb_region(100, 100, 300, 300)
    small, ox, oy = picture.rgb_region(150, 120, 200, 180)
    assert (ox, oy) == (150, 120) and np.shares_memory(big, small)


def test_odd_sizes_large_regions_and_other_formats_use_the_whole_frame():
    odd = VideoPicture(yuv_frame(641, 361), 0, Converters())
    pixels, ox, oy = odd.rgb_region(600, 300, 641, 361)  # touches the odd last column and row
    whole = odd.frame.reformat(format="rgb24", threads=1).to_ndarray()
    np.testing.assert_array_equal(pixels, whole[300:361, 600:641])
    assert odd._rgb is not None
    large = VideoPicture(yuv_frame(640, 360), 0, Converters())
    large.rgb_region(0, 0, 600, 340)
    assert large._rgb is not None
    rgb_frame = av.VideoFrame.from_ndarray(np.zeros((32, 48, 3), np.uint8), format="rgb24")
    assert not VideoPicture(rgb_frame).planar


def test_rotated_pictures_are_upright():
    frame = yuv_frame(64, 48)
    stored = frame.reformat(format="rgb24", threads=1).to_ndarray()
    picture = VideoPicture(frame, 90)
    assert (picture.width, picture.height) == (48, 64) and not picture.planar
    np.testing.assert_array_equal(picture.rgb(), np.rot90(stored, k=-1))
    pixels, ox, oy = picture.rgb_region(5, 6, 20, 30)
    np.testing.assert_array_equal(pixels, np.rot90(stored, k=-1)[6:30, 5:20])
    assert picture.small_bgr(24).shape == (32, 24, 3)


@pytest.mark.parametrize("colorspace, color_range", [(None, None), (1, 2)])
def test_small_bgr_matches_the_shrunk_frame(colorspace, color_range):
    frame = yuv_frame(1280, 720, colorspace=colorspace, color_range=color_range, natural=True)
    picture = VideoPicture(frame, 0, Converters())
    small = picture.small_bgr(320)
    assert picture.small_bgr(320) is small and not small.flags.writeable and small.flags.c_contiguous
    whole = frame.reformat(format="rgb24", threads=1).to_ndarray()
    ref = cv2.cvtColor(cv2.resize(whole, (320, 180), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
    assert small.shape == ref.shape
    assert np.abs(small.astype(int) - ref).mean() < 2.0  # FFmpeg's area filter vs OpenCV's, within a level or two
    assert picture._rgb is None


def test_array_pictures_slice_and_wrap():
    image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    picture = as_picture(image)
    assert isinstance(picture, ArrayPicture) and as_picture(picture) is picture
    pixels, ox, oy = picture.rgb_region(-5, 2.5, 12.2, 40)
    assert (ox, oy) == (0, 2) and np.shares_memory(pixels, image)
    np.testing.assert_array_equal(pixels, image[2:20, 0:13])
    assert picture.small_bgr(10).shape == (7, 10, 3)
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        ArrayPicture(np.zeros((4, 4), np.uint8))


@pytest.mark.parametrize("size, limit, expected", [((1280, 720), 320, (320, 180)), ((200, 100), 320, (200, 100)),
                                                   ((1000, 1), 10, (10, 1))])
def test_shrink_to_width(size, limit, expected):
    assert shrink_to_width(*size, limit) == expected
