"""The storage-volumes protocol: Cloud Pak for Data's volumes, or folders on the local backend."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mlops_widgets.errors import MlopsError
from mlops_widgets.monitors.files import SECONDS_PER_DAY

if TYPE_CHECKING:
    from mlops_widgets.backends.base import Progress


def relative_parts(path: str, volume: str) -> tuple[str, ...]:
    """The parts of a path inside a volume ("" is the volume itself; `.` parts and one trailing
    `/` are ignored); `..`, absolute paths and empty parts are refused. Every implementation
    checks paths with this, so a path means the same on each backend."""
    if path.startswith("/") or "\\" in path:
        raise MlopsError(
            f"path {path!r} points outside the storage volume {volume!r}: expected a relative path"
        )
    parts = [p for p in path.removesuffix("/").split("/") if p != "."] if path else []
    if ".." in parts:
        raise MlopsError(f"path {path!r} points outside the storage volume {volume!r}")
    if "" in parts:
        raise MlopsError(f"path {path!r} on storage volume {volume!r} has an empty part")
    return tuple(parts)


def file_filter(most_recent: float | None, extensions: Sequence[str] | None) -> Callable[[str, float], bool]:
    """`list_files`' selection as a test of (path, modification time): a suffix among
    `extensions` (case-insensitive) and modified in the last `most_recent` days."""
    since = None if most_recent is None else time.time() - most_recent * SECONDS_PER_DAY
    suffixes = None if extensions is None else tuple(e.lower() for e in extensions)

    def wanted(path: str, modified: float) -> bool:
        return (suffixes is None or PurePosixPath(path).suffix.lower() in suffixes) and (
            since is None or modified >= since
        )

    return wanted


@dataclass(frozen=True)
class VolumeFile:
    """A file on a storage volume: its path relative to the volume, size and modification time."""

    path: str
    size: int
    modified: float  # epoch seconds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Volumes(Protocol):
    """Storage volumes (Cloud Pak for Data's; folders on the local backend): where images,
    ground truth and predictions live for scoring, the monitors and the kernels.

    Paths are relative to the volume, `/`-separated; `..`, absolute paths and empty parts are
    refused (MlopsError). A missing volume or path is a NotFoundError naming it.
    """

    def list_volumes(self) -> list[str]:
        """The volumes' display names."""
        ...

    def list_files(
        self,
        volume: str,
        folder: str = "",
        *,
        recursive: bool = False,
        most_recent: float | None = None,
        extensions: Sequence[str] | None = None,
    ) -> list[VolumeFile]:
        """Regular, non-hidden files under `folder` (directly in it unless `recursive`), sorted by
        path; `most_recent`: only those modified in the last N days; `extensions`: only these
        suffixes (".png", case-insensitive)."""
        ...

    def read(self, volume: str, path: str) -> bytes:
        """A file's bytes."""
        ...

    def write(self, volume: str, path: str, data: bytes) -> VolumeFile:
        """Create or replace a file (its folders created); never half-written."""
        ...

    def upload_folder(
        self, volume: str, source: Path, folder: str = "", *, progress: Progress | None = None
    ) -> list[VolumeFile]:
        """Copy the files of the local folder `source` (recursively) under `folder`."""
        ...

    def download_folder(
        self,
        volume: str,
        folder: str,
        dest: Path,
        *,
        most_recent: float | None = None,
        extensions: Sequence[str] | None = None,
    ) -> Path:
        """Copy the files directly in `folder` into the local folder `dest` (created), keeping
        their modification times; returns `dest`."""
        ...

    def local_path(self, volume: str, path: str = "") -> Path | None:
        """Where the file or folder lies on this machine (local backend), else None: callers
        that can read in place skip a download."""
        ...
