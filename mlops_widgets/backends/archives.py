"""Unpacking a zip (a dependency or model asset) so that nothing can land outside its folder.

Safe by construction rather than by checking each entry as it is written: the whole archive is
planned first (names, links, sizes), the final tree is checked as a whole (every link resolved
through the other links of that tree must stay inside; no entry under a link; no name twice),
then regular files and folders are written into a fresh folder where no link exists yet, with
O_NOFOLLOW|O_EXCL, and the links are made last. So no write ever goes through a link, and no
later entry can change what an earlier check relied on. The limits of `ArchiveLimits` (total
size, entry count, compression ratio) are checked before the first byte is written and again
while writing.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mlops_widgets.backends.packing import ArchiveLimits
from mlops_widgets.errors import MlopsError

_MAX_LINK_HOPS = 40
_MAX_LINK_TARGET = 4096
_CHUNK = 1 << 20


@dataclass(frozen=True)
class _Member:
    parts: tuple[str, ...]
    kind: str  # "file" | "dir" | "link"
    info: zipfile.ZipInfo
    target: str = ""


def _parts(label: str, raw: str, what: str) -> tuple[str, ...]:
    """The path components of an entry name or a link target, `.` and empty parts dropped;
    absolute paths and drive letters refused."""
    text = raw.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise MlopsError(f"{label}: refusing {what} {raw!r}, it points outside the folder")
    return tuple(p for p in text.split("/") if p not in ("", "."))


def top_folder(archive: Path, keep_if: str) -> str:
    """The single top folder all entries of `archive` share (as zipping a folder with its name
    produces), unless a file named `keep_if` lies at the top; "" otherwise."""
    with zipfile.ZipFile(archive) as zf:
        entries = [(tuple(p for p in i.filename.replace("\\", "/").split("/") if p not in ("", ".")), i.is_dir())
                   for i in zf.infolist()]
    tops = {parts[0] for parts, _ in entries if parts}
    if len(tops) != 1 or any(parts == (keep_if,) for parts, _ in entries):
        return ""
    is_folder = any(len(parts) > 1 or is_dir for parts, is_dir in entries if parts)
    return tops.pop() if is_folder else ""


def _plan(zf: zipfile.ZipFile, label: str, strip: str) -> list[_Member]:
    members: dict[tuple[str, ...], _Member] = {}
    for info in zf.infolist():
        parts = _parts(label, info.filename, "entry")
        if ".." in parts:
            raise MlopsError(f"{label}: refusing entry {info.filename!r}, it points outside the folder")
        if strip:
            if not parts or parts[0] != strip:
                raise MlopsError(f"{label}: entry {info.filename!r} is not under the top folder {strip!r}")
            parts = parts[1:]
        if not parts:
            continue
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            if info.file_size > _MAX_LINK_TARGET:
                raise MlopsError(f"{label}: refusing link {info.filename!r}, its target is too long")
            target = zf.read(info).decode("utf-8", "replace")
            _parts(label, target, f"link {info.filename!r} ->")
            member = _Member(parts, "link", info, target)
        else:
            member = _Member(parts, "dir" if info.is_dir() else "file", info)
        seen = members.get(parts)
        if seen is not None and not (seen.kind == member.kind == "dir"):
            raise MlopsError(f"{label}: refusing entry {info.filename!r}, the archive holds it twice")
        members[parts] = member
    return list(members.values())


def _resolve(label: str, link: _Member, links: dict[tuple[str, ...], str]) -> None:
    """Follow `link` through the final tree (other links included, `..` applied to where a link
    really leads, not to its name) and refuse it unless every step stays inside the folder."""
    pending = list(_parts(label, link.target, "link target"))
    resolved: list[str] = list(link.parts[:-1])
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if not resolved:
                raise MlopsError(
                    f"{label}: refusing link {link.info.filename!r} -> {link.target!r}, it points outside the folder"
                )
            resolved.pop()
            continue
        resolved.append(part)
        target = links.get(tuple(resolved))
        if target is not None:
            hops += 1
            if hops > _MAX_LINK_HOPS:
                raise MlopsError(f"{label}: refusing link {link.info.filename!r}, its links form a loop")
            resolved.pop()
            pending = list(_parts(label, target, "link target")) + pending


def _check_tree(label: str, members: list[_Member]) -> None:
    links = {m.parts: m.target for m in members if m.kind == "link"}
    for m in members:
        for n in range(1, len(m.parts)):
            if m.parts[:n] in links:
                raise MlopsError(
                    f"{label}: refusing entry {m.info.filename!r}, it lies under the link {'/'.join(m.parts[:n])!r}"
                )
    for m in members:
        if m.kind == "link":
            _resolve(label, m, links)


def _write(zf: zipfile.ZipFile, m: _Member, path: Path, label: str, budget: list[int]) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    mode = 0o755 if (m.info.external_attr >> 16) & 0o100 else 0o644
    fd = os.open(path, flags, mode)
    with zf.open(m.info) as src, os.fdopen(fd, "wb") as out:
        while chunk := src.read(_CHUNK):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise MlopsError(f"{label}: entry {m.info.filename!r} unpacks to more than the archive declares")
            out.write(chunk)


def safe_unzip(
    archive: Path, dest: Path, *, strip: str = "", limits: ArchiveLimits | None = None
) -> list[str]:
    """Unpack `archive` into `dest` (a new or empty folder; removed again on failure), dropping
    the top folder `strip` from every name when given. Returns the names written, relative to
    `dest`. Refuses, with an MlopsError naming the entry or the limit, anything that would land
    outside or exceed the limits."""
    limits = limits or ArchiveLimits.from_env()
    label = Path(archive).name
    dest = Path(dest)
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise MlopsError(f"{label}: cannot unpack into {dest}, it is not a new empty folder")
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            declared = sum(i.file_size for i in infos)
            limits.check_totals(label, len(infos), declared, sum(i.compress_size for i in infos))
            members = _plan(zf, label, strip)
            _check_tree(label, members)
            dest.mkdir(parents=True, exist_ok=True)
            budget = [declared]
            made: set[Path] = {dest}
            for m in sorted(members, key=lambda m: m.kind == "link"):
                path = dest.joinpath(*m.parts)
                folder = path if m.kind == "dir" else path.parent
                if folder not in made:
                    folder.mkdir(parents=True, exist_ok=True)
                    made.add(folder)
                if m.kind == "dir":
                    continue
                if m.kind == "link":
                    os.symlink(m.target, path)
                else:
                    limits.check_entry(label, m.info.filename, m.info.file_size, m.info.compress_size)
                    _write(zf, m, path, label, budget)
    except (zipfile.BadZipFile, OSError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise MlopsError(f"{label}: cannot unpack into {dest}: {exc}") from exc
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return ["/".join(m.parts) for m in members]
