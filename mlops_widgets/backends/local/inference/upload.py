"""Unpacking a deploy upload (a tar of a submission folder, as WMLA takes it) within limits.

Nothing lands outside the destination by construction: every name is checked before anything
is written, symbolic links are resolved against the archive's final tree (the last entry of a
name wins, as extraction would make it) and must stay inside, no entry is written below a link,
and links are made only after every file is written. The limits of `ArchiveLimits` (total
uncompressed size, entry count, compression ratio; shared with the zips of `archives.py`) stop
archive bombs before anything is written.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
from pathlib import Path

from mlops_widgets.backends.packing import ArchiveLimits
from mlops_widgets.errors import MlopsError

_CHUNK = 1 << 20
LABEL = "the deploy upload"


def _refuse(name: str, why: str) -> MlopsError:
    return MlopsError(f"the deploy upload is refused: entry {name!r} {why}")


def _clean(name: str) -> str:
    """The member's path inside the destination, or a refusal naming it."""
    if name.startswith("/") or "\\" in name or "\0" in name:
        raise _refuse(name, "has an absolute or malformed path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(name, "climbs out of the folder (..)")
    return "/".join(parts)


def _resolve(path: str, links: dict[str, str], name: str) -> str:
    """`path` with every link of the final tree followed, as the file system would; refused when
    it leaves the destination at any step."""
    parts, seen, done = path.split("/"), 0, []
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not done:
                raise _refuse(name, "is a link that points outside the folder")
            done.pop()
            continue
        done.append(part)
        target = links.get("/".join(done))
        if target is not None:
            seen += 1
            if seen > 40 or target.startswith("/"):
                raise _refuse(name, "is a link that points outside the folder (or loops)")
            done.pop()
            parts = target.split("/") + parts
    return "/".join(done)


def check_members(members: list[tarfile.TarInfo], compressed: int, limits: ArchiveLimits) -> dict[str, tarfile.TarInfo]:
    """The final tree of the archive (path -> member) once every check passes."""
    limits.check_totals(LABEL, len(members), sum(m.size for m in members if m.isfile()), compressed)
    tree: dict[str, tarfile.TarInfo] = {}
    for m in members:
        path = _clean(m.name)
        if m.islnk():
            raise _refuse(m.name, "is a hard link (not accepted)")
        if m.issparse() or not (m.isfile() or m.isdir() or m.issym()):
            raise _refuse(m.name, "is not a file, folder or symbolic link")
        if path:
            tree[path] = m
    links = {p: m.linkname for p, m in tree.items() if m.issym()}
    for path, m in tree.items():
        parent = posixpath.dirname(path)
        # No entry lies below a link: it would be written through it.
        while parent:
            if parent in links:
                raise _refuse(m.name, f"lies below the link {parent!r}")
            parent = posixpath.dirname(parent)
        if m.issym():
            if m.linkname.startswith("/"):
                raise _refuse(m.name, "is a link that points outside the folder (an absolute path)")
            _resolve(posixpath.join(posixpath.dirname(path), m.linkname), links, m.name)
    return tree


def unpack(archive: Path, dest: Path, limits: ArchiveLimits) -> None:
    """Unpack the tar (any compression) at `archive` into the empty folder `dest`."""
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            tree = check_members(tar.getmembers(), archive.stat().st_size, limits)
            for path, m in sorted(tree.items()):
                target = dest / path
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif m.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(m)
                    assert source is not None
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                    with source, os.fdopen(fd, "wb") as out:
                        shutil.copyfileobj(source, out, _CHUNK)
                    os.chmod(target, 0o700 if m.mode & 0o100 else 0o600)
            for path, m in tree.items():
                if m.issym():
                    (dest / path).parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(m.linkname, dest / path)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise MlopsError(f"the deploy upload is not a readable tar archive: {exc}") from None
