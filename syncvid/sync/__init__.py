"""Audio-video sync: offset/confidence math, the weight-free landmark estimator, MFCC,
and the SyncNet models (original and LatentSync's).  Importing this package does not
import torch; the model modules (`syncnet_model`, `stable_syncnet`) do."""

from syncvid.sync.offset import OffsetEstimate, estimate_offset

__all__ = ["OffsetEstimate", "estimate_offset"]
