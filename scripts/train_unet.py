"""`python scripts/train_unet.py --config configs/unet/stage1.yaml [--set KEY=VALUE ...] [--resume [RUN_DIR]]`

Trains LatentSync's lip-sync UNet with syncvid (same as `syncvid train-unet`).  LatentSync's
`--unet_config_path` spelling is accepted too, and so is its multi-GPU launch from the
repository root:

    torchrun --nproc_per_node 8 -m scripts.train_unet --unet_config_path configs/unet/stage2.yaml
"""

import argparse
import sys
from pathlib import Path

try:
    import syncvid  # noqa: F401
except ImportError:  # run from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Train the lip-sync UNet on syncvid clips")
    parser.add_argument("--config", "--unet_config_path", "--unet-config-path", dest="config",
                        default="configs/unet/stage1.yaml", help="UNet config YAML")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key (repeatable), e.g. --set data.batch_size=4")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN_DIR",
                        help="continue the newest run under data.train_output_dir (or RUN_DIR) exactly")
    args = parser.parse_args(argv)
    from syncvid.train.unet import main as train_main

    return train_main(args.config, args.overrides, resume=args.resume)


if __name__ == "__main__":
    sys.exit(main())
