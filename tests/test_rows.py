"""Typed manifest values: plain strings on every boundary, and one list of reasons shared with the docs."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from syncvid.outputs.manifest import write_manifest
from syncvid.pipeline.decisions import decision_fields, summarise_source
from syncvid.outputs.layout import OutputLayout
from syncvid.records import Rejected
from syncvid.rows import Reason, RowType, Status
from syncvid.stages.quality import CHECKS

ROOT = Path(__file__).resolve().parents[1]


def test_values_compare_print_and_serialise_as_plain_strings():
    assert Status.KEPT == "kept" and "dropped" == Status.DROPPED and RowType.CLIP == "clip"
    assert Reason.LOW_QUALITY_BLUR == "low_quality:blur" and Reason("no_face") is Reason.NO_FACE
    assert isinstance(Reason.NO_FACE, str)
    assert str(Reason.NO_FACE) == "no_face" and f"{Status.KEPT}/{Reason.TOO_SHORT:>10}" == "kept/ too_short"
    assert {"no_face": 1}[Reason.NO_FACE] == 1 and hash(Status.DROPPED) == hash("dropped")
    assert json.dumps({"status": Status.KEPT, "reason": Reason.LOW_SYNC_CONF}) == \
        '{"status": "kept", "reason": "low_sync_conf"}'
    assert pickle.loads(pickle.dumps(Reason.WORKER_CRASHED)) is Reason.WORKER_CRASHED
    rej = Rejected("face", Reason.FACE_LOST, "gone")
    assert str(rej) == "face/face_lost: gone" and rej.reason == "face_lost"


def test_rows_built_with_enums_reach_the_parquet_file_as_plain_strings(tmp_path):
    layout = OutputLayout(tmp_path)
    clip = {"source": "a.mp4", "clip": "a_shot_000_000", "row_type": RowType.CLIP, "start_frame": 0,
            **decision_fields(layout, "a_shot_000_000.mp4", Rejected("sync", Reason.LOW_SYNC_CONF, "low"))}
    src = summarise_source({"source": "a.mp4", "clip": "", "row_type": RowType.SOURCE, "status": Status.KEPT,
                            "stage": "", "reason": "", "message": ""}, [clip])
    assert (src["status"], src["reason"]) == ("dropped", "no_clips_kept")
    assert src["message"] == "all 1 segments dropped: 1 low_sync_conf"
    write_manifest(tmp_path / "manifest.parquet", [src, clip])
    table = pq.read_table(tmp_path / "manifest.parquet")
    rows = table.to_pylist()
    assert [(r["row_type"], r["status"], r["stage"], r["reason"]) for r in rows] == [
        ("source", "dropped", "sync", "no_clips_kept"), ("clip", "dropped", "sync", "low_sync_conf")]
    assert all(type(r[k]) is str for r in rows for k in ("row_type", "status", "reason"))
    assert str(table.schema.field("status").type) == "string"
    # and through a completion marker's json
    assert json.loads(json.dumps(clip))["status"] == "dropped"


def test_every_quality_check_has_a_reason():
    assert {Reason.low_quality(c.reason) for c in CHECKS} == set(Reason.of_stage("quality"))


def _emitted_reasons() -> set[tuple[str, str]]:
    """(stage, reason) of every string literal the package rejects with or writes into a row."""
    found = set()
    for path in (ROOT / "syncvid").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r'Rejected\(\s*"(\w+)",\s*"([^"]+)"', text):
            found.add((m.group(1), m.group(2)))
        for m in re.finditer(r'Rejected\(\s*"(\w+)",\s*Reason\.([A-Z_]+)\b', text):
            found.add((m.group(1), Reason[m.group(2)].value))
        for m in re.finditer(r'"reason":\s*"(\w[^"]*)"', text):
            found.add(("", m.group(1)))
    return found


def test_every_reason_the_code_emits_is_a_reason_member_of_that_stage():
    emitted = _emitted_reasons()
    assert ("face", "no_face") in emitted and ("broken", "no_video") in emitted  # the scan sees both styles
    for stage, reason in emitted:
        assert reason in Reason._value2member_map_, f"{stage}/{reason} is not in syncvid.rows.Reason"
        if stage:
            assert stage in Reason(reason).stages, f"{reason} is emitted by {stage}, not listed in Reason.stages"


def _docs_reason_table() -> dict[str, set[str]]:
    lines = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8").splitlines()
    start = lines.index("| reason | stage | meaning |")
    table = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        reason, stage = (cell.strip() for cell in line.strip("|").split("|")[:2])
        code = re.fullmatch(r"`([^`]+)`", reason)
        assert code, f"docs/outputs.md: reason cell {reason!r} is not one `code`"
        table[code.group(1)] = set(re.findall(r"`(\w+)`", stage))
    return table


def test_docs_reason_table_matches_the_enum():
    table = _docs_reason_table()
    assert set(table) == {r.value for r in Reason}
    for reason in Reason:
        assert table[reason.value] == set(reason.stages), reason.value


@pytest.mark.parametrize("cls", [Status, RowType])
def test_status_and_row_type_are_the_documented_values(cls):
    text = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")
    for member in cls:
        assert f"`{member.value}`" in text or f"= {member.value}" in text
