"""The local process executor runs the same dispatch loop as Ray: crashes, retries, setup errors."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from syncvid.config import load_pipeline_config
from syncvid.outputs.layout import OutputLayout
from syncvid.pipeline.devices import WorkerSlot
from syncvid.pipeline.executors import LocalProcessExecutor, SequentialExecutor, WorkerSetupError
from syncvid.records import Source

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def jobs():
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(HERE))  # spawned workers inherit sys.path and import the jobs by name
        yield importlib.import_module("ray_probe_jobs")


def _sources(n: int) -> list[Source]:
    return [Source(Path(f"/in/v{i}.mp4"), f"v{i}.mp4") for i in range(n)]


def _job(jobs, tmp_path, cls_name="CrashingProbeJob", **kw):
    cfg = load_pipeline_config(None, flags={"run.input_dir": str(tmp_path), "run.progress": False})
    cls = getattr(jobs, cls_name)
    extra = {"counter_dir": str(tmp_path)} if cls_name == "CrashingProbeJob" else {}
    return cls(cfg, OutputLayout(tmp_path / "out"), "fp", **extra, **kw)


def test_every_source_runs_once_on_worker_processes(jobs, tmp_path):
    executor = LocalProcessExecutor(_job(jobs, tmp_path), [WorkerSlot(0, None), WorkerSlot(1, None)])
    outcomes = list(executor.run(_sources(5)))
    assert sorted(o.source_rel for o in outcomes) == [f"v{i}.mp4" for i in range(5)]
    assert all(o.rows[0]["status"] == "kept" for o in outcomes)


def test_a_worker_that_dies_is_replaced_and_its_source_retried(jobs, tmp_path):
    crashes = []
    executor = LocalProcessExecutor(_job(jobs, tmp_path, crashes=(("v1.mp4", 1),)), [WorkerSlot(0, None)],
                                    max_retries=1, on_crash=lambda s, n: crashes.append((s.rel, n)))
    outcomes = {o.source_rel: o for o in executor.run(_sources(3))}
    assert all(o.rows[0]["status"] == "kept" for o in outcomes.values()) and len(outcomes) == 3
    assert crashes == [("v1.mp4", 1)]
    pids = (tmp_path / "v1.mp4.attempts").read_text().split()
    assert len(pids) == 2 and len(set(pids)) == 2  # the retry ran in a fresh process


@pytest.mark.parametrize("max_retries", [0, 2])
def test_a_source_that_always_kills_its_worker_is_recorded_as_worker_crashed(jobs, tmp_path, max_retries):
    executor = LocalProcessExecutor(_job(jobs, tmp_path, crashes=(("v0.mp4", 99),)),
                                    [WorkerSlot(0, None), WorkerSlot(1, None)], max_retries=max_retries)
    outcomes = {o.source_rel: o for o in executor.run(_sources(3))}
    row = outcomes["v0.mp4"].rows[0]
    assert (row["status"], row["stage"], row["reason"]) == ("dropped", "resample", "worker_crashed")
    assert f"died {max_retries + 1} time(s)" in row["message"] and "exit code 1" in row["message"]
    assert outcomes["v0.mp4"].retry_on_resume
    assert len((tmp_path / "v0.mp4.attempts").read_text().split()) == max_retries + 1
    assert outcomes["v1.mp4"].rows[0]["status"] == outcomes["v2.mp4"].rows[0]["status"] == "kept"


def test_an_exception_in_the_runner_is_a_failed_attempt_with_its_first_line(jobs, tmp_path):
    executor = LocalProcessExecutor(_job(jobs, tmp_path, fails=("v1.mp4",)), [WorkerSlot(0, None)], max_retries=1)
    outcomes = {o.source_rel: o for o in executor.run(_sources(2))}
    message = outcomes["v1.mp4"].rows[0]["message"]
    assert "RuntimeError: decoder exploded on v1.mp4" in message and "second line" not in message
    assert outcomes["v0.mp4"].rows[0]["status"] == "kept"


def test_a_setup_error_stops_the_run_with_its_message(jobs, tmp_path):
    executor = LocalProcessExecutor(_job(jobs, tmp_path, "BrokenSetupJob"), [WorkerSlot(0, None)])
    with pytest.raises(WorkerSetupError, match="checkpoint syncnet_v2.model not found"):
        list(executor.run(_sources(2)))


def test_sequential_executor_runs_in_this_process(jobs, tmp_path):
    outcomes = list(SequentialExecutor(_job(jobs, tmp_path)).run(_sources(2)))
    assert [o.source_rel for o in outcomes] == ["v0.mp4", "v1.mp4"]
