import pytest

from syncvid.pipeline.devices import plan_workers


@pytest.mark.parametrize(
    "total, per_gpu, gpus, needs_gpu, expected, notice",
    [
        (4, 2, 0, False, [None] * 4, False),
        (4, 2, 8, False, [None] * 4, False),  # CPU-only backends ignore GPUs
        (4, 2, 0, True, [None] * 4, True),  # no GPU: everything on the CPU, one-line notice
        (96, 12, 8, True, [i % 8 for i in range(96)], False),  # the reference's 8-GPU command
        (2, 3, 2, True, [0, 1, 0, 1, 0, 1], False),
    ],
)
def test_plan_workers(total, per_gpu, gpus, needs_gpu, expected, notice):
    plan = plan_workers(total, per_gpu, gpus, needs_gpu)
    assert [s.gpu for s in plan.slots] == expected
    assert (plan.notice is not None) == notice
    for slot in plan.slots:
        if slot.gpu is None:
            assert slot.device == "cpu" and slot.environment() == {}
        else:
            assert slot.device == "cuda:0" and slot.environment() == {"CUDA_VISIBLE_DEVICES": str(slot.gpu)}


def test_each_gpu_gets_per_gpu_workers():
    plan = plan_workers(10, 12, 8, True)
    counts = {g: sum(s.gpu == g for s in plan.slots) for g in range(8)}
    assert counts == {g: 12 for g in range(8)}


@pytest.mark.parametrize("total, per_gpu", [(0, 1), (1, 0)])
def test_plan_workers_rejects_nonpositive(total, per_gpu):
    with pytest.raises(ValueError):
        plan_workers(total, per_gpu, 1, True)


@pytest.mark.parametrize("total, cores, warned", [(8, 4, False), (9, 4, True), (64, 2, True), (1, 1, False)])
def test_far_more_workers_than_cores_get_one_line(total, cores, warned):
    plan = plan_workers(total, 1, 0, False, cpu_count=cores)
    assert len(plan.slots) == total  # planned as asked
    if warned:
        assert plan.notice == (f"total_num_workers {total} is more than twice the {cores} CPU core(s): "
                               "the workers will mostly wait for each other (and each holds its own memory)")
    else:
        assert plan.notice is None


def test_no_gpu_and_too_many_workers_share_one_line():
    plan = plan_workers(20, 1, 0, True, cpu_count=4)
    assert plan.notice.startswith("no GPU visible: GPU-capable backends run on the CPU; total_num_workers 20 ")
    assert "\n" not in plan.notice
