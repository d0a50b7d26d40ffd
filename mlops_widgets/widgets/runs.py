"""The Runs tab: the audit trail with filters; open an executed notebook, re-run, clone.

Listing reads the runner's index (instant for thousands of runs); a run's full record is read
only when it is picked.
"""

from __future__ import annotations

import datetime
import html
import json
from pathlib import Path
from typing import Any

import ipywidgets as w

from mlops_widgets.errors import MlopsError
from mlops_widgets.widgets._context import PanelContext
from mlops_widgets.widgets._dialog import ConfirmDialog
from mlops_widgets.widgets._forms import Action, error_html, ok_html
from mlops_widgets.widgets._lab import open_link
from mlops_widgets.widgets._style import LABEL, SHORT_LABEL, fit, grow, local_time, span
from mlops_widgets.widgets._table import Table, column
from mlops_widgets.widgets._task import error_text

ALL = "(all)"
STATUS_CLASSES = {"ok": "mlops-ok", "failed": "mlops-error", "cancelled": "mlops-cancelled"}
# A run's status as a badge colour in the table.
STATUS_TONES = {
    "ok": "ok",
    "failed": "error",
    "cancelled": "warn",
    "interrupted": "warn",
    "running": "neutral",
}
LIMIT = 200
PAGE_SIZE = 10
COLUMNS = [
    column("time", "Started", sort="started_at"),
    column("template", "Template"),
    column("status", "Status", tones=STATUS_TONES),
    column("trigger", "Trigger", optional=True),
    column("deployment", "Deployment"),
    column("run", "Run", optional=True),
]
STYLE = LABEL


class RunsTab:
    """The audit trail of this workspace."""

    title = "Runs"

    def __init__(self, ctx: PanelContext) -> None:
        self.ctx = ctx
        self.loaded = False
        self.runs: list[Any] = []
        self.record: Any = None
        self._want: str | None = None  # the run to pick at the next refresh

        self.template = w.Dropdown(
            description="Template", options=[ALL], value=ALL, style=SHORT_LABEL, layout=grow()
        )
        self.status = w.Dropdown(
            description="Status",
            options=[ALL, "ok", "failed", "cancelled"],
            value=ALL,
            style=SHORT_LABEL,
            layout=grow(),
        )
        self.deployment = w.Text(description="Deployment", placeholder="name", style=LABEL, layout=grow())
        # A date typed as the panel writes dates (a browser's date picker shows mm/dd/yyyy).
        self.since = w.Text(description="Since", placeholder="YYYY-MM-DD", style=SHORT_LABEL, layout=grow())
        self.since.add_class("mlops-runs-since")
        self.since.continuous_update = False
        self.since.observe(lambda _: self.refresh(), "value")
        self.refresh_button = w.Button(description="Refresh", icon="refresh", layout=fit())
        self.refresh_button.add_class("mlops-runs-refresh")
        for widget in (self.template, self.status):
            widget.observe(lambda _: self.refresh(), "value")
        self.deployment.continuous_update = False
        self.deployment.observe(lambda _: self.refresh(), "value")
        self.refresh_button.on_click(lambda _: self.refresh())

        self.note = w.HTML()
        self.note.add_class("mlops-runs-note")
        # The one list of runs, newest first: pick one to see its record, re-run it or clone it.
        self.pick = Table(
            COLUMNS, label="Runs", empty="no runs", page_size=PAGE_SIZE, sort_by="time", ascending=False
        )
        self.pick.add_class("mlops-runs-pick")
        self.pick.observe(lambda _: self._show_run(), "value")
        self.details = w.HTML()
        self.details.add_class("mlops-run-details")

        self.rerun = Action("Re-run", icon="redo", css="mlops-rerun")
        self.rerun.on_click(self.ask_rerun)
        self.confirm = ConfirmDialog()
        self.secrets_box = w.VBox()
        self.secrets: dict[str, w.Password] = {}
        self.clone_dest = w.Text(
            description="Clone to", placeholder="new notebook path (.ipynb)", style=STYLE, layout=grow()
        )
        self.clone_dest.add_class("mlops-clone-dest")
        self.clone_dest.observe(lambda _: self.update_actions(), "value")
        self.clone = Action("Clone", icon="copy", css="mlops-clone")
        self.clone.on_click(self.do_clone)
        self.message = w.HTML()
        self.message.add_class("mlops-runs-message")

        self.widget = w.VBox(
            [
                w.HBox([self.template, self.status, self.deployment]),
                w.HBox([self.since, self.refresh_button]),
                self.pick,
                self.note,
                self.details,
                self.secrets_box,
                self.rerun.widget,
                w.HBox([self.clone_dest, self.clone.widget]),
                self.message,
            ]
        )
        self.widget.add_class("mlops-runs")
        self.update_actions()

    def refresh(self) -> None:
        """Reload the listing with the filters (and the template names once)."""
        if not self.loaded:
            self._load_templates()
        self.loaded = True
        try:
            self.runs = self.ctx.app.runs(
                template=None if self.template.value == ALL else self.template.value,
                status=None if self.status.value == ALL else self.status.value,
                deployment_name=self.deployment.value.strip() or None,
                since=self._since(),
                limit=LIMIT,
            )
        except Exception as exc:  # noqa: BLE001 - shown inline
            self.runs = []
            self.note.value = error_html([f"cannot list the runs: {error_text(exc)}"])
        else:
            self.note.value = self._note_html()
        current = self._want or self.pick.value
        self._want = None
        before = self.pick.value
        self.pick.show([self._row(r) for r in self.runs], current)
        if self.pick.value == before:
            self._show_run()  # the same run picked: its record may have changed

    def _since(self) -> str | None:
        """The Since filter as the runner takes it (local midnight of that day, in UTC)."""
        text = self.since.value.strip()
        if not text:
            return None
        try:
            day = datetime.date.fromisoformat(text)
        except ValueError:
            raise MlopsError(f"Since: {text!r} is not a date such as 2026-01-31") from None
        midnight = datetime.datetime.combine(day, datetime.time()).astimezone()
        return midnight.astimezone(datetime.UTC).isoformat()

    def _load_templates(self) -> None:
        try:
            names = [t.name for t in self.ctx.app.templates()]
        except Exception:  # noqa: BLE001 - the filter then offers what the runs show
            names = []
        self.template.options = [ALL, *names]

    @staticmethod
    def _row(run: Any) -> dict[str, Any]:
        """A run as the table's row: its time as the panel writes times, sorted on the stamp."""
        if run.kind == "event":
            trigger = "event"
        elif run.rerun_of:
            trigger = "re-run"
        else:
            trigger = "schedule" if run.triggered_by == "schedule" else "run"
        return {
            "id": run.run_id,
            "time": local_time(run.started_at),
            "started_at": run.started_at,
            "template": run.template,
            "status": run.status,
            "trigger": trigger,
            "deployment": run.deployment_name or "",
            "run": run.short_id,
        }

    def _note_html(self) -> str:
        if not self.runs:
            return span("mlops-muted", "no runs match")
        if len(self.runs) >= LIMIT:
            return span("mlops-muted", f"showing the newest {LIMIT}: narrow the filters")
        return ""

    def _show_run(self) -> None:
        self.record = None
        run_id = self.pick.value
        if run_id:
            try:
                self.record = self.ctx.app.run_record(run_id)
            except Exception as exc:  # noqa: BLE001 - shown inline
                self.details.value = error_html([error_text(exc)])
        if self.record is None:
            if not run_id:
                self.details.value = ""
            self._secret_fields([])
            self.update_actions()
            return
        r = self.record
        parts = [
            f"<b>{html.escape(r.template)}</b> run {open_link(r.notebook, r.short_id, self.ctx.server, r.run_id, self.ctx.workspace.root)}"
            f" — {span(STATUS_CLASSES.get(r.status, 'mlops-muted'), r.status)}",
            f"{html.escape(local_time(r.started_at))} → {html.escape(local_time(r.ended_at))} on {html.escape(r.backend)} "
            f"by {html.escape(r.user)}",
        ]
        if r.rerun_of:
            parts.append(f"re-run of <code>{html.escape(r.rerun_of.rsplit('-', 1)[-1])}</code>")
        if r.error:
            parts.append(error_html([str(r.error.get("summary") or r.error)]))
        if r.results:
            parts.append("<b>results</b>" + _values_table(r.results))
        parts.append(
            "<b>parameters</b>"
            + (
                _values_table(r.parameters)
                if r.parameters
                else span("mlops-muted", " the template's defaults")
            )
        )
        if r.secret_names:
            parts.append("secrets (not stored): " + html.escape(", ".join(r.secret_names)))
        self.details.value = "<br>".join(parts)
        self._secret_fields(list(r.secret_names))
        self.clone_dest.placeholder = f"{r.template}-{r.short_id}.ipynb"
        self.update_actions()

    def _secret_fields(self, names: list[str]) -> None:
        """A masked field per secret of the run: re-running needs them again (empty: taken from
        the environment, as the CLI does)."""
        if list(self.secrets) == names:
            return
        self.secrets = {
            n: w.Password(
                description=n, placeholder="value, or empty: from the environment", style=LABEL, layout=grow()
            )
            for n in names
        }
        self.secrets_box.children = list(self.secrets.values())

    def update_actions(self) -> None:
        busy = self.ctx.busy_reason()
        none = None if self.record is not None else "pick a run first"
        if self.record is not None and self.record.kind == "event":
            none = "an event record: nothing to re-run or clone"
        self.rerun.set_reason(busy or none)
        dest = self.clone_dest.value.strip() or self.clone_dest.placeholder
        bad_dest = None if dest.endswith(".ipynb") else "the clone's name must end with .ipynb"
        self.clone.set_reason(none or bad_dest)

    def ask_rerun(self) -> None:
        """A re-run changes what the run changed (a space, a deployment) again: asked first."""
        if self.record is None:
            return
        record = self.record
        who = f" for {record.deployment_name}" if record.deployment_name else ""
        self.confirm.ask(
            f"Re-run {record.template}?",
            f"Run {record.template}{who} again with the parameters of run {record.short_id}: "
            "what it changed (a space, a deployment) is changed again.",
            "Re-run",
            self.start_rerun,
        )

    def start_rerun(self) -> None:
        if self.record is None or self.ctx.tasks.busy:
            return
        secrets = {n: f.value for n, f in self.secrets.items() if f.value}
        record = self.record
        self.message.value = ""

        def done(new: Any) -> None:
            self.message.value = ok_html(f"re-ran {record.short_id} as {new.short_id}")
            self._want = new.run_id  # shown once the lists refresh

        self.ctx.run_rerun(f"Re-run {record.template}", record.run_id, secrets=secrets or None, on_done=done)

    def do_clone(self) -> None:
        """Write an editable notebook beside this one with the run's parameters filled in."""
        from mlops_widgets.workspace import inside

        if self.record is None:
            return
        dest = self.clone_dest.value.strip() or self.clone_dest.placeholder
        target = Path(dest).expanduser()
        if not target.is_absolute():
            target = self.ctx.base / target
        try:
            target = inside(self.ctx.root, target, "clone's path")
            path = self.ctx.app.clone_run(self.record.run_id, target)
        except Exception as exc:  # noqa: BLE001 - shown inline
            self.message.value = error_html([f"clone failed: {error_text(exc)}"])
            return
        self.message.value = ok_html(f"cloned to {path} ") + open_link(path, "open it", self.ctx.server)


def _values_table(values: dict[str, Any], limit: int = 300) -> str:
    """Name and value per row (a long value cut, whole in its tooltip)."""
    rows = []
    for name, value in values.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        shown = text if len(text) <= limit else text[: limit - 1] + "…"
        rows.append(
            f"<tr><th>{html.escape(name)}</th><td title='{html.escape(text)}'>"
            f"<code>{html.escape(shown)}</code></td></tr>"
        )
    return "<table class='mlops-table mlops-values'>" + "".join(rows) + "</table>"
