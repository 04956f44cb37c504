"""The stages' one contract (syncvid.stages.base.Stage) and the seven-stage table."""

from __future__ import annotations

import inspect
import re

import pytest

import syncvid.stages as stages_pkg
from syncvid.config.pipeline_schema import FaceSection, QualitySection, SyncSection
from syncvid.config import load_pipeline_config
from syncvid.pipeline.run import needs_gpu
from syncvid.records import STAGES
from syncvid.rows import Reason
from syncvid.stages import face, quality, sync
from syncvid.stages.base import Resources, Stage
from syncvid.stages.face import FaceStage
from syncvid.stages.quality import QualityStage
from syncvid.stages.sync import SyncStage


def _stages(face_backend="dlib", sync_backend="landmark", quality_backends=("classic", "brisque")):
    return [FaceStage(FaceSection(backend=face_backend)), SyncStage(SyncSection(backend=sync_backend)),
            QualityStage(QualitySection(backends=list(quality_backends)))]


def test_face_sync_quality_follow_the_contract():
    for stage in _stages():
        assert isinstance(stage, Stage) and stage.name in STAGES
        for method in ("setup", "judge", "configured_backends"):
            assert not getattr(getattr(type(stage), method), "__isabstractmethod__", False)
        assert stage.resources == Resources(needs_gpu=False, threads=1)
        assert stage.reasons and all(stage.name in r.stages for r in stage.reasons)
    with pytest.raises(TypeError, match="abstract"):
        Stage()


@pytest.mark.parametrize("module, cls", [(face, FaceStage), (sync, SyncStage), (quality, QualityStage)])
def test_a_stage_rejects_only_with_its_own_reasons(module, cls):
    source = inspect.getsource(module)
    assert not re.search(r'Rejected\(\s*"\w+",\s*f?"', source), "reasons are Reason members, not literals"
    used = {Reason[name] for name in re.findall(r"Reason\.([A-Z_]+)", source)}
    if cls is QualityStage:
        used |= set(Reason.of_stage("quality"))  # Reason.low_quality(check) covers every check
    assert used and used <= set(Reason.of_stage(cls.name))
    assert not hasattr(cls, "process")  # one path: the pipeline's measure / correct / score, then judge


@pytest.mark.parametrize("face_backend, sync_backend, quality_backends, gpu", [
    ("dlib", "landmark", ("classic", "brisque"), (False, False, False)),
    ("insightface", "landmark", ("classic",), (True, False, False)),
    ("dlib", "syncnet", ("classic",), (False, True, False)),
    ("dlib", "stable_syncnet", ("classic",), (False, True, False)),
    ("dlib", "landmark", ("classic", "hyperiqa"), (False, False, True)),
])
def test_resources_name_the_gpu_backends_the_worker_plan_uses(face_backend, sync_backend, quality_backends, gpu):
    stages = _stages(face_backend, sync_backend, quality_backends)
    assert tuple(s.resources.needs_gpu for s in stages) == gpu
    cfg = load_pipeline_config(None, overrides=[f"face.backend={face_backend}", f"sync.backend={sync_backend}",
                                                f"quality.backends=[{','.join(quality_backends)}]"])
    assert needs_gpu(cfg) == any(gpu)  # the worker plan asks the stages


def test_package_table_lists_the_seven_stages_and_every_stage_reason():
    doc = stages_pkg.__doc__
    rows = re.findall(r"^(\d)\s+(\w+)\s", doc, re.M)
    assert [name for _, name in rows] == list(STAGES) and [n for n, _ in rows] == [str(i) for i in range(1, 8)]
    # each reason sits in the rows of the stages that emit it
    blocks = re.split(r"^\d\s+", doc.split("==\n", 2)[2], flags=re.M)[1:]  # after the header's rule
    by_stage = {name: block for (_, name), block in zip(rows, blocks)}
    for reason in Reason:
        for stage in reason.stages:
            assert re.search(rf"(?<![\w:]){re.escape(reason.value)}(?![\w:])", by_stage[stage]), \
                f"{reason.value} missing from the {stage} row"
    assert "no_clips_kept" in doc
