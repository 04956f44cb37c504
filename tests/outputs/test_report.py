"""report.html: pure cores (funnel, rejections, bins, SVG) and the written file on a small output root."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from syncvid.config import load_pipeline_config, save_config
from syncvid.outputs.layout import OutputLayout
from syncvid.outputs.report import (
    Series, bin_edges, histogram_svg, rejection_table, stage_funnel, write_contact_sheet, write_report,
)
from syncvid.outputs.thumbs import save_thumbnail_strip


def _src(name, status="kept", stage="", reason="", frames=250, shots=1, **kw):
    return {"source": name, "clip": "", "row_type": "source", "status": status, "stage": stage, "reason": reason,
            "message": f"{name}: {reason}" if reason else "", "num_frames": frames, "num_shots": shots, **kw}


def _clip(name, i, status="kept", stage="", reason="", frames=125, **kw):
    row = {"source": name, "clip": f"{name[:-4]}_shot_000_{i:03d}", "row_type": "clip", "status": status,
           "stage": stage, "reason": reason, "message": reason and f"{reason} because", "start_frame": 125 * i,
           "end_frame": 125 * i + frames, "num_frames": frames, "output": "", "candidate": ""}
    row.update(kw)
    return row


ROWS = [
    _src("bad.mp4", "dropped", "broken", "no_audio", frames=None, duration_s=36.0),
    _src("gap.mp4", "dropped", "resample", "no_common_span", frames=None),
    _src("a.mp4", frames=500, shots=2),
    _clip("a.mp4", 0, sync_conf=6.0, sync_offset_frames=1, quality_score=50.0, face_size_px=120.0, num_frames=124),
    _clip("a.mp4", 1, "dropped", "sync", "low_sync_conf", sync_conf=1.0, sync_offset_frames=0, face_size_px=118.0),
    _clip("a.mp4", 2, "dropped", "face", "no_face"),
    _clip("a.mp4", 3, "dropped", "segment", "too_short", frames=30),
    _src("b.mp4", "dropped", "quality", "no_clips_kept", frames=125),
    _clip("b.mp4", 0, "dropped", "quality", "low_quality:blur", sync_conf=4.0, sync_offset_frames=-2,
          quality_score=float("nan"), quality_sharpness=1.0, face_size_px=90.0),
]


def test_stage_funnel_counts_in_and_out_per_stage():
    funnel = {s.stage: s for s in stage_funnel(ROWS)}
    assert list(funnel) == ["broken", "resample", "scene", "segment", "face", "sync", "quality"]
    table = {k: (s.count_in, s.dropped, s.count_out) for k, s in funnel.items()}
    assert table == {"broken": (4, 1, 3), "resample": (3, 1, 2), "scene": (2, 0, 3), "segment": (5, 1, 4),
                     "face": (4, 1, 3), "sync": (3, 1, 2), "quality": (2, 1, 1)}
    assert funnel["broken"].hours_dropped == pytest.approx(36 / 3600)  # probed duration of an undecodable file
    assert funnel["segment"].hours_in == pytest.approx((4 * 125 + 30) / 25 / 3600)
    assert funnel["quality"].hours_out == pytest.approx(124 / 25 / 3600)  # after the sync trim
    assert funnel["face"].reasons == {"no_face": 1}
    assert funnel["scene"].unit_out == "shots"


def test_rejection_table_orders_by_stage_and_skips_no_clips_kept():
    table = rejection_table(ROWS)
    assert [(s, r, n) for s, r, n, _, _ in table] == [
        ("broken", "no_audio", 1), ("resample", "no_common_span", 1), ("segment", "too_short", 1),
        ("face", "no_face", 1), ("sync", "low_sync_conf", 1), ("quality", "low_quality:blur", 1)]
    assert table[4][4] == "low_sync_conf because"


@pytest.mark.parametrize("values, marks, integer, expected", [
    ([0, 1, 3], [], True, [-0.5, 0.5, 1.5, 2.5, 3.5]),
    ([-1, 1], [6.5], True, list(np.arange(-1.5, 8.0, 1.0))),
    ([2.0, 2.0], [], False, list(np.linspace(1.5, 2.5, 5))),
    ([0.0, 10.0], [20.0], False, list(np.linspace(0, 20, 5))),
])
def test_bin_edges(values, marks, integer, expected):
    assert np.allclose(bin_edges(values, marks, integer=integer, bins=4), expected)


def test_bin_edges_needs_a_value():
    with pytest.raises(ValueError, match="at least one value"):
        bin_edges([], [])


def test_histogram_svg_is_valid_and_draws_bars_and_thresholds():
    edges = np.array([0.0, 1.0, 2.0, 3.0])
    svg = histogram_svg([Series("kept", (0.5, 0.6, 2.5), "#0a0"), Series("dropped", (0.2, 9.0), "#ccc")], edges,
                        [(1.5, "min 1.5")], title="Sync <confidence>", xlabel="conf")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg" and root.find(f"{ns}title").text == "Sync <confidence>"
    bars = [r for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    tips = sorted(r.find(f"{ns}title").text for r in bars)
    # 9.0 lies beyond the last edge: counted in the last bin
    assert tips == ["dropped: 1 in [0, 1)", "dropped: 1 in [2, 3)", "kept: 1 in [2, 3)", "kept: 2 in [0, 1)"]
    dashed = [ln for ln in root.iter(f"{ns}line") if ln.get("stroke-dasharray")]
    assert len(dashed) == 1 and float(dashed[0].get("x1")) == pytest.approx(44 + 1.5 / 3 * (560 - 56))
    assert "min 1.5" in svg and "kept (3)" in svg and "dropped (2)" in svg
    # stacked: in bin [0, 1) the dropped bar sits on top of the two kept ones
    heights = {r.find(f"{ns}title").text: (float(r.get("y")), float(r.get("height"))) for r in bars}
    ky, kh = heights["kept: 2 in [0, 1)"]
    dy, dh = heights["dropped: 1 in [0, 1)"]
    assert dy + dh == pytest.approx(ky) and kh == pytest.approx(2 * dh)


@pytest.mark.parametrize("edges", [[1.0], [0.0, 0.0], [2.0, 1.0]])
def test_histogram_svg_rejects_bad_edges(edges):
    with pytest.raises(ValueError, match="increasing"):
        histogram_svg([], np.array(edges))


@pytest.fixture
def layout(tmp_path):
    layout = OutputLayout(tmp_path / "out")
    save_config(load_pipeline_config(None, overrides=["sync.conf_threshold=2.5"]), layout.run_yaml)
    rng = np.random.default_rng(0)
    for row in ROWS:
        if row["row_type"] == "clip" and row["stage"] != "segment":
            frames = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
            save_thumbnail_strip(layout.state_dir / "thumbs" / f"{row['clip']}.png", frames)
    return layout


def test_write_report_is_one_self_contained_file(layout):
    path = write_report(layout, ROWS)
    text = path.read_text()
    for section in ("summary", "stages", "rejections", "scores", "distributions", "kept", "dropped"):
        assert f"id='{section}'" in text
    svgs = re.findall(r"<svg.*?</svg>", text, re.S)
    titles = []
    for svg in svgs:
        titles.append(ET.fromstring(svg).find("{http://www.w3.org/2000/svg}title").text)
    assert {"Sync offset", "Sync confidence", "Quality score", "Quality: sharpness", "Candidate segment durations",
            "Face size"} <= set(titles)
    assert "min 2.5" in text  # the threshold of run.yaml, not the default
    assert "1 clip(s) not measurable (NaN)" in text
    assert text.count("data:image/png;base64,") == 4  # 1 kept + 3 dropped strips (too_short has none)
    assert "sync: low_sync_conf (1)" in text and "Sources rejected as a whole (2)" in text
    assert "<script" not in text and not re.search(r"(src|href)=['\"](https?:|/)", text)
    assert [p.name for p in layout.root.glob(".*")] == [".syncvid"]  # written atomically, no temporary left


def test_report_without_run_yaml_still_renders(layout):
    layout.run_yaml.unlink()
    text = write_report(layout, ROWS).read_text()
    assert "run.yaml not found: thresholds are not drawn" in text
    assert "stroke-dasharray" not in text


def test_report_with_nothing_kept_or_measured(layout):
    rows = [r for r in ROWS if r["row_type"] == "source"]
    text = write_report(layout, rows).read_text()
    assert "No clip reached the sync stage." in text and "No clip was kept." in text


def test_contact_sheet_only_when_something_was_kept(layout):
    assert write_contact_sheet(layout, ROWS) == layout.contact_sheet and layout.contact_sheet.is_file()
    assert write_contact_sheet(layout, [r for r in ROWS if r["status"] == "dropped"]) is None
    assert not layout.contact_sheet.exists()
