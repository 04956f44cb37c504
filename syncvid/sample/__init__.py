"""A sample corpus of talking-face videos with known ground truth (``syncvid make-sample``).

Built from the astronaut portrait shipped with scikit-image, animated by a synthetic speech
track: see `speech` (audio + mouth curve), `face_puppet` (the warped, placed head) and `corpus`
(the files and ``ground_truth.json``).
"""

from syncvid.sample.corpus import GENERATOR_VERSION, corpus_specs, load_ground_truth, make_sample

__all__ = ["GENERATOR_VERSION", "corpus_specs", "load_ground_truth", "make_sample"]
