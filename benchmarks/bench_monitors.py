"""segmentation_metrics on 512x512 RGB PNG pairs: the evaluation of 2,000 pairs (on every core)
beside decoding the same pairs on one core, and peak memory at 200 and at 2,000 pairs (the
provider streams, so it should not grow).

    .venv/bin/python benchmarks/bench_monitors.py [--pairs 200] [--big 2000]

Images are generated into a temporary folder (200 distinct pairs, hard-linked up to 2,000 names).
Each memory figure is measured in a fresh process: the process's peak RSS (interpreter, imports
and the evaluation) and tracemalloc's peak (the evaluation's Python and numpy allocations).
Targets: the evaluation at most 1.0x the single-core decode-only time; memory flat from 200 to
2,000 pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 512


def make_pairs(folder: Path, unique: int, total: int, seed: int = 0) -> None:
    """`total` `<i>_Seg.png` pairs in folder/gt and folder/pred: flat regions of red (positive),
    blue (negative) and background like DeepLIIF masks, predictions = ground truth with errors."""
    rng = np.random.default_rng(seed)
    gt_dir, pred_dir = folder / "gt", folder / "pred"
    gt_dir.mkdir(parents=True)
    pred_dir.mkdir(parents=True)
    colors = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
    for i in range(unique):
        coarse = rng.choice(3, size=(SIZE // 8, SIZE // 8), p=[0.6, 0.2, 0.2])
        labels = np.kron(coarse, np.ones((8, 8), np.int64))
        wrong = np.kron(rng.random((SIZE // 4, SIZE // 4)) < 0.15, np.ones((4, 4), bool))
        pred_labels = np.where(wrong, (labels + 1) % 3, labels)
        Image.fromarray(colors[labels]).save(gt_dir / f"{i}_Seg.png")
        Image.fromarray(colors[pred_labels]).save(pred_dir / f"{i}_Seg.png")
    for i in range(unique, total):
        for d in (gt_dir, pred_dir):
            os.link(d / f"{i % unique}_Seg.png", d / f"{i}_Seg.png")


def _names(folder: Path) -> list[str]:
    return sorted(os.listdir(folder / "gt"))


def decode_only(folder: Path) -> int:
    """The floor: open and decode every pair, as the provider does, and nothing else."""
    n = 0
    for name in _names(folder):
        for sub in ("gt", "pred"):
            with Image.open(folder / sub / name) as img:
                np.asarray(img)
        n += 1
    return n


def metrics(folder: Path) -> int:
    from mlops_widgets.monitors.base import ProviderInput
    from mlops_widgets.monitors.registry import provider

    provider("segmentation_metrics").evaluate(ProviderInput(folder / "gt", folder / "pred"))
    return len(_names(folder))


def best_rates(fns: list, folder: Path, repeat: int) -> list[float]:
    """Pairs/s of each function, best of `repeat` passes, the functions alternating pass by pass
    so that a busy machine slows both alike."""
    best = [0.0] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            n = fn(folder)
            best[i] = max(best[i], n / (time.perf_counter() - t))
    return best


def _rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def child_memory(folder: Path) -> None:
    """Runs in a fresh process: peak memory of one evaluation of `folder`."""
    import tracemalloc

    tracemalloc.start()
    metrics(folder)
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"peak_rss_kib": _rss_kb(), "traced_peak_kib": peak // 1024}))


def measure_memory(folder: Path) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(folder)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=200, help="distinct pairs (throughput, small memory run)")
    ap.add_argument("--big", type=int, default=2000, help="pairs of the large memory run")
    ap.add_argument("--repeat", type=int, default=3, help="timings: best of N passes")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_memory(Path(args.child))
        return

    with tempfile.TemporaryDirectory(prefix="bench_monitors_") as tmp:
        small, big = Path(tmp) / "small", Path(tmp) / "big"
        t = time.perf_counter()
        make_pairs(small, args.pairs, args.pairs)
        make_pairs(big, args.pairs, args.big)
        print(
            f"generated {args.pairs} distinct {SIZE}x{SIZE} RGB PNG pairs ({args.big} names) "
            f"in {time.perf_counter() - t:.1f} s"
        )

        decode, seg = best_rates([decode_only, metrics], big, args.repeat)
        workers = len(os.sched_getaffinity(0))
        print(f"\n{args.big} pairs, best of {args.repeat} (this machine: {workers} cores for this process)")
        print(f"  {'decode only, one core (baseline)':<36}{args.big / decode:>8.2f} s")
        print(f"  {'segmentation_metrics, every core':<36}{args.big / seg:>8.2f} s")
        ratio = decode / seg
        print(
            f"  evaluation / decode-only time: {ratio:.2f}x (target <= 1.0x): {'ok' if ratio <= 1.0 else 'MISSED'}"
        )

        m_small = measure_memory(small)
        m_big = measure_memory(big)
        print("\npeak memory of one evaluation (a fresh process each)")
        print(f"  {'':<22}{args.pairs:>8} pairs{args.big:>8} pairs{'ratio':>8}")
        for key, label in (
            ("peak_rss_kib", "process peak RSS (KiB)"),
            ("traced_peak_kib", "tracemalloc peak (KiB)"),
        ):
            a, b = m_small[key], m_big[key]
            print(f"  {label:<22}{a:>14}{b:>14}{b / max(a, 1):>8.2f}")
        # flat: ten times the images may not cost more than 10% (+1 MiB) more memory
        flat = all(m_big[k] <= 1.1 * m_small[k] + 1024 for k in m_small)
        print(f"  memory flat from {args.pairs} to {args.big} pairs: {'ok' if flat else 'MISSED'}")


if __name__ == "__main__":
    main()
