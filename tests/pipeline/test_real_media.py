"""The pipeline on the real talking-head videos in ../shared/media (skipped when absent)."""

from __future__ import annotations

from syncvid.config import load_pipeline_config
from syncvid.outputs.manifest import read_manifest
from syncvid.pipeline.run import run_pipeline


def test_real_videos(shared_media, tmp_path):
    flags = {"run.input_dir": str(shared_media), "run.output_dir": str(tmp_path), "run.total_num_workers": 2,
             "run.progress": False}
    summary = run_pipeline(load_pipeline_config(None, flags=flags))
    rows = read_manifest(tmp_path / "manifest.parquet")
    sources = {r["source"]: r for r in rows if r["row_type"] == "source"}
    assert (sources["anime_noaudio_25fps.mp4"]["stage"], sources["anime_noaudio_25fps.mp4"]["reason"]) == (
        "broken", "no_audio")
    for name in ("talk_22fps_700.mp4", "talk_25fps_844.mp4", "talk_30fps_700.mp4"):
        first = next(r for r in rows if r["source"] == name and r["clip"].endswith("_shot_000_000"))
        # every real speaker gives a full 5 s segment with one well-sized face tracked on every frame
        assert first["stage"] not in ("broken", "resample", "segment", "face"), first["message"]
        assert first["face_detect_rate"] == 1.0 and first["face_size_px"] > 150
        assert abs(first["sync_offset_frames"]) <= 3
    assert summary.kept_clips >= 1
    assert sources["talk_22fps_700.mp4"]["src_fps"] == "1350/61"
