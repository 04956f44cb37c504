"""`python scripts/train_syncnet.py --config configs/syncnet/pixel.yaml [--set KEY=VALUE ...]`

Trains LatentSync's SyncNet with syncvid (same as `syncvid train-syncnet`).  The reference's
`--config_path` spelling is accepted too.  Run it from the repository root.
"""

import argparse
import sys
from pathlib import Path

try:
    import syncvid  # noqa: F401
except ImportError:  # run from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Train the SyncNet lip-sync expert on syncvid clips")
    parser.add_argument("--config", "--config_path", "--config-path", dest="config",
                        default="configs/syncnet/pixel.yaml", help="SyncNet config YAML")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key (repeatable), e.g. --set data.batch_size=32")
    args = parser.parse_args(argv)
    from syncvid.train.syncnet import main as train_main

    return train_main(args.config, args.overrides)


if __name__ == "__main__":
    sys.exit(main())
