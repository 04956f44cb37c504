import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from syncvid.pipeline.lock import RunLock, RunLocked
from syncvid.outputs.manifest import COLUMNS, read_manifest, write_manifest


def test_manifest_columns_types_and_extra(tmp_path):
    rows = [
        {"source": "b.mp4", "clip": "", "row_type": "source", "status": "kept"},
        {"source": "b.mp4", "clip": "b_shot_000_000", "row_type": "clip", "status": "dropped", "stage": "face",
         "reason": "no_face", "sync_offset_frames": None, "face_size_px": 81.5, "my_metric": 1.25},
        {"source": "a.mp4", "clip": "", "row_type": "source", "status": "dropped", "stage": "broken",
         "reason": "no_audio"},
    ]
    path = tmp_path / "manifest.parquet"
    write_manifest(path, rows)
    table = pq.read_table(path)
    assert list(table.column_names[: len(COLUMNS)]) == list(COLUMNS)
    assert "my_metric" in table.column_names
    back = read_manifest(path)
    assert [r["source"] for r in back] == ["a.mp4", "b.mp4", "b.mp4"]
    assert back[2]["face_size_px"] == 81.5 and back[2]["sync_offset_frames"] is None
    assert b"syncvid.description.sync_offset_frames" in table.schema.metadata
    assert not list(tmp_path.glob(".*"))  # no temporary left behind


def test_second_lock_refused_and_released_on_process_death(tmp_path):
    lock_path = tmp_path / ".syncvid" / "run.lock"
    with RunLock(lock_path):
        with pytest.raises(RunLocked, match="another syncvid run"):
            RunLock(lock_path).acquire()
    # a process killed while holding the lock does not leave it held
    code = ("import os,sys; from syncvid.pipeline.lock import RunLock; "
            f"RunLock(__import__('pathlib').Path({str(lock_path)!r})).acquire(); os.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", code])
    RunLock(lock_path).acquire().release()
