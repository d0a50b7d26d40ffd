"""Kernel logs: what a deployment's kernels print (stdout and stderr), one log per deployment.

The service reads each kernel's output through a pipe and writes it here line by line, each line
prefixed with the kernel's pod name, with every form of the deployment's secret custom args
masked. The log rotates at a size limit: `logs/kernels.log`, then `kernels.log.1` ... (oldest
last), at most `files` files of `max_mb` MB. Files are private to their owner (0600).

    the settings kernel_log_mb (default 10) and kernel_log_files (default 3), from the
    service's environment (settings.py).

Readers (`read_lines`, `pod_tail`) need no service: they read the files, from the end for a
tail, so memory stays bounded whatever the size of the log.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from mlops_widgets.masking import Masker
from mlops_widgets.settings import KERNEL_LOG_FILES as LOG_FILES
from mlops_widgets.settings import KERNEL_LOG_MB as LOG_MB

LOG_NAME = "kernels.log"
LINE_MAX = 64 * 1024  # a longer line is cut into pieces of this size
LOG_TAIL_LINES = 40
FOLLOW_POLL = 0.2  # seconds between looks at a followed log
BLOCK = 64 * 1024


def limits(environ: Mapping[str, str]) -> tuple[int, int]:
    """(bytes per file, number of files) from the environment, else the defaults."""
    mb, files = LOG_MB.from_env(environ), LOG_FILES.from_env(environ)
    return max(int(mb * 2**20), LINE_MAX), files


def log_files(logs_dir: Path) -> list[Path]:
    """The deployment's log files, oldest first."""
    rotated = sorted(
        logs_dir.glob(LOG_NAME + ".*"), key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0
    )
    current = logs_dir / LOG_NAME
    return [*reversed(rotated), *([current] if current.exists() else [])]


class KernelLog:
    """The writing end of a deployment's kernel log, shared by its kernels' output pumps."""

    def __init__(self, logs_dir: Path, *, secrets: list[str], environ: Mapping[str, str]) -> None:
        self.dir = logs_dir
        self.path = logs_dir / LOG_NAME
        self.max_bytes, self.files = limits(environ)
        self.masker = Masker(secrets)
        self._partial: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._closed = False
        self._size = 0

    def _open(self) -> int:
        if self._fd is None:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.fchmod(self._fd, 0o600)
            self._size = os.fstat(self._fd).st_size
        return self._fd

    def _rotate(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with contextlib.suppress(FileNotFoundError):
            (self.dir / f"{LOG_NAME}.{self.files - 1}").unlink()
        for i in range(self.files - 2, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                (self.dir / f"{LOG_NAME}.{i}").rename(self.dir / f"{LOG_NAME}.{i + 1}")
        if self.files > 1:
            self.path.rename(self.dir / f"{LOG_NAME}.1")
        else:
            self.path.unlink()

    def _write(self, pod: str, lines: list[bytes]) -> None:
        """Write lines already masked, each with the pod's prefix."""
        if not lines:
            return
        prefix = f"[{pod}] ".encode()
        data = prefix + (b"\n" + prefix).join(lines) + b"\n"
        with self._lock:
            fd = self._open()
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
                fd = self._open()
            os.write(fd, data)
            self._size += len(data)
            if self._closed:  # a kernel outlived its pool's stop: its last words, no fd kept
                os.close(fd)
                self._fd = None

    def feed(self, pod: str, data: bytes) -> None:
        """Output of kernel `pod`: complete lines are written, the rest waits for its end. Lines
        are masked whole before a long one is cut into LINE_MAX pieces, so no secret is split
        across pieces (an unfinished line gives up pieces only once the masker has seen far
        enough past them)."""
        buf = self._partial.get(pod, b"") + data
        *lines, rest = buf.split(b"\n")
        pieces = [piece for line in lines for piece in _cut(self.masker.mask_bytes(line))]
        if len(rest) > LINE_MAX:
            rest = self.masker.mask_bytes(rest)
            while len(rest) - LINE_MAX > self.masker.reach:
                pieces.append(rest[:LINE_MAX])
                rest = rest[LINE_MAX:]
        self._partial[pod] = rest
        self._write(pod, pieces)

    def close_pod(self, pod: str, note: str | None = None) -> None:
        """Kernel `pod` ended: its last unfinished line, then `note`."""
        rest = self._partial.pop(pod, b"")
        last = _cut(self.masker.mask_bytes(rest)) if rest else []
        self._write(pod, [*last, *([self.masker.mask_bytes(note.encode())] if note else [])])

    def close(self) -> None:
        """The deployment stopped: the log keeps no file open (later lines still land)."""
        with self._lock:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _cut(line: bytes) -> list[bytes]:
    return [line[i : i + LINE_MAX] for i in range(0, len(line), LINE_MAX)] or [b""]


def _tail_of(path: Path, n: int, end: int | None = None) -> tuple[list[bytes], bool]:
    """The last `n` lines of a file (up to byte `end`), read backwards block by block; and
    whether the file held fewer than `n` lines."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return [], True
    with f:
        pos = os.fstat(f.fileno()).st_size if end is None else end
        data = b""
        while pos > 0 and data.count(b"\n") <= n:
            step = min(BLOCK, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        if pos > 0:
            lines = lines[1:]  # the first piece is the end of a line that began earlier
        return lines[-n:] if n else [], pos == 0 and len(lines) < n


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace")


def read_lines(logs_dir: Path, *, tail: int | None = None, follow: bool = False) -> Iterator[str]:
    """The kernel log's lines (no newline), oldest first: all of them, or the last `tail`; with
    `follow`, then every new line as kernels write it, until the caller stops iterating."""
    current = logs_dir / LOG_NAME
    try:
        live = open(current, "rb")
    except FileNotFoundError:
        live = None
    try:
        yield from _lines(logs_dir, current, live, tail, follow)
    finally:  # also when the caller stops early (a closed generator)
        if live is not None:
            live.close()


def _lines(
    logs_dir: Path, current: Path, live: BinaryIO | None, tail: int | None, follow: bool
) -> Iterator[str]:
    """`read_lines` on the current file already open as `live` (so that a rotation meanwhile
    neither loses nor repeats lines)."""
    end = os.fstat(live.fileno()).st_size if live is not None else 0
    older = [p for p in log_files(logs_dir) if p != current]
    if tail is None:
        for path in older:
            with contextlib.suppress(FileNotFoundError), open(path, "rb") as f:
                yield from (_decode(line.rstrip(b"\n")) for line in f)
        if live is not None:
            while live.tell() < end and (line := live.readline()):
                yield _decode(line.rstrip(b"\n"))
    else:
        picked: deque[bytes] = deque(maxlen=tail)
        lines, short = _tail_of(current, tail, end) if live is not None else ([], True)
        for path in reversed(older):
            if not short:
                break
            more, short = _tail_of(path, tail - len(lines))
            lines = more + lines
        picked.extend(lines)
        yield from (_decode(line) for line in picked)
    if follow:
        yield from _follow(current, live, end)


def _follow(current: Path, live: BinaryIO | None, offset: int) -> Iterator[str]:
    """Lines written to the log after `offset` of the open file `live`, across rotations."""
    f = live
    if f is not None:
        f.seek(offset)
    partial = b""
    try:
        while True:
            if f is None:
                with contextlib.suppress(FileNotFoundError):
                    f = open(current, "rb")
                if f is None:
                    time.sleep(FOLLOW_POLL)
                    continue
            chunk = f.read()
            if not chunk:
                try:
                    rotated = os.stat(current).st_ino != os.fstat(f.fileno()).st_ino
                except FileNotFoundError:
                    rotated = True
                if not rotated:
                    time.sleep(FOLLOW_POLL)
                    continue
                chunk = f.read()  # what was written before the rotation, then the new file
                f.close()
                f = None
            *lines, partial = (partial + chunk).split(b"\n")
            yield from (_decode(line) for line in lines)
            if f is None:
                partial = b""
    finally:
        if f is not None:
            f.close()


def pod_tail(logs_dir: Path, pod: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines kernel `pod` wrote (without their prefix), from the current log file."""
    prefix = f"[{pod}] ".encode()
    recent, _ = _tail_of(logs_dir / LOG_NAME, 50 * lines)
    own = [line[len(prefix) :] for line in recent if line.startswith(prefix)]
    return "\n".join(_decode(line) for line in own[-lines:])


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a plain text file (the service's own log), read from its end."""
    return "\n".join(_decode(line) for line in _tail_of(path, lines)[0])
