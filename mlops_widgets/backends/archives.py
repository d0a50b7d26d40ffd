"""Unpacking archives so that nothing can land outside their folder: dependency and model zips
(`safe_unzip`) and deploy uploads, tars of a submission folder as WMLA takes them (`safe_untar`).

Safe by construction rather than by checking each entry as it is written, and the same for both
formats: the whole archive is planned first (names, links, sizes), the final tree is checked as
a whole (every link resolved through the other links of that tree must stay inside; no entry
under a link; no name twice), then regular files and folders are written into a fresh folder
where no link exists yet, with O_NOFOLLOW|O_EXCL, and the links are made last. So no write ever
goes through a link, and no later entry can change what an earlier check relied on.

The limits of `ArchiveLimits`: entry count and declared total before the first byte is written,
with a zip's entries refused when their data overlap (a bomb's trick: many entries sharing one
compressed block, which Python's zipfile does not notice) or lie outside the archive; then, while
writing, the data written (runs of zeros are holes, as `SparseWriter` makes them) against the
archive's real size on disk. A refused archive leaves nothing. Files are private to their owner
(0600, 0700 when executable), as everything in a workspace.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import struct
import tarfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mlops_widgets.backends.packing import ArchiveLimits, SparseWriter
from mlops_widgets.errors import MlopsError

_MAX_LINK_HOPS = 40
_MAX_LINK_TARGET = 4096
_CHUNK = 1 << 20
UPLOAD_LABEL = "the deploy upload"


@dataclass(frozen=True)
class Member:
    """One entry of an archive, whatever its format."""

    name: str  # as the archive spells it (messages quote it)
    parts: tuple[str, ...]  # its path inside the folder
    kind: str  # "file" | "dir" | "link"
    source: Any  # the format's own record of it (ZipInfo, TarInfo)
    target: str = ""  # a link's target
    size: int = 0  # a file's declared size
    compressed: int = 0  # a file's compressed size, where the format tells it
    executable: bool = False


def _refuse(label: str, what: str, why: str) -> MlopsError:
    return MlopsError(f"{label}: refusing {what}: {why}")


def _parts(label: str, raw: str, what: str) -> tuple[str, ...]:
    """The path components of an entry name or a link target, `.` and empty parts dropped;
    absolute paths, drive letters and NUL refused."""
    text = raw.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text) or "\0" in text:
        raise _refuse(label, what, "it points outside the folder (an absolute path)")
    return tuple(p for p in text.split("/") if p not in ("", "."))


def entry_parts(label: str, name: str, strip: str = "") -> tuple[str, ...]:
    """An entry's path inside the folder (the top folder `strip` dropped); () for the top itself."""
    parts = _parts(label, name, f"entry {name!r}")
    if ".." in parts:
        raise _refuse(label, f"entry {name!r}", "it climbs out of the folder (..)")
    if strip:
        if not parts or parts[0] != strip:
            raise MlopsError(f"{label}: entry {name!r} is not under the top folder {strip!r}")
        parts = parts[1:]
    return parts


def _resolve(label: str, link: Member, links: dict[tuple[str, ...], str]) -> None:
    """Follow `link` through the final tree (other links included, `..` applied to where a link
    really leads, not to its name) and refuse it unless every step stays inside the folder."""
    what = f"link {link.name!r} -> {link.target!r}"
    pending = list(_parts(label, link.target, what))
    resolved: list[str] = list(link.parts[:-1])
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if not resolved:
                raise _refuse(label, what, "it points outside the folder")
            resolved.pop()
            continue
        resolved.append(part)
        target = links.get(tuple(resolved))
        if target is not None:
            hops += 1
            if hops > _MAX_LINK_HOPS:
                raise _refuse(label, what, "its links form a loop")
            resolved.pop()
            pending = list(_parts(label, target, what)) + pending


def plan(label: str, members: Iterable[Member]) -> list[Member]:
    """The archive's final tree, refused unless each name comes once (folders may repeat), no
    entry lies below a link, and every link, followed through the tree, stays inside."""
    tree: dict[tuple[str, ...], Member] = {}
    for m in members:
        seen = tree.get(m.parts)
        if seen is not None and not (seen.kind == m.kind == "dir"):
            raise _refuse(label, f"entry {m.name!r}", "the archive holds it twice")
        tree[m.parts] = m
    links = {p: m.target for p, m in tree.items() if m.kind == "link"}
    for m in tree.values():
        for n in range(1, len(m.parts)):
            if m.parts[:n] in links:
                raise _refuse(label, f"entry {m.name!r}", f"it lies below the link {'/'.join(m.parts[:n])!r}")
    for m in tree.values():
        if m.kind == "link":
            _resolve(label, m, links)
    return list(tree.values())


class _Budget:
    """The data an archive may still unpack to (its declared sizes, and the limits' ratio of its
    real size): counted as it is written, refused as soon as it is over."""

    def __init__(self, label: str, members: list[Member], limits: ArchiveLimits, archive_size: int) -> None:
        self.label, self.limits = label, limits
        self.declared = sum(m.size for m in members if m.kind == "file")
        self.data = limits.data_budget(archive_size)
        self.archive_size = archive_size

    def spend(self, m: Member, read: int, written: int) -> None:
        self.declared -= read
        if self.declared < 0:
            raise MlopsError(f"{self.label}: entry {m.name!r} unpacks to more than the archive declares")
        self.data -= written
        if self.data < 0:
            raise self.limits.refuse(
                self.label,
                "max_ratio",
                f"entry {m.name!r} takes the data unpacked past "
                f"{self.limits.data_budget(self.archive_size)} bytes from {self.archive_size} bytes of archive",
            )


def _write(m: Member, source: IO[bytes], path: Path, budget: _Budget) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o700 if m.executable else 0o600)
    with source, os.fdopen(fd, "wb") as out:
        writer = SparseWriter(out)
        while chunk := source.read(_CHUNK):
            before = writer.data
            writer.write(chunk)
            budget.spend(m, len(chunk), writer.data - before)
        writer.close()


def extract(
    label: str,
    members: list[Member],
    dest: Path,
    open_file: Callable[[Member], IO[bytes]],
    limits: ArchiveLimits,
    archive_size: int,
) -> list[str]:
    """Write the planned `members` into `dest` (a new or empty folder; removed again on failure):
    folders and files first, links last. Returns the names written, relative to `dest`."""
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise MlopsError(f"{label}: cannot unpack into {dest}, it is not a new empty folder")
    try:
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
        budget = _Budget(label, members, limits, archive_size)
        made: set[Path] = {dest}
        for m in sorted(members, key=lambda m: m.kind == "link"):
            path = dest.joinpath(*m.parts)
            folder = path if m.kind == "dir" else path.parent
            for parent in [*reversed(folder.relative_to(dest).parents), folder.relative_to(dest)]:
                if dest / parent not in made:  # private like the files (mkdir's parents get 0755)
                    (dest / parent).mkdir(mode=0o700, exist_ok=True)
                    made.add(dest / parent)
            if m.kind == "link":
                os.symlink(m.target, path)
            elif m.kind == "file":
                _write(m, open_file(m), path, budget)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return ["/".join(m.parts) for m in members]


# --- zip --------------------------------------------------------------------------------------------


def top_folder(archive: Path, keep_if: str) -> str:
    """The single top folder all entries of `archive` share (as zipping a folder with its name
    produces), unless a file named `keep_if` lies at the top; "" otherwise."""
    with zipfile.ZipFile(archive) as zf:
        entries = [
            (tuple(p for p in i.filename.replace("\\", "/").split("/") if p not in ("", ".")), i.is_dir())
            for i in zf.infolist()
        ]
    tops = {parts[0] for parts, _ in entries if parts}
    if len(tops) != 1 or any(parts == (keep_if,) for parts, _ in entries):
        return ""
    is_folder = any(len(parts) > 1 or is_dir for parts, is_dir in entries if parts)
    return tops.pop() if is_folder else ""


def _zip_members(zf: zipfile.ZipFile, label: str, strip: str) -> Iterable[Member]:
    for info in zf.infolist():
        parts = entry_parts(label, info.filename, strip)
        if not parts:
            continue
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            if info.file_size > _MAX_LINK_TARGET:
                raise _refuse(label, f"link {info.filename!r}", "its target is too long")
            yield Member(info.filename, parts, "link", info, target=zf.read(info).decode("utf-8", "replace"))
        elif info.is_dir():
            yield Member(info.filename, parts, "dir", info)
        else:
            yield Member(
                info.filename,
                parts,
                "file",
                info,
                size=info.file_size,
                compressed=info.compress_size,
                executable=bool(mode & 0o100),
            )


_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # a zip entry's local header, before its name


def check_layout(label: str, zf: zipfile.ZipFile, fh: IO[bytes]) -> None:
    """Refuse a zip whose entries' bytes (local header, name, extra field, data) overlap one
    another or run past the central directory: each entry must hold bytes of its own, so the
    declared compressed sizes add up to no more than the archive."""
    spans = []
    for info in zf.infolist():
        fh.seek(info.header_offset)
        header = fh.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise _refuse(label, f"entry {info.filename!r}", "its local header is missing")
        name_len, extra_len = _LOCAL_HEADER.unpack(header)[-2:]
        end = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len + info.compress_size
        spans.append((info.header_offset, end, info.filename))
    spans.sort()
    for (_, end, name), (start, _, other) in zip(spans, spans[1:], strict=False):
        if start < end:
            raise _refuse(label, f"entry {other!r}", f"its bytes overlap those of entry {name!r}")
    if spans and spans[-1][1] > zf.start_dir:
        raise _refuse(label, f"entry {spans[-1][2]!r}", "its data runs past the end of the entries")


def safe_unzip(
    archive: Path, dest: Path, *, strip: str = "", limits: ArchiveLimits | None = None, label: str = ""
) -> list[str]:
    """Unpack `archive` into `dest` (a new or empty folder; removed again on failure), dropping
    the top folder `strip` from every name when given. Returns the names written, relative to
    `dest`. Refuses, with an MlopsError naming the archive (`label`, default its file name), the
    entry or the limit, anything that would land outside or exceed the limits."""
    limits = limits or ArchiveLimits.from_env()
    label, dest = label or Path(archive).name, Path(dest)
    try:
        with open(archive, "rb") as fh, zipfile.ZipFile(fh) as zf:
            infos = zf.infolist()
            limits.check_totals(label, len(infos), sum(i.file_size for i in infos))
            check_layout(label, zf, fh)
            members = plan(label, _zip_members(zf, label, strip))
            size = os.fstat(fh.fileno()).st_size
            return extract(label, members, dest, lambda m: zf.open(m.source), limits, size)
    except (zipfile.BadZipFile, OSError) as exc:
        raise MlopsError(f"{label}: cannot unpack into {dest}: {exc}") from exc


# --- tar ---------------------------------------------------------------------------------------------


def _tar_members(members: list[tarfile.TarInfo], label: str) -> Iterable[Member]:
    for m in members:
        parts = entry_parts(label, m.name)
        if m.islnk():
            raise _refuse(label, f"entry {m.name!r}", "it is a hard link (not accepted)")
        if m.issparse() or not (m.isfile() or m.isdir() or m.issym()):
            raise _refuse(label, f"entry {m.name!r}", "it is not a file, folder or symbolic link")
        if not parts:
            continue
        if m.issym():
            yield Member(m.name, parts, "link", m, target=m.linkname)
        elif m.isdir():
            yield Member(m.name, parts, "dir", m)
        else:
            yield Member(
                m.name, parts, "file", m, size=m.size, compressed=m.size, executable=bool(m.mode & 0o100)
            )


def safe_untar(archive: Path, dest: Path, limits: ArchiveLimits) -> list[str]:
    """Unpack a deploy upload, a tar of any compression, into `dest` (a new or empty folder;
    removed again on failure), within the same rules and limits as a zip."""
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            infos = tar.getmembers()
            total = sum(m.size for m in infos if m.isfile())
            limits.check_totals(UPLOAD_LABEL, len(infos), total)
            members = plan(UPLOAD_LABEL, _tar_members(infos, UPLOAD_LABEL))

            def open_file(m: Member) -> IO[bytes]:
                source = tar.extractfile(m.source)
                assert source is not None  # a regular file
                return source

            return extract(UPLOAD_LABEL, members, dest, open_file, limits, archive.stat().st_size)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise MlopsError(f"{UPLOAD_LABEL} is not a readable tar archive: {exc}") from None
