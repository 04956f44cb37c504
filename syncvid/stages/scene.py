"""Stage 3 — scene: shot boundaries from PySceneDetect detectors fed by the pipeline's own decode.

Frames are pushed one at a time (already decoded at 25 fps); each is downscaled
to `scene.downscale_width` before the detector sees it, so the source is never
opened a second time.  Cuts are reported as the output frame index that starts
a new shot; detectors report them a few frames late (`latency`).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scenedetect import AdaptiveDetector, ContentDetector, ThresholdDetector
from scenedetect.common import FrameTimecode

from syncvid.config.pipeline_schema import SceneSection
from syncvid.media.picture import as_picture

DETECTORS = ("adaptive", "content", "threshold", "none")


class SceneDetector:
    """Streaming shot-boundary detector for one source."""

    def __init__(self, params: SceneSection, fps: int = 25):
        if params.detector not in DETECTORS:
            raise ValueError(f"scene.detector must be one of {', '.join(DETECTORS)}, got {params.detector!r}")
        self.params = params
        self.fps = Fraction(fps)
        min_len = max(1, int(round(params.min_scene_len_s * fps)))
        if params.detector == "adaptive":
            self._detector = AdaptiveDetector(
                adaptive_threshold=params.threshold,
                min_scene_len=min_len,
                window_width=params.window_width,
                min_content_val=params.min_content_val,
            )
            self.latency = params.window_width
        elif params.detector == "content":
            self._detector = ContentDetector(threshold=params.threshold, min_scene_len=min_len)
            self.latency = 0
        elif params.detector == "threshold":
            self._detector = ThresholdDetector(threshold=params.threshold, min_scene_len=min_len)
            self.latency = 0
        else:
            self._detector = None
            self.latency = 0
        self._last = -1

    @property
    def enabled(self) -> bool:
        """False for the "none" detector (frames are then not looked at)."""
        return self._detector is not None

    def push(self, index: int, image) -> list[int]:
        """Feed output frame `index` (in order); returns cuts found so far (frames that start a shot).

        `image` is the frame as a `Picture` (what the runner passes: its thumbnail is made from the
        decoded planes) or an RGB uint8 array; the detector sees it shrunk to `scene.downscale_width`.
        """
        self._last = index
        if self._detector is None:
            return []
        small = as_picture(image).small_bgr(self.params.downscale_width)
        found = self._detector.process_frame(FrameTimecode(index, fps=self.fps), small)
        return [c.frame_num for c in found if c.frame_num > 0]

    def finish(self) -> list[int]:
        """Cuts the detector only reports once the source has ended."""
        if self._detector is None or self._last < 0:
            return []
        found = self._detector.post_process(FrameTimecode(self._last, fps=self.fps))
        return [c.frame_num for c in found if c.frame_num > 0]
