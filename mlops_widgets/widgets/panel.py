"""MLOpsPanel: the workflow's forms in one widget, tabs following the flow.

Prepare -> Deploy -> Monitor -> Status -> Runs, and Train (training jobs whose output is staged). The panel is a thin front end: it collects input,
validates it with the config model, hands state-changing steps to the runner (templates, in
background threads) and reads lists through ops. Drawing it queries nothing: each tab loads its
lists when first shown, after every step and, in a kernel, whenever the workspace's change feed
says something changed, whoever changed it (`_live`).
"""

from __future__ import annotations

import html
import importlib
import os
from typing import TYPE_CHECKING, cast

import ipywidgets as w

from mlops_widgets.widgets._context import PanelContext
from mlops_widgets.widgets._files import display_path
from mlops_widgets.widgets._live import Follower
from mlops_widgets.widgets._style import stylesheet
from mlops_widgets.widgets._task import TaskBar

if TYPE_CHECKING:
    from mlops_widgets.app import Backend
    from mlops_widgets.events_feed import Change
    from mlops_widgets.widgets._context import Tab
    from mlops_widgets.widgets.deploy import DeployTab
    from mlops_widgets.widgets.monitor import MonitorTab
    from mlops_widgets.widgets.prepare import PrepareTab
    from mlops_widgets.widgets.runs import RunsTab
    from mlops_widgets.widgets.status import StatusTab
    from mlops_widgets.widgets.train import TrainTab
    from mlops_widgets.workspace import Workspace

WARM_AFTER_S = 5.0  # the spare kernel starts this long after the panel's first state is read

# The tabs in the flow's order: title -> (module, class), imported when the tab is first shown.
TABS = {
    "Prepare": ("mlops_widgets.widgets.prepare", "PrepareTab"),
    "Deploy": ("mlops_widgets.widgets.deploy", "DeployTab"),
    "Monitor": ("mlops_widgets.widgets.monitor", "MonitorTab"),
    "Status": ("mlops_widgets.widgets.status", "StatusTab"),
    "Runs": ("mlops_widgets.widgets.runs", "RunsTab"),
    "Train": ("mlops_widgets.widgets.train", "TrainTab"),
}


class MLOpsPanel(w.VBox):
    """The MLOps panel. `workspace`: a folder (default $MLOPS_HOME, else ./.mlops); `backend`:
    a name (`local`, `cpd`; default $MLOPS_BACKEND, else local) or a `Backend`.

    `panel.wait(timeout)` blocks until the running steps (if any) ended and the lists refreshed.
    """

    def __init__(
        self,
        workspace: str | os.PathLike[str] | Workspace | None = None,
        backend: str | Backend | None = None,
        *,
        follow: bool | None = None,
        **kwargs: object,
    ) -> None:
        ctx = PanelContext(workspace, backend)
        self.ctx = ctx
        # Only the first tab is built now: the others (their modules, their widgets, which the
        # browser must all create before drawing) when first shown, so the panel opens sooner.
        self._built: dict[str, Tab] = {}
        self._pages = {title: w.VBox() for title in TABS}
        for title, page in self._pages.items():
            page.add_class(f"mlops-tab-{title.lower()}")
        self.tabs = w.Tab(children=list(self._pages.values()), titles=list(TABS))
        self.tabs.add_class("mlops-tabs")
        self._tab("Prepare")
        self.tabs.observe(self._tab_shown, "selected_index")
        self.header = w.HTML(
            f"<b>MLOps</b> <span class='mlops-muted'>backend <code>{html.escape(ctx.backend_name)}</code>"
            f" · workspace <code>{html.escape(display_path(ctx.workspace.root, ctx.base))}</code></span>"
        )
        self.alerts = w.HTML()
        self.alerts.add_class("mlops-panel-alerts")
        ctx.on_alerts = self._show_alerts
        super().__init__(children=[stylesheet(), w.HBox([self.header, self.alerts]), self.tabs], **kwargs)
        self.add_class("mlops-panel")
        ctx.tasks.place = self._place_bar
        # In a kernel (default) the panel follows the change feed: nothing needs a Refresh.
        self.live: Follower | None = None
        if follow if follow is not None else ctx.loop is not None:
            self.live = Follower(ctx.workspace, self._changed)
            self.live.start()
        else:
            self._warm()

    def _warm(self) -> None:
        """Keep a spare kernel, so that the panel's runs skip a kernel start. Once the panel is
        drawn and its first lists read: starting a kernel then does not delay the panel."""
        if self.live is not None and self.live.closed:
            return  # closed meanwhile: no spare for it
        self.ctx.app.keep_spare_kernel()

    def _changed(self, changes: list[Change]) -> None:
        """Changes from the feed (on the kernel's loop): the views they concern read again. The
        first call (no changes) loads what the open panel shows: the shown tab, the alert count."""
        kinds = {c.kind for c in changes}
        shown = self._tab(list(TABS)[self.tabs.selected_index or 0])
        if not changes:
            shown.refresh()
            self._show_alerts()
            # The spare kernel's start takes a core for a second or two: not while the
            # browser is still drawing the panel.
            loop = self.ctx.loop
            if loop is not None:
                loop.call_later(WARM_AFTER_S, self._warm)
            else:
                self._warm()
            return
        tabs = [t for t in self.ctx.tabs if t.loaded or t is shown]
        if not kinds & {"run", "event"}:  # a job's or an alert's change only
            tabs = [t for t in tabs if {"Train": "job", "Status": "alert"}.get(t.title) in kinds]
        for tab in tabs:
            tab.refresh()
        self._show_alerts()

    def close(self) -> None:
        """Stop following the change feed, then close the widgets."""
        if self.live is not None:
            self.live.close()
        super().close()

    def _place_bar(self, bar: TaskBar, origin: w.Widget | None) -> None:
        """Put a step's progress and outcome right under the row of the control that started
        it (in the column holding it), else at the panel's foot: where the eye is. Each start
        places it again: a row rebuilt since (a removed monitor) may have dropped it."""
        now = _path_to(self, bar.widget)
        if now is not None:
            old = now[-2]
            old.children = tuple(c for c in old.children if c is not bar.widget)
        path = _path_to(self.tabs, origin) if origin is not None else None
        parent: w.Box = self
        after: w.Widget = self.children[-1]
        for i in range(len(path or []) - 2, -1, -1):
            node = path[i]  # type: ignore[index]
            if isinstance(node, w.VBox):
                parent, after = node, path[i + 1]  # type: ignore[index]
                break
        children = list(parent.children)
        children.insert(children.index(after) + 1, bar.widget)
        parent.children = tuple(children)

    def _show_alerts(self) -> None:
        """The workspace's unacknowledged alerts as a badge beside the title (details: Status)."""
        count = self.ctx.app.alert_count()
        self.alerts.value = (
            f"&nbsp;<span class='mlops-alert-badge' title='unacknowledged alerts: see the Status tab'>"
            f"{count} alert{'s' if count != 1 else ''}</span>"
            if count
            else ""
        )

    def _tab(self, title: str) -> Tab:
        """The tab called `title`, built on first use (then loading its lists, unless it is the
        first tab: the panel's first state is read once it is drawn)."""
        tab = self._built.get(title)
        if tab is None:
            module, name = TABS[title]
            tab = getattr(importlib.import_module(module), name)(self.ctx)
            self._built[title] = tab
            self.ctx.tabs.append(tab)
            self._pages[title].children = [tab.widget]
            if self._built.keys() != {"Prepare"} and not tab.loaded:
                tab.refresh()
        return tab

    @property
    def prepare(self) -> PrepareTab:
        return cast("PrepareTab", self._tab("Prepare"))

    @property
    def deploy(self) -> DeployTab:
        return cast("DeployTab", self._tab("Deploy"))

    @property
    def monitor(self) -> MonitorTab:
        return cast("MonitorTab", self._tab("Monitor"))

    @property
    def status(self) -> StatusTab:
        return cast("StatusTab", self._tab("Status"))

    @property
    def runs(self) -> RunsTab:
        return cast("RunsTab", self._tab("Runs"))

    @property
    def train(self) -> TrainTab:
        return cast("TrainTab", self._tab("Train"))

    def _tab_shown(self, change: dict) -> None:
        index = change["new"]
        if index is not None:
            tab = self._tab(list(TABS)[index])
            if not tab.loaded:
                tab.refresh()

    def show(self, title: str) -> None:
        """Switch to the tab called `title` (Prepare, Deploy, Monitor, Status, Runs, Train)."""
        self.tabs.selected_index = list(TABS).index(title)

    def refresh(self) -> None:
        """Reload every tab's lists."""
        self.ctx.refresh_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background steps; True when none is running any more."""
        return self.ctx.tasks.wait(timeout)


def _path_to(root: w.Widget, target: w.Widget) -> list[w.Widget] | None:
    """The widgets from `root` down to `target` (both included), None when it is not inside."""
    if root is target:
        return [root]
    for child in getattr(root, "children", ()) or ():
        found = _path_to(child, target)
        if found is not None:
            return [root, *found]
    return None
