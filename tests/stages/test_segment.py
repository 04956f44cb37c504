import pytest

from syncvid.config.pipeline_schema import SegmentSection
from syncvid.stages.segment import locate, segment_frames, shots_from_cuts, split_shot


@pytest.mark.parametrize(
    "seconds, min_seconds, fps, expected",
    [(5.0, 2.0, 25, (125, 50)), (4.0, 1.0, 25, (100, 25)), (5.0, 0.0, 25, (125, 1)), (2.0, 1.92, 25, (50, 48))],
)
def test_segment_frames(seconds, min_seconds, fps, expected):
    assert segment_frames(SegmentSection(seconds=seconds, min_seconds=min_seconds), fps) == expected


@pytest.mark.parametrize(
    "start, end, expected",
    [
        (0, 125, [(0, 125, True)]),
        (0, 122, [(0, 122, True)]),  # a 4.9 s shot gives one 4.9 s clip
        (0, 300, [(0, 125, True), (125, 250, True), (250, 300, True)]),
        (0, 290, [(0, 125, True), (125, 250, True), (250, 290, False)]),  # 40-frame tail dropped
        (10, 30, [(10, 30, False)]),
        (100, 100, []),
    ],
)
def test_split_shot(start, end, expected):
    plans = split_shot(3, start, end, 125, 50)
    assert [(p.start, p.end, p.keep) for p in plans] == expected
    assert [p.seg_index for p in plans] == list(range(len(plans)))
    assert all(p.shot_index == 3 for p in plans)


@pytest.mark.parametrize(
    "cuts, n, expected",
    [
        ([], 100, [(0, 100)]),
        ([40], 100, [(0, 40), (40, 100)]),
        ([40, 40, 0, 100, 70], 100, [(0, 40), (40, 70), (70, 100)]),
    ],
)
def test_shots_from_cuts(cuts, n, expected):
    assert shots_from_cuts(cuts, n) == expected


def test_locate_agrees_with_split():
    plans = split_shot(0, 40, 400, 125, 50)
    for frame in range(40, 400):
        seg, start = locate(frame, 40, 125)
        assert plans[seg].start == start and plans[seg].start <= frame < plans[seg].end
