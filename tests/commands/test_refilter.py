"""`syncvid filter` / `rescore` / `report` on an output root of generated media: two synthetic
talking heads (one in sync, one whose audio lags by two frames) and one file without audio, so
that a clone without the real test media runs these tests too."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from syncvid.cli import main as cli_main
from syncvid.config import load_config, load_pipeline_config, save_config
from syncvid.outputs.layout import OutputLayout
from syncvid.pipeline.lock import RunLock, RunLocked
from syncvid.outputs.manifest import read_manifest
from syncvid.outputs.markers import read_markers
from syncvid.commands.common import changed_keys
from syncvid.commands.filter import filter_main
from syncvid.commands.rescore import rescore_main
from syncvid.errors import UsageError
from syncvid.pipeline.decisions import THRESHOLD_KEYS, decide, rejudge_row, summarise_source
from syncvid.pipeline.fingerprint import config_fingerprint
from syncvid.pipeline.run import run_pipeline
from syncvid.records import Rejected
from syncvid.stages.quality import QualityStage
from syncvid.stages.sync import SyncStage


def _sources():
    from syncvid.sample.corpus import Scene, SourceSpec

    return (
        # 275 frames: two 5 s clips and a 1 s tail dropped as too short
        SourceSpec("talk_25fps.mp4", "talk", "in sync, 44.1 kHz stereo", num_frames=275, sample_rate=44100,
                   channels=2),
        # two full clips, each found 2 or 3 frames off
        SourceSpec("talk_audio_lags_2.mp4", "talk", "the sound comes 2 frames after the mouth", num_frames=250,
                   audio_lead_frames=-2, scenes=(Scene(0.0, "window"),)),
        SourceSpec("no_audio.mp4", "talk", "no audio stream", num_frames=100, sample_rate=0, channels=0),
    )


@pytest.fixture(scope="module")
def generated_run(tmp_path_factory) -> Path:
    """One sequential pipeline run over two generated speakers and a file without audio (a few seconds)."""
    from syncvid.sample.corpus import write_source

    raw = tmp_path_factory.mktemp("refilter") / "raw"
    for seed, spec in enumerate(_sources()):
        write_source(spec, raw, seed)
    out = raw.parent / "out"
    flags = {"run.input_dir": str(raw), "run.output_dir": str(out), "run.executor": "sequential",
             "run.progress": False}
    run_pipeline(load_pipeline_config(None, flags=flags))
    return out


@pytest.fixture
def root(generated_run, tmp_path) -> Path:
    """A private copy of the output root (filter and rescore change it)."""
    copy = tmp_path / "out"
    shutil.copytree(generated_run, copy)
    return copy


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _markers(root: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((root / ".syncvid" / "done").glob("*.json"))}


def _clips(root: Path) -> dict[str, dict]:
    return {r["clip"]: r for r in read_manifest(root / "manifest.parquet") if r["row_type"] == "clip"}


def _finals(root: Path) -> dict[str, str]:
    return {p.name: _md5(p) for p in sorted((root / "high_visual_quality").rglob("*.mp4"))}


# ----------------------------------------------------------------------------- pure cores
def _row(**kw) -> dict:
    row = {"source": "a/b.mp4", "clip": "b_shot_000_001", "row_type": "clip", "status": "kept", "stage": "",
           "reason": "", "message": "", "shot_index": 0, "seg_index": 1, "start_frame": 125, "end_frame": 250,
           "output": "high_visual_quality/a/b_shot_000_001.mp4", "pooled": "",
           "candidate": "affine_transformed/a/b_shot_000_001.mp4",
           "sync_offset_frames": 1, "sync_conf": 5.0, "sync_backend": "landmark", "sync_at_search_edge": False,
           "quality_sharpness": 20.0, "quality_mouth_sharpness": 20.0, "quality_brightness": 120.0,
           "quality_contrast": 30.0, "quality_noise": 1.0, "quality_blockiness": 1.0, "quality_brisque": 40.0}
    row.update(kw)
    return row


@pytest.mark.parametrize("overrides, changes, status, reason, where", [
    ([], {}, "kept", "", "high_visual_quality/a/b_shot_000_001.mp4"),
    (["sync.conf_threshold=6"], {}, "dropped", "low_sync_conf", ".syncvid/pool/a/b_shot_000_001.mp4"),
    (["sync.max_offset_frames=0"], {}, "dropped", "offset_too_large", ".syncvid/pool/a/b_shot_000_001.mp4"),
    ([], {"sync_at_search_edge": True}, "dropped", "offset_too_large", ".syncvid/pool/a/b_shot_000_001.mp4"),
    (["quality.min_sharpness=25"], {}, "dropped", "low_quality:blur", ".syncvid/pool/a/b_shot_000_001.mp4"),
    (["quality.max_brisque=null"], {"quality_brisque": 90.0, "status": "dropped", "output": "",
                                     "pooled": ".syncvid/pool/a/b_shot_000_001.mp4"},
     "kept", "", "high_visual_quality/a/b_shot_000_001.mp4"),
])
def test_rejudge_row(overrides, changes, status, reason, where):
    cfg = load_pipeline_config(None, overrides=overrides)
    layout = OutputLayout(Path("/out"))
    new = rejudge_row(layout, _row(**changes), SyncStage(cfg.sync), QualityStage(cfg.quality))
    assert (new["status"], new["reason"]) == (status, reason)
    assert (new["output"] or new["pooled"]) == where
    assert new["stage"] == ({"": "", "low_quality:blur": "quality"}.get(reason, "sync"))
    assert bool(new["message"]) == (status == "dropped")


def test_rows_that_never_reached_the_decision_keep_it():
    cfg = load_pipeline_config(None, flags={"sync.conf_threshold": 0.0})
    face_drop = _row(status="dropped", stage="face", reason="no_face", output="", pooled="", sync_conf=None)
    too_short = _row(status="dropped", stage="sync", reason="too_short", output="", pooled="")
    for row in (face_drop, too_short):
        assert rejudge_row(OutputLayout(Path("/o")), row, SyncStage(cfg.sync), QualityStage(cfg.quality)) == row


def test_decide_returns_the_first_failure():
    cfg = load_pipeline_config(None, flags={"sync.conf_threshold": 9.0, "quality.min_sharpness": 99.0})
    rej = decide(_row(), SyncStage(cfg.sync), QualityStage(cfg.quality))
    assert isinstance(rej, Rejected) and (rej.stage, rej.reason) == ("sync", "low_sync_conf")
    assert "sync confidence 5.00 < 9" in rej.message


@pytest.mark.parametrize("src, statuses, expected", [
    ({"status": "kept"}, ["kept", "dropped"], ("kept", "", "1 of 2 segments kept")),
    ({"status": "kept"}, ["dropped", "dropped"],
     ("dropped", "no_clips_kept", "all 2 segments dropped: 2 low_sync_conf")),
    ({"status": "dropped", "reason": "no_clips_kept"}, ["kept"], ("kept", "", "1 of 1 segments kept")),
    ({"status": "dropped", "stage": "broken", "reason": "no_audio", "message": "x"}, [], ("dropped", "no_audio", "x")),
])
def test_summarise_source(src, statuses, expected):
    clips = [{"status": s, "stage": "sync" if s == "dropped" else "", "reason": "low_sync_conf" if s == "dropped"
              else ""} for s in statuses]
    out = summarise_source({"row_type": "source", "stage": "", "reason": "", "message": "", **src}, clips)
    assert (out["status"], out["reason"], out["message"]) == expected


def test_changed_keys_and_threshold_keys():
    a = load_pipeline_config(None)
    b = load_pipeline_config(None, flags={"sync.conf_threshold": 1.5, "quality.max_noise": 9.0, "face.resolution": 512})
    assert changed_keys(a, b) == ["face.resolution", "sync.conf_threshold", "quality.max_noise"]
    assert changed_keys(a, b, ["sync"]) == ["sync.conf_threshold"]
    assert {"sync.conf_threshold", "sync.max_offset_frames", "quality.min_sharpness", "quality.max_brightness",
            "quality.min_brightness", "quality.min_hyperiqa"} <= set(THRESHOLD_KEYS)
    assert "quality.backends" not in THRESHOLD_KEYS and "sync.search_frames" not in THRESHOLD_KEYS


# ----------------------------------------------------------------------------- filter
def test_filter_drops_everything_then_restores_the_same_files(root, generated_run, capsys):
    before_markers = _markers(root)
    before_finals = _finals(root)
    before = _clips(root)
    kept = {c for c, r in before.items() if r["status"] == "kept"}
    assert kept, "the generated speakers should give kept clips"
    fileslist = (root / "fileslist.txt").read_text().replace(str(generated_run), str(root))

    assert filter_main(str(root), 1e9, []) == 0
    assert f"{len(kept)} -> 0 clips kept" in capsys.readouterr().out
    assert (root / "fileslist.txt").read_text() == ""
    assert not list((root / "high_visual_quality").rglob("*.mp4"))
    after = _clips(root)
    for clip in kept:
        row = after[clip]
        assert (row["status"], row["stage"], row["reason"], row["output"]) == ("dropped", "sync", "low_sync_conf", "")
        assert (root / row["pooled"]).is_file() and row["pooled"].startswith(".syncvid/pool/")
    # rows dropped before the sync decision keep their decision
    for clip, row in before.items():
        if clip not in kept:
            assert (after[clip]["stage"], after[clip]["reason"]) == (row["stage"], row["reason"])
    sources = {r["source"]: r for r in read_manifest(root / "manifest.parquet") if r["row_type"] == "source"}
    assert sources["talk_25fps.mp4"]["reason"] == "no_clips_kept"
    assert sources["no_audio.mp4"]["reason"] == "no_audio"
    cfg = load_config(root / "run.yaml")
    assert cfg.sync.conf_threshold == 1e9
    assert {m["fingerprint"] for m in _markers(root).values()} == {config_fingerprint(cfg)}
    assert "low_sync_conf" in (root / "report.html").read_text()
    assert not (root / "contact_sheet.png").exists()  # nothing kept, no sheet

    assert cli_main(["filter", str(root), "--sync_conf_threshold", "3"]) == 0
    assert _finals(root) == before_finals  # the very same bytes, moved back
    assert (root / "fileslist.txt").read_text() == fileslist
    assert _markers(root) == before_markers
    assert not list((root / ".syncvid" / "pool").rglob("*.mp4"))
    assert (root / "contact_sheet.png").is_file()


def test_filter_decodes_nothing(root, monkeypatch):
    import av

    import syncvid.media.decode as decode

    def refuse(*a, **k):
        raise AssertionError("filter must not decode media")

    for name in ("SourceReader", "read_clip", "decode_audio", "open_container"):
        monkeypatch.setattr(decode, name, refuse)
    monkeypatch.setattr(av, "open", refuse)
    assert filter_main(str(root), None, ["quality.min_sharpness=1e6"]) == 0
    rows = [r for r in _clips(root).values() if r["pooled"]]
    assert rows and all(r["reason"] == "low_quality:blur" for r in rows)
    assert all("min_sharpness 1e+06" in r["message"] for r in rows)


def test_filter_is_idempotent_after_an_interruption(root):
    """Files already moved but markers not yet rewritten: a second call finishes the job."""
    before = _finals(root)
    clip = next(iter(before))
    (root / ".syncvid" / "pool").mkdir(parents=True, exist_ok=True)
    (root / "high_visual_quality" / clip).rename(root / ".syncvid" / "pool" / clip)  # as if interrupted
    assert filter_main(str(root), None, []) == 0  # same thresholds: the file goes back where its row says
    assert _finals(root) == before


@pytest.mark.parametrize("overrides, match", [
    (["quality.backends=[classic]"], "quality.backends changes what is measured"),
    (["face.resolution=512"], "face.resolution"),
    (["sync.backend=syncnet"], "use `syncvid rescore`"),
])
def test_filter_refuses_non_thresholds(root, overrides, match, capsys):
    with pytest.raises(UsageError, match=re.escape(match)):
        filter_main(str(root), None, overrides)
    assert cli_main(["filter", str(root), "--set", overrides[0]]) == 2
    assert "syncvid: error: filter changes thresholds only" in capsys.readouterr().err


def test_filter_refuses_a_locked_root_and_a_non_root(root, tmp_path):
    with RunLock(root / ".syncvid" / "run.lock"):
        with pytest.raises(RunLocked):
            filter_main(str(root), 1.0, [])
    with pytest.raises(UsageError, match="not a syncvid output root"):
        filter_main(str(tmp_path / "nowhere"), 1.0, [])


# ----------------------------------------------------------------------------- rescore
def test_rescore_with_the_same_backend_reproduces_the_scores(root, capsys):
    before, finals = _clips(root), _finals(root)
    assert rescore_main(str(root), ["sync", "quality"], [], None) == 0
    assert "0 re-encoded" in capsys.readouterr().out
    after = _clips(root)
    scored = [c for c, r in before.items() if r["candidate"]]
    assert scored
    for clip in scored:
        a, b = before[clip], after[clip]
        assert (b["rescored"], b["sync_audio_context"]) == ("sync,quality", "source")
        for key in ("sync_offset_frames", "sync_trimmed_frames", "sync_at_search_edge", "num_frames", "status"):
            assert b[key] == a[key], key
        # landmarks are stored as float16: the confidence moves by well under 2 %
        assert b["sync_conf"] == pytest.approx(a["sync_conf"], rel=0.02)
        # quality is measured on the encoded candidate (x264 crf 13) instead of the raw crops:
        # exposure statistics agree, detail metrics move (docs/outputs.md)
        assert b["quality_brightness"] == pytest.approx(a["quality_brightness"], rel=0.03)
        assert b["quality_contrast"] == pytest.approx(a["quality_contrast"], rel=0.03)
    assert _finals(root) == finals  # same correction: the clips were not re-encoded


def test_rescore_reencodes_when_the_correction_changes(root, capsys):
    from syncvid.media.decode import read_clip

    cfg = load_config(root / "run.yaml")
    # without the source, the offset is searched within the clip's own audio
    save_config(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, input_dir=str(root / "gone"))),
                root / "run.yaml")
    before = _clips(root)
    shifted = [c for c, r in before.items() if r.get("sync_offset_frames") and abs(r["sync_offset_frames"]) >= 2]
    assert shifted, "the lagging speaker has a 2-frame offset"
    assert cli_main(["rescore", str(root), "--stages", "sync", "--set", "sync.search_frames=1",
                    "--set", "sync.conf_threshold=0"]) == 0
    assert "re-encoded" in capsys.readouterr().out
    after = _clips(root)
    for clip in shifted:
        row = after[clip]
        assert row["sync_audio_context"] == "clip"
        assert abs(row["sync_offset_frames"]) == 1 and row["sync_at_search_edge"]
        assert (row["status"], row["reason"], row["output"]) == ("dropped", "offset_too_large", "")
        frames, audio, fps, rate = read_clip(root / row["pooled"])
        assert frames.shape[0] == row["num_frames"] == 124 and (fps, rate) == (25, 16000)
        assert not (root / before[clip]["output"]).exists()
    assert load_config(root / "run.yaml").sync.search_frames == 1
    # the markers record the sizes of the clips encoded again: a resume finds them complete
    markers = read_markers(OutputLayout(root))
    assert markers and all(m.missing_output(OutputLayout(root)) is None for m in markers)
    assert len((root / "fileslist.txt").read_text().splitlines()) == sum(r["status"] == "kept" for r in after.values())


@pytest.mark.parametrize("stages, overrides, match", [
    (["face"], [], "rescore measures sync and quality"),
    ([], [], "rescore measures sync and quality"),
    (["quality"], ["sync.backend=syncnet"], "cannot apply sync.backend"),
    (["sync"], ["segment.seconds=4"], "cannot apply segment.seconds"),
])
def test_rescore_refuses(root, stages, overrides, match):
    with pytest.raises(UsageError, match=re.escape(match)):
        rescore_main(str(root), stages, overrides, None)


def test_rescore_quality_only_keeps_the_sync_measurements(root):
    before = _clips(root)
    assert rescore_main(str(root), ["quality"], ["quality.min_sharpness=1e6"], 2) == 0  # 2 worker processes
    after = _clips(root)
    for clip, a in before.items():
        if a["candidate"]:
            b = after[clip]
            assert b["rescored"] == "quality" and b["reason"] == "low_quality:blur"
            assert (b["sync_conf"], b["sync_offset_frames"]) == (a["sync_conf"], a["sync_offset_frames"])
            assert (root / b["pooled"]).is_file()


# ----------------------------------------------------------------------------- report
def test_report_command_regenerates_a_self_contained_report(root, capsys):
    (root / "report.html").unlink()
    assert cli_main(["report", str(root)]) == 0
    text = (root / "report.html").read_text()
    for section in ("id='summary'", "id='stages'", "id='rejections'", "id='scores'", "id='distributions'",
                    "id='kept'", "id='dropped'"):
        assert section in text
    svgs = re.findall(r"<svg.*?</svg>", text, re.S)
    assert len(svgs) >= 4
    for svg in svgs:
        ET.fromstring(svg)
    assert "Sync confidence" in text and "min 3" in text and "no_audio" in text
    assert "<script" not in text and not re.search(r"(src|href)=['\"]https?:", text)
    assert text.count("data:image/png;base64,") >= 2  # kept strips and the dropped too-short tail
