"""Unpacking dependency and model zips (`backends.archives.safe_unzip`): nothing lands outside the
folder whatever the archive's entries and links do, archives over the limits are refused and
leave nothing, zeros stay holes, and what mlops zips itself always unpacks."""

from __future__ import annotations

import random
import stat
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest

from mlops_widgets.backends.archives import safe_unzip, top_folder
from mlops_widgets.backends.packing import ArchiveLimits, copy_sparse, zip_folder
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


def test_unpacked_folders_and_files_are_private(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "deep.zip", [("a/b/c/net.pt", "w", False), ("top.txt", "t", False)])
    safe_unzip(archive, tmp_path / "out" / "new")
    out = tmp_path / "out" / "new"
    for path in [out, out / "a", out / "a" / "b", out / "a" / "b" / "c"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in [out / "top.txt", out / "a" / "b" / "c" / "net.pt"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


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


@pytest.mark.slow  # a 512 MiB archive: out of the fast tier
def test_a_zip_bomb_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("ones.bin", "w", force_zip64=True) as fh:
            chunk = b"\x01" * (1 << 20)  # not zeros: those would be holes, taking no disk
            for _ in range(512):  # 512 MiB, about 0.5 MB compressed
                fh.write(chunk)
    assert bomb.stat().st_size < 2 << 20
    with pytest.raises(MlopsError, match="max_ratio") as info:
        safe_unzip(bomb, tmp_path / "out")
    assert info.value.hint is not None and "MLOPS_ARCHIVE_MAX_RATIO" in info.value.hint.text
    assert not (tmp_path / "out").exists()


def overlapping_zip(path: Path, entries: int, data: bytes) -> Path:
    """The overlapping-entries bomb: `entries` entries whose deflated data is one and the same
    block `data` deflated once. Each entry's data starts with a stored deflate block quoting the
    next entry's local header, so every entry unpacks to the headers after it and then `data`;
    names, sizes and CRCs are honest, the archive holds `data` once."""
    kernel = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail, plain = kernel.compress(data) + kernel.flush(), data  # entry i's compressed data, its bytes
    headers: list[bytes] = []
    for i in reversed(range(entries)):
        name = f"e{i:02d}".encode()
        fields = (zlib.crc32(plain), len(tail), len(plain), len(name), 0)
        header = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, *fields) + name
        headers.insert(0, header)
        quote = struct.pack("<BHH", 0, len(header), 0xFFFF ^ len(header))  # a stored block: header
        tail, plain = quote + header + tail, header + plain
    body = b"".join(
        h + struct.pack("<BHH", 0, len(n), 0xFFFF ^ len(n))
        for h, n in zip(headers, headers[1:], strict=False)
    )
    body += headers[-1] + kernel_tail(data)
    offsets = [0]
    for h in headers[:-1]:
        offsets.append(offsets[-1] + len(h) + 5)
    central = b""
    for offset, header in zip(offsets, headers, strict=True):
        _, _, _, method, _, _, crc, csize, usize, nlen, _ = struct.unpack("<4sHHHHHIIIHH", header[:30])
        fields = (20, 20, 0, method, 0, 0, crc, csize, usize, nlen, 0, 0, 0, 0, 0o100644 << 16, offset)
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", *fields) + header[30:]
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, entries, entries, len(central), len(body), 0)
    path.write_bytes(body + central + end)
    return path


def kernel_tail(data: bytes) -> bytes:
    kernel = zlib.compressobj(9, zlib.DEFLATED, -15)
    return kernel.compress(data) + kernel.flush()


def test_overlapping_entries_are_refused(tmp_path: Path) -> None:
    # 40 entries sharing one deflated block: each entry's sizes honest, the archive holding the
    # data once. Python's zipfile reads every entry without complaint.
    data = random.Random(1).randbytes(1024) * 1024  # 1 MiB deflating about 100:1
    bomb = overlapping_zip(tmp_path / "overlap.zip", 40, data)
    with zipfile.ZipFile(bomb) as zf:
        assert len(zf.infolist()) == 40 and all(zf.read(f"e{i:02d}").endswith(data) for i in range(40))
        assert sum(i.file_size for i in zf.infolist()) > 40 * len(data) > 200 * bomb.stat().st_size
    with pytest.raises(MlopsError, match="refusing entry 'e01': its bytes overlap those of entry 'e00'"):
        safe_unzip(bomb, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # The same with one entry is an ordinary archive.
    assert safe_unzip(overlapping_zip(tmp_path / "one.zip", 1, data), tmp_path / "one") == ["e00"]


def test_the_ratio_weighs_the_archives_real_size(tmp_path: Path) -> None:
    # The data written, weighed against the archive's size on disk (not its own listing's word).
    archive = make_zip(tmp_path / "data.zip", [("a.bin", bytes(range(256)) * 16384, False)])  # 4 MiB
    real = archive.stat().st_size
    limits = ArchiveLimits(max_ratio=(4 << 20) / real / 2)  # half what it really unpacks to
    with pytest.raises(MlopsError, match=f"from {real} bytes of archive, over the limit max_ratio"):
        safe_unzip(archive, tmp_path / "out", limits=limits)
    assert not (tmp_path / "out").exists()
    assert safe_unzip(archive, tmp_path / "ok", limits=ArchiveLimits(max_ratio=(4 << 20) / real)) == ["a.bin"]


def supports_holes(folder: Path) -> bool:
    probe = folder / "probe"
    with open(probe, "wb") as fh:
        fh.truncate(8 << 20)
    holes = probe.stat().st_blocks * 512 < 1 << 20
    probe.unlink()
    return holes


def test_zeros_unpack_as_holes_and_what_mlops_zips_always_unpacks(tmp_path: Path) -> None:
    if not supports_holes(tmp_path):
        pytest.skip("this filesystem has no sparse files")
    model = tmp_path / "model"
    model.mkdir()
    with open(model / "sparse.bin", "wb") as fh:  # 32 MiB, nearly all hole
        fh.write(b"head")
        fh.seek(32 << 20)
        fh.write(b"tail")
    (model / "ones.bin").write_bytes(b"\x01" * (8 << 20))  # deflates about 1000:1, over the ratio
    archive = tmp_path / "model.zip"
    with open(archive, "wb") as out:
        zip_folder(model, out, "model.zip", None)
    out_dir = tmp_path / "out"
    assert sorted(safe_unzip(archive, out_dir)) == ["ones.bin", "sparse.bin"]
    sparse = out_dir / "sparse.bin"
    assert sparse.read_bytes() == (model / "sparse.bin").read_bytes()
    assert sparse.stat().st_blocks * 512 < 1 << 20  # the zeros are a hole, as in the original
    assert (out_dir / "ones.bin").read_bytes() == (model / "ones.bin").read_bytes()
    copy = tmp_path / "copy.bin"
    copy_sparse(model / "sparse.bin", copy)
    assert copy.read_bytes() == sparse.read_bytes() and copy.stat().st_blocks * 512 < 1 << 20


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
    with pytest.raises(
        MlopsError, match="MLOPS_ARCHIVE_MAX_ENTRIES must be a positive whole number, got 'lots'"
    ):
        ArchiveLimits.from_env({"MLOPS_ARCHIVE_MAX_ENTRIES": "lots"})
    # The defaults pass a 5 GB model.
    ArchiveLimits().check_totals("model.zip", 20, 5 * 1024**3)
