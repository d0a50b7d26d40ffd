"""Packing a file or folder for upload as a data asset, shared by every space backend, and the
limits every unpacking of an archive honours.

A folder is uploaded as `<folder>.zip` (the original's convention), streamed so memory stays flat
whatever the folder's size.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from mlops_widgets.backends.base import Progress
from mlops_widgets.errors import Hint, MlopsError

_CHUNK = 1 << 20


def asset_name(path: str | Path) -> str:
    """The asset name a path is stored under: a folder becomes `<folder>.zip`, as in the original."""
    p = Path(path)
    return f"{p.name}.zip" if p.is_dir() else p.name


def copy_file(src: Path, out: Any, label: str, progress: Progress | None) -> None:
    """Copy `src` into the open binary file `out` in chunks, reporting progress."""
    total = src.stat().st_size
    done = 0
    with open(src, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, total, label)


def zip_folder(folder: Path, out: Any, label: str, progress: Progress | None) -> None:
    """Zip `folder` into the open binary file `out`, entries relative to the folder.

    zipfile streams each member in chunks, so memory stays flat whatever the folder's size.
    Symbolic links are stored as the files they point to only when they stay inside the folder.
    """
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    root = folder.resolve()
    total = sum(p.stat().st_size for p in files)
    done = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6, allowZip64=True) as zf:
        for p in files:
            if p.is_symlink() and not p.resolve().is_relative_to(root):
                raise MlopsError(f"cannot upload {folder}: link {p} points outside the folder")
            zf.write(p, p.relative_to(folder).as_posix())
            done += p.stat().st_size
            if progress:
                progress(done, total, label)


# --- limits on what an archive may unpack to ------------------------------------------------------


@dataclass(frozen=True)
class ArchiveLimits:
    """How much an archive (a dependency or model zip, an uploaded deployment tar) may unpack to.

    The defaults pass a 5 GB model and keep a zip bomb (a few MB holding gigabytes of zeros)
    out; each can be changed through the environment variable named in `ENV`.
    """

    max_total_bytes: int = 20 * 1024**3
    max_entries: int = 100_000
    max_ratio: float = 200.0  # uncompressed / compressed, over the archive and per large entry

    ENV: ClassVar[dict[str, str]] = {
        "max_total_bytes": "MLOPS_ARCHIVE_MAX_BYTES",
        "max_entries": "MLOPS_ARCHIVE_MAX_ENTRIES",
        "max_ratio": "MLOPS_ARCHIVE_MAX_RATIO",
    }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ArchiveLimits:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for key, var in cls.ENV.items():
            raw = env.get(var)
            if not raw:
                continue
            kind = float if key == "max_ratio" else int
            try:
                value = kind(raw)
            except ValueError:
                value = -1
            if value <= 0:
                raise MlopsError(f"environment variable {var}={raw!r}: expected a positive number")
            values[key] = value
        return cls(**values)

    def refuse(self, label: str, key: str, detail: str) -> MlopsError:
        """The error for an archive over the limit `key`, naming it and how to raise it."""
        return MlopsError(
            f"{label}: {detail}, over the limit {key}={getattr(self, key):g}",
            hint=Hint(
                "archive.limit",
                f"if the archive is genuine, raise the limit with the environment variable {self.ENV[key]}",
                {"variable": self.ENV[key], "limit": key},
            ),
        )

    def check_totals(self, label: str, entries: int, total: int, compressed: int) -> None:
        """Refuse an archive whose listing already exceeds a limit, before anything is written."""
        if entries > self.max_entries:
            raise self.refuse(label, "max_entries", f"{entries} entries")
        if total > self.max_total_bytes:
            raise self.refuse(label, "max_total_bytes", f"{total} bytes uncompressed")
        if total > RATIO_FLOOR and total > self.max_ratio * max(compressed, 1):
            raise self.refuse(label, "max_ratio", f"{total} bytes from {compressed} compressed")

    def check_entry(self, label: str, name: str, size: int, compressed: int) -> None:
        if size > RATIO_FLOOR and size > self.max_ratio * max(compressed, 1):
            raise self.refuse(label, "max_ratio", f"entry {name!r} expands {compressed} bytes to {size}")


# Below this many uncompressed bytes the ratio is not checked (a small file of zeros is no bomb).
RATIO_FLOOR = 1 << 20
