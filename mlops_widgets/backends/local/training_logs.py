"""Reading a local training job's worker logs: history, tail, and following every worker at
once until the job ends (the inference log's follower follows one log and never ends)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from mlops_widgets.backends.local.inference.kernel_logs import LOG_NAME, read_lines

POLL_S = 0.2


class _Follower:
    """New lines of one worker's current log file after an offset, across rotations."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOG_NAME
        self.file: BinaryIO | None = None
        self.partial = b""
        with contextlib.suppress(FileNotFoundError):
            self.file = open(self.path, "rb")
            self.file.seek(0, os.SEEK_END)

    def read(self) -> list[str]:
        if self.file is None:
            with contextlib.suppress(FileNotFoundError):
                self.file = open(self.path, "rb")
            if self.file is None:
                return []
        chunk = self.file.read()
        if not chunk:
            try:
                rotated = os.stat(self.path).st_ino != os.fstat(self.file.fileno()).st_ino
            except FileNotFoundError:
                rotated = True
            if not rotated:
                return []
            chunk = self.file.read()
            self.file.close()
            self.file = None
        *lines, self.partial = (self.partial + chunk).split(b"\n")
        return [line.decode("utf-8", errors="replace") for line in lines]

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def worker_lines(
    folders: list[Path], *, tail: int | None, follow: bool, ended: Callable[[], bool]
) -> Iterator[str]:
    """Each worker's lines in turn (the last `tail` of each), then with `follow` every new line
    of any worker as it comes, until `ended()` and nothing more was written."""
    followers = [_Follower(f) for f in folders] if follow else []
    for folder in folders:
        yield from read_lines(folder, tail=tail)
    if not follow:
        return
    try:
        while True:
            done = ended()  # read before the last pass: lines written before the end still come
            got = False
            for f in followers:
                lines = f.read()
                got = got or bool(lines)
                yield from lines
            if done and not got:
                return
            if not got:
                time.sleep(POLL_S)
    finally:
        for f in followers:
            f.close()
