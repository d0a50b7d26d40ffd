"""What the panel's tabs share: the backend, the workspace, the background steps and refreshes.

The backend is built on first use, so drawing the panel touches no database and starts no
service; each tab loads its lists when first shown and after every step.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlops_widgets.errors import MlopsError
from mlops_widgets.widgets._lab import LabServer, find_server, notebook_dir, open_link
from mlops_widgets.widgets._task import ANY, ProgressFn, Steps, on_thread_end
from mlops_widgets.workspace import Workspace

if TYPE_CHECKING:
    import ipywidgets as w

    from mlops_widgets.app import App, Backend, MonitorDefinition


class Tab(Protocol):
    title: str
    loaded: bool
    widget: w.Box  # what the panel shows as the tab

    def refresh(self) -> None: ...

    def update_actions(self) -> None: ...


class PanelContext:
    """The backend and workspace the panel acts on, its steps and its tabs."""

    def __init__(
        self,
        workspace: str | os.PathLike[str] | Workspace | None = None,
        backend: str | Backend | None = None,
        base: Path | None = None,
    ) -> None:
        from mlops_widgets.app import App

        self._local = threading.local()
        app = App(workspace, backend)
        if backend is not None and not isinstance(backend, str):
            self._local.app = app  # serves the thread that built the panel
        self.workspace = app.workspace
        self.backend_name = app.backend_name  # an uninstalled backend is refused here
        self.base = base or notebook_dir()
        self.tasks = Steps()
        self.tabs: list[Tab] = []  # those built so far (a tab is built when first shown)
        self._server: LabServer | None = None
        self._server_looked = False
        self._definitions: dict[str, MonitorDefinition] | None = None
        # The model asset just staged: the Deploy tab picks it at its next refresh.
        self.staged_asset_id: str | None = None
        # The deployment the tabs show: one choice shared by every tab's Deployment list, the
        # last one picked or acted on (a deploy, start, stop...).
        self.deployment: str | None = None
        self._selectors: list[Any] = []
        # Called when a tab has read the alerts (the panel's header badge follows).
        self.on_alerts: Callable[[], None] | None = None
        # The kernel's event loop, where clicks are handled: lists refresh there, one at a time,
        # whichever thread asks (a step that ended, the change feed). None outside a kernel.
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None
        self._loop_thread = threading.get_ident()
        self.tasks.on_busy_change(lambda: self.in_loop(self.update_actions))

    def in_loop(self, fn: Callable[[], None]) -> None:
        """`fn()` on the kernel's event loop (now when on it, or outside a kernel), so that
        two threads never change the same view at once."""
        loop = self.loop
        if loop is None or threading.get_ident() == self._loop_thread or loop.is_closed():
            fn()
        else:
            loop.call_soon_threadsafe(fn)

    @property
    def backend(self) -> Backend:
        """This thread's backend (see `app`)."""
        return self.app.backend

    @property
    def app(self) -> App:
        """The application core on this thread's backend: every read and state change goes
        through it, as the CLI's do. Per thread: the embedded backend keeps a SQLite connection,
        which belongs to the thread that opened it, and the panel works from the kernel's thread
        and from the step's thread. A backend given to the panel serves the thread that built
        the panel; a step's thread drops its own when it ends."""
        app = getattr(self._local, "app", None)
        if app is None:
            from mlops_widgets.app import App

            app = self._local.app = App(self.workspace, self.backend_name)
            on_thread_end(lambda: vars(self._local).clear())
        return app

    @property
    def definitions(self) -> dict[str, MonitorDefinition]:
        """The monitor definitions known locally (read once: validation runs on every keystroke)."""
        if self._definitions is None:
            self._definitions = self.app.definitions()
        return self._definitions

    @property
    def server(self) -> LabServer | None:
        """The JupyterLab server this kernel belongs to (looked up once)."""
        if not self._server_looked:
            self._server = find_server(self.base)
            self._server_looked = True
        return self._server

    @property
    def root(self) -> Path:
        """The folder the panel writes into (a clone, a saved YAML): JupyterLab's root, else the
        notebook's folder; nothing outside it is created."""
        server = self.server
        return server.root if server is not None else self.base.resolve()

    def share_selection(self, dropdown: Any) -> None:
        """Make `dropdown` (a tab's Deployment list) show the shared deployment and set it."""
        self._selectors.append(dropdown)
        dropdown.observe(lambda change: self.select(change["new"]) if change["new"] else None, "value")

    def select(self, name: str | None) -> None:
        """`name` becomes the deployment every tab shows (where its list has it)."""
        if not name:
            return
        self.deployment = name
        for dropdown in self._selectors:
            values = [o[1] if isinstance(o, tuple) else o for o in dropdown.options]
            if name in values and dropdown.value != name:
                dropdown.value = name

    def busy_reason(self, keys: Collection[str] = ANY) -> str | None:
        """Why a step on `keys` cannot start now (the running step it conflicts with), or None."""
        blocking = self.tasks.blocker(keys)
        if blocking is None:
            return None
        return f"wait for \u201c{blocking.running}\u201d to end, or press Cancel beside it"

    def update_actions(self) -> None:
        for tab in self.tabs:
            tab.update_actions()

    def alerts_changed(self) -> None:
        if self.on_alerts is not None:
            self.on_alerts()

    def refresh_all(self) -> None:
        """Reload every tab's lists (after a step ended: its results show everywhere). From a
        step's thread in a kernel this happens on the kernel's loop, after the step ended."""

        def refresh() -> None:
            for tab in self.tabs:
                tab.refresh()

        self.in_loop(refresh)

    def run_template(
        self,
        title: str,
        template: str,
        params: dict[str, Any],
        *,
        secrets: dict[str, str] | None = None,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        keys: Collection[str] = ANY,
    ) -> None:
        """Run a template through the runner in the background, the task bar showing its cells.
        A run that did not end "ok" counts as an error, with a link to its executed notebook.
        `keys`: what it works on (steps with a key in common wait for each other)."""

        def work(progress: ProgressFn, cancel: threading.Event) -> Any:
            record = self.app.run(
                template,
                params,
                secrets=secrets,
                progress=_events_to(progress),
                cancel=cancel,
                cwd=str(self.base),
            )
            return self.check_run(record)

        self.tasks.start(
            title, work, on_done=on_done, on_error=on_error, on_finally=self.refresh_all, keys=keys
        )

    def run_rerun(
        self,
        title: str,
        run_id: str,
        *,
        secrets: dict[str, str] | None = None,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        keys: Collection[str] = ANY,
    ) -> None:
        """Re-run a past run (the runner's rerun) in the background."""

        def work(progress: ProgressFn, cancel: threading.Event) -> Any:
            record = self.app.rerun(run_id, secrets=secrets, progress=_events_to(progress), cancel=cancel)
            return self.check_run(record)

        self.tasks.start(
            title, work, on_done=on_done, on_error=on_error, on_finally=self.refresh_all, keys=keys
        )

    def run_action(
        self,
        title: str,
        action: Callable[[App, Callable[[Any], None], threading.Event], Any],
        *,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        keys: Collection[str] = ANY,
    ) -> None:
        """Run a core action that makes a template run (stage, deploy, evaluate...) in the
        background: `action(app, progress, cancel)` returns its record, checked as a run's is.
        The core validates and records it, and does what follows it (an evaluation's alerts
        to the channels), as for the CLI."""

        def work(progress: ProgressFn, cancel: threading.Event) -> Any:
            return self.check_run(action(self.app, _events_to(progress), cancel))

        self.tasks.start(
            title, work, on_done=on_done, on_error=on_error, on_finally=self.refresh_all, keys=keys
        )

    def check_run(self, record: Any) -> Any:
        """`record` when it ended ok, else a StepFailed saying how, with its notebook's link."""
        if record.ok:
            return record
        from mlops_widgets.app import hint_of
        from mlops_widgets.widgets._hints import render

        # Said for the panel: the run by its short id, linked to its executed notebook (a
        # read-only tab with the extension), the hint in the panel's words.
        err = record.error or {}
        what = {"cancelled": "was cancelled", "interrupted": "was interrupted"}.get(record.status, "failed")
        step = f" in step {err['heading']!r}" if err.get("heading") else ""
        summary = f": {err['summary']}" if err.get("summary") and record.status == "failed" else ""
        hint = hint_of(record)
        fix = f": {render(hint)}" if hint is not None else ""
        link = open_link(
            record.notebook, f"run {record.short_id}", self.server, record.run_id, self.workspace.root
        )
        raise StepFailed(f"{record.template} {what}{step}{summary}{fix}", link, record)

    def run_call(
        self,
        title: str,
        fn: Callable[[ProgressFn], Any],
        *,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        keys: Collection[str] = ANY,
    ) -> None:
        """Run a direct ops call (start, stop, evaluate...) in the background: it may wait on a
        service for a while and must not freeze the notebook. `fn(progress)` reports through
        the ops' Progress signature (done, total, what)."""

        def work(progress: ProgressFn, cancel: threading.Event) -> Any:
            progress(0, None, title)
            return fn(progress)

        self.tasks.start(
            title,
            work,
            on_done=on_done,
            on_error=on_error,
            on_finally=self.refresh_all,
            cancellable=False,
            keys=keys,
        )


class StepFailed(MlopsError):
    """A template run that ended failed or cancelled; `html` links to its executed notebook."""

    def __init__(self, message: str, link_html: str, record: Any) -> None:
        super().__init__(message)
        self.html = link_html
        self.record = record


def _events_to(progress: ProgressFn) -> Callable[[Any], None]:
    """The runner's ProgressEvent -> the task bar's (done, total, heading)."""

    def on_event(event: Any) -> None:
        heading = event.heading or ""
        if event.status in ("starting", "ok", "failed", "cancelled"):
            heading = f"{event.status}: {heading}" if heading else event.status
        progress(event.done, event.total, heading)

    return on_event
