"""The Status tab: per monitor of a deployment, the latest measurement with the violating metrics
highlighted, each metric's history drawn against its threshold, and the deployment's alerts
nobody acknowledged yet."""

from __future__ import annotations

import html
import re
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from mlops_widgets.errors import NotFoundError
from mlops_widgets.widgets._context import PanelContext
from mlops_widgets.widgets._forms import error_html, set_options
from mlops_widgets.widgets._style import LABEL, fit, grow, local_time, span
from mlops_widgets.widgets._svg import history_svg
from mlops_widgets.widgets._task import error_text
from mlops_widgets.widgets.monitor import deployed_entries

if TYPE_CHECKING:
    from mlops_widgets.app import App, HistoryRow, MetricReading, MonitorStatus

RANGES = [("last 10", 10), ("last 50", 50), ("last 200", 200)]


class StatusTab:
    """Latest measurements and metric histories of one deployment's monitors."""

    title = "Status"

    def __init__(self, ctx: PanelContext) -> None:
        self.ctx = ctx
        self.loaded = False
        self.status: MonitorStatus | None = None
        self.deployment = w.Dropdown(description="Deployment", options=[], style=LABEL, layout=grow())
        self.deployment.add_class("mlops-status-deployment")
        self.deployment.observe(lambda _: self.show(), "value")
        ctx.share_selection(self.deployment)
        self.range = w.Dropdown(
            description="Evaluations", options=RANGES, value=50, style=LABEL, layout=grow(16, 20)
        )
        self.range.add_class("mlops-status-range")
        self.range.observe(lambda _: self.show(), "value")
        self.refresh_button = w.Button(description="Refresh", icon="refresh", layout=fit())
        self.refresh_button.on_click(lambda _: self.refresh())
        self.alerts = w.HTML()
        self.alerts.add_class("mlops-status-alerts")
        self.acknowledge = _action(
            "Acknowledge", "check", "mark the deployment's alerts as seen", "mlops-status-acknowledge"
        )
        self.acknowledge.on_click(lambda _: self._acknowledge())
        self.deliveries = w.HTML()
        self.deliveries.add_class("mlops-status-deliveries")
        self.resend = _action(
            "Resend",
            "paper-plane",
            "send the notifications that could not be delivered again",
            "mlops-status-resend",
        )
        self.resend.on_click(lambda _: self._resend())
        self.body = w.HTML(layout=w.Layout(width="auto", min_width="0", align_self="stretch"))
        self.body.add_class("mlops-status")
        self.widget = w.VBox(
            [
                w.HBox([self.deployment, self.range, self.refresh_button]),
                w.HBox([self.alerts, self.acknowledge]),
                w.HBox([self.deliveries, self.resend]),
                self.body,
            ]
        )

    def refresh(self) -> None:
        """Reload the deployments, then the shown one's status."""
        self.loaded = True
        try:
            names = sorted(deployed_entries(self.ctx.app.entries()))
        except Exception as exc:  # noqa: BLE001 - shown inline
            self.body.value = error_html([f"cannot read the entries: {error_text(exc)}"])
            return
        set_options(self.deployment, names, self.ctx.deployment or self.deployment.value)
        self.show()

    def update_actions(self) -> None:
        """Nothing here changes state: no action to enable."""

    def show(self) -> None:
        name = self.deployment.value
        self.status = None
        self._show_alerts(name)
        if not name:
            self.body.value = "<span class='mlops-muted'>no deployment yet</span>"
            return
        try:
            app = self.ctx.app
            self.status = app.monitor_status(name)
            history = app.monitor_history(name, limit=self.range.value)
            trends = _trends(app, name)
        except NotFoundError as exc:  # no monitors created yet: a note, not a failure
            self.body.value = f"<span class='mlops-muted'>{html.escape(str(exc))}</span>"
            return
        except Exception as exc:  # noqa: BLE001 - shown inline
            self.body.value = error_html([error_text(exc)])
            return
        self.body.value = status_html(self.status, history, trends)

    def _show_alerts(self, name: str | None) -> None:
        """The deployment's unacknowledged alerts as a badge (the sidebar shows the same count)."""
        count = self.ctx.app.alert_count(name) if name else 0
        self.acknowledge.disabled = count == 0
        self.alerts.value = (
            f"<span class='mlops-alert-badge'>{count}</span> unacknowledged alert{'s' if count != 1 else ''}"
            if count
            else span("mlops-muted", "no unacknowledged alert")
        )
        self.ctx.alerts_changed()
        self._show_deliveries(name)

    def _show_deliveries(self, name: str | None) -> None:
        """The deployment's notifications not delivered yet: pending (retried on their own) and
        failed (given up: Resend queues them again)."""
        waiting = [d for d in self.ctx.app.deliveries(name) if d["state"] != "delivered"]
        failed = [d for d in waiting if d["state"] == "failed"]
        self.resend.disabled = not failed
        if not waiting:
            self.deliveries.value = ""
            return
        last = waiting[0]
        self.deliveries.value = span(
            "mlops-muted",
            f"notifications: {len(waiting) - len(failed)} pending, {len(failed)} failed"
            f" (last error: {last['last_error'] or 'none yet'})",
        )

    def _resend(self) -> None:
        """Failed deliveries of the shown deployment queued again, through the core (recorded)."""
        name = self.deployment.value
        failed = [d["notification_id"] for d in self.ctx.app.deliveries(name, state="failed")]
        if failed:
            self.ctx.app.notification_resend(failed)
        self._show_deliveries(name)

    def _acknowledge(self) -> None:
        if self.deployment.value:  # through the core: recorded as the CLI's --ack
            self.ctx.app.alert_acknowledge(deployment_name=self.deployment.value)
        self._show_alerts(self.deployment.value)


def _action(description: str, icon: str, tooltip: str, css: str) -> w.Button:
    """A button of the alerts' rows: disabled until there is something to act on."""
    button = w.Button(description=description, icon=icon, layout=fit(), disabled=True, tooltip=tooltip)
    button.add_class(css)
    return button


def _trends(app: App, name: str) -> list[dict[str, Any]]:
    """The metrics' trends; none when they cannot be computed (too few measurements)."""
    try:
        return app.monitor_trends(name)
    except Exception:  # noqa: BLE001 - the status shows without them
        return []


def _anchor(*parts: str) -> str:
    return "mlops-chart-" + re.sub(r"[^A-Za-z0-9_-]+", "-", "-".join(parts))


def status_html(
    status: MonitorStatus, history: list[HistoryRow], trends: list[dict[str, Any]] | None = None
) -> str:
    """A summary first (each monitor's verdict, its violated metrics linked to their charts),
    then per monitor its latest measurement and charts: violated metrics open, the rest folded.
    `trends` (App.monitor_trends) add the metrics heading for their threshold."""
    series: dict[str, dict[str, list[tuple[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in reversed(history):  # oldest first
        for x in row.metrics:
            if x.value is not None:
                series[row.monitor_id][x.metric].append((row.measurement.timestamp or "", float(x.value)))
    deployment = status.deployment_name
    summary, details = [], []
    for m in status.monitors:
        mid = m.monitor_id
        state = m.state
        metrics = m.metrics
        violated = m.violations
        error = m.latest_run.error if m.latest_run else None
        if error:
            verdict = span("mlops-error", "evaluation failed")
        elif m.measurement is None:
            verdict = span("mlops-muted", "not evaluated yet")
        elif violated:
            links = ", ".join(
                f"<a href='#{_anchor(deployment, mid, x.metric)}'>{html.escape(x.metric)}</a>"
                for x in violated
            )
            verdict = span("mlops-error", f"{len(violated)} of {len(metrics)} metrics violated: ") + links
        else:
            verdict = span("mlops-ok", f"all {len(metrics)} metrics within their thresholds")
        approaching = [t for t in trends or [] if t.get("monitor_id") == mid and t.get("toward_limit")]
        if approaching:
            verdict += (
                "; "
                + span("mlops-warn", "heading for its threshold: ")
                + ", ".join(
                    f"<a href='#{_anchor(deployment, mid, t['metric'])}'>{html.escape(t['metric'])}</a>"
                    + (f" (in about {t['crosses_in_h']:.1f} h)" if t.get("crosses_in_h") is not None else "")
                    for t in approaching
                )
            )
        summary.append(
            f"<li class='mlops-summary' data-monitor='{html.escape(mid)}' data-state='{html.escape(state)}'>"
            f"<b>{html.escape(mid)}</b>: {verdict}</li>"
        )
        part = [
            f"<div class='mlops-monitor-status' data-monitor='{html.escape(mid)}'><h4>{html.escape(mid)}</h4>"
        ]
        if error:
            part.append(error_html([f"last evaluation failed: {error}"]))
        if m.measurement is not None:
            part.append(
                span(
                    "mlops-muted",
                    f"measured {local_time(m.measurement.timestamp)}, {m.measurement.issue_count} issue(s)",
                )
            )

            def charts(rows: tuple[MetricReading, ...], mid: str = mid) -> str:
                return (
                    "<div class='mlops-charts'>"
                    + "".join(
                        history_svg(
                            x.metric,
                            series[mid].get(x.metric, []),
                            (x.limit, x.direction) if x.limit is not None and x.direction else None,
                            anchor=_anchor(deployment, mid, x.metric),
                        )
                        for x in rows
                    )
                    + "</div>"
                )

            if violated:
                part.append(charts(violated))
            rest = tuple(x for x in metrics if not x.violated)
            part.append(
                f"<details><summary>{'the other ' if violated else 'all '}{len(rest)} metrics: "
                "values and charts</summary>" + _metrics_table(metrics) + charts(rest) + "</details>"
            )
        part.append("</div>")
        details.append("".join(part))
    if not summary:
        return span("mlops-muted", "the entry lists no monitors")
    return "<ul class='mlops-status-summary'>" + "".join(summary) + "</ul>" + "".join(details)


def _metrics_table(metrics: tuple[MetricReading, ...]) -> str:
    rows = []
    for x in metrics:
        bad = x.violated
        limit = f"{x.direction} {x.limit:.4g}" if x.limit is not None else ""
        rows.append(
            f"<tr class='{'mlops-violation' if bad else 'mlops-metric'}'>"
            f"<td>{html.escape(x.metric)}</td><td>{x.value:.4g}</td>"
            f"<td>{html.escape(limit)}</td><td>{'violated' if bad else ''}</td></tr>"
        )
    return (
        "<table class='mlops-table mlops-metrics'><tr><th>metric</th><th>value</th>"
        "<th>threshold</th><th></th></tr>" + "".join(rows) + "</table>"
    )
