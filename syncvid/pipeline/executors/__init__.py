"""Who runs each source: in this process, in local worker processes, or on Ray actors.

All pools go through one loop, `dispatch.dispatch` (retries, crashes, setup errors)."""

from syncvid.pipeline.executors.dispatch import WorkerSetupError, crashed_outcome, dispatch
from syncvid.pipeline.executors.local import LocalProcessExecutor, SequentialExecutor, WorkerJob

__all__ = ["LocalProcessExecutor", "SequentialExecutor", "WorkerJob", "WorkerSetupError", "crashed_outcome",
           "dispatch"]
