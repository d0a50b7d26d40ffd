"""Deterministic synthetic IHC-like tiles with their ground-truth masks, for the demo and tests.

A tile is a light background with brown (DAB-stained, positive) and blue (hematoxylin-stained,
negative) nuclei. Its mask `<name>_Seg.png` follows DeepLIIF's convention, which the segmentation
monitor reads: red channel > 0 marks positive cells, blue channel > 0 negative cells. Some nuclei
are faint, so a simple colour rule (the example kernel) misses a few and the metrics are
realistic rather than perfect.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

BACKGROUND = np.array([236, 226, 232], dtype=np.float64)
POSITIVE = np.array([150, 95, 55], dtype=np.float64)  # brown
NEGATIVE = np.array([75, 85, 165], dtype=np.float64)  # blue


def tile(seed: int, size: int = 256, nuclei: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """One RGB tile and its mask (both uint8, HxWx3) from a seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.broadcast_to(BACKGROUND, (size, size, 3)).copy()
    mask = np.zeros((size, size, 3), dtype=np.uint8)
    for _ in range(nuclei):
        cy, cx = rng.uniform(0, size, 2)
        ry, rx = rng.uniform(4, 11, 2)
        angle = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (dx * np.cos(angle) + dy * np.sin(angle)) / rx
        v = (-dx * np.sin(angle) + dy * np.cos(angle)) / ry
        inside = u * u + v * v <= 1.0
        positive = rng.random() < 0.4
        strength = rng.uniform(0.35, 1.0)  # faint nuclei (low strength) are hard to see
        colour = POSITIVE if positive else NEGATIVE
        image[inside] = BACKGROUND + strength * (colour - BACKGROUND)
        mask[inside] = (255, 0, 0) if positive else (0, 0, 255)
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_tiles(images_dir: Path, gt_dir: Path, count: int, *, size: int = 256, seed: int = 0) -> list[str]:
    """Write `count` tiles as `<name>.png` into images_dir and masks as `<name>_Seg.png` into gt_dir."""
    images_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    gt_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    names = []
    for i in range(count):
        name = f"tile_{i:03d}"
        image, mask = tile(seed * 100_003 + i, size=size)
        _save_private(Image.fromarray(image), images_dir / f"{name}.png")
        _save_private(Image.fromarray(mask), gt_dir / f"{name}_Seg.png")
        names.append(name)
    return names


def _save_private(image: Image.Image, path: Path) -> None:
    """A PNG readable by its owner only (0600), as everything mlops writes."""
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
        image.save(fh, format="PNG")
