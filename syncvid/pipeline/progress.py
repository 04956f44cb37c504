"""Progress bar: sources done/total (fractions of the sources in work included), hours of video
processed, rate and ETA."""

from __future__ import annotations

import time

from tqdm import tqdm


class Progress:
    def __init__(self, total: int, enabled: bool = True):
        self.started = time.time()
        self.video_s = 0.0
        self.kept = 0
        self.done = 0
        self._partial: dict[str, tuple[float, float]] = {}  # source in work -> (seconds done, seconds in all)
        self._bar = tqdm(total=total, unit="src", desc="syncvid", disable=not enabled or total == 0,
                         dynamic_ncols=True, smoothing=0.1, bar_format=None)

    def _show(self) -> None:
        partial = sum(min(1.0, d / t) for d, t in self._partial.values() if t > 0)
        in_work = sum(d for d, _ in self._partial.values())
        elapsed = max(1e-6, time.time() - self.started)
        seconds = self.video_s + in_work
        self._bar.n = round(self.done + partial, 2)
        self._bar.set_postfix_str(
            f"{seconds / 3600:.3f} h video, {seconds / elapsed:.1f}x realtime, {self.kept} clips", refresh=False)
        self._bar.refresh()

    def advance(self, worker, report) -> None:
        """A worker's report on the source it is working on: (source, seconds done, seconds in all)."""
        source, done_s, total_s = report
        self._partial[source] = (float(done_s), float(total_s))
        self._show()

    def update(self, outcome) -> None:
        self._partial.pop(outcome.source_rel, None)
        self.video_s += outcome.duration_s
        self.kept += outcome.kept
        self.done += 1
        self._show()

    def close(self) -> None:
        self._bar.close()
