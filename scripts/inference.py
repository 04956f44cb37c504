"""`python scripts/inference.py --unet_config_path configs/unet/stage2.yaml --inference_ckpt_path … \
    --video_path face.mp4 --audio_path speech.wav --video_out_path out.mp4`

Dubs a video with a trained lip-sync UNet (same as `syncvid lipsync`); LatentSync's flag names
and ours (`--config`, `--unet_checkpoint`, `--video`, `--audio`, `--output`) are both accepted.
"""

import argparse
import sys
from pathlib import Path

try:
    import syncvid  # noqa: F401
except ImportError:  # run from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from syncvid.lipsync.dub import main as lipsync_main
    from syncvid.lipsync.flags import add_lipsync_flags

    parser = argparse.ArgumentParser(description="Dub a video with a trained lip-sync UNet")
    add_lipsync_flags(parser)
    return lipsync_main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
