"""The Ray executor: planning helpers and the dispatch loop (no Ray), then real Ray runs — a private
local instance, a two-node cluster on loopback, worker crashes and GPU pinning on that cluster."""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import av
import pytest

from syncvid.cli import main
from syncvid.config import load_pipeline_config
from syncvid.pipeline.devices import WorkerSlot, plan_workers
from syncvid.pipeline.executors import WorkerJob, WorkerSetupError, dispatch
from syncvid.outputs.layout import OutputLayout
from syncvid.outputs.manifest import read_manifest
from syncvid.pipeline.executors.ray_cluster import (
    RayExecutor,
    RayPinnedSlot,
    WorkerInfo,
    actor_options,
    check_shared_paths,
    cluster_plan,
    local_resources,
    short_error,
    usable_slots,
)
from syncvid.pipeline.fingerprint import config_fingerprint
from syncvid.pipeline.run import run_pipeline
from syncvid.pipeline.source_runner import SourceOutcome
from syncvid.records import Source

HERE = Path(__file__).resolve().parent
SUBSET = ["short_4.9s.mp4", "shifted/talk_audio_leads_3.mp4", "broken.mp4", "no_audio.mp4"]


# ----------------------------------------------------------------------------- pure helpers
@pytest.mark.parametrize(
    "num_slots, sources, cpus, expected",
    [(4, 10, 8, 4), (4, 2, 8, 2), (4, 10, 2.5, 2), (1, 1, 1, 1), (3, 0, 4, 0)],
)
def test_usable_slots_never_exceed_sources_or_cluster_cpus(num_slots, sources, cpus, expected):
    slots = [WorkerSlot(i, None) for i in range(num_slots)]
    assert usable_slots(slots, sources, cpus) == slots[:expected]


def test_usable_slots_rejects_a_cluster_without_cpus():
    with pytest.raises(WorkerSetupError, match="no CPU"):
        usable_slots([WorkerSlot(0, None)], 3, 0)


@pytest.mark.parametrize(
    "slot, per_gpu, expected",
    [
        (WorkerSlot(0, None), 4, {"num_cpus": 1, "max_restarts": 0, "max_task_retries": 0}),
        (WorkerSlot(3, 1), 4, {"num_cpus": 1, "num_gpus": 0.25, "max_restarts": 0, "max_task_retries": 0}),
        (WorkerSlot(0, 0), 1, {"num_cpus": 1, "num_gpus": 1.0, "max_restarts": 0, "max_task_retries": 0}),
    ],
)
def test_actor_options(slot, per_gpu, expected):
    assert actor_options(slot, per_gpu) == expected


@pytest.mark.parametrize(
    "total, per_gpu, gpus, needs_gpu, expected",
    [
        (3, 2, 0, False, {"num_cpus": 3, "num_gpus": 0}),
        (2, 3, 2, True, {"num_cpus": 6, "num_gpus": 2}),  # 2 GPUs x 3 workers > total_num_workers
        (8, 1, 1, True, {"num_cpus": 8, "num_gpus": 1}),
        (2, 1, 0, True, {"num_cpus": 2, "num_gpus": 0}),  # GPU backend without GPU: CPU workers
    ],
)
def test_local_resources(total, per_gpu, gpus, needs_gpu, expected):
    assert local_resources(plan_workers(total, per_gpu, gpus, needs_gpu), total) == expected


def test_cluster_plan_uses_the_cluster_gpus():
    plan = cluster_plan(4, 3, True, {"CPU": 64.0, "GPU": 2.0})
    assert [s.gpu for s in plan.slots] == [0, 1, 0, 1, 0, 1] and plan.notice is None
    cpu = cluster_plan(4, 3, True, {"CPU": 64.0})
    assert [s.gpu for s in cpu.slots] == [None] * 4 and "no GPU visible" in cpu.notice
    assert [s.gpu for s in cluster_plan(2, 3, False, {"CPU": 8.0, "GPU": 8.0}).slots] == [None, None]


def test_pinned_slot_keeps_the_device_but_leaves_the_environment_to_ray():
    slot = RayPinnedSlot(5, 3)
    assert slot.device == "cuda:0" and slot.environment() == {}
    assert WorkerSlot(5, 3).environment() == {"CUDA_VISIBLE_DEVICES": "3"}


@pytest.mark.parametrize(
    "exc, expected",
    [
        (RuntimeError("boom\nsecond line"), "RuntimeError: boom"),
        (MemoryError(), "MemoryError"),
        (ValueError("\n  \n  indented first line"), "ValueError: indented first line"),
        (OSError("x" * 500), "OSError: " + "x" * 188 + "..."),
    ],
)
def test_short_error(exc, expected):
    assert short_error(exc) == expected


def _job(input_dir: Path, output_dir: Path, **flags) -> WorkerJob:
    cfg = load_pipeline_config(None, flags={"run.input_dir": str(input_dir), "run.output_dir": str(output_dir),
                                            "run.progress": False, **flags})
    return WorkerJob(cfg, OutputLayout(output_dir), config_fingerprint(cfg))


def test_check_shared_paths_names_the_missing_folder(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    check_shared_paths(_job(tmp_path / "in", tmp_path / "out"))
    with pytest.raises(WorkerSetupError, match=r"input folder .*missing.* is not visible on node .*shared storage"):
        check_shared_paths(_job(tmp_path / "missing", tmp_path / "out"))
    with pytest.raises(WorkerSetupError, match=r"output folder .*nowhere.* is not writable on node"):
        check_shared_paths(_job(tmp_path / "in", tmp_path / "nowhere"))


# ----------------------------------------------------------------------------- dispatch, no Ray
class FakePool:
    """In-process worker pool: calls finish in submission order; `behaviour(source, attempt)` returns
    "ok", "died" or "failed" for a source's n-th attempt; `setup(slot_index, n)` likewise for a start."""

    def __init__(self, behaviour=lambda source, attempt: "ok", setup=lambda slot, n: "ok"):
        self.behaviour = behaviour
        self.setup_behaviour = setup
        self.started, self.stopped, self.alive = [], [], set()
        self.attempts: dict[str, list[int]] = {}
        self.order = deque()
        self.calls = {}
        self.next_id = 0

    def _call(self, kind, handle, source=None):
        self.next_id += 1
        self.calls[self.next_id] = (kind, handle, source)
        self.order.append(self.next_id)
        return self.next_id

    def start(self, slot):
        handle = (slot.index, len(self.started))  # a fresh handle for every start
        self.started.append(handle)
        self.alive.add(handle)
        return handle

    def setup(self, handle):
        return self._call("setup", handle)

    def submit(self, handle, source):
        assert handle in self.alive, "a source was given to a stopped worker"
        return self._call("run", handle, source)

    def next_done(self, calls):
        assert set(calls) == set(self.order)
        return self.order.popleft()

    def result(self, call):
        kind, handle, source = self.calls.pop(call)
        if kind == "setup":
            status = self.setup_behaviour(handle[0], sum(1 for h in self.started if h[0] == handle[0]))
            return (status, WorkerInfo(f"node{handle[0] % 2}", "host", 1000 + handle[1])) if status == "ok" \
                else (status, f"setup {status}")
        seen = self.attempts.setdefault(source.rel, [])
        seen.append(handle[1])
        status = self.behaviour(source, len(seen))
        if status == "ok":
            return "ok", SourceOutcome(source.rel, [{"source": source.rel, "status": "kept"}])
        return status, f"worker {status} on {source.rel}"

    def stop(self, handle):
        self.stopped.append(handle)
        self.alive.discard(handle)


def _sources(n):
    return [Source(Path(f"/in/v{i}.mp4"), f"v{i}.mp4") for i in range(n)]


def _slots(n):
    return [WorkerSlot(i, None) for i in range(n)]


def test_dispatch_runs_every_source_once_and_stops_every_worker():
    pool, placements = FakePool(), {}
    outcomes = list(dispatch(pool, _slots(3), _sources(7), max_retries=2, placements=placements))
    assert sorted(o.source_rel for o in outcomes) == [f"v{i}.mp4" for i in range(7)]
    assert all(len(a) == 1 for a in pool.attempts.values())
    assert len(pool.started) == 3 and sorted(pool.stopped) == sorted(pool.started) and not pool.alive
    assert set(placements) == {f"v{i}.mp4" for i in range(7)}
    assert {p.node_id for p in placements.values()} == {"node0", "node1"}


def test_dispatch_starts_no_more_workers_than_sources():
    pool = FakePool()
    assert len(list(dispatch(pool, _slots(8), _sources(2), max_retries=2))) == 2
    assert len(pool.started) == 2
    assert list(dispatch(FakePool(), _slots(2), [], max_retries=2)) == []


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_a_source_that_always_kills_its_worker_is_retried_exactly_then_recorded(max_retries):
    crashes = []
    pool = FakePool(behaviour=lambda s, n: "died" if s.rel == "v1.mp4" else "ok")
    outcomes = {o.source_rel: o for o in dispatch(pool, _slots(2), _sources(4), max_retries=max_retries,
                                                  on_crash=lambda s, n, d: crashes.append((s.rel, n, d)))}
    assert set(outcomes) == {"v0.mp4", "v1.mp4", "v2.mp4", "v3.mp4"}
    row = outcomes["v1.mp4"].rows[0]
    assert (row["status"], row["stage"], row["reason"]) == ("dropped", "resample", "worker_crashed")
    assert f"died {max_retries + 1} time(s)" in row["message"] and "worker died on v1.mp4" in row["message"]
    assert outcomes["v1.mp4"].retry_on_resume
    assert len(pool.attempts["v1.mp4"]) == max_retries + 1
    assert len(set(pool.attempts["v1.mp4"])) == max_retries + 1  # every attempt on a fresh worker
    assert crashes == [("v1.mp4", n, "worker died on v1.mp4") for n in range(1, max_retries + 2)]
    assert not pool.alive


def test_a_worker_that_dies_once_is_replaced_and_the_source_succeeds():
    pool = FakePool(behaviour=lambda s, n: "died" if (s.rel, n) == ("v0.mp4", 1) else "ok")
    outcomes = list(dispatch(pool, _slots(1), _sources(3), max_retries=1))
    assert sorted(o.rows[0]["status"] for o in outcomes) == ["kept"] * 3
    assert len(pool.started) == 2 and not pool.alive


def test_an_exception_in_the_runner_counts_as_a_failed_attempt():
    pool = FakePool(behaviour=lambda s, n: "failed" if s.rel == "v0.mp4" else "ok")
    outcomes = {o.source_rel: o for o in dispatch(pool, _slots(1), _sources(2), max_retries=1)}
    assert outcomes["v0.mp4"].rows[0]["reason"] == "worker_crashed"
    assert outcomes["v1.mp4"].rows[0]["status"] == "kept"


def test_every_worker_dying_at_once_loses_no_source():
    pool = FakePool(behaviour=lambda s, n: "died" if n == 1 else "ok")
    outcomes = list(dispatch(pool, _slots(3), _sources(3), max_retries=1))
    assert sorted(o.source_rel for o in outcomes) == ["v0.mp4", "v1.mp4", "v2.mp4"]
    assert all(o.rows[0]["status"] == "kept" for o in outcomes)


def test_a_setup_error_stops_the_run_with_its_message():
    pool = FakePool(setup=lambda slot, n: "failed")
    with pytest.raises(WorkerSetupError, match="setup failed"):
        list(dispatch(pool, _slots(2), _sources(3), max_retries=2))
    assert not pool.alive


def test_workers_that_keep_dying_at_start_stop_the_run():
    pool = FakePool(setup=lambda slot, n: "died")
    with pytest.raises(WorkerSetupError, match="keep dying at start"):
        list(dispatch(pool, _slots(2), _sources(3), max_retries=2))
    assert len(pool.started) == 2 + 2 * 3 and not pool.alive  # 2 starts, 6 replacements, the 7th death stops


def test_a_worker_dying_once_at_start_is_replaced():
    pool = FakePool(setup=lambda slot, n: "died" if (slot, n) == (0, 1) else "ok")
    assert len(list(dispatch(pool, _slots(2), _sources(4), max_retries=0))) == 4


def test_stopping_early_stops_the_workers():
    pool = FakePool()
    stream = dispatch(pool, _slots(2), _sources(5), max_retries=0)
    next(stream)
    stream.close()
    assert pool.started and not pool.alive


# ----------------------------------------------------------------------------- real Ray
def _proc_stat(pid: str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # state, ppid, pgrp, session, ...


def _live_pids(predicate) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            stat = _proc_stat(pid)
            if stat is not None and stat[0] != "Z" and predicate(int(pid), stat):
                found.append(int(pid))
    return found


def _descendants_of_this_process() -> list[int]:
    parents = {}
    for pid in _live_pids(lambda pid, stat: True):
        stat = _proc_stat(str(pid))
        if stat is not None:
            parents[pid] = int(stat[1])
    me, found = os.getpid(), []
    for pid in parents:
        p = parents.get(pid)
        while p and p != me:
            p = parents.get(p)
        if p == me:
            found.append(pid)
    return found


def _wait_gone(get_pids, timeout: float = 15.0) -> list[int]:
    deadline = time.time() + timeout
    while (pids := get_pids()) and time.time() < deadline:
        time.sleep(0.3)
    return pids


def _stop_sessions(sessions: list[int]) -> None:
    """End every process of the given sessions (the processes `ray start` spawned), TERM then KILL."""
    def members():
        return _live_pids(lambda pid, stat: int(stat[3]) in sessions)

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in members():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if not _wait_gone(members, timeout=4.0):
            return


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_env():
    """Keeps Ray's files in a private short temp folder and its auth off (loopback test clusters only)."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to find and end the Ray processes the tests start")
    pytest.importorskip("ray")
    tmp = tempfile.mkdtemp(prefix="svray-")  # short: Ray's socket paths must stay under 107 bytes
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_TMPDIR", tmp)
        mp.setenv("RAY_AUTH_MODE", "disabled")
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        mp.syspath_prepend(str(HERE))
        yield Path(tmp)
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def probe_jobs(ray_env):
    return importlib.import_module("ray_probe_jobs")


@pytest.fixture(scope="module")
def subset(sample_corpus, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ray") / "raw"
    for rel in SUBSET:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(sample_corpus / rel, root / rel)
    return root


def _run(input_dir: Path, out: Path, **flags):
    cfg = load_pipeline_config(None, flags={"run.input_dir": str(input_dir), "run.output_dir": str(out),
                                            "run.total_num_workers": 2, "run.progress": False, **flags})
    return run_pipeline(cfg, notice=lambda message: None)


def _rows(out: Path) -> list[tuple]:
    return sorted((r["source"], r["clip"], r["status"], r["stage"], r["reason"], r["num_frames"], r["output"])
                  for r in read_manifest(out / "manifest.parquet"))


def _clips(out: Path) -> dict[str, int]:
    found = {}
    for path in sorted((out / "high_visual_quality").rglob("*.mp4")):
        with av.open(str(path)) as container:
            found[path.relative_to(out).as_posix()] = sum(1 for _ in container.decode(video=0))
    return found


@pytest.fixture(scope="module")
def local_reference(subset, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray_ref_out")
    _run(subset, out, **{"run.executor": "local"})
    return out


@pytest.mark.slow
def test_local_ray_instance_gives_the_local_executor_result(ray_env, subset, local_reference, tmp_path):
    import ray

    out = tmp_path / "out"
    before = set(_descendants_of_this_process())  # e.g. multiprocessing's resource tracker
    summary = _run(subset, out, **{"run.executor": "ray"})
    assert not ray.is_initialized(), "the executor stops the local Ray instance it started"
    assert _wait_gone(lambda: sorted(set(_descendants_of_this_process()) - before)) == [], "Ray processes left"
    assert summary.processed == len(SUBSET)
    assert _rows(out) == _rows(local_reference)
    clips = _clips(out)
    assert clips == _clips(local_reference) and len(clips) >= 2
    assert sorted((out / "fileslist.txt").read_text().splitlines()) == sorted(
        str((out / rel).resolve()) for rel in clips)


@pytest.fixture(scope="module")
def ray_cluster(ray_env, probe_jobs):
    """A head and a worker node on loopback (1 CPU and 1 declared GPU each); yields the address."""
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    ray_cli = str(Path(sys.executable).with_name("ray"))

    def node_args():  # every node of the test cluster needs its own agent ports on this one host
        return ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=1", f"--temp-dir={ray_env}",
                "--disable-usage-stats", f"--dashboard-agent-listen-port={_free_port()}",
                f"--dashboard-agent-grpc-port={_free_port()}", f"--metrics-export-port={_free_port()}",
                f"--runtime-env-agent-port={_free_port()}"]

    head = [ray_cli, "start", "--head", f"--port={port}", "--include-dashboard=false",
            f"--dashboard-port={_free_port()}", f"--ray-client-server-port={_free_port()}", *node_args()]
    worker = [ray_cli, "start", f"--address=127.0.0.1:{port}", *node_args()]
    sessions = []
    try:
        for command in (head, worker):
            proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)
            sessions.append(proc.pid)
            log = proc.communicate(timeout=120)[0]
            assert proc.returncode == 0, log[-3000:]
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        ray.shutdown()
        _stop_sessions(sessions)
        leftovers = _live_pids(lambda pid, stat: int(stat[3]) in sessions)
        assert leftovers == [], f"Ray processes left behind: {leftovers}"


@pytest.mark.slow
def test_two_node_cluster_runs_the_pipeline_from_the_command_line(ray_cluster, subset, local_reference, tmp_path,
                                                                  monkeypatch, capsys):
    import syncvid.pipeline.executors.ray_cluster as module

    made = []

    class Recording(module.RayExecutor):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            made.append(self)

    monkeypatch.setattr(module, "RayExecutor", Recording)
    out = tmp_path / "out"
    code = main(["pipeline", "--input_dir", str(subset), "--output_dir", str(out), "--executor", "ray",
                 "--ray_address", ray_cluster, "--total_num_workers", "2", "--no_progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "ray: 2 worker(s) on a cluster of 2 node(s), 2 CPU(s), 2 GPU(s)" in err
    assert _rows(out) == _rows(local_reference)
    assert _clips(out) == _clips(local_reference)
    (executor,) = made
    assert set(executor.placements) == set(SUBSET)
    assert len({info.node_id for info in executor.placements.values()}) == 2, executor.placements
    assert f"ray: {len(SUBSET)} source(s) ran on 2 node(s)" in err
    # resume through the cluster: every source is already done, nothing is submitted
    assert main(["pipeline", "--input_dir", str(subset), "--output_dir", str(out), "--executor", "ray",
                 "--ray_address", ray_cluster, "--no_progress"]) == 0
    assert f"{len(SUBSET)} of {len(SUBSET)} sources already done" in capsys.readouterr().err
    assert _rows(out) == _rows(local_reference)


@pytest.mark.slow
def test_a_source_that_kills_its_worker_is_retried_then_recorded(ray_cluster, probe_jobs, subset, tmp_path):
    import ray

    out, counters = tmp_path / "out", tmp_path / "attempts"
    out.mkdir()
    counters.mkdir()
    base = _job(subset, out)
    crashes = (("no_audio.mp4", 99), ("broken.mp4", 1))  # always dies / dies once, then succeeds
    job = probe_jobs.CrashingJob(base.cfg, base.layout, base.fingerprint, crashes=crashes,
                                 counter_dir=str(counters))
    notices = []
    executor = RayExecutor(job, plan_workers(2, 1, 0, False), address=ray_cluster, max_retries=1,
                           notice=notices.append)
    sources = [Source(subset / rel, rel) for rel in ("broken.mp4", "no_audio.mp4")]
    started = time.time()
    try:
        outcomes = {o.source_rel: o for o in executor.run(sources)}
    finally:
        ray.shutdown()
    assert time.time() - started < 90
    crashed = outcomes["no_audio.mp4"].rows[0]
    assert (crashed["status"], crashed["reason"]) == ("dropped", "worker_crashed")
    assert "died 2 time(s)" in crashed["message"] and "ActorDiedError" in crashed["message"]
    assert outcomes["broken.mp4"].rows[0]["reason"] == "decode_error"  # retried once, then processed
    no_audio_pids = (counters / "no_audio.mp4.attempts").read_text().split()
    assert len(no_audio_pids) == 2 and len(set(no_audio_pids)) == 2  # two attempts, two fresh actors
    assert len((counters / "broken.mp4.attempts").read_text().split()) == 2
    assert sum("worker died on no_audio.mp4" in n for n in notices) == 2
    assert sum("worker died on broken.mp4" in n for n in notices) == 1
    assert (out / ".syncvid" / "done").is_dir() and len(list((out / ".syncvid" / "done").glob("*.json"))) == 1


@pytest.mark.slow
def test_gpu_workers_are_pinned_by_ray_on_the_cluster(ray_cluster, probe_jobs, subset, tmp_path):
    import ray

    (tmp_path / "out").mkdir()
    base = _job(subset, tmp_path / "out", **{"run.total_num_workers": 2, "run.per_gpu_num_workers": 1})
    job = probe_jobs.DeviceProbeJob(base.cfg, base.layout, base.fingerprint)
    notices = []
    # the driver's own plan (no GPU here) is replaced by one made against the cluster's 2 declared GPUs
    executor = RayExecutor(job, plan_workers(2, 1, 0, True), address=ray_cluster, needs_gpu=True,
                           notice=notices.append)
    sources = [Source(subset / f"v{i}.mp4", f"v{i}.mp4") for i in range(4)]
    try:
        outcomes = list(executor.run(sources))
    finally:
        ray.shutdown()
    assert not any("no GPU visible" in n for n in notices)
    assert "ray: 2 worker(s) on a cluster of 2 node(s), 2 CPU(s), 2 GPU(s)" in notices
    assert len(outcomes) == 4
    for outcome in outcomes:
        row, info = outcome.rows[0], executor.placements[outcome.source_rel]
        assert row["device"] == "cuda:0"
        assert info.gpu_ids and row["cuda_visible_devices"] == info.gpu_ids[0]


@pytest.mark.slow
def test_a_worker_that_cannot_start_stops_the_run_with_the_reason(ray_cluster, probe_jobs, subset, tmp_path):
    import ray

    (tmp_path / "out").mkdir()
    base = _job(subset, tmp_path / "out")
    job = probe_jobs.BrokenSetupJob(base.cfg, base.layout, base.fingerprint)
    executor = RayExecutor(job, plan_workers(2, 1, 0, False), address=ray_cluster)
    try:
        with pytest.raises(WorkerSetupError, match="FileNotFoundError: checkpoint syncnet_v2.model not found"):
            list(executor.run([Source(subset / "broken.mp4", "broken.mp4")]))
    finally:
        ray.shutdown()
