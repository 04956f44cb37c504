"""Pure cores of the media layer: frame selection onto 25 fps, rotation rules, box walking."""

from __future__ import annotations

import struct
from fractions import Fraction as F

import numpy as np
import pytest

from syncvid.media import (
    NearestFrameSelector,
    rotate_upright,
    rotation_from_display_angle,
    select_source_frames,
)
from syncvid.media.probe import isobmff_truncated


def cfr(rate: F, n: int, start: F = F(0)) -> list[F]:
    return [start + i / rate for i in range(n)]


def out_times(t0: F, fps: int, n: int) -> list[F]:
    return [t0 + F(k, fps) for k in range(n)]


# (name, output fps, source times, source video end, t0, span end, expected shown indices), hand-checked
EXPLICIT = [
    ("25->25 identity", 25, cfr(F(25), 6), F(6, 25), F(0), None, [0, 1, 2, 3, 4, 5]),
    ("30->25", 25, cfr(F(30), 12), F(12, 30), F(0), None, [0, 1, 2, 4, 5, 6, 7, 8, 10, 11]),
    ("60->25", 25, cfr(F(60), 12), F(12, 60), F(0), None, [0, 2, 5, 7, 10]),
    # frames at 0, .0452, .0904, .1356, .1807, ending .2259: t=.16 is nearer .1807 than .1356
    ("1350/61->25", 25, cfr(F(1350, 61), 5), 5 * F(61, 1350), F(0), None, [0, 1, 2, 3, 4, 4]),
    ("24000/1001->25", 25, cfr(F(24000, 1001), 4), 4 * F(1001, 24000), F(0), None, [0, 1, 2, 3, 3]),
    # variable rate: a long hold, then a burst; the tie at t=0.2 goes to the later frame
    ("VFR hold", 10, [F(0), F(1, 20), F(35, 100)], F(4, 10), F(0), None, [0, 1, 2, 2]),
    ("VFR burst", 10, [F(0), F(1, 10), F(12, 100), F(3, 10), F(31, 100), F(5, 10)], F(6, 10), F(0), None,
     [0, 1, 2, 3, 4, 5]),
    # audio starts at 0.2 s: output frame 0 is source frame 5
    ("late t0", 25, cfr(F(25), 10), F(10, 25), F(1, 5), None, [5, 6, 7, 8, 9]),
    # negative start timestamps
    ("negative start", 25, cfr(F(25), 4, F(-2, 25)), F(2, 25), F(-2, 25), None, [0, 1, 2, 3]),
    # span end (audio shorter than video): 0.5 s -> outputs at 0 .. 0.48
    ("span end", 25, cfr(F(25), 25), F(1), F(0), F(1, 2), list(range(13))),
    # a duplicate timestamp: the later frame replaces the earlier one
    ("duplicate time", 25, [F(0), F(1, 25), F(1, 25), F(2, 25)], F(3, 25), F(0), None, [0, 2, 3]),
]


@pytest.mark.parametrize("name,fps,times,video_end,t0,end,expected", EXPLICIT, ids=[c[0] for c in EXPLICIT])
def test_selection_explicit(name, fps, times, video_end, t0, end, expected):
    assert select_source_frames(times, fps, t0=t0, end=end, video_end=video_end) == expected


RATES = [
    ("30", F(30)),
    ("60", F(60)),
    ("1350/61", F(1350, 61)),
    ("24000/1001", F(24000, 1001)),
    ("25", F(25)),
    ("50", F(50)),
    ("12", F(12)),
]


@pytest.mark.parametrize("label,rate", RATES, ids=[r[0] for r in RATES])
def test_selection_matches_brute_force(synth, label, rate):
    times = cfr(rate, int(3 * rate))  # 3 seconds
    video_end = len(times) / rate
    got = select_source_frames(times, 25, video_end=video_end)
    expected = synth.nearest_oracle(times, out_times(F(0), 25, 200), video_end)
    assert got == expected
    assert len(got) == 75  # 3 s at 25 fps, whatever the source rate
    if rate == 25:
        assert got == list(range(75))


def test_selection_vfr_matches_brute_force(synth):
    rng = np.random.default_rng(7)
    steps = rng.choice([F(1, 60), F(1, 30), F(1, 15), F(1, 24)], size=80)
    times = [F(0)]
    for s in steps[:-1]:
        times.append(times[-1] + s)
    video_end = times[-1] + steps[-1]
    got = select_source_frames(times, 25, video_end=video_end)
    assert got == synth.nearest_oracle(times, out_times(F(0), 25, 400), video_end)


def test_selector_streams_counts():
    sel = NearestFrameSelector(25, t0=0)
    # 30 fps: the first frame's count is known only when the second time arrives
    assert sel.push(F(0)) == 0
    assert sel.push(F(1, 30)) == 1  # frame 0 fills t=0
    assert sel.push(F(2, 30)) == 1  # frame 1 fills t=0.04
    assert sel.next_index == 2
    assert sel.finish(F(3, 30)) == 1  # frame 2 fills t=0.08 (< 0.1)
    assert not sel.done  # no span end given: never "done"


def test_selector_done_at_span_end():
    sel = NearestFrameSelector(25, t0=0, end=F(2, 25))
    sel.push(F(0))
    assert sel.push(F(1, 25)) == 1
    assert not sel.done
    assert sel.push(F(2, 25)) == 1
    assert sel.done
    assert sel.push(F(3, 25)) == 0
    assert sel.finish(F(10)) == 0


def test_selector_rejects_bad_fps():
    with pytest.raises(ValueError, match="fps must be positive"):
        NearestFrameSelector(0)


def test_selection_empty_and_single():
    assert select_source_frames([], 25) == []
    assert select_source_frames([F(0)], 25) == [0]  # one frame lasts one output period by default
    assert select_source_frames([F(0)], 25, video_end=F(1, 5)) == [0] * 5


@pytest.mark.parametrize(
    "angle,clockwise",
    [(0, 0), (-90, 90), (90, 270), (180, 180), (-180, 180), (-89.97, 90), (270, 90), (-270, 270), (359.9, 0)],
)
def test_rotation_from_display_angle(angle, clockwise):
    assert rotation_from_display_angle(angle) == clockwise


def test_rotate_upright_turns_clockwise():
    stored = np.arange(6).reshape(2, 3)  # [[0,1,2],[3,4,5]]
    assert rotate_upright(stored, 0) is stored
    np.testing.assert_array_equal(rotate_upright(stored, 90), [[3, 0], [4, 1], [5, 2]])
    np.testing.assert_array_equal(rotate_upright(stored, 180), [[5, 4, 3], [2, 1, 0]])
    np.testing.assert_array_equal(rotate_upright(stored, 270), [[2, 5], [1, 4], [0, 3]])
    assert rotate_upright(stored, 90).flags.c_contiguous
    with pytest.raises(ValueError, match="multiple of 90"):
        rotate_upright(stored, 45)


def _box(kind: bytes, payload_len: int, declared: int | None = None) -> bytes:
    size = 8 + payload_len if declared is None else declared
    return struct.pack(">I4s", size, kind) + b"\0" * payload_len


@pytest.mark.parametrize(
    "content,expected",
    [
        (_box(b"ftyp", 16) + _box(b"mdat", 100) + _box(b"moov", 40), False),
        (_box(b"ftyp", 16) + _box(b"mdat", 50, declared=8 + 100), True),  # mdat cut off, no moov
        (_box(b"ftyp", 16) + _box(b"mdat", 10, declared=0), False),  # size 0: runs to the end
        (_box(b"ftyp", 16) + b"\0\0\0", True),  # a box header cut in the middle
        (_box(b"ftyp", 16) + struct.pack(">I4sQ", 1, b"mdat", 16 + 64) + b"\0" * 64, False),  # 64-bit size
        (_box(b"ftyp", 16) + struct.pack(">I4sQ", 1, b"mdat", 16 + 64) + b"\0" * 10, True),
        (b"hello, this is plain text pretending to be an mp4", None),
        (b"\x1aE\xdf\xa3 matroska magic", None),
    ],
)
def test_isobmff_truncated(tmp_path, content, expected):
    path = tmp_path / "f.mp4"
    path.write_bytes(content)
    assert isobmff_truncated(path) is expected
