"""Schedule controls of the Monitor tab: evaluate a deployment's monitors on their own every
so often (the local service runs it; OpenScale on cpd), pause and resume, and the schedules now
in force."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from mlops_widgets.widgets._context import PanelContext
from mlops_widgets.widgets._forms import Action, error_html, ok_html
from mlops_widgets.widgets._style import grow, span

EVERY_CHOICES = ("15m", "30m", "1h", "6h", "1d")


class ScheduleControls:
    """`deployment()` and `monitor()` (None: every monitor) are the Monitor tab's choices."""

    def __init__(
        self, ctx: PanelContext, deployment: Callable[[], str | None], monitor: Callable[[], str | None]
    ) -> None:
        self.ctx = ctx
        self.deployment = deployment
        self.monitor = monitor
        self.every = w.Combobox(
            value="1h",
            options=list(EVERY_CHOICES),
            description="Every",
            placeholder="30m, 1h, 1d",
            layout=grow(14, 20),
        )
        self.every.add_class("mlops-schedule-every")
        self.set = Action("Set schedule", icon="clock-o", css="mlops-schedule-set")
        self.set.on_click(lambda: self._change(every=self.every.value.strip()))
        self.pause = Action("Pause", icon="pause", css="mlops-schedule-pause")
        self.pause.on_click(lambda: self._change(paused=True))
        self.resume = Action("Resume", icon="play-circle", css="mlops-schedule-resume")
        self.resume.on_click(lambda: self._change(paused=False))
        self.listing = w.HTML()
        self.listing.add_class("mlops-schedules")
        self.widget = w.VBox(
            [w.HBox([self.every, self.set.widget, self.pause.widget, self.resume.widget]), self.listing]
        )

    def update_actions(self, reason: str | None) -> None:
        """`reason` (busy, no monitors attached...) disables every control."""
        self.set.set_reason(reason or (None if self.every.value.strip() else "give a repeat, e.g. 1h"))
        self.pause.set_reason(reason)
        self.resume.set_reason(reason)

    def refresh(self) -> None:
        from mlops_widgets.ops import schedule

        name = self.deployment()
        if not name:
            self.listing.value = ""
            return
        try:
            rows = schedule.list_schedules(self.ctx.backend, name)
        except Exception:  # noqa: BLE001 - not subscribed yet: nothing scheduled
            rows = []
        self.listing.value = _schedules_html(rows)

    def _change(self, *, every: str | None = None, paused: bool | None = None) -> None:
        from mlops_widgets.ops import schedule

        name = self.deployment()
        if not name:
            return
        only = self.monitor()

        def change(_progress: Any) -> list[dict[str, Any]]:
            from mlops_widgets.runner import events

            params = {"deployment_name": name, "monitor_id": only, "every": every, "paused": paused}
            with events.recording(
                self.ctx.backend.workspace,
                "monitor.schedule",
                params,
                deployment_name=name,
                backend=self.ctx.backend.name,
            ) as outcome:
                outcome.result = {
                    "schedules": schedule.set_schedule(
                        self.ctx.backend, name, only, every=every, paused=paused
                    )
                }
            return outcome.result["schedules"]

        self.ctx.run_call(
            f"Schedule {name}",
            change,
            on_done=self._done,
            on_error=lambda message: setattr(self.listing, "value", error_html([message])),
        )

    def _done(self, rows: list[dict[str, Any]]) -> None:
        self.refresh()
        self.listing.value = ok_html("schedule saved") + self.listing.value


def _schedules_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return span("mlops-muted", "not scheduled: monitors are evaluated only when asked")
    lines = []
    for r in rows:
        run = r.get("latest_run") or {}
        last = f"; latest run {html.escape(str(run.get('state')))}" if run else ""
        when = f", next {html.escape(r['next_at'])}" if r.get("next_at") else ""
        lines.append(
            f"<div><code>{html.escape(r['monitor_id'])}</code> every {html.escape(r['every'])}, "
            f"{html.escape(r['status'])}{when}{last}</div>"
        )
    return "".join(lines)
