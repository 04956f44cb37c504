"""Shared training pieces: sample order across processes, lr schedules, the metrics log, charts."""

from __future__ import annotations

import itertools
import json

import cv2
import pytest

from syncvid.train.common import EpochSampler, MetricsLog, lr_lambda, split_holdout
from syncvid.train.plots import plot_curves


def take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


@pytest.mark.parametrize("replicas,batch", [(2, 1), (2, 3), (4, 2)])
def test_replicas_split_each_global_batch_like_one_process(replicas, batch):
    steps = 7
    single = take(EpochSampler(10, seed=3, start=5 * batch * replicas), steps * batch * replicas)
    per_rank = [
        take(EpochSampler(10, 3, start=5 * batch * replicas, batch_size=batch, num_replicas=replicas, rank=r),
             steps * batch)
        for r in range(replicas)
    ]
    for s in range(steps):
        global_batch = single[s * batch * replicas:(s + 1) * batch * replicas]
        joined = sum((per_rank[r][s * batch:(s + 1) * batch] for r in range(replicas)), [])
        assert joined == global_batch


def test_sampler_start_continues_the_stream():
    full = take(EpochSampler(6, seed=1), 20)
    assert take(EpochSampler(6, seed=1, start=8), 12) == full[8:]
    assert sorted(i % 6 for i in full[:6]) == list(range(6))


def test_sampler_rejects_bad_rank():
    with pytest.raises(ValueError, match="rank 2"):
        EpochSampler(4, 0, num_replicas=2, rank=2)


@pytest.mark.parametrize(
    "schedule,warmup,total,step,expected",
    [
        ("constant", 10, 100, 0, 1.0),
        ("constant_with_warmup", 4, 100, 0, 0.2),
        ("constant_with_warmup", 4, 100, 4, 1.0),
        ("linear", 0, 100, 50, 0.5),
        ("linear", 0, 100, 100, 0.0),
        ("cosine", 0, 100, 50, 0.5),
        ("cosine", 0, 100, 0, 1.0),
    ],
)
def test_lr_schedules(schedule, warmup, total, step, expected):
    assert lr_lambda(schedule, warmup, total)(step) == pytest.approx(expected)


def test_unknown_lr_schedule_is_named():
    with pytest.raises(ValueError, match="unknown lr_scheduler 'cosinus'"):
        lr_lambda("cosinus", 0, 10)


def test_holdout_is_order_independent():
    paths = [f"/c/{i}.mp4" for i in range(20)]
    train, held = split_holdout(paths, 0.1, seed=5)
    train2, held2 = split_holdout(list(reversed(paths)), 0.1, seed=5)
    assert sorted(held) == sorted(held2) and len(held) == 2 and not set(held) & set(train)


def test_metrics_log_resume_drops_later_steps(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)
    for step in range(1, 6):
        log.write({"step": step, "recon_loss": 1.0 / step})
    log.close()
    log = MetricsLog(path, resume_step=3)
    log.write({"step": 4, "recon_loss": 0.3})
    log.close()
    lines = [json.loads(t) for t in path.read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    assert lines[-1]["recon_loss"] == 0.3


def test_plot_curves_writes_a_png(tmp_path):
    out = plot_curves(tmp_path / "loss.png", {"recon_loss": ([1, 2, 3], [1.0, 0.5, 0.25]),
                                              "val_recon_loss": ([3], [0.3])}, title="t", log_y=True)
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (520, 900, 3)
    assert (image < 128).any()  # lines and text were drawn
    assert not list(tmp_path.glob("*.tmp*"))
