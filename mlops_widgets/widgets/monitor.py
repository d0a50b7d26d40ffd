"""The Monitor tab: the headless service provider, monitors for a deployment (template A3, with
the entry's thresholds), and evaluating them now."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from mlops_widgets.widgets._context import PanelContext
from mlops_widgets.widgets._forms import Action, error_html, ok_html, section, set_options
from mlops_widgets.widgets._style import LABEL, grow, name_only
from mlops_widgets.widgets._task import deployment_key, error_text
from mlops_widgets.widgets.monitor_schedule import ScheduleControls

PROVIDER_TEMPLATE = "C1_OpenScale_Dummy_ML_Provider"
DEFAULT_PROVIDER = "OpenScale Headless Service Provider"
ALL_MONITORS = "every monitor"
PROVIDER_KEYS = {"provider"}  # the space's service provider: one creation at a time
STYLE = LABEL


def deployed_entries(entries: dict[str, dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Deployment name -> (model asset id, entry) for the entries that have a deployment."""
    out = {}
    for asset_id, entry in entries.items():
        name = (entry.get("wmla_deployment") or {}).get("deployment_name")
        if name:
            out[name] = (asset_id, entry)
    return out


class MonitorTab:
    """Attach the entry's monitors to a deployment and evaluate them."""

    title = "Monitor"

    def __init__(self, ctx: PanelContext) -> None:
        self.ctx = ctx
        self.loaded = False
        self.deployed: dict[str, tuple[str, dict[str, Any]]] = {}
        self.providers: list[dict[str, Any]] = []

        self.provider_name = w.Text(
            value=DEFAULT_PROVIDER, description="Service provider", style=STYLE, layout=grow()
        )
        self.provider_name.add_class("mlops-provider-name")
        self.provider_name.observe(lambda _: self.update_actions(), "value")
        self.create_provider = Action("Create provider", icon="plus", css="mlops-create-provider")
        self.create_provider.on_click(self.start_provider)
        self.providers_html = w.HTML()

        self.deployment = w.Dropdown(description="Deployment", options=[], style=STYLE, layout=grow())
        self.deployment.add_class("mlops-monitor-deployment")
        self.deployment.observe(lambda _: self._show_entry(), "value")
        ctx.share_selection(self.deployment)
        self.entry_html = w.HTML()
        self.evaluate = w.Checkbox(description="evaluate right after", value=True, indent=False)
        self.create = Action(
            "Create monitors", icon="heartbeat", css="mlops-create-monitors", style="primary"
        )
        self.create.on_click(self.start_create)
        self.run_now = Action("Evaluate now", icon="play", css="mlops-evaluate")
        self.which = w.Dropdown(options=[ALL_MONITORS], value=ALL_MONITORS, layout=grow())
        self.which.add_class("mlops-evaluate-which")
        name_only(self.which, "Monitors to evaluate")
        self.which.observe(lambda _: self._which_changed(), "value")
        self.run_now.on_click(self.start_evaluate)
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.message = w.HTML()
        self.message.add_class("mlops-monitor-message")
        self.schedules = ScheduleControls(
            ctx,
            lambda: self.deployment.value,
            lambda: None if self.which.value == ALL_MONITORS else self.which.value,
        )

        self.widget = w.VBox(
            [
                section("Service provider", "created once; deployments are subscribed from it"),
                w.HBox([self.provider_name, self.create_provider.widget]),
                self.providers_html,
                section(
                    "Monitors of a deployment", "one instance per monitor of its entry, with its thresholds"
                ),
                w.HBox([self.deployment, self.refresh_button]),
                self.entry_html,
                w.HBox([self.create.widget, self.evaluate]),
                w.HBox([self.which, self.run_now.widget]),
                section("Schedule", "evaluate the monitors on their own, each evaluation a run"),
                self.schedules.widget,
                self.message,
            ]
        )
        self.widget.add_class("mlops-monitor-tab")
        self.update_actions()

    def refresh(self) -> None:
        """Reload the deployed entries and the service providers."""
        self.loaded = True
        notes = []
        try:
            self.deployed = deployed_entries(self.ctx.app.entries())
        except Exception as exc:  # noqa: BLE001 - shown inline
            self.deployed = {}
            notes.append(f"cannot read the entries: {error_text(exc)}")
        try:
            self.providers = self.ctx.app.providers()
        except Exception as exc:  # noqa: BLE001 - shown inline
            self.providers = []
            notes.append(f"cannot list the service providers: {error_text(exc)}")
        self.providers_html.value = error_html(notes) + (
            "providers: " + ", ".join(f"<code>{html.escape(str(p['name']))}</code>" for p in self.providers)
            if self.providers
            else "<span class='mlops-muted'>no service provider yet</span>"
        )
        set_options(self.deployment, sorted(self.deployed), self.ctx.deployment or self.deployment.value)
        self._show_entry()

    def _show_entry(self) -> None:
        name = self.deployment.value
        if not name or name not in self.deployed:
            self.entry_html.value = (
                "<span class='mlops-muted'>no deployment yet: deploy a staged model in the Deploy tab</span>"
            )
        else:
            asset_id, entry = self.deployed[name]
            monitors = entry.get("openscale_custom_metric_provider") or {}
            sub = entry.get("openscale_subscription_id")
            listed = ", ".join(f"<code>{html.escape(m)}</code>" for m in monitors) or "none"
            self.entry_html.value = (
                f"model asset <code>{html.escape(asset_id)}</code>; monitors in its entry: {listed}; "
                + (f"subscription <code>{html.escape(sub)}</code>" if sub else "not subscribed yet")
            )
        set_options(self.which, [ALL_MONITORS, *self._entry_monitors()], self.which.value)
        self.schedules.refresh()
        self.update_actions()

    def _which_changed(self) -> None:
        if self.loaded:
            self.schedules.refresh()
            self.update_actions()

    def _entry_monitors(self) -> dict[str, Any]:
        name = self.deployment.value
        if not name or name not in self.deployed:
            return {}
        return self.deployed[name][1].get("openscale_custom_metric_provider") or {}

    def update_actions(self) -> None:
        name = self.deployment.value
        busy = self.ctx.busy_reason({deployment_key(name or "")})
        self.create_provider.set_reason(
            self.ctx.busy_reason(PROVIDER_KEYS)
            or (None if self.provider_name.value.strip() else "give the provider a name")
        )
        if not name:
            no = "pick a deployment"
        elif not self._entry_monitors():
            no = "its entry lists no monitors (add them in Prepare and stage again)"
        else:
            no = None
        known = {p.get("name") for p in self.providers}
        no_provider = (
            None if self.provider_name.value.strip() in known else "create the service provider first"
        )
        self.create.set_reason(busy or no or no_provider)
        self.run_now.set_reason(
            busy
            or no
            or (
                None
                if self.deployed.get(name or "", ("", {}))[1].get("openscale_subscription_id")
                else "create the monitors first"
            )
        )
        self.schedules.update_actions(self.run_now.button.tooltip or None)

    def start_provider(self) -> None:
        if self.ctx.busy_reason(PROVIDER_KEYS):
            return
        name = self.provider_name.value.strip()
        self.ctx.run_template(
            "Create service provider",
            PROVIDER_TEMPLATE,
            {"service_provider_name": name},
            keys=PROVIDER_KEYS,
            on_done=lambda run: setattr(
                self.message,
                "value",
                ok_html(
                    f"service provider {name}: " + ("created" if run.results.get("created") else "exists")
                ),
            ),
        )

    def start_create(self) -> None:
        name = self.deployment.value
        if not name or self.create.disabled:
            return
        provider, evaluate = self.provider_name.value.strip(), bool(self.evaluate.value)

        def done(run: Any) -> None:
            self.message.value = ok_html(f"monitors of {name} configured") + _runs_html(
                run.results.get("runs") or []
            )

        self.ctx.run_action(  # through the core, as the CLI's monitor create
            f"Create monitors for {name}",
            lambda app, progress, cancel: app.monitor_create(
                name, service_provider_name=provider, evaluate=evaluate, progress=progress, cancel=cancel
            ),
            on_done=done,
            keys={deployment_key(name)},
        )

    def start_evaluate(self) -> None:
        name = self.deployment.value
        if not name or self.run_now.disabled:
            return
        only = None if self.which.value == ALL_MONITORS else self.which.value

        def done(run: Any) -> None:
            self.message.value = ok_html(f"evaluated {name}") + _runs_html(run.results.get("runs") or [])

        # Through the core, as the CLI's monitor run: its new alerts go to the notification channels.
        self.ctx.run_action(
            f"Evaluate {name}",
            lambda app, progress, cancel: app.evaluate(name, only, progress=progress, cancel=cancel),
            on_done=done,
            keys={deployment_key(name)},
        )


def _runs_html(runs: list[dict[str, Any]]) -> str:
    """One line per evaluated monitor: its state, issue count and violations."""
    lines = []
    for r in runs:
        violations = r.get("violations") or []
        bad = ", ".join(
            f"{v['metric']} {v['value']:.4g} ({v['direction']} {v['limit']:.4g})" for v in violations
        )
        state = html.escape(str(r.get("state")))
        if r.get("error"):
            detail = f"<span class='mlops-error'>{html.escape(str(r['error']))}</span>"
        elif violations:
            detail = f"<span class='mlops-error'>{len(violations)} issue(s): {html.escape(bad)}</span>"
        else:
            detail = "<span class='mlops-ok'>no issues</span>"
        lines.append(f"<div><code>{html.escape(str(r.get('monitor_id')))}</code> {state}: {detail}</div>")
    return "".join(lines)
