"""Monitor schedules: set, pause, resume, remove and list them.

The entry keeps each monitor's `schedule: {every, paused}` or `{cron, tz, paused}` (so
re-creating the monitors keeps it) and the monitor instance carries OpenScale's schedule, which the backend runs: OpenScale
on cpd, the workspace's service locally (started when an enabled schedule is set).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.views import MonitorInstanceView, RunView, ScheduleView
from mlops_widgets.errors import Hint, MlopsError, NotFoundError
from mlops_widgets.monitors.schedule import (
    DISABLED,
    ENABLED,
    entry_settings,
    make_cron_schedule,
    make_schedule,
    min_interval_s,
    start_time,
)
from mlops_widgets.ops import space
from mlops_widgets.ops.monitor_views import (
    MONITORS_KEY,
    existing_subscription,
    instances_of,
    read,
    run_summary,
    schedule_summary,
    subscription_of,
)


@dataclass(frozen=True)
class ScheduleRow:
    """One scheduled monitor instance of a deployment: its schedule as users read it (None: the
    schedule was just removed) and its latest evaluation (None before the first)."""

    deployment_name: str | None
    monitor_id: str
    monitor_instance_id: str
    schedule: ScheduleView | None
    latest_run: RunView | None

    def to_dict(self) -> dict[str, Any]:
        """As `monitor schedule --json` shows it: the schedule's fields inline."""
        return {
            "deployment_name": self.deployment_name,
            "monitor_id": self.monitor_id,
            "monitor_instance_id": self.monitor_instance_id,
            **(self.schedule.to_dict() if self.schedule else {}),
            "latest_run": run_summary(self.latest_run) if self.latest_run else None,
        }


def set_schedule(
    backend: Backend,
    deployment_name: str,
    monitor_id: str | None = None,
    *,
    every: str | None = None,
    cron: str | None = None,
    tz: str | None = None,
    paused: bool | None = None,
    remove: bool = False,
    start: datetime | None = None,
) -> list[ScheduleRow]:
    """Give the deployment's monitors (or `monitor_id`) a schedule repeating `every` ("30m")
    or at the times of a cron expression in time zone `tz` (local backend), from `start` on;
    or pause / resume (`paused`) / remove the one they have; every monitor is checked before
    any is changed. Returns each monitor's schedule as `list_schedules` shows it."""
    if cron is not None and backend.name != "local":
        raise MlopsError(
            "OpenScale repeats a schedule at an interval; calendar (cron) schedules run on the "
            "local backend only",
            hint=Hint("monitor.schedule", "give an interval instead", {"name": deployment_name}),
        )
    asset_id, entry, sub = subscription_of(backend, deployment_name)
    monitors = entry.get(MONITORS_KEY) or {}
    chosen = [monitor_id] if monitor_id else list(monitors)
    plans: list[tuple[str, MonitorInstanceView, dict[str, Any] | None, dict[str, Any] | None]] = []
    for mid in chosen:
        if mid not in monitors:
            raise MlopsError(
                f"the entry of deployment {deployment_name!r} has no monitor {mid!r}; "
                f"its monitors are: {', '.join(monitors) or 'none'}"
            )
        attached = instances_of(backend, sub.id, mid)
        if not attached:
            raise MlopsError(
                f"monitor {mid!r} of deployment {deployment_name!r} is not attached yet",
                hint=Hint("monitor.create", "attach the entry's monitors first", {"name": deployment_name}),
            )
        (inst,) = attached
        current = dict(inst.schedule) if inst.schedule else None
        if remove:
            plans.append((mid, inst, None, None))
            continue
        if cron is not None:
            schedule = make_cron_schedule(
                cron, tz=tz, min_s=min_interval_s(backend.workspace), paused=bool(paused), start=start
            )
            settings = {**entry_settings(schedule), "paused": bool(paused)}
        elif every is not None:
            schedule = make_schedule(
                every, min_s=min_interval_s(backend.workspace), paused=bool(paused), start=start
            )
            settings = {"every": every, "paused": bool(paused)}
        else:  # neither: pause or resume the schedule it has
            if not current:
                raise MlopsError(
                    f"monitor {mid!r} of deployment {deployment_name!r} has no schedule to pause or resume",
                    hint=Hint("monitor.schedule", "give it a repeat first", {"name": deployment_name}),
                )
            schedule = {**current, "status": DISABLED if paused else ENABLED}
            if not paused and current.get("status") == DISABLED:  # slots missed while paused are skipped
                schedule["start_time"] = start_time(start)
            # the entry keeps the repeat as the user wrote it ("120s"), not as OpenScale reads it
            kept = monitors[mid].get("schedule") or entry_settings(current)
            settings = {**kept, "paused": bool(paused)}
        plans.append((mid, inst, schedule, settings))

    def change(e: dict[str, Any]) -> None:
        for mid, _inst, _schedule, settings in plans:
            if settings is None:
                e[MONITORS_KEY][mid].pop("schedule", None)
            else:
                e[MONITORS_KEY][mid]["schedule"] = settings

    space.update_entry(backend, asset_id, change)
    mon, local = read(backend), backend.name == "local"
    out = []
    for mid, inst, wanted, _settings in plans:
        updated = backend.monitoring.monitor_instances.set_schedule(inst.id, wanted)
        summary = schedule_summary(MonitorInstanceView.from_document(updated), local=local)
        runs = mon.runs(inst.id, limit=1)
        out.append(ScheduleRow(deployment_name, mid, inst.id, summary, runs[0] if runs else None))
    return out


def list_schedules(backend: Backend, deployment_name: str | None = None) -> list[ScheduleRow]:
    """Every scheduled monitor instance (of `deployment_name`): its repeat, enabled or paused,
    the next slot and the latest run (each row's `schedule` is set)."""
    mon = read(backend)
    if deployment_name:
        subs = [subscription_of(backend, deployment_name)[2]]
    else:
        subs = mon.subscriptions()
    out = []
    for sub in subs:
        name = sub.deployment_name or deployment_name
        for inst in instances_of(backend, sub.id):
            summary = schedule_summary(inst, local=backend.name == "local")
            if summary is None:
                continue
            runs = mon.runs(inst.id, limit=1)
            out.append(ScheduleRow(name, inst.monitor_id, inst.id, summary, runs[0] if runs else None))
    return out


def monitor_instances_of(
    backend: Backend, deployment_name: str
) -> list[tuple[MonitorInstanceView, ScheduleView | None]]:
    """The deployment's monitor instances (its entry's subscription, else one named after it),
    each with its schedule as users read it (None when unscheduled); [] when it has none. Works
    whether or not an entry still names the deployment."""
    try:
        entry = space.get_entry(backend, deployment_name=deployment_name)[1]
    except NotFoundError:
        entry = {}
    sub = existing_subscription(backend, entry, deployment_name)
    if sub is None:
        return []
    local = backend.name == "local"
    return [(inst, schedule_summary(inst, local=local)) for inst in instances_of(backend, sub.id)]


def unschedule(backend: Backend, deployment_name: str) -> list[str]:
    """Take the schedule off every monitor instance of the deployment, keeping the instances,
    their history and the entry's `schedule` settings (a later `monitor create` re-applies
    them); returns the monitor ids unscheduled. What a deployment's delete does when its
    monitors stay: no schedule may outlive the deployment it evaluates."""
    done = []
    for inst, scheduled in monitor_instances_of(backend, deployment_name):
        if scheduled is not None:
            backend.monitoring.monitor_instances.set_schedule(inst.id, None)
            done.append(inst.monitor_id)
    return done
