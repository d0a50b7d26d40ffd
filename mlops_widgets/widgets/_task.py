"""Long steps in background threads, each with its own progress bar, outcome and Cancel button.

A template run takes seconds to minutes; running it on the kernel's main thread would freeze the
notebook (and the panel's own Cancel button). Steps run side by side unless they conflict: each
says what it works on (`keys`: a deployment, an entry, the space's staging...), and a step waits
for a running one with a key in common; the blocked button says which step it waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import threading
from collections.abc import Callable, Collection
from contextvars import ContextVar
from typing import Any

import ipywidgets as w

from mlops_widgets.errors import MlopsError
from mlops_widgets.widgets._style import grow

# The control whose click is being handled (an Action's row, a confirmation): the step it
# starts shows its progress and outcome beside it.
ORIGIN: ContextVar[w.Widget | None] = ContextVar("mlops_origin", default=None)

# progress(done, total, heading)
ProgressFn = Callable[[int, int | None, str], None]
Work = Callable[[ProgressFn, threading.Event], Any]

# What a step works on. ANY conflicts with every step (the conservative default for a step
# that does not say); keys are "kind:name" strings, such as deployment_key(name).
ANY: frozenset[str] = frozenset({"*"})


def deployment_key(name: str) -> str:
    return f"deployment:{name}"


def entry_key(asset_id: str) -> str:
    return f"entry:{asset_id}"


STAGING = "staging"  # staging writes new entries into the space: one stage at a time


def conflict(a: Collection[str], b: Collection[str]) -> bool:
    """Whether steps working on `a` and on `b` may not run together."""
    return "*" in a or "*" in b or not set(a).isdisjoint(b)


def error_text(exc: BaseException) -> str:
    """What the user reads for an exception: our own messages with their hint in the panel's
    words (its controls, never a CLI flag), others with their type (never a traceback)."""
    if isinstance(exc, MlopsError):
        from mlops_widgets.widgets._hints import message

        return message(exc)
    return f"{type(exc).__name__}: {exc}"


class TaskBar:
    """One step at a time in a thread: its progress, its outcome and a Cancel button."""

    def __init__(self) -> None:
        self.title = w.HTML()
        self.progress = w.IntProgress(min=0, max=1, value=0, layout=grow(8, 20))
        self.count = w.Label()
        self.heading = w.Label()
        self.cancel = w.Button(description="Cancel", icon="stop", disabled=True)
        self.cancel.add_class("mlops-cancel")
        self.message = w.HTML()
        self.message.add_class("mlops-task-message")
        self.widget = w.VBox(
            [w.HBox([self.title, self.progress, self.count, self.heading, self.cancel]), self.message],
        )
        self.widget.add_class("mlops-taskbar")
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._listeners: list[Callable[[], None]] = []
        self.running: str = ""  # the running (or last) step's title
        self.keys: frozenset[str] = frozenset()  # what the running step works on
        self.last_error: str | None = None
        self.last_result: Any = None
        self.cancel.on_click(lambda _: self.request_cancel())
        self._show(False)

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def on_busy_change(self, fn: Callable[[], None]) -> None:
        """Call `fn` whenever a step starts or ends (action buttons recompute their state)."""
        self._listeners.append(fn)

    def _notify(self) -> None:
        for fn in self._listeners:
            fn()

    def _show(self, running: bool) -> None:
        for part in (self.progress, self.count, self.heading, self.cancel):
            part.layout.display = "" if running else "none"

    def request_cancel(self) -> None:
        """Ask the running step to stop; the runner checks between cells and kills the kernel."""
        self._cancel.set()
        self.cancel.disabled = True
        self.heading.value = "cancelling…"

    def report(self, done: int, total: int | None, heading: str) -> None:
        """Progress from the step (called from its thread)."""
        if total:
            self.progress.max = max(total, 1)
            self.progress.value = min(done, total)
            self.count.value = f"{done}/{total}"
        else:
            self.count.value = str(done)
        self.heading.value = heading

    def start(
        self,
        title: str,
        work: Work,
        *,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_finally: Callable[[], None] | None = None,
        cancellable: bool = True,
        keys: Collection[str] = ANY,
    ) -> None:
        """Run `work(progress, cancel_event)` in a thread; then `on_done(result)` or
        `on_error(message)`, then `on_finally()`, all in that thread before it ends (so `wait()`
        also waits for the lists to refresh). Without `cancellable` (a direct service call that
        cannot stop half-way) Cancel stays disabled."""
        if self.busy:
            raise MlopsError(f"\u201c{self.running}\u201d is still running: wait for it or cancel it")
        self._cancel = threading.Event()
        self.last_error = None
        self.last_result = None
        self.running = title
        self.keys = frozenset(keys)
        self.title.value = f"<b>{html.escape(title)}</b>"
        self.message.value = ""
        self.progress.value, self.progress.max, self.progress.bar_style = 0, 1, ""
        self.count.value, self.heading.value = "", "starting…"
        self.cancel.disabled = not cancellable
        self.cancel.tooltip = "" if cancellable else "this step cannot be stopped half-way"
        self._show(True)
        cancel = self._cancel

        def body() -> None:
            try:
                result = work(self.report, cancel)
            except BaseException as exc:  # noqa: BLE001 - every failure is shown in the panel
                self.last_error = error_text(exc)
                if cancel.is_set():  # what the user asked for: not a failure
                    self.progress.bar_style = "warning"
                    self.message.value = (
                        f"<span class='mlops-cancelled'>{html.escape(title)}: cancelled"
                        "</span> " + getattr(exc, "html", "")
                    )
                    return
                self.progress.bar_style = "danger"
                text = html.escape(self.last_error).replace("\n", "<br>")
                self.message.value = (
                    f"<span class='mlops-error'>{html.escape(title)} failed: {text}</span> "
                    + getattr(exc, "html", "")
                )
                if on_error:
                    self._guard(on_error, self.last_error)
            else:
                self.last_result = result
                self.progress.bar_style = "success"
                self.progress.value = self.progress.max
                self.message.value = f"<span class='mlops-ok'>{html.escape(title)}: done</span>"
                if on_done:
                    self._guard(on_done, result)
            finally:
                self.cancel.disabled = True
                self._show(False)
                if on_finally:
                    self._guard(on_finally)
                self._notify_after_end()

        self._thread = threading.Thread(
            target=released, args=(body,), name=f"mlops-panel: {title}", daemon=True
        )
        self._thread.start()
        self._notify()

    def _notify_after_end(self) -> None:
        # Listeners check `busy`, which is still True inside the thread: mark it finished first.
        self._thread = None
        self.keys = frozenset()
        self._notify()

    def _guard(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - a failing refresh must not hide the outcome
            self.message.value += f"<br><span class='mlops-error'>{html.escape(error_text(exc))}</span>"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running step (if any) ended; True when nothing is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.busy


# A step's thread keeps what it opened for itself until it ends: its own backend (the panel's
# backends are per thread) and the event loop jupyter_client's blocking calls set for it.
# Called as the thread's last act, so a kernel that ran N steps holds what it held before.
_thread_closers: threading.local = threading.local()


def on_thread_end(fn: Callable[[], None]) -> None:
    """Call `fn` when the current step's thread ends (no-op outside a step's thread)."""
    closers = getattr(_thread_closers, "fns", None)
    if closers is not None:
        closers.append(fn)


def released(body: Callable[[], None]) -> None:
    """`body()` as a thread's whole work, then what it opened is closed."""
    _thread_closers.fns = []
    try:
        body()
    finally:
        for fn in reversed(_thread_closers.fns):
            with contextlib.suppress(Exception):
                fn()
        _thread_closers.fns = None
        policy = asyncio.get_event_loop_policy()
        with contextlib.suppress(RuntimeError):
            loop = policy.get_event_loop()  # the thread's own, or a RuntimeError when it has none
            if not loop.is_running():
                loop.close()
        policy.set_event_loop(None)


class Steps:
    """The panel's steps: one TaskBar per control that started one (placed beside it, reused by
    its next step), steps side by side when their keys do not conflict. The attributes of the
    last step started (`message`, `last_error`...) are offered here for a quick look."""

    def __init__(self) -> None:
        self.bars: dict[str, TaskBar] = {}  # per origin widget's model id ("": none known)
        self.latest = TaskBar()
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        # Called with a step's bar and the control that started it (None: none known) as the
        # step starts: the panel puts the bar beside it.
        self.place: Callable[[TaskBar, w.Widget | None], None] | None = None

    @property
    def running(self) -> list[TaskBar]:
        return [bar for bar in self.bars.values() if bar.busy]

    @property
    def busy(self) -> bool:
        return bool(self.running)

    def blocker(self, keys: Collection[str] = ANY) -> TaskBar | None:
        """The running step a step on `keys` must wait for, None when it may start."""
        return next((bar for bar in self.running if conflict(bar.keys, keys)), None)

    def on_busy_change(self, fn: Callable[[], None]) -> None:
        self._listeners.append(fn)

    def _notify(self) -> None:
        for fn in self._listeners:
            fn()

    def start(self, title: str, work: Work, *, keys: Collection[str] = ANY, **options: Any) -> None:
        """Start a step (TaskBar.start's options) on its origin's bar; refused with the name of
        the running step when one on a key in common runs."""
        origin = ORIGIN.get()
        with self._lock:
            blocking = self.blocker(keys)
            if blocking is not None:
                raise MlopsError(f"wait for \u201c{blocking.running}\u201d to end, or press Cancel beside it")
            slot = origin.model_id if origin is not None else ""
            bar = self.bars.get(slot)
            if bar is None:
                bar = self.bars[slot] = TaskBar()
                bar.on_busy_change(self._notify)
            if self.place is not None:
                self.place(bar, origin)
            bar.start(title, work, keys=keys, **options)
            self.latest = bar

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every running step ended (each within `timeout`); True when none runs."""
        for bar in list(self.bars.values()):
            bar.wait(timeout)
        return not self.busy

    # The last step's bar, for a quick look (the tests, a notebook user).
    @property
    def widget(self) -> w.VBox:
        return self.latest.widget

    @property
    def message(self) -> w.HTML:
        return self.latest.message

    @property
    def progress(self) -> w.IntProgress:
        return self.latest.progress

    @property
    def cancel(self) -> w.Button:
        return self.latest.cancel

    @property
    def last_error(self) -> str | None:
        return self.latest.last_error

    @property
    def last_result(self) -> Any:
        return self.latest.last_result
