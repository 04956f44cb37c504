"""UNet figures: sizes and memory of the full configs, and the speed of one training step.

    python benchmarks/bench_unet.py                       # sizes + memory estimates + small-config step
    python benchmarks/bench_unet.py --step-config configs/unet/stage1.yaml --frames 16 --latent 32 \
        --upstream /path/to/LatentSync                    # full-size step, ours vs LatentSync's code

1. Sizes (meta device, no memory): parameter tensors, parameters, trainable parameters of
   stage1.yaml, stage2.yaml and the "efficient" stage 2.
2. Training memory estimate per GPU (fp32 weights, grads of the trainable part, AdamW's two
   moments, and the activations saved for backward — counted on the meta device with saved-
   tensor hooks — with and without gradient checkpointing) at 256 px, 16 frames, batch 1.
3. One forward+backward step (MSE to random noise) timed on this machine, each
   implementation in its own process (peak memory per process): ours and, with --upstream,
   LatentSync's own model code imported from that checkout (it needs diffusers and einops in
   the running interpreter; its unrelated utility imports are stubbed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def sizes_and_memory(frames: int, latent: int) -> None:
    from syncvid.config import load_config
    from syncvid.unet import UNet3DConditionModel
    from syncvid.unet.loading import count_parameters

    cases = [
        ("stage1", "configs/unet/stage1.yaml", []),
        ("stage2", "configs/unet/stage2.yaml", []),
        ("stage2 efficient", "configs/unet/stage2.yaml",
         ["model.motion_module_decoder_only=true", "run.trainable_modules=[motion_modules.,attn2.]"]),
    ]
    print(f"{'config':18} {'tensors':>8} {'params (M)':>11} {'trainable (M)':>14} {'weights+grads+AdamW (GB)':>25} "
          f"{'activations (GB)':>17} {'with checkpointing':>19}")
    for name, path, overrides in cases:
        cfg = load_config(REPO / path, overrides=overrides)
        c = count_parameters(cfg.model, list(cfg.run.trainable_modules))
        states = (4 * c["parameters"] + 12 * c["trainable"]) / 1e9
        acts = []
        for ckpt in (False, True):
            with torch.device("meta"):
                model = UNet3DConditionModel.from_config(cfg.model)
                if cfg.run.trainable_modules:
                    model.requires_grad_(False)
                    for n, p in model.named_parameters():
                        if any(m in n for m in cfg.run.trainable_modules):
                            p.requires_grad_(True)
                if ckpt:
                    model.enable_gradient_checkpointing()
                x = torch.empty(1, 13, frames, latent, latent)
                audio = torch.empty(1, frames, 50, cfg.model.cross_attention_dim)
            saved = [0]

            def pack(t: torch.Tensor):
                saved[0] += t.numel() * t.element_size()
                return t

            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                model(x, torch.tensor([500], device="meta"), encoder_hidden_states=audio)
            acts.append(saved[0] / 1e9)
        print(f"{name:18} {c['tensors']:>8} {c['parameters'] / 1e6:>11.3f} {c['trainable'] / 1e6:>14.3f} "
              f"{states:>25.2f} {acts[0]:>17.2f} {acts[1]:>19.2f}")
    print(f"(activations for batch 1, {frames} frames, {latent}x{latent} latents = {latent * 8} px; fp32; "
          "mixed precision roughly halves them)")


def _stub_upstream_utils() -> None:
    """LatentSync's model modules import one logging helper from a utility module that pulls in
    torchvision, decord and matplotlib; give them that helper alone."""
    util = types.ModuleType("latentsync.utils.util")
    util.zero_rank_log = lambda logger, message: None
    sys.modules["latentsync.utils.util"] = util


def one_step(impl: str, config: str, frames: int, latent: int, repeat: int, checkpointing: bool,
             upstream: str | None) -> dict:
    from syncvid.config import load_config
    from syncvid.config.typecheck import to_plain

    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    cfg = load_config(REPO / config)
    section = to_plain(cfg.model)
    if impl == "ours":
        from syncvid.unet import UNet3DConditionModel

        model = UNet3DConditionModel.from_config(section)
    else:
        sys.path.insert(0, str(upstream))
        _stub_upstream_utils()
        from latentsync.models.unet import UNet3DConditionModel as Upstream

        keys = {k: v for k, v in section.items() if k not in ("vae", "audio_encoder")}
        model = Upstream.from_config(keys)
    if checkpointing:
        model.enable_gradient_checkpointing()
    model.train()
    x = torch.randn(1, 13, frames, latent, latent)
    audio = torch.randn(1, frames, 50, cfg.model.cross_attention_dim)
    target = torch.randn(1, 4, frames, latent, latent)
    times = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        out = model(x, torch.tensor([500]), encoder_hidden_states=audio).sample
        torch.nn.functional.mse_loss(out, target).backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return {"impl": impl, "seconds_per_step": statistics.median(times[1:]), "first_step": times[0],
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--step-config", default="configs/unet/cpu_small.yaml")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--latent", type=int, default=16, help="latent side (pixels / 8 for the SD VAE)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--checkpointing", action="store_true")
    p.add_argument("--upstream", help="a LatentSync checkout to time its own UNet code beside ours")
    p.add_argument("--no-sizes", action="store_true")
    p.add_argument("--child", choices=["ours", "upstream"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(one_step(args.child, args.step_config, args.frames, args.latent, args.repeat,
                                  args.checkpointing, args.upstream)))
        return
    if not args.no_sizes:
        sizes_and_memory(16, 32)
        print()
    print(f"one training step of {args.step_config}: batch 1, {args.frames} frames, {args.latent}x{args.latent} "
          f"latents, {'with' if args.checkpointing else 'without'} gradient checkpointing, "
          f"{os.environ.get('BENCH_THREADS', '2')} threads, median of {args.repeat}")
    impls = ["ours"] + (["upstream"] if args.upstream else [])
    for impl in impls:
        cmd = [sys.executable, __file__, "--child", impl, "--step-config", args.step_config, "--frames",
               str(args.frames), "--latent", str(args.latent), "--repeat", str(args.repeat)]
        if args.checkpointing:
            cmd.append("--checkpointing")
        if args.upstream:
            cmd += ["--upstream", args.upstream]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            print(f"  {impl}: failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  {impl:9} {r['seconds_per_step']:8.3f} s/step (first {r['first_step']:.3f} s)   "
              f"peak RSS {r['peak_rss_gb']:.2f} GB")


if __name__ == "__main__":
    main()
