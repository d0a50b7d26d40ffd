"""Where the package's log records go: a rotated file in the workspace, and stderr with `--verbose`.

Modules log through `logging.getLogger(__name__)` (names under `mlops_widgets`; the inference
service's own records go to `mlops.inference`); only entry points (the CLI) call `setup`. The file
is opened on the first record, so a command that logs nothing leaves the workspace untouched, and
it is private (0600) like the rest of the workspace. Secret values are never passed to a logger.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import IO

from mlops_widgets.workspace import Workspace

LOG_DIR = "logs"
LOG_FILE = "mlops.log"
MAX_BYTES = 1_000_000
BACKUPS = 3
LOGGERS = ("mlops_widgets", "mlops")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A size-rotated log whose folder is made 0700 and whose files are created 0600."""

    def _open(self) -> io.TextIOWrapper:
        folder = Path(self.baseFilename).parent
        Workspace(folder.parent).open()  # a folder that is not a workspace gets no log
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)

        def private(path: str, flags: int) -> int:
            return os.open(path, flags, 0o600)

        stream = open(
            self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors, opener=private
        )
        assert isinstance(stream, io.TextIOWrapper)  # a text mode, as FileHandler's own
        return stream

    def handleError(self, record: logging.LogRecord) -> None:
        """A log that cannot be written (read-only or full workspace) never fails nor clutters the
        command: the command itself says what went wrong with the workspace."""


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of the record (a caller may swap it)."""

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def log_path(root: Path) -> Path:
    """The current log file of the workspace at `root` (older ones end in .1, .2, .3)."""
    return root / LOG_DIR / LOG_FILE


def setup(root: Path, *, verbose: bool = False) -> None:
    """Send the package's records to the workspace's log (INFO and up; DEBUG when verbose) and,
    when verbose, to stderr too. Calling it again (another command in the same process, another
    workspace) replaces the handlers it installed before."""
    level = logging.DEBUG if verbose else logging.INFO
    handlers: list[logging.Handler] = [
        PrivateRotatingFileHandler(log_path(root), maxBytes=MAX_BYTES, backupCount=BACKUPS, delay=True)
    ]
    if verbose:
        handlers.append(StderrHandler())
    for h in handlers:
        h.setFormatter(logging.Formatter(FORMAT))
        h.set_name("mlops_widgets.logs")
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == "mlops_widgets.logs"]:
            logger.removeHandler(old)
            old.close()
        logger.setLevel(level)
        for h in handlers:
            logger.addHandler(h)
