"""finish_outputs: what run.contact_sheet changes; which leftover temporaries are removed."""

from __future__ import annotations

import numpy as np

from syncvid.atomic import temp_name
from syncvid.config import load_pipeline_config, save_config
from syncvid.outputs.finish import finish_outputs, remove_stale_temporaries
from syncvid.outputs.layout import OutputLayout
from syncvid.outputs.markers import DoneMarker
from syncvid.outputs.thumbs import save_thumbnail_strip
from syncvid.records import Source


def _finished_root(tmp_path):
    layout = OutputLayout(tmp_path / "out")
    save_config(load_pipeline_config(None), layout.run_yaml)
    src = {"source": "a.mp4", "clip": "", "row_type": "source", "status": "kept", "stage": "", "reason": "",
           "message": "", "num_frames": 250, "num_shots": 1}
    clip = {"source": "a.mp4", "clip": "a_shot_000_000", "row_type": "clip", "status": "kept", "stage": "",
            "reason": "", "message": "", "start_frame": 0, "end_frame": 125, "num_frames": 125,
            "output": "high_visual_quality/a_shot_000_000.mp4", "candidate": ""}
    DoneMarker(source="a.mp4", fingerprint="f", rows=[src, clip]).write(layout)
    rng = np.random.default_rng(0)
    save_thumbnail_strip(layout.state_dir / "thumbs" / "a_shot_000_000.png",
                         [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(3)])
    return layout, [Source(tmp_path / "raw" / "a.mp4", "a.mp4")]


def test_the_contact_sheet_is_written_by_default(tmp_path):
    layout, sources = _finished_root(tmp_path)
    rows = finish_outputs(layout, sources)
    assert [r["clip"] for r in rows] == ["", "a_shot_000_000"]
    assert layout.contact_sheet.is_file() and layout.report.is_file() and layout.manifest.is_file()


def test_run_contact_sheet_false_writes_none_and_removes_an_old_one(tmp_path):
    layout, sources = _finished_root(tmp_path)
    finish_outputs(layout, sources)
    assert layout.contact_sheet.is_file()
    finish_outputs(layout, sources, contact_sheet=False)
    assert not layout.contact_sheet.exists()
    assert layout.report.is_file() and layout.manifest.is_file() and layout.fileslist.is_file()
    assert "a_shot_000_000" in layout.report.read_text()  # the report keeps its own sheet of kept clips

def test_stale_temporaries_removed_other_hidden_files_kept(tmp_path):
    # the output root is also the input folder: the user's own hidden files there stay
    layout = OutputLayout(tmp_path)
    clip = layout.final_dir / ("l" * 240 + "_shot_000_000.mp4")
    clip.parent.mkdir(parents=True)
    ours = [clip.parent / temp_name(clip.name), tmp_path / temp_name("manifest.parquet"),
            layout.state_dir / "done" / ".a-0123456789ab.json.x_9kq2ab.part"]  # an older run's mkstemp name
    theirs = [tmp_path / ".notes.part", tmp_path / ".draft.tmp", tmp_path / ".talk.mp4",
              tmp_path / ".backup.part.mp4"]
    for path in ours + theirs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert remove_stale_temporaries(layout) == len(ours)
    assert not any(p.exists() for p in ours)
    assert all(p.exists() for p in theirs)
