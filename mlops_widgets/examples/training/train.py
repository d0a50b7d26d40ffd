"""Example WMLA training script: learn the example kernel's colour rule from IHC tiles.

The "model" is the rule `../deployment/kernel.py` applies (weights.json of the model folder):
a pixel of a 3x3-smoothed tile is positive when darker than `max_brightness` and redder than
blue by `min_red_minus_blue`, negative when bluer than red by `min_blue_minus_red`. Training
searches those three numbers for the best Dice against the ground-truth masks, in seconds on
a CPU with numpy only.

Data: `$DATA_DIR/images/<name>.png` with masks `$DATA_DIR/gt/<name>_Seg.png` (DeepLIIF's
convention: red channel positive, blue negative) when DATA_DIR holds them, else synthetic tiles
(`synthetic.py`, submitted beside this file). Output: `$RESULT_DIR/weights.json` (the folder
staged as the model). Distributed (WMLA distPyTorch sets RANK and WORLD_SIZE): rank 0 writes.

    python train.py [--tiles 6] [--size 128] [--seed 7]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def smooth(rgb):
    """The kernel's 3x3 mean (same arithmetic, so the learnt thresholds transfer)."""
    img = rgb.astype(np.float32)
    h, w = img.shape[:2]
    pad = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return sum(pad[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)) / 9.0


def load_tiles(data_dir, count, size, seed):
    images, gt = Path(data_dir or "") / "images", Path(data_dir or "") / "gt"
    if data_dir and images.is_dir() and gt.is_dir():
        from PIL import Image

        pairs = []
        for path in sorted(images.glob("*.png")):
            mask = gt / f"{path.stem}_Seg.png"
            if mask.is_file():
                pairs.append(
                    (np.asarray(Image.open(path).convert("RGB")), np.asarray(Image.open(mask).convert("RGB")))
                )
        if pairs:
            print(f"training on {len(pairs)} tiles from {data_dir}")
            return pairs
    import synthetic

    print(f"training on {count} synthetic tiles of {size}x{size} (seed {seed})")
    return [synthetic.tile(seed * 1000 + i, size=size) for i in range(count)]


def dice(pred, truth):
    tp = np.count_nonzero(pred & truth)
    total = np.count_nonzero(pred) + np.count_nonzero(truth)
    return 2.0 * tp / total if total else 1.0


def train(pairs):
    """The brightness limit and the two colour margins with the best mean Dice of both classes."""
    feats = []
    for rgb, mask in pairs:
        s = smooth(rgb)
        feats.append((s[..., 0] - s[..., 2], s.mean(axis=2), mask[..., 0] > 0, mask[..., 2] > 0))
    best = {"dice": -1.0}
    brightness = range(120, 241, 10)
    for step, bright in enumerate(brightness, 1):
        pos = max(
            (np.mean([dice((b < bright) & (d >= t), p) for d, b, p, _ in feats]), t) for t in range(0, 121, 5)
        )
        neg = max(
            (np.mean([dice((b < bright) & (-d >= t), n) for d, b, _, n in feats]), t)
            for t in range(0, 121, 5)
        )
        if (pos[0] + neg[0]) / 2 > best["dice"]:
            best = {
                "dice": float(pos[0] + neg[0]) / 2,
                "max_brightness": bright,
                "positive": (float(pos[0]), pos[1]),
                "negative": (float(neg[0]), neg[1]),
            }
        print(f"step {step}/{len(brightness)}: mean dice {best['dice']:.3f}", flush=True)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=6)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    print(f"worker {rank} of {world}", flush=True)
    started = time.monotonic()
    best = train(load_tiles(os.environ.get("DATA_DIR"), args.tiles, args.size, args.seed))
    if rank != 0:
        return 0
    weights = {
        "name": "deepliif-demo",
        "version": 2,
        "positive": {"description": "brown (DAB) stained nuclei", "min_red_minus_blue": best["positive"][1]},
        "negative": {
            "description": "blue (hematoxylin) stained nuclei",
            "min_blue_minus_red": best["negative"][1],
        },
        "max_brightness": best["max_brightness"],
        "training": {
            "dice_positive": round(best["positive"][0], 4),
            "dice_negative": round(best["negative"][0], 4),
            "seconds": round(time.monotonic() - started, 2),
        },
    }
    out = Path(os.environ.get("RESULT_DIR") or "output")
    out.mkdir(parents=True, exist_ok=True)
    (out / "weights.json").write_text(json.dumps(weights, indent=2) + "\n")
    print(f"wrote {out / 'weights.json'}: {json.dumps(weights['training'])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
