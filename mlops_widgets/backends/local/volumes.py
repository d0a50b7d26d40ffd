"""Storage volumes on the embedded backend: a folder per volume, `<root>/<volume display name>/`.

The root is $MLOPS_VOLUMES when set, else `<workspace>/volumes`, so a volume can be a folder the
user's images already live in. Paths inside a volume are relative and `/`-separated; a path that
would leave its volume (`..`, absolute) is refused before anything is touched. Files are written
through a temporary file and a rename, so a reader never sees half a file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mlops_widgets.backends.base import Progress
from mlops_widgets.backends.volumes_protocol import VolumeFile, file_filter, relative_parts
from mlops_widgets.errors import MlopsError, NotFoundError
from mlops_widgets.settings import VOLUMES
from mlops_widgets.workspace import Workspace, atomic_write, private_dirs

VOLUMES_ENV = VOLUMES.env


def volumes_root(workspace: Workspace) -> Path:
    """Where storage volumes live: $MLOPS_VOLUMES, else `<workspace>/volumes`."""
    env = VOLUMES.from_env()
    return Path(env).expanduser().resolve() if env else workspace.root / "volumes"


def volume_dir(workspace: Workspace, volume_display_name: str) -> Path:
    """The folder standing in for a Cloud Pak for Data storage volume."""
    name = volume_display_name
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise MlopsError(f"invalid storage volume name {name!r}: expected a plain folder name")
    return volumes_root(workspace) / name


class LocalVolumes:
    """The `Volumes` protocol on folders; see `backends.base`. An empty volume name stands for
    the volumes root itself (a monitor configured without a volume reads from there)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    @property
    def root(self) -> Path:
        return volumes_root(self.workspace)

    def _volume(self, volume: str) -> Path:
        return self.root if volume == "" else volume_dir(self.workspace, volume)

    def _path(self, volume: str, path: str) -> Path:
        return self._volume(volume).joinpath(*relative_parts(path, volume))

    def _writable(self, volume: str, path: str) -> Path:
        """`_path`, the workspace opened first when the volumes live in it (so writing a
        volume never makes a workspace folder without its marker)."""
        if not VOLUMES.from_env():
            self.workspace.open()
        return self._path(volume, path)

    def _file(self, volume: str, path: Path) -> VolumeFile:
        st = path.stat()
        rel = path.relative_to(self._volume(volume)).as_posix()
        return VolumeFile(rel, st.st_size, st.st_mtime)

    def list_volumes(self) -> list[str]:
        root = self.root
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def list_files(
        self,
        volume: str,
        folder: str = "",
        *,
        recursive: bool = False,
        most_recent: float | None = None,
        extensions: Sequence[str] | None = None,
    ) -> list[VolumeFile]:
        base = self._path(volume, folder)
        if not base.is_dir():
            raise NotFoundError(
                f"folder {folder or '/'} does not exist on storage volume {volume!r} ({base})"
            )
        wanted = file_filter(most_recent, extensions)
        found = []
        for p in base.rglob("*") if recursive else base.iterdir():
            rel = p.relative_to(base)
            if any(part.startswith(".") for part in rel.parts) or not p.is_file():
                continue
            f = self._file(volume, p)
            if wanted(f.path, f.modified):
                found.append(f)
        return sorted(found, key=lambda f: f.path)

    def read(self, volume: str, path: str) -> bytes:
        p = self._path(volume, path)
        try:
            return p.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"file {path} does not exist on storage volume {volume!r}") from None

    def write(self, volume: str, path: str, data: bytes) -> VolumeFile:
        if not relative_parts(path, volume):
            raise MlopsError(f"cannot write to storage volume {volume!r} without a file path")
        p = self._writable(volume, path)
        atomic_write(p, data)
        return self._file(volume, p)

    def upload_folder(
        self, volume: str, source: Path, folder: str = "", *, progress: Progress | None = None
    ) -> list[VolumeFile]:
        source = Path(source)
        if not source.is_dir():
            raise NotFoundError(f"cannot upload {source}: not a folder")
        files = sorted(p for p in source.rglob("*") if p.is_file())
        dest = self._writable(volume, folder)
        written = []
        for i, f in enumerate(files, 1):
            target = dest / f.relative_to(source)
            atomic_write(target, f.read_bytes())
            _same_times(f, target)
            written.append(self._file(volume, target))
            if progress:
                progress(i, len(files), f.name)
        return written

    def download_folder(
        self,
        volume: str,
        folder: str,
        dest: Path,
        *,
        most_recent: float | None = None,
        extensions: Sequence[str] | None = None,
    ) -> Path:
        dest = Path(dest)
        private_dirs(dest)
        for f in self.list_files(volume, folder, most_recent=most_recent, extensions=extensions):
            source = self._volume(volume).joinpath(*f.path.split("/"))
            atomic_write(dest / source.name, source.read_bytes())
            _same_times(source, dest / source.name)
        return dest

    def local_path(self, volume: str, path: str = "") -> Path:
        """Always a folder here: local volumes are folders."""
        return self._path(volume, path)


def _same_times(source: Path, target: Path) -> None:
    """`target` dated as `source` (recency filters read it), its mode left private."""
    st = source.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
