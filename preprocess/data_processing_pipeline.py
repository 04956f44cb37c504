"""`python -m preprocess.data_processing_pipeline --total_num_workers N --per_gpu_num_workers M
--resolution 256 --sync_conf_threshold 3 --input_dir DIR` — the reference's command, run by syncvid."""

import sys

from syncvid.cli import main

if __name__ == "__main__":
    sys.exit(main(["pipeline", *sys.argv[1:]]))
