"""Packing a file or folder for upload as a data asset, shared by every space backend, and the
limits every unpacking of an archive honours.

A folder is uploaded as `<folder>.zip` (the original's convention), streamed so memory stays flat
whatever the folder's size. Every copy and unpacking writes runs of zeros as holes (`SparseWriter`),
so a sparse model stays sparse where the filesystem allows it.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar

from mlops_widgets.backends.base import Progress
from mlops_widgets.errors import Hint, MlopsError
from mlops_widgets.settings import ARCHIVE_MAX_BYTES, ARCHIVE_MAX_ENTRIES, ARCHIVE_MAX_RATIO

_CHUNK = 1 << 20


def asset_name(path: str | Path) -> str:
    """The asset name a path is stored under: a folder becomes `<folder>.zip`, as in the original."""
    p = Path(path)
    return f"{p.name}.zip" if p.is_dir() else p.name


class SparseWriter:
    """Writes into an open, seekable binary file, seeking over every aligned block of zeros instead
    of writing it: a hole where the filesystem has them, so zeros take no disk. `data` counts the
    bytes really written (what the archive limits weigh). With `out=None` it only counts."""

    BLOCK = 64 * 1024
    _ZEROS = bytes(_CHUNK)

    def __init__(self, out: IO[bytes] | None) -> None:
        self.out = out
        self.data = 0

    def write(self, chunk: bytes) -> None:
        if chunk == self._ZEROS[: len(chunk)]:
            self._skip(len(chunk))
            return
        view = memoryview(chunk)
        for start in range(0, len(view), self.BLOCK):
            block = view[start : start + self.BLOCK]
            if block == self._ZEROS[: len(block)]:
                self._skip(len(block))
            else:
                if self.out is not None:
                    self.out.write(block)
                self.data += len(block)

    def _skip(self, n: int) -> None:
        if self.out is not None:
            self.out.seek(n, os.SEEK_CUR)

    def close(self) -> None:
        """Give the file its full length (a trailing hole is written by no write)."""
        if self.out is not None:
            self.out.truncate(self.out.tell())


def copy_file(src: Path, out: IO[bytes], label: str = "", progress: Progress | None = None) -> None:
    """Copy `src` into the open binary file `out` in chunks, holes kept, reporting progress."""
    total = src.stat().st_size
    done = 0
    writer = SparseWriter(out)
    with open(src, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            writer.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, total, label)
    writer.close()


def copy_sparse(src: str | Path, dest: str | Path) -> str | Path:
    """Copy the file `src` to `dest` (replaced) with its holes kept, unlike shutil.copyfile, and
    its mode; a `copy_function` for shutil.copytree."""
    with open(dest, "wb") as out:
        copy_file(Path(src), out)
    shutil.copymode(src, dest)
    return dest


def _write_zip(
    folder: Path, files: list[Path], out: IO[bytes], stored: set[Path], report: Callable[[int], None]
) -> tuple[dict[Path, int], dict[Path, int]]:
    """Zip `files` into `out`, deflated or, for those in `stored`, stored. Returns each file's
    data (the bytes an unpacking writes, zeros aside) and its compressed size."""
    data: dict[Path, int] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for p in files:
            info = zipfile.ZipInfo.from_file(p, p.relative_to(folder).as_posix())
            info.compress_type = zipfile.ZIP_STORED if p in stored else zipfile.ZIP_DEFLATED
            counter = SparseWriter(None)
            with open(p, "rb") as src, zf.open(info, "w", force_zip64=info.file_size > 1 << 30) as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
                    counter.write(chunk)
                    report(len(chunk))
            data[p] = counter.data
        compressed = {p: zf.getinfo(p.relative_to(folder).as_posix()).compress_size for p in files}
    return data, compressed


def zip_folder(folder: Path, out: IO[bytes], label: str, progress: Progress | None) -> None:
    """Zip `folder` into the open, seekable binary file `out`, entries relative to the folder.

    Each member is streamed in chunks, so memory stays flat whatever the folder's size. Symbolic
    links are stored as the files they point to only when they stay inside the folder. What this
    builds always unpacks within `ArchiveLimits` (as the environment sets them now): should the
    deflated archive be over the ratio (a file of repeated non-zero bytes), it is written again
    with each file deflated beyond the ratio stored instead, which bounds every file's share.
    """
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    root = folder.resolve()
    for p in files:
        if p.is_symlink() and not p.resolve().is_relative_to(root):
            raise MlopsError(f"cannot upload {folder}: link {p} points outside the folder")
    total = sum(p.stat().st_size for p in files)
    done = 0

    def report(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(min(done, total), total, label)

    limits = ArchiveLimits.from_env()
    start = out.tell()
    data, compressed = _write_zip(folder, files, out, set(), report)
    if sum(data.values()) > limits.data_budget(out.tell() - start):
        out.seek(start)
        out.truncate()
        done = 0
        over = {p for p in files if data[p] > limits.max_ratio * compressed[p]}
        _write_zip(folder, files, out, over, report)


# --- limits on what an archive may unpack to ------------------------------------------------------


@dataclass(frozen=True)
class ArchiveLimits:
    """How much an archive (a dependency or model zip, an uploaded deployment tar) may unpack to.

    The ratio weighs the data an unpacking writes (runs of zeros become holes and take no disk)
    against the archive's real size on disk; entries whose data overlap are refused, so no
    listing can claim more than the archive holds. The defaults pass a 5 GB model and keep a bomb
    (a few MB unpacking to gigabytes) out; each can be changed through the environment variable
    named in `ENV`.
    """

    max_total_bytes: int = ARCHIVE_MAX_BYTES.default
    max_entries: int = ARCHIVE_MAX_ENTRIES.default
    max_ratio: float = ARCHIVE_MAX_RATIO.default  # data written / the archive's size on disk

    ENV: ClassVar[dict[str, str]] = {
        "max_total_bytes": ARCHIVE_MAX_BYTES.env,
        "max_entries": ARCHIVE_MAX_ENTRIES.env,
        "max_ratio": ARCHIVE_MAX_RATIO.env,
    }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ArchiveLimits:
        return cls(
            max_total_bytes=ARCHIVE_MAX_BYTES.from_env(env),
            max_entries=ARCHIVE_MAX_ENTRIES.from_env(env),
            max_ratio=ARCHIVE_MAX_RATIO.from_env(env),
        )

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

    def check_totals(self, label: str, entries: int, total: int) -> None:
        """Refuse an archive whose listing already exceeds a limit, before anything is written."""
        if entries > self.max_entries:
            raise self.refuse(label, "max_entries", f"{entries} entries")
        if total > self.max_total_bytes:
            raise self.refuse(label, "max_total_bytes", f"{total} bytes uncompressed")

    def data_budget(self, archive_size: int) -> int:
        """How many bytes of data (zeros aside) an archive of `archive_size` bytes may unpack to."""
        return max(RATIO_FLOOR, int(self.max_ratio * archive_size))


# An archive may always unpack to this much data, whatever its size (a small file is no bomb).
RATIO_FLOOR = 1 << 20
