"""Schedule controls of the Monitor tab: evaluate a deployment's monitors on their own every
so often (the local service runs it; OpenScale on cpd), pause and resume, and the schedules now
in force."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from mlops_widgets.widgets._context import PanelContext
from mlops_widgets.widgets._forms import Action, error_html, ok_html
from mlops_widgets.widgets._style import grow, local_time, span
from mlops_widgets.widgets._task import deployment_key

if TYPE_CHECKING:
    from mlops_widgets.app import ScheduleRow

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
        self.every.observe(lambda _: self.update_actions(self._reason), "value")
        self.rows: list[ScheduleRow] = []  # the shown deployment's schedules (those of the picked monitor)
        self._reason: str | None = None
        self._shown: tuple[Any, ...] = ()  # the deployment, monitor and repeat Every last showed
        self.listing = w.HTML()
        self.listing.add_class("mlops-schedules")
        self.widget = w.VBox(
            [w.HBox([self.every, self.set.widget, self.pause.widget, self.resume.widget]), self.listing]
        )

    def every_problem(self) -> str | None:
        """Why the repeat under Every cannot be set (checked before anything is recorded)."""
        from mlops_widgets.config.fields import every_seconds

        every = self.every.value.strip()
        if not every:
            return "type a repeat under Every, e.g. 1h"
        try:
            seconds = every_seconds(every)
        except ValueError:
            return f"Every: {every!r} is not a repeat; write a whole number and s, m, h or d (30m, 1h, 1d)"
        least = self.ctx.app.min_interval_s()
        if seconds < least:
            return f"Every: evaluations must be at least {least} s apart, got {every}"
        return None

    def update_actions(self, reason: str | None) -> None:
        """`reason` (busy, no monitors attached...) disables every control; Pause needs a
        running schedule, Resume a paused one."""
        self._reason = reason
        self.set.set_reason(reason or self.every_problem())
        statuses = {r.schedule.status for r in self.rows if r.schedule}
        none = "nothing is scheduled: set a schedule first"
        self.pause.set_reason(
            reason or (None if statuses - {"paused"} else (none if not statuses else "it is paused already"))
        )
        self.resume.set_reason(
            reason or (None if "paused" in statuses else (none if not statuses else "it is not paused"))
        )

    def refresh(self) -> None:
        name = self.deployment()
        rows: list[ScheduleRow] = []
        if name:
            try:
                rows = self.ctx.app.schedules(name)
            except Exception:  # noqa: BLE001 - not subscribed yet: nothing scheduled
                rows = []
        only = self.monitor()
        self.rows = [r for r in rows if only is None or r.monitor_id == only]
        self.listing.value = _schedules_html(rows) if name else ""
        # Every shows the shown deployment's repeat (the first scheduled monitor's), not the last
        # one typed; a refresh that changed neither (a change elsewhere) leaves what is typed.
        every = next((r.schedule.every for r in self.rows if r.schedule), "1h")
        if (name, only, every) != self._shown:
            self._shown = (name, only, every)
            self.every.value = every

    def _change(self, *, every: str | None = None, paused: bool | None = None) -> None:

        name = self.deployment()
        if not name or (every is not None and self.every_problem()):
            return
        only = self.monitor()

        def change(_progress: Any) -> list[ScheduleRow]:
            return self.ctx.app.schedule_set(name, only, every=every, paused=paused)

        self.ctx.run_call(
            f"Schedule {name}",
            change,
            on_done=self._done,
            on_error=lambda message: setattr(self.listing, "value", error_html([message])),
            keys={deployment_key(name)},
        )

    def _done(self, rows: list[ScheduleRow]) -> None:
        self.refresh()
        self.listing.value = ok_html("schedule saved") + self.listing.value


def _schedules_html(rows: list[ScheduleRow]) -> str:
    if not rows:
        return span("mlops-muted", "not scheduled: monitors are evaluated only when asked")
    lines = []
    for r in rows:
        s, run = r.schedule, r.latest_run
        if s is None:  # listings give only scheduled monitors
            continue
        last = f"; latest run {html.escape(str(run.state))}" if run else ""
        times = s.next_times or ((s.next_at,) if s.next_at else ())
        when = f", next {html.escape(', '.join(local_time(t) for t in times))}" if times else ""
        words = s.in_words or ""
        repeat = f"every {s.every}" if " " not in s.every else words  # a cron expression: in words
        said = f" ({html.escape(words)})" if words and words != repeat else ""
        lines.append(
            f"<div><code>{html.escape(r.monitor_id)}</code> {html.escape(repeat)}, "
            f"{html.escape(s.status)}{said}{when}{last}</div>"
        )
    return "".join(lines)
