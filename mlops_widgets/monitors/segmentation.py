"""segmentation_metrics: the DeepLIIF definition of pixel agreement between two mask folders.

For every `<name>_Seg.png` present (and recent) in both folders: positive mask = red channel > 0,
negative mask = blue channel > 0; per mask TP, FP, FN, TN pixel counts give IOU, precision,
recall, f1, Dice and PixAcc; when TP = 0 every metric is 0 if the ground truth has foreground or
FP > 0, else 1. `<metric>_positive` / `<metric>_negative` are these fractions averaged over the
images; `<metric>` is their mean times 100.

Pairs are decoded and reduced to four counts per mask on every core: a pool of threads (Pillow's
PNG decoder and numpy's comparisons release the GIL) with at most a few pairs per thread in
flight, so memory does not grow with the number of images; the metric arithmetic runs
vectorized over chunks of images.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from mlops_widgets.monitors.base import ProviderError, ProviderInput
from mlops_widgets.monitors.definitions import SEGMENTATION
from mlops_widgets.monitors.files import list_files

SUFFIX = "_Seg.png"
MIN_FILES = 3  # the original refused to evaluate fewer recent files
METRICS = ("precision", "recall", "f1", "Dice", "IOU", "PixAcc")
_CHUNK = 256  # images per vectorized reduction: bounds memory, amortizes numpy overhead
_IN_FLIGHT = 2  # pairs queued per thread: keeps every core busy, memory bounded


def channel_counts(gt: np.ndarray, pred: np.ndarray) -> tuple[int, int, int, int]:
    """TP, FP, FN, TN of one mask from two 2-D channel planes (pixel > 0 = foreground).

    Contiguous planes make this cheap (the comparisons are the cost; on a strided channel view of
    an RGB array they are ~25x slower), hence `_planes`.
    """
    if gt.shape != pred.shape:
        raise ValueError(
            f"sizes differ: ground truth {gt.shape[1]}x{gt.shape[0]}, "
            f"prediction {pred.shape[1]}x{pred.shape[0]}"
        )
    g = gt > 0
    p = pred > 0
    tp = int(np.count_nonzero(g & p))
    fp = int(np.count_nonzero(p)) - tp
    fn = int(np.count_nonzero(g)) - tp
    return tp, fp, fn, g.size - tp - fp - fn


def metrics_from_counts(counts: np.ndarray) -> np.ndarray:
    """Per-mask metrics from counts (..., 4) -> (..., 6) in METRICS order, vectorized."""
    c = counts.astype(np.float64)
    tp, fp, fn, tn = c[..., 0], c[..., 1], c[..., 2], c[..., 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
        f1 = 2 * precision * recall / (precision + recall)
        dice = 2 * tp / (2 * tp + fp + fn)
        iou = tp / (tp + fp + fn)
        pixacc = (tp + tn) / (tp + fp + fn + tn)
    out = np.stack([precision, recall, f1, dice, iou, pixacc], axis=-1)
    # TP = 0: all 0 when the ground truth has foreground or anything was predicted, else all 1.
    no_tp = tp == 0
    fallback = np.where((tp + fn > 0) | (fp > 0), 0.0, 1.0)
    return np.where(no_tp[..., None], fallback[..., None], out)


def _planes(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The red and blue channels of an image as contiguous 2-D arrays (palette, grey and other
    modes are converted to RGB first)."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            img = opened if opened.mode in ("RGB", "RGBA") else opened.convert("RGB")
            img.load()
            return np.asarray(img.getchannel(0)), np.asarray(img.getchannel(2))
    except (OSError, ValueError) as exc:
        raise ProviderError(f"cannot read image {path}: {exc}") from exc


def _counts(pair: tuple[Path, Path]) -> np.ndarray:
    """Counts (2, 4) of one (ground truth, prediction) pair."""
    gt_path, pred_path = pair
    gt, pred = _planes(gt_path), _planes(pred_path)
    try:
        counts = [channel_counts(g, p) for g, p in zip(gt, pred, strict=True)]
    except ValueError as exc:
        raise ProviderError(f"{gt_path.name}: {exc} ({gt_path.parent}, {pred_path.parent})") from exc
    return np.array(counts, dtype=np.int64)


def default_workers() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def pair_counts(pairs: Iterable[tuple[Path, Path]], workers: int | None = None) -> Iterator[np.ndarray]:
    """Counts (2, 4) per (ground truth, prediction) pair, in order, decoding `workers` pairs at
    once (default: every core) with at most _IN_FLIGHT pairs per worker waiting."""
    workers = workers or default_workers()
    if workers == 1:
        yield from map(_counts, pairs)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="segmentation")
    pending: deque[Future[np.ndarray]] = deque()
    try:
        for pair in pairs:
            pending.append(pool.submit(_counts, pair))
            if len(pending) >= workers * _IN_FLIGHT:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def average_metrics(counts: Iterable[np.ndarray]) -> dict[str, float]:
    """The 18 metrics averaged over images, from a stream of per-image counts (2, 4)."""
    sums = np.zeros((2, len(METRICS)))
    n = 0
    chunk: list[np.ndarray] = []
    for item in counts:
        chunk.append(item)
        if len(chunk) == _CHUNK:
            sums += metrics_from_counts(np.stack(chunk)).sum(axis=0)
            n += len(chunk)
            chunk.clear()
    if chunk:
        sums += metrics_from_counts(np.stack(chunk)).sum(axis=0)
        n += len(chunk)
    if n == 0:
        raise ProviderError("no image pairs to evaluate")
    means = sums / n  # (mask, metric)
    out: dict[str, float] = {}
    for j, metric in enumerate(METRICS):
        out[metric] = float((means[0, j] + means[1, j]) / 2 * 100)
        out[f"{metric}_positive"] = float(means[0, j])
        out[f"{metric}_negative"] = float(means[1, j])
    return {name: out[name] for name in SEGMENTATION.metric_names}


def recent_pairs(inputs: ProviderInput) -> list[str]:
    """Names of `*_Seg.png` present and recent in both folders, sorted."""
    gt = list_files(inputs.dir_gt, most_recent=inputs.most_recent, now=inputs.now)
    pred = list_files(inputs.dir_pred, most_recent=inputs.most_recent, now=inputs.now)
    return sorted(name for name in gt.keys() & pred.keys() if name.endswith(SUFFIX))


def compute(inputs: ProviderInput) -> dict[str, float]:
    """The provider: pair the folders, refuse fewer than MIN_FILES pairs, stream the metrics."""
    names = recent_pairs(inputs)
    if len(names) < MIN_FILES:
        window = f"in the past {inputs.most_recent:g} days " if inputs.most_recent is not None else ""
        raise ProviderError(
            f"Needs at least {MIN_FILES} newly created files {window}to run the evaluation, "
            f"currently only {len(names)} files can be found "
            f"(*{SUFFIX} in both {inputs.dir_gt} and {inputs.dir_pred})."
        )
    pairs = ((inputs.dir_gt / n, inputs.dir_pred / n) for n in names)
    return average_metrics(pair_counts(pairs))
