"""The panel follows the workspace's change feed, so what changes anywhere shows without Refresh.

A run started from the CLI, an entry added, a deployment stopped, an alert raised or acknowledged,
a schedule changed, a training job that ended: every process that changes the workspace publishes
it (`events_feed`). A thread of the panel's kernel reads the feed and hands each batch of changes
to the kernel's event loop, the thread that handles the user's clicks, so the views change one
at a time there (never from two threads at once). Where no loop runs (a plain Python session),
the batch is applied in the reading thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from mlops_widgets import events_feed
from mlops_widgets.workspace import Workspace

log = logging.getLogger(__name__)

CHECK_S = 0.25  # how often the feed is read: a change shows within about this plus a refresh


class Follower:
    """Reads the feed after the last seq seen; `apply(changes)` gets each non-empty batch, and
    once an empty one when it starts (what exists now: the views load their first state)."""

    def __init__(self, workspace: Workspace, apply: Callable[[list[events_feed.Change]], None]) -> None:
        self.workspace = workspace
        self.apply = apply
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # not in a kernel: applied in the reading thread
            self._loop = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="mlops-panel: change feed", daemon=True)
        self.last = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Stop reading (the panel closed); returns once the reading thread ended."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(10)

    def _follow(self) -> None:
        try:
            self.last = events_feed.last_seq(self.workspace)
        except Exception as exc:  # noqa: BLE001 - a workspace that cannot be read: from the start then
            log.warning("change feed of %s: %s", self.workspace.root, exc)
        self._hand([])
        while not self._stop.wait(CHECK_S):
            try:
                changes = events_feed.since(self.workspace, self.last)
            except Exception as exc:  # noqa: BLE001 - read again at the next check
                log.warning("change feed of %s: %s", self.workspace.root, exc)
                continue
            if changes:
                self.last = changes[-1].seq
                self._hand(changes)

    def _hand(self, changes: list[events_feed.Change]) -> None:
        loop = self._loop
        if loop is None:
            self._apply(changes)
            return
        done = threading.Event()

        def run() -> None:
            try:
                self._apply(changes)
            finally:
                done.set()

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # the kernel's loop closed: the kernel is ending
            self._stop.set()
            return
        # One batch at a time: the next read starts once this one is shown (a busy kernel
        # gets the changes of the meantime in one batch, not a queue of refreshes).
        while not done.wait(CHECK_S) and not self._stop.is_set() and not loop.is_closed():
            pass

    def _apply(self, changes: list[events_feed.Change]) -> None:
        if self._stop.is_set():
            return
        try:
            self.apply(changes)
        except Exception:  # noqa: BLE001 - a view that failed to refresh says so itself
            log.exception("the panel could not apply changes of %s", self.workspace.root)
