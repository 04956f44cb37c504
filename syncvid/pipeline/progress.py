"""Progress bar: sources done/total, hours of video processed, rate and ETA."""

from __future__ import annotations

import time

from tqdm import tqdm


class Progress:
    def __init__(self, total: int, enabled: bool = True):
        self.started = time.time()
        self.video_s = 0.0
        self.kept = 0
        self._bar = tqdm(total=total, unit="src", desc="syncvid", disable=not enabled or total == 0,
                         dynamic_ncols=True, smoothing=0.1)

    def update(self, outcome) -> None:
        self.video_s += outcome.duration_s
        self.kept += outcome.kept
        elapsed = max(1e-6, time.time() - self.started)
        self._bar.set_postfix_str(
            f"{self.video_s / 3600:.3f} h video, {self.video_s / elapsed:.1f}x realtime, {self.kept} clips",
            refresh=False,
        )
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()
