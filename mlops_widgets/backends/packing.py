"""Packing a file or folder for upload as a data asset, shared by every space backend.

A folder is uploaded as `<folder>.zip` (the original's convention), streamed so memory stays flat
whatever the folder's size.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from mlops_widgets.backends.base import Progress
from mlops_widgets.errors import MlopsError

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
