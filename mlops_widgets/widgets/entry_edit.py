"""Edit an entry already staged: load it into the Prepare form, change its thresholds, monitors or
resources, then Update entry writes it back (recorded in the audit trail as an event) and, when
its deployment has monitors, re-creates them with the new thresholds (template A3, a run)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as w

from mlops_widgets.widgets._forms import Action, error_html, ok_html, pending, section, set_options
from mlops_widgets.widgets._style import LABEL, fit, grow
from mlops_widgets.widgets._task import deployment_key, entry_key, error_text

if TYPE_CHECKING:
    from mlops_widgets.app.results import EntryEdited
    from mlops_widgets.widgets.prepare import PrepareTab


class EntryEditor:
    """The staged entries, one loaded into the form for editing, and Update entry."""

    def __init__(self, tab: PrepareTab) -> None:
        self.tab = tab
        self.entries: dict[str, dict[str, Any]] = {}
        self.editing: str | None = None
        self.pick = w.Dropdown(description="Staged entry", options=[], style=LABEL, layout=grow())
        self.pick.add_class("mlops-entry-pick")
        self.pick.observe(lambda _: self.update_actions(), "value")
        self.edit = Action("Edit", icon="pencil", css="mlops-entry-edit")
        self.edit.on_click(self.start_edit)
        self.update = Action("Update entry", icon="check", css="mlops-entry-update", style="primary")
        self.update.on_click(self.do_update)
        self.reload = w.Button(icon="refresh", tooltip="reload the staged entries", layout=fit())
        self.reload.add_class("mlops-entry-reload")
        self.reload.on_click(lambda _: self.refresh())
        self.message = w.HTML()
        self.message.add_class("mlops-entry-message")
        self.widget = w.VBox(
            [
                section("Edit a staged entry", "its thresholds, monitors and resources"),
                w.HBox([self.pick, self.reload, self.edit.widget]),
                self.update.widget,
                self.message,
            ]
        )

    def refresh(self) -> None:
        try:
            self.entries = self.tab.ctx.app.entries()
        except Exception as exc:  # noqa: BLE001 - shown inline
            self.entries = {}
            self.message.value = error_html([f"cannot read the entries: {error_text(exc)}"])
        options = []
        for asset_id, entry in self.entries.items():
            deployed = (entry.get("wmla_deployment") or {}).get("deployment_name")
            options.append(
                (
                    (f"[{deployed}] " if deployed else "") + f"{entry.get('model_name') or '?'} · {asset_id}",
                    asset_id,
                )
            )
        set_options(self.pick, options, self.editing or self.pick.value, last=True)
        self.update_actions()

    def keys(self, asset_id: str | None) -> set[str]:
        """What an update of `asset_id` works on: the entry and, when deployed, its deployment
        (its monitors are configured again)."""
        entry = self.entries.get(asset_id or "") or {}
        deployed = (entry.get("wmla_deployment") or {}).get("deployment_name")
        return {entry_key(asset_id or "")} | ({deployment_key(deployed)} if deployed else set())

    def update_actions(self) -> None:
        busy = self.tab.ctx.busy_reason(self.keys(self.editing or self.pick.value))
        self.edit.set_reason(busy or (None if self.pick.value else "nothing staged yet"))
        entry_problems = [p for p in self.tab.problems if not p.startswith(("path_model", "path_dependency"))]
        self.update.set_reason(
            busy
            or (None if self.editing else "pick a staged entry and press Edit")
            or pending(entry_problems, self.tab.errors)
        )

    def start_edit(self) -> None:
        asset_id = self.pick.value
        if asset_id not in self.entries:
            return
        self.editing = asset_id
        self.tab.set_entry(self.entries[asset_id])
        self.message.value = ok_html(f"editing the entry of {asset_id}: change it above, then Update entry")
        self.update_actions()

    def do_update(self) -> None:
        asset_id, ctx = self.editing, self.tab.ctx
        if asset_id is None:
            return
        entry = self.tab.entry()
        self.message.value = ""

        def work(progress: Any) -> EntryEdited:
            # the core validates, records, keeps the monitors' schedules and configures them again
            edited = ctx.app.entry_edit(asset_id, entry, cwd=str(ctx.base), progress=progress)
            if edited.run is not None:
                ctx.check_run(edited.run)
            return edited

        def done(result: EntryEdited) -> None:
            again = (
                f"; the monitors of {result.deployment_name} took the change"
                if result.monitors_recreated
                else ""
            )
            self.message.value = ok_html(f"entry {asset_id} updated{again}")

        ctx.run_call(f"Update entry {asset_id}", work, on_done=done, keys=self.keys(asset_id))
