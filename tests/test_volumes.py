"""The local storage volumes: folders under the workspace (or $MLOPS_VOLUMES) behind the
`Volumes` protocol, as scoring, the demo and the monitors reach them through `backend.volumes`."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mlops_widgets.backends import get_backend
from mlops_widgets.backends.volumes_protocol import Volumes
from mlops_widgets.errors import MlopsError, NotFoundError


@pytest.fixture
def volumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Volumes:
    monkeypatch.delenv("MLOPS_VOLUMES", raising=False)
    return get_backend("local", tmp_path / "ws").volumes


def test_local_backend_has_volumes_under_the_workspace(volumes: Volumes, tmp_path: Path) -> None:
    assert isinstance(volumes, Volumes)
    written = volumes.write("vol", "eval/gt/a_Seg.png", b"png")
    assert written.path == "eval/gt/a_Seg.png" and written.size == 3
    assert (tmp_path / "ws" / "volumes" / "vol" / "eval" / "gt" / "a_Seg.png").read_bytes() == b"png"
    assert volumes.read("vol", "eval/gt/a_Seg.png") == b"png"
    assert volumes.list_volumes() == ["vol"]
    assert volumes.local_path("vol", "eval/gt") == tmp_path / "ws" / "volumes" / "vol" / "eval" / "gt"


def test_volumes_root_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_VOLUMES", str(tmp_path / "shared"))
    volumes = get_backend("local", tmp_path / "ws").volumes
    volumes.write("vol", "x.txt", b"1")
    assert (tmp_path / "shared" / "vol" / "x.txt").read_bytes() == b"1"
    assert not (tmp_path / "ws" / "volumes").exists()


@pytest.mark.parametrize(
    "path", ["../outside.txt", "a/../../outside.txt", "/etc/passwd", "a//b.txt", "a\\..\\b"]
)
def test_paths_leaving_the_volume_are_refused(volumes: Volumes, tmp_path: Path, path: str) -> None:
    with pytest.raises(MlopsError, match="storage volume 'vol'"):
        volumes.write("vol", path, b"x")
    with pytest.raises(MlopsError, match="storage volume 'vol'"):
        volumes.read("vol", path)
    with pytest.raises(MlopsError, match="storage volume 'vol'"):
        volumes.local_path("vol", path)
    assert (
        not (tmp_path / "ws" / "outside.txt").exists()
        and not (tmp_path / "ws" / "volumes" / "outside.txt").exists()
    )


@pytest.mark.parametrize("name", ["", "..", "a/b", "."])
def test_bad_volume_names_are_refused(volumes: Volumes, name: str) -> None:
    if name == "":  # the volumes root itself, for monitors configured without a volume
        volumes.write(name, "f.txt", b"x")
        return
    with pytest.raises(MlopsError, match="invalid storage volume name"):
        volumes.write(name, "f.txt", b"x")


def test_list_files_filters_by_recency_extension_and_hides_dotfiles(volumes: Volumes) -> None:
    for name in ("new.png", "OLD.PNG", "notes.txt", ".hidden.png", "sub/deep.png"):
        volumes.write("vol", f"pred/{name}", b"x")
    old = volumes.local_path("vol", "pred/OLD.PNG")
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old, (ten_days_ago, ten_days_ago))

    names = [f.path for f in volumes.list_files("vol", "pred")]
    assert names == ["pred/OLD.PNG", "pred/new.png", "pred/notes.txt"]
    assert [f.path for f in volumes.list_files("vol", "pred", extensions=[".png"])] == [
        "pred/OLD.PNG",
        "pred/new.png",
    ]
    assert [f.path for f in volumes.list_files("vol", "pred", most_recent=7)] == [
        "pred/new.png",
        "pred/notes.txt",
    ]
    recursive = [f.path for f in volumes.list_files("vol", "pred", recursive=True, extensions=[".png"])]
    assert recursive == ["pred/OLD.PNG", "pred/new.png", "pred/sub/deep.png"]


def test_missing_folder_and_file_name_what_is_missing(volumes: Volumes) -> None:
    with pytest.raises(NotFoundError, match="folder nowhere does not exist on storage volume 'vol'"):
        volumes.list_files("vol", "nowhere")
    with pytest.raises(NotFoundError, match="file none.png does not exist"):
        volumes.read("vol", "none.png")


def test_write_replaces_atomically_and_leaves_no_temporary_file(volumes: Volumes) -> None:
    volumes.write("vol", "pred/a.png", b"old")
    volumes.write("vol", "pred/a.png", b"new")
    folder = volumes.local_path("vol", "pred")
    assert sorted(p.name for p in folder.iterdir()) == ["a.png"]
    assert volumes.read("vol", "pred/a.png") == b"new"


def test_write_into_a_folder_that_is_a_file_fails_and_keeps_the_file(volumes: Volumes) -> None:
    volumes.write("vol", "pred", b"a file")
    with pytest.raises(OSError):
        volumes.write("vol", "pred/a.png", b"x")
    assert volumes.read("vol", "pred") == b"a file"


def test_upload_and_download_folders_keep_names_and_times(volumes: Volumes, tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "nested").mkdir(parents=True)
    (source / "a.png").write_bytes(b"a")
    (source / "nested" / "b.png").write_bytes(b"b")
    past = time.time() - 3 * 86400
    os.utime(source / "a.png", (past, past))
    seen: list[tuple[int, int | None, str]] = []
    uploaded = volumes.upload_folder("vol", source, "in", progress=lambda *a: seen.append(a))
    assert [f.path for f in uploaded] == ["in/a.png", "in/nested/b.png"]
    assert [s[:2] for s in seen] == [(1, 2), (2, 2)]

    dest = volumes.download_folder("vol", "in", tmp_path / "out", most_recent=1)
    assert sorted(p.name for p in dest.iterdir()) == []  # a.png is 3 days old, b.png is in a subfolder
    dest = volumes.download_folder("vol", "in", tmp_path / "out")
    assert sorted(p.name for p in dest.iterdir()) == ["a.png"]
    assert abs((dest / "a.png").stat().st_mtime - past) < 1
