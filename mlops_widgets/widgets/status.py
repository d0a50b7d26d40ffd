"""The Status tab: per monitor of a deployment, the latest measurement with the violating metrics
highlighted, and each metric's history drawn against its threshold."""

from __future__ import annotations

import html
from collections import defaultdict
from typing import Any

import ipywidgets as w

from mlops_widgets.errors import NotFoundError
from mlops_widgets.widgets._context import PanelContext
from mlops_widgets.widgets._forms import error_html, set_options
from mlops_widgets.widgets._svg import history_svg
from mlops_widgets.widgets._task import error_text
from mlops_widgets.widgets.monitor import deployed_entries

STATE_COLORS = {"ok": "#1b5e20", "issues": "#b00020", "error": "#b00020", "running": "#8a6d00"}
HISTORY_LIMIT = 50
# An HTML widget's content box only fits its content; the charts should wrap at the panel's width.
WIDE = "<style>.mlops-status > .widget-html-content {flex: 1 1 auto; min-width: 0}</style>"


class StatusTab:
    """Latest measurements and metric histories of one deployment's monitors."""

    title = "Status"

    def __init__(self, ctx: PanelContext) -> None:
        self.ctx = ctx
        self.loaded = False
        self.status: dict[str, Any] | None = None
        self.deployment = w.Dropdown(description="Deployment", options=[],
                                     layout=w.Layout(width="460px"))
        self.deployment.add_class("mlops-status-deployment")
        self.deployment.observe(lambda _: self.show(), "value")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.body = w.HTML(layout=w.Layout(width="100%"))
        self.body.add_class("mlops-status")
        self.widget = w.VBox([w.HBox([self.deployment, self.refresh_button]), self.body])

    def refresh(self) -> None:
        """Reload the deployments, then the shown one's status."""
        from mlops_widgets.ops import space

        self.loaded = True
        try:
            names = sorted(deployed_entries(space.list_entries(self.ctx.backend)))
        except Exception as exc:  # noqa: BLE001 - shown inline
            self.body.value = error_html([f"cannot read the entries: {error_text(exc)}"])
            return
        set_options(self.deployment, names, self.deployment.value)
        self.show()

    def update_actions(self) -> None:
        """Nothing here changes state: no action to enable."""

    def show(self) -> None:
        from mlops_widgets.ops import monitor_views as monitor

        name = self.deployment.value
        self.status = None
        if not name:
            self.body.value = "<span style='color:#666'>no deployment yet</span>"
            return
        try:
            self.status = monitor.monitor_status(self.ctx.backend, name)
            history = monitor.monitor_history(self.ctx.backend, name, limit=HISTORY_LIMIT)
        except NotFoundError as exc:  # no monitors created yet: a note, not a failure
            self.body.value = f"<span style='color:#666'>{html.escape(str(exc))}</span>"
            return
        except Exception as exc:  # noqa: BLE001 - shown inline
            self.body.value = error_html([error_text(exc)])
            return
        self.body.value = status_html(self.status, history)


def status_html(status: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """Each monitor: latest measurement table (violations red) and one chart per metric."""
    series: dict[str, dict[str, list[tuple[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in reversed(history):  # oldest first
        for metric, value in (row.get("metrics") or {}).items():
            if value is not None:
                series[row["monitor_id"]][metric].append((row.get("timestamp") or "", float(value)))
    parts = []
    for m in status.get("monitors") or []:
        mid = m["monitor_id"]
        state = str(m.get("state"))
        color = STATE_COLORS.get(state, "#555")
        head = (f"<h4 style='margin:10px 0 2px 0'>{html.escape(mid)} — "
                f"<span class='mlops-state' style='color:{color}'>{html.escape(state)}</span></h4>")
        parts.append(f"<div class='mlops-monitor-status' data-monitor='{html.escape(mid)}'>{head}")
        run = m.get("latest_run") or {}
        if run.get("error"):
            parts.append(error_html([f"last evaluation failed: {run['error']}"]))
        if m.get("measurement_id"):
            parts.append(
                f"<div style='color:#555'>measurement <code>{html.escape(str(m['measurement_id']))}</code>"
                f", run <code>{html.escape(str(m.get('run_id')))}</code>, "
                f"{html.escape(str(m.get('timestamp')))}, issues: <b>{m.get('issue_count')}</b></div>")
            parts.append(_metrics_table(m.get("metrics") or []))
            charts = []
            for metric in m.get("metrics") or []:
                limit = ((metric["limit"], metric["direction"]) if metric.get("limit") is not None
                         else None)
                charts.append(history_svg(metric["metric"], series[mid].get(metric["metric"], []), limit))
            parts.append("<div style='display:flex;flex-wrap:wrap;gap:6px'>" + "".join(charts) + "</div>")
        parts.append("</div>")
    if not parts:
        return "<span style='color:#666'>the entry lists no monitors</span>"
    return WIDE + "".join(parts)


def _metrics_table(metrics: list[dict[str, Any]]) -> str:
    rows = []
    for x in metrics:
        bad = x.get("violated")
        style = " style='background:#fde7e9;color:#b00020;font-weight:bold'" if bad else ""
        limit = f"{x['direction']} {x['limit']:.4g}" if x.get("limit") is not None else ""
        rows.append(
            f"<tr class='{'mlops-violation' if bad else 'mlops-metric'}'{style}>"
            f"<td>{html.escape(x['metric'])}</td><td align=right>{x['value']:.4g}</td>"
            f"<td>{html.escape(limit)}</td><td>{'violated' if bad else ''}</td></tr>")
    return ("<table class='mlops-metrics'><tr><th align=left>metric</th><th>value</th>"
            "<th align=left>threshold</th><th></th></tr>" + "".join(rows) + "</table>")
