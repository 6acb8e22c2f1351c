"""``vlash train``: the flags of offset-aware training; the work is :func:`policies.train.train`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from policies.lerobot_data import dataset_folder
from policies.train import TrainOptions, train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``vlash train``."""
    parser.add_argument("--dataset", required=True,
                        help="LeRobot dataset folder, or a Hub repo id user/name (data/..., runs/..., ./... are folders)")
    parser.add_argument(
        "--policy", default="act", help="policy type (act, smolvla, pi05, ...) or a checkpoint to fine-tune"
    )
    parser.add_argument("--out", type=Path, required=True, help="run folder (checkpoints/ go inside)")
    parser.add_argument("--steps", type=int, default=1000, help="total optimizer steps (default 1000)")
    parser.add_argument("--batch-size", type=int, default=8, help="samples per optimizer step")
    parser.add_argument(
        "--max-delay-steps", type=int, default=0, help="VLASH Δmax: δ ~ U{0..Δmax} per sample (0 = plain)"
    )
    parser.add_argument(
        "--state-source",
        choices=("action", "state"),
        default="action",
        help="future state input: the action a_(t+δ-1) (default) or the recorded state s_(t+δ)",
    )
    parser.add_argument("--chunk-size", type=int, default=None, help="action chunk length H of a new policy (default: the preset's)")
    parser.add_argument("--cameras", default=None, help="cameras to use (comma list, 'none'); default all")
    parser.add_argument(
        "--camera-map",
        default="",
        help="rename dataset cameras to the policy's, e.g. front=camera1,wrist=camera2 (fine-tuning VLAs; "
        "default: no renaming)",
    )
    parser.add_argument(
        "--preset",
        choices=("small", "lerobot"),
        default="small",
        help="ACT or Diffusion from scratch: 'small' (CPU-sized, default) or LeRobot's full-size defaults",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="policy config field (repeatable; default: none)"
    )
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the policy's preset)")
    parser.add_argument(
        "--save-every", type=int, default=500, help="checkpoint period in steps (0: end only)"
    )
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoints/last")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, the delays and the batches")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cuda, cpu, mps")
    parser.add_argument("--num-workers", type=int, default=0, help="image-decoding worker processes")
    parser.add_argument(
        "--image-cache-gb",
        type=float,
        default=2.0,
        help="decode all camera frames once into memory when they fit in this many GiB (0: per step)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_camera_map(text: str) -> dict[str, str]:
    """``"front=camera1,wrist=camera2"`` -> ``{"front": "camera1", "wrist": "camera2"}``."""
    pairs = [p.strip() for p in text.split(",") if p.strip()]
    if any("=" not in p for p in pairs):
        raise ValueError(f"--camera-map expects SRC=DST pairs, got {text!r}")
    return dict(p.split("=", 1) for p in pairs)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items -> config fields; values are JSON when they parse, else strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = None if value in ("None", "null") else value
    return out


def parse_cameras(text: str | None) -> tuple[str, ...] | None:
    """``--cameras``: None (every camera), or the listed names (``none`` for no camera)."""
    if text is None:
        return None
    return tuple(c.strip() for c in text.split(",") if c.strip() and c.strip() != "none")


def options_from_args(args: argparse.Namespace) -> TrainOptions:
    """The :class:`TrainOptions` the parsed flags describe."""
    return TrainOptions(
        dataset=args.dataset,
        out=args.out,
        policy=args.policy,
        steps=args.steps,
        batch_size=args.batch_size,
        max_delay_steps=args.max_delay_steps,
        state_source=args.state_source,
        chunk_size=args.chunk_size,
        cameras=parse_cameras(args.cameras),
        camera_map=parse_camera_map(args.camera_map),
        preset=args.preset,
        overrides=parse_overrides(args.set),
        lr=args.lr,
        save_every=args.save_every,
        resume=args.resume,
        seed=args.seed,
        device=args.device,
        num_workers=args.num_workers,
        image_cache_gb=args.image_cache_gb,
        progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of ``vlash train``."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        options = options_from_args(args)
        dataset_folder(args.dataset)  # a missing folder is one line before torch and LeRobot load (seconds)
        import torch

        torch.set_num_threads(args.threads or os.cpu_count() or 1)
        result = train(options)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError, ImportError) as exc:
        print(f"vlash train: {exc}", file=sys.stderr)
        return 2
    print(
        f"trained {result.steps - result.start_step} steps in {result.seconds:.1f} s "
        f"({result.steps_per_s:.2f} steps/s), final loss {result.final_loss:.4f}\n"
        f"checkpoint: {result.checkpoint}"
    )
    return 0
