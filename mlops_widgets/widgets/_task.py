"""Long steps in a background thread, with a progress bar and a Cancel button.

A template run takes seconds to minutes; running it on the kernel's main thread would freeze the
notebook (and the panel's own Cancel button). One step runs at a time: the steps change the same
space and entries, and one progress bar is easier to read than several.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
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


def error_text(exc: BaseException) -> str:
    """What the user reads for an exception: our own messages with their hint in the panel's
    words (its controls, never a CLI flag), others with their type (never a traceback)."""
    if isinstance(exc, MlopsError):
        from mlops_widgets.widgets._hints import message

        return message(exc)
    return f"{type(exc).__name__}: {exc}"


class TaskBar:
    """Runs one step at a time in a thread and shows its progress, its outcome and a Cancel button."""

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
        # Called with the control that started a step (None: none known): the panel moves the
        # bar beside it.
        self.place: Callable[[w.Widget | None], None] | None = None
        self.running: str = ""  # the running step's title
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
    ) -> None:
        """Run `work(progress, cancel_event)` in a thread; then `on_done(result)` or
        `on_error(message)`, then `on_finally()`, all in that thread before it ends (so `wait()`
        also waits for the lists to refresh). Without `cancellable` (a direct service call that
        cannot stop half-way) Cancel stays disabled."""
        if self.busy:
            raise MlopsError("another step is still running: wait for it or cancel it")
        self._cancel = threading.Event()
        self.last_error = None
        self.last_result = None
        self.running = title
        if self.place is not None:
            self.place(ORIGIN.get())
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

        self._thread = threading.Thread(target=body, name=f"mlops-panel: {title}", daemon=True)
        self._thread.start()
        self._notify()

    def _notify_after_end(self) -> None:
        # Listeners check `busy`, which is still True inside the thread: mark it finished first.
        self._thread = None
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
