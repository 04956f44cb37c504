"""The `syncvid` command line.

Exit codes: 0 the command completed (a pipeline run that rejected files still
completed), 1 an internal failure (one line with the cause), 2 a usage error
(one line naming the problem).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

# Named flags of `syncvid pipeline` and the config keys they set (precedence below --set).
PIPELINE_FLAGS = {
    "input_dir": "run.input_dir",
    "output_dir": "run.output_dir",
    "temp_dir": "run.temp_dir",
    "total_num_workers": "run.total_num_workers",
    "per_gpu_num_workers": "run.per_gpu_num_workers",
    "resolution": "face.resolution",
    "sync_conf_threshold": "sync.conf_threshold",
    "keep_intermediate": "run.keep_intermediate",
    "keep_candidates": "run.keep_candidates",
    "executor": "run.executor",
    "ray_address": "run.ray_address",
    "progress": "run.progress",
}


class UsageExit(Exception):
    """Raised instead of argparse's own exit so the message stays one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line, exit code 2
        raise UsageExit(f"{self.prog}: {message}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _resolution(text: str) -> int:
    value = _positive_int(text)
    if value % 2 or value < 64:
        raise argparse.ArgumentTypeError(f"resolution must be an even number of pixels >= 64, got {text!r}")
    return value


def _flag(parser, name: str, **kw):
    """A flag accepted with underscores (the reference's spelling) and with dashes."""
    spellings = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
    parser.add_argument(*spellings, dest=name, **kw)


def _add_set(parser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key (repeatable), e.g. --set segment.seconds=4")


def add_pipeline_flags(p: argparse.ArgumentParser) -> None:
    _flag(p, "input_dir", help="folder of raw videos (searched recursively)")
    _flag(p, "output_dir", help="output root (default: the parent folder of --input_dir, as in the reference)")
    _flag(p, "config", help="pipeline config YAML (default: configs/data/pipeline.yaml)")
    _flag(p, "temp_dir", help="no longer used (partial files are written beside their final names); "
          "accepted with a notice")
    _flag(p, "total_num_workers", type=_positive_int, help="worker processes for CPU stages")
    _flag(p, "per_gpu_num_workers", type=_positive_int, help="workers per visible GPU when a GPU backend is used")
    _flag(p, "resolution", type=_resolution, help="side of the aligned output clips in pixels (256, 512)")
    _flag(p, "sync_conf_threshold", type=float, help="minimum sync confidence of the active sync backend")
    _flag(p, "keep_intermediate", action="store_const", const=True,
          help="also write resampled/, shot/, segmented/ and av_synced_<thr>/ for inspection")
    _flag(p, "no_keep_candidates", action="store_const", const=True,
          help="do not keep the aligned candidates in affine_transformed/")
    _flag(p, "executor", choices=["local", "sequential", "ray"], help="who runs the workers (default local)")
    _flag(p, "ray_address", help="Ray cluster address (auto, HOST:PORT); without it a local Ray starts")
    _flag(p, "no_progress", action="store_const", const=True, help="no progress bar")
    _add_set(p)


def pipeline_flags(args: argparse.Namespace) -> dict:
    values = {name: getattr(args, name, None) for name in PIPELINE_FLAGS}
    values["keep_candidates"] = False if getattr(args, "no_keep_candidates", None) else None
    values["progress"] = False if getattr(args, "no_progress", None) else None
    return {PIPELINE_FLAGS[k]: v for k, v in values.items() if v is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="syncvid", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("pipeline", help="run the data-processing pipeline on a folder of videos")
    add_pipeline_flags(p)

    p = sub.add_parser("demo", help="make a small sample corpus and run the pipeline on it")
    _flag(p, "output_dir", default="syncvid_demo", help="folder for the corpus (raw/) and outputs (out/)")
    p.add_argument("--size", choices=["small", "full"], default="small")
    _flag(p, "total_num_workers", type=_positive_int, default=2)

    p = sub.add_parser("make-sample", help="write a sample corpus with ground truth")
    p.add_argument("dir")
    p.add_argument("--size", choices=["small", "full"], default="small")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("config", help="show or validate a config file")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    show = csub.add_parser("show", help="print the resolved config")
    show.add_argument("file", nargs="?", default=None, help="default: the shipped pipeline config")
    _add_set(show)
    val = csub.add_parser("validate", help="check a config and print every problem")
    val.add_argument("file", nargs="?", default=None, help="default: the shipped pipeline config")
    _add_set(val)

    p = sub.add_parser("train-syncnet", help="train a SyncNet on pipeline output")
    _flag(p, "config", required=True)
    _add_set(p)

    p = sub.add_parser("train-unet", help="train the lip-sync UNet (stage 1 or 2) on pipeline output")
    _flag(p, "config", required=True, help="UNet config, e.g. configs/unet/stage1.yaml")
    _add_set(p)
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN_DIR",
                   help="continue the newest run under data.train_output_dir (or RUN_DIR) exactly")

    p = sub.add_parser("lipsync", help="dub a video with a trained lip-sync UNet")
    from syncvid.lipsync.flags import add_lipsync_flags

    add_lipsync_flags(p)

    p = sub.add_parser("filter", help="re-apply thresholds from recorded scores (no decoding)")
    p.add_argument("output_dir")
    _flag(p, "sync_conf_threshold", type=float)
    _add_set(p)

    p = sub.add_parser("rescore", help="recompute stage scores on the kept candidates")
    p.add_argument("output_dir")
    p.add_argument("--stages", default="sync,quality")
    _flag(p, "total_num_workers", type=_positive_int)
    _add_set(p)

    p = sub.add_parser("judge-sync", help="fit the corpus sync judge on a run's candidates and re-judge sync with it")
    p.add_argument("output_dir")
    _flag(p, "total_num_workers", type=_positive_int)
    _add_set(p)

    p = sub.add_parser("report", help="regenerate report.html of an output root")
    p.add_argument("output_dir")
    return parser


def _cmd_pipeline(args) -> int:
    from syncvid.config import load_pipeline_config
    from syncvid.pipeline.run import run_pipeline

    cfg = load_pipeline_config(args.config, overrides=args.overrides, flags=pipeline_flags(args))
    summary = run_pipeline(cfg)
    print(
        f"syncvid: {summary.sources} sources ({summary.skipped} already done, {summary.rejected_sources} rejected), "
        f"{summary.kept_clips} clips kept, {summary.dropped_clips} dropped, {summary.video_hours:.3f} h of video, "
        f"{summary.wall_s:.1f} s -> {summary.output_dir}"
    )
    return 0


def _cmd_demo(args) -> int:
    from syncvid.config import load_pipeline_config
    from syncvid.pipeline.run import run_pipeline
    from syncvid.sample import make_sample

    root = Path(args.output_dir).resolve()
    raw, out = root / "raw", root / "out"
    if not (raw / "ground_truth.json").is_file():
        print(f"syncvid: writing the {args.size} sample corpus to {raw}", file=sys.stderr)
        make_sample(raw, size=args.size)
    flags = {"run.input_dir": str(raw), "run.output_dir": str(out), "run.total_num_workers": args.total_num_workers}
    summary = run_pipeline(load_pipeline_config(None, flags=flags))
    print(f"syncvid demo: {summary.kept_clips} clips kept, {summary.dropped_clips} dropped, "
          f"{summary.rejected_sources} sources rejected -> {out} (see report.html, manifest.parquet, fileslist.txt)")
    return 0


def _cmd_make_sample(args) -> int:
    from syncvid.sample import make_sample

    from syncvid.errors import UsageError

    target = Path(args.dir)
    if target.exists() and not target.is_dir():
        raise UsageError(f"make-sample writes a folder, but {target} is a file")
    truth = make_sample(target, size=args.size, seed=args.seed)
    print(f"syncvid: sample corpus written; ground truth in {truth}")
    return 0


def _cmd_config(args) -> int:
    from syncvid.config import commands

    from syncvid.config import DEFAULT_PIPELINE_CONFIG

    path = args.file or str(DEFAULT_PIPELINE_CONFIG)
    if args.config_command == "show":
        return commands.show(path, args.overrides)
    if args.config_command == "validate":
        return commands.validate(path, args.overrides)
    raise UsageExit("syncvid config: choose 'show FILE' or 'validate FILE'")


def _cmd_train_syncnet(args) -> int:
    from syncvid.train.syncnet import main as train_main

    return train_main(args.config, args.overrides)


def _cmd_train_unet(args) -> int:
    from syncvid.train.unet import main as train_main

    return train_main(args.config, args.overrides, resume=args.resume)


def _cmd_lipsync(args) -> int:
    from syncvid.lipsync.dub import main as lipsync_main

    return lipsync_main(args)


def _cmd_filter(args) -> int:
    from syncvid.commands.filter import filter_main

    return filter_main(args.output_dir, args.sync_conf_threshold, args.overrides)


def _cmd_rescore(args) -> int:
    from syncvid.commands.rescore import rescore_main

    return rescore_main(args.output_dir, args.stages.split(","), args.overrides, args.total_num_workers)


def _cmd_judge_sync(args) -> int:
    from syncvid.commands.judge_sync import judge_output_root

    return judge_output_root(args.output_dir, args.overrides or [], args.total_num_workers)


def _cmd_report(args) -> int:
    from syncvid.commands.report import report_main

    return report_main(args.output_dir)


COMMANDS = {
    "pipeline": _cmd_pipeline, "demo": _cmd_demo, "make-sample": _cmd_make_sample, "config": _cmd_config,
    "train-syncnet": _cmd_train_syncnet, "train-unet": _cmd_train_unet, "lipsync": _cmd_lipsync, "filter": _cmd_filter, "rescore": _cmd_rescore, "report": _cmd_report,
    "judge-sync": _cmd_judge_sync,
}


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill PID, systemd, Slurm) received: unwinds like Ctrl-C, so workers stop and
    temporaries are cleaned up on the way out."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    from syncvid.config import ConfigError
    from syncvid.errors import RunStopped, UsageError
    from syncvid.pipeline.lock import RunLocked

    parser = build_parser()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return 2
        return COMMANDS[args.command](args)
    except (UsageExit, UsageError, ConfigError) as exc:
        for line in str(exc).splitlines() or ["usage error"]:
            print(f"syncvid: error: {line}", file=sys.stderr)
        return 2
    except RunLocked as exc:
        print(f"syncvid: error: {exc}", file=sys.stderr)
        return 2
    except RunStopped as exc:
        print(f"syncvid: error: {exc}", file=sys.stderr)
        return 1
    except Terminated:
        print("syncvid: terminated (SIGTERM); workers stopped; rerun the same command to resume", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("syncvid: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("SYNCVID_DEBUG"):
            traceback.print_exc()
        print(f"syncvid: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
