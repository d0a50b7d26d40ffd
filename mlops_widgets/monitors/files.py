"""Listing a storage-volume folder the way the original's `list_files(dir, most_recent=N)` did.

Only names and modification times are read here (one `scandir`), never file contents, so
listing thousands of images is cheap; providers open images one at a time afterwards.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mlops_widgets.monitors.base import ProviderError

SECONDS_PER_DAY = 86400.0


def list_files(
    folder: Path, *, most_recent: float | None = None, now: float | None = None
) -> dict[str, float]:
    """Regular, non-hidden files directly in `folder` -> mtime (epoch seconds).

    `most_recent`: keep only files modified in the last N days before `now` (None: all files).
    A missing folder is a ProviderError naming it, so the run records why it failed.
    """
    if not folder.is_dir():
        raise ProviderError(f"folder {folder} does not exist or is not a folder")
    out: dict[str, float] = {}
    with os.scandir(folder) as it:
        for entry in it:
            if not entry.name.startswith(".") and entry.is_file():
                out[entry.name] = entry.stat().st_mtime
    return keep_recent(out, most_recent, now)


def keep_recent(
    files: dict[str, float], most_recent: float | None, now: float | None = None
) -> dict[str, float]:
    """The files modified in the last `most_recent` days before `now` (None: all of them)."""
    if most_recent is None:
        return files
    cutoff = (time.time() if now is None else now) - float(most_recent) * SECONDS_PER_DAY
    return {name: mtime for name, mtime in files.items() if mtime >= cutoff}
