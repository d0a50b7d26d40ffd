"""Unpacking dependency and model zips (`backends.archives.safe_unzip`): nothing lands outside the
folder whatever the archive's entries and links do, and archives over the limits are refused
before anything is written."""

from __future__ import annotations

import stat
import warnings
import zipfile
from pathlib import Path

import pytest

from mlops_widgets.backends.archives import safe_unzip, top_folder
from mlops_widgets.backends.packing import ArchiveLimits
from mlops_widgets.errors import MlopsError


def make_zip(path: Path, members: list[tuple[str, str | bytes, bool]]) -> Path:
    """Entries in order; (name, content or link target, is_link). Names may repeat."""
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # zipfile warns of duplicate names: the hostile zip needs them
        for name, data, is_link in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            kind = stat.S_IFLNK | 0o777 if is_link else stat.S_IFREG | 0o644
            info.external_attr = kind << 16
            zf.writestr(info, data)
    return path


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize(
    "members",
    [
        [("../evil.py", "x", False)],
        [("/etc/evil.py", "x", False)],
        [("sub/../../evil.py", "x", False)],
        [("C:/evil.py", "x", False)],
        [("escape", "../../outside", True)],
        [("absolute", "/etc/passwd", True)],
        [("ok.txt", "x", False), ("dir/up", "../../..", True)],
        # a link through the root and back up: lexically inside, really outside
        [("s", ".", True), ("t", "s/..", True)],
        # a link that escapes only through another link
        [("a/b", "..", True), ("a/c", "b/..", True)],
    ],
)
def test_entries_and_links_that_leave_the_folder_are_refused(tmp_path: Path, members: list) -> None:
    out = tmp_path / "box" / "out"
    before = files_under(tmp_path)
    with pytest.raises(MlopsError, match="refusing"):
        safe_unzip(make_zip(tmp_path / "bad.zip", members), out)
    assert files_under(tmp_path) - before == {tmp_path / "bad.zip"}  # nothing written, out removed


HOSTILE_DEEP = "/".join("abcdefghij")
HOSTILE_ESCAPE = "y/" + "../" * 10 + "outside/pwned.json"


@pytest.mark.parametrize(
    "members",
    [
        # issue 12: `y -> a/b/.../j`, then `model.json -> y/../../...` (which that first link makes
        # look inside), then `y -> .`: checking each link as it was made let model.json escape.
        [
            ("y", HOSTILE_DEEP, True),
            ("model.json", HOSTILE_ESCAPE, True),
            ("y", ".", True),
            ("kernel.py", "k", False),
        ],
        # without the swap, one level more: model.json really leads out through y
        [("y", HOSTILE_DEEP, True), ("model.json", "y/" + "../" * 11 + "pwned.json", True)],
        # a file entry written under the link
        [("y", ".", True), ("y/pwned.json", "x", False)],
    ],
)
def test_the_hostile_zip_of_issue_12_writes_nothing_outside(tmp_path: Path, members: list) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path.joinpath(*[f"w{i}" for i in range(9)], "dest")  # 10 levels below tmp_path
    with pytest.raises(MlopsError, match="refusing"):
        safe_unzip(make_zip(tmp_path / "hostile.zip", members), dest)
    assert list(outside.iterdir()) == [] and not dest.exists()
    assert not list(tmp_path.rglob("pwned.json"))


def test_an_entry_under_a_link_is_refused(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "under.zip", [("lib", "real", True), ("real/x.py", "x", False), ("lib/y.py", "y", False)]
    )
    with pytest.raises(MlopsError, match="lies below the link 'lib'"):
        safe_unzip(archive, tmp_path / "out")


def test_files_folders_and_inner_links_unpack(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "good.zip",
        [
            ("kernel.py", "k", False),
            ("lib/util.py", "u", False),
            ("lib/alias.py", "util.py", True),
            ("shortcut", "lib", True),
            ("back", "lib/../kernel.py", True),
        ],
    )
    names = safe_unzip(archive, tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(names) == ["back", "kernel.py", "lib/alias.py", "lib/util.py", "shortcut"]
    assert (out / "lib" / "alias.py").read_text() == "u" and (out / "shortcut" / "util.py").read_text() == "u"
    assert (out / "back").read_text() == "k"


def test_top_folder_is_stripped_when_asked(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "wrapped.zip", [("wrapped/kernel.py", "k", False), ("wrapped/lib/u.py", "u", False)]
    )
    assert top_folder(archive, keep_if="kernel.py") == "wrapped"
    safe_unzip(archive, tmp_path / "out", strip="wrapped")
    assert (tmp_path / "out" / "kernel.py").read_text() == "k" and (
        tmp_path / "out" / "lib" / "u.py"
    ).exists()
    flat = make_zip(tmp_path / "flat.zip", [("kernel.py", "k", False)])
    assert top_folder(flat, keep_if="kernel.py") == ""


def test_a_zip_bomb_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("zeros.bin", "w", force_zip64=True) as fh:
            chunk = bytes(1 << 20)
            for _ in range(512):  # 512 MiB of zeros, about 0.5 MB compressed
                fh.write(chunk)
    assert bomb.stat().st_size < 2 << 20
    with pytest.raises(MlopsError, match="max_ratio") as info:
        safe_unzip(bomb, tmp_path / "out")
    assert info.value.hint is not None and "MLOPS_ARCHIVE_MAX_RATIO" in info.value.hint.text
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("limits", "named"),
    [
        (ArchiveLimits(max_entries=3), "max_entries"),
        (ArchiveLimits(max_total_bytes=10_000), "max_total_bytes"),
    ],
)
def test_limits_on_entries_and_size_name_the_limit(tmp_path: Path, limits: ArchiveLimits, named: str) -> None:
    archive = make_zip(tmp_path / "many.zip", [(f"f{i}.txt", "x" * 3000, False) for i in range(5)])
    with pytest.raises(MlopsError, match=named):
        safe_unzip(archive, tmp_path / "out", limits=limits)
    assert not (tmp_path / "out").exists()


def test_limits_come_from_the_environment() -> None:
    limits = ArchiveLimits.from_env({"MLOPS_ARCHIVE_MAX_BYTES": "1000", "MLOPS_ARCHIVE_MAX_RATIO": "5.5"})
    assert limits.max_total_bytes == 1000 and limits.max_ratio == 5.5 and limits.max_entries == 100_000
    with pytest.raises(MlopsError, match="MLOPS_ARCHIVE_MAX_ENTRIES='lots'"):
        ArchiveLimits.from_env({"MLOPS_ARCHIVE_MAX_ENTRIES": "lots"})
    # The defaults pass a 5 GB model.
    ArchiveLimits().check_totals("model.zip", 20, 5 * 1024**3, 4 * 1024**3)
