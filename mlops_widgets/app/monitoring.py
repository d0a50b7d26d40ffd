"""Monitoring: monitor create, evaluate, delete, register, publish; schedules (set, pause,
resume, off); alerts and notification channels. What the front ends read of them: the reads
mixin (monitoring_reads.py)."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from mlops_widgets.app.monitoring_reads import MonitoringReadsMixin
from mlops_widgets.ops.schedule import ScheduleRow
from mlops_widgets.runner.trail import RunRecord

EVALUATE_TEMPLATE = "A5_Monitor_Evaluation"


class MonitoringMixin(MonitoringReadsMixin):
    """Monitoring actions of `App` (and, inherited, its monitoring reads)."""

    def monitor_delete(self, name: str) -> dict[str, Any]:
        """Drop the deployment's subscription with its monitors, runs and measurements."""
        from mlops_widgets.ops import monitor

        with self._event("monitor.delete", {"deployment_name": name}, name) as event:
            event.result = monitor.monitor_delete(self.backend, name)
        return dict(event.result)

    def monitor_register(self, monitor_id: str, provider: str) -> dict[str, Any]:
        """Register a monitor id computed by an existing provider."""
        from mlops_widgets.ops import monitor

        with self._event("monitor.register", {"monitor_id": monitor_id, "provider": provider}) as event:
            event.result = monitor.monitor_register(self.backend, monitor_id, provider)
        return dict(event.result)

    def monitor_publish(self, monitor_id: str, *, software_spec: str | None = None) -> dict[str, Any]:
        """Make a monitor's provider callable by the monitoring service (the original's B2)."""
        from mlops_widgets.ops.publish import publish

        params = {"monitor_id": monitor_id, "software_spec": software_spec}
        with self._event("monitor.publish", params) as event:
            event.result = publish(self.backend, monitor_id, software_spec=software_spec)
        return dict(event.result)

    def schedule_set(
        self,
        name: str,
        monitor_id: str | None = None,
        *,
        paused: bool | None = None,
        remove: bool = False,
        **repeat: Any,
    ) -> list[ScheduleRow]:
        """Give the deployment's monitors (or one) a schedule (`repeat`: every, or cron and tz;
        start, a datetime or the ISO time a user typed, in zone tz without one), pause, resume
        or remove it."""
        from mlops_widgets.monitors.schedule import parse_local_time
        from mlops_widgets.ops import schedule

        if isinstance(repeat.get("start"), str):
            repeat["start"] = parse_local_time(repeat["start"], repeat.get("tz"))

        given = {
            k: v.isoformat() if isinstance(v, datetime) else v for k, v in repeat.items() if v is not None
        }
        params = {"deployment_name": name, "monitor_id": monitor_id, "every": None, **given}
        params.update(paused=paused, remove=remove)
        with self._event("monitor.schedule", params, name) as event:
            rows = schedule.set_schedule(
                self.backend, name, monitor_id, paused=paused, remove=remove, **repeat
            )
            event.result = {"schedules": [r.to_dict() for r in rows]}
        return rows

    def monitor_create(
        self,
        name: str,
        *,
        service_provider_name: str | None = None,
        evaluate: bool = False,
        progress: Any = None,
        cancel: threading.Event | None = None,
    ) -> RunRecord:
        """Subscribe the deployment and create (or update) one monitor instance per monitor of
        its entry, with the entry's thresholds and schedules (template A3); `evaluate`: run them
        once after, and send the alerts it raised to the notification channels (as `evaluate`)."""
        from mlops_widgets.app.entries import MONITOR_TEMPLATE
        from mlops_widgets.ops import notify
        from mlops_widgets.ops.monitor import DEFAULT_SERVICE_PROVIDER

        params = {
            "deployment_name": name,
            "service_provider_name": service_provider_name or DEFAULT_SERVICE_PROVIDER,
            "evaluate": evaluate,
        }
        record = self.run(MONITOR_TEMPLATE, params, progress=progress, cancel=cancel)
        if evaluate:
            notify.dispatch(self.workspace)
        return record

    def evaluate(
        self,
        name: str,
        monitor_id: str | None = None,
        *,
        progress: Any = None,
        cancel: threading.Event | None = None,
    ) -> RunRecord:
        """Evaluate the deployment's monitors (or one) now (template A5_Monitor_Evaluation) and
        send the alerts it raised to the notification channels. A failed evaluation comes back
        as its record: its `results["runs"]` say which monitors ran."""
        from mlops_widgets.ops import notify

        params = {
            "deployment_name": name,
            "monitor_id": monitor_id,
            "triggered_by": "user",
            "fail_on_error": True,
        }
        record = self.run(EVALUATE_TEMPLATE, params, progress=progress, cancel=cancel)
        notify.dispatch(self.workspace)
        return record

    def schedule_pause(self, name: str, monitor_id: str | None = None) -> list[ScheduleRow]:
        """Pause the schedules of the deployment's monitors (or one); each keeps its repeat."""
        return self.schedule_set(name, monitor_id, paused=True)

    def schedule_resume(self, name: str, monitor_id: str | None = None) -> list[ScheduleRow]:
        """Resume paused schedules, at their repeat."""
        return self.schedule_set(name, monitor_id, paused=False)

    def schedule_off(self, name: str, monitor_id: str | None = None) -> list[ScheduleRow]:
        """Remove the schedules (the entry's `schedule` settings go too)."""
        return self.schedule_set(name, monitor_id, remove=True)

    # --- alerts and notification channels ------------------------------------------------------

    def alert_acknowledge(
        self, alert_ids: list[str] | None = None, *, deployment_name: str | None = None
    ) -> int:
        """Acknowledge these alerts (ids or unique prefixes), or every unacknowledged one (of
        `deployment_name`); returns how many."""
        from mlops_widgets.ops import alerts

        params = {"alert_ids": alert_ids or [], "deployment_name": deployment_name}
        with self._event("alert.acknowledge", params, deployment_name) as event:
            count = alerts.acknowledge(self.workspace, alert_ids, deployment_name=deployment_name)
            event.result = {"acknowledged": count}
        return count

    def channel_add(
        self,
        *,
        webhook: str | None = None,
        command: str | None = None,
        on: list[str] | None = None,
        test: bool = False,
    ) -> dict[str, Any]:
        """Add a webhook or command notification channel (see ops.channels); the record names
        its kind and id, never its URL or command (they may carry credentials)."""
        from mlops_widgets.ops import channels

        params = {"kind": "webhook" if webhook else "command", "on": on, "test": test}
        with self._event("channel.add", params) as event:
            added = channels.add_channel(self.workspace, webhook=webhook, command=command, on=on, test=test)
            event.result = {"channel_id": added["channel_id"], "on": added["on"]}
        return added

    def channel_remove(self, channel_id: str) -> None:
        """Remove a notification channel (its pending deliveries are dropped)."""
        from mlops_widgets.ops import notify

        with self._event("channel.remove", {"channel_id": channel_id}):
            notify.remove_channel(self.workspace, channel_id)

    def notification_resend(self, notification_ids: list[str] | None = None) -> int:
        """Queue failed deliveries again (of these notifications, ids or unique prefixes, or
        every failed one) and attempt them now; returns how many were queued."""
        from mlops_widgets.ops import notify

        with self._event("notification.resend", {"notification_ids": notification_ids or []}) as event:
            count = notify.resend(self.workspace, notification_ids)
            attempts = notify.deliver_due(self.workspace)
            event.result = {"queued": count, "delivered": sum(1 for a in attempts if a["ok"])}
        return count
