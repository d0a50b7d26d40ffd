"""Monitoring reads of `App`: service providers, monitor status, history and trends, monitor
definitions, schedules and the evaluation queue, alerts, deliveries and notification channels.
Nothing here is recorded in the audit trail; `alerts_sync` is the one that writes (the alerts
found since the last look, and their deliveries), as the scheduler's side of monitoring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlops_widgets.app._base import AppBase
from mlops_widgets.backends.views import AlertView
from mlops_widgets.ops import monitor_views
from mlops_widgets.ops.monitor import DEFAULT_SERVICE_PROVIDER
from mlops_widgets.ops.monitor_views import TREND_POINTS, HistoryRow, MonitorStatus, SubscriptionRow
from mlops_widgets.ops.schedule import ScheduleRow, list_schedules

__all__ = ["DEFAULT_SERVICE_PROVIDER", "TREND_POINTS", "MonitoringReadsMixin"]


def _since_time(text: str | None) -> str | None:
    """A lower time bound a user typed, as an ISO time: an ISO time, or a duration ago (30m,
    2h, 1d); None stays None."""
    if text is None:
        return None
    from mlops_widgets.config.fields import every_seconds
    from mlops_widgets.monitors.schedule import parse_time

    try:
        return (datetime.now(UTC) - timedelta(seconds=every_seconds(text))).isoformat()
    except ValueError:
        return parse_time(text).isoformat()


class MonitoringReadsMixin(AppBase):
    """What the front ends show of monitoring; each reads the backend or the workspace."""

    # --- providers, monitors, measurements -----------------------------------------------------

    def providers(self) -> list[dict[str, Any]]:
        """The OpenScale service providers deployments are subscribed from."""
        from mlops_widgets.ops.monitor import provider_list

        return provider_list(self.backend)

    def subscriptions(self) -> list[SubscriptionRow]:
        """The subscriptions, each with its deployment and its monitors."""
        return monitor_views.monitor_list(self.backend)

    def monitor_status(self, name: str) -> MonitorStatus:
        """The latest measurement of each monitor of the deployment, its run and schedule."""
        return monitor_views.monitor_status(self.backend, name)

    def monitor_history(
        self,
        name: str,
        monitor_id: str | None = None,
        metric: str | None = None,
        *,
        limit: int | None = None,
    ) -> list[HistoryRow]:
        """Past measurements of the deployment's monitors (or one; one metric's value and limit
        with `metric`), newest first."""
        return monitor_views.monitor_history(self.backend, name, monitor_id, metric, limit=limit)

    def monitor_trends(
        self, name: str, monitor_id: str | None = None, *, points: int = TREND_POINTS
    ) -> list[dict[str, Any]]:
        """Each metric's slope over its latest `points` measurements and when it would cross
        its limit."""
        return monitor_views.monitor_trends(self.backend, name, monitor_id, points=points)

    def monitor_definitions(self) -> list[dict[str, Any]]:
        """The monitor definitions available, with their metrics."""
        return monitor_views.monitor_definitions(self.backend)

    def monitor_thresholds(self, monitor_id: str) -> dict[str, dict[str, list[Any]]]:
        """A monitor definition's default thresholds, in the entry's shape."""
        return monitor_views.monitor_thresholds(self.backend, monitor_id)

    def monitor_compute(
        self,
        monitor_id: str,
        dir_gt: str | Path,
        dir_pred: str | Path,
        *,
        most_recent: float | None = None,
    ) -> dict[str, Any]:
        """A monitor's provider run on two folders against its default thresholds, with no
        subscription (to try a provider before attaching it): changes nothing."""
        from mlops_widgets.ops.monitor import monitor_compute

        return monitor_compute(self.backend, monitor_id, dir_gt, dir_pred, most_recent=most_recent)

    # --- schedules -----------------------------------------------------------------------------

    def schedules(self, name: str | None = None) -> list[ScheduleRow]:
        """Every scheduled monitor instance (of the deployment): its repeat, status, next
        times and latest run."""
        return list_schedules(self.backend, name)

    def schedule_queue(self) -> dict[str, Any]:
        """The evaluations the local service's scheduler runs and queues now (`running`,
        `queued`: each with its `monitor_instance_id`, in order; `bound`: how many may run at
        once); none on another backend or when the service does not run (a file it left behind
        says nothing)."""
        from mlops_widgets.backends.local.inference import service_info

        return self._local_queue(self.backend_name == "local" and service_info(self.workspace) is not None)

    def _local_queue(self, running: bool) -> dict[str, Any]:
        """The local service's queue file while it runs (`running`, as the caller found it);
        the empty queue otherwise, as a file it left behind says nothing."""
        from mlops_widgets.monitors.schedule import empty_queue, read_queue

        return read_queue(self.workspace) if running else empty_queue()

    def min_interval_s(self) -> int:
        """The smallest repeat this workspace accepts, in seconds (its own setting)."""
        from mlops_widgets.monitors.schedule import min_interval_s

        return min_interval_s(self.workspace)

    # --- alerts, deliveries, channels ----------------------------------------------------------

    def alert_count(self, name: str | None = None) -> int:
        """How many alerts (of the deployment) nobody acknowledged yet: the badge of the panel
        and the sidebar."""
        from mlops_widgets.ops.alerts import unacknowledged_count

        return unacknowledged_count(self.workspace, name)

    def alerts(
        self, name: str | None = None, *, since: str | None = None, unacknowledged: bool = False
    ) -> list[AlertView]:
        """Recorded alerts (of the deployment), newest first; `since` an ISO time or a
        duration ago (30m, 2h, 1d)."""
        from mlops_widgets.ops.alerts import list_alerts

        return list_alerts(
            self.workspace, deployment_name=name, since=_since_time(since), unacknowledged=unacknowledged
        )

    def alerts_sync(self, name: str | None = None) -> list[AlertView]:
        """Record the alerts in the measurements made since the last look (of the deployment,
        else of every subscribed one: on cpd OpenScale's own), then queue and attempt their
        notifications; returns the new alerts."""
        from mlops_widgets.ops import alerts, notify

        new = alerts.sync(self.backend, name)
        notify.dispatch(self.workspace)
        return new

    def deliveries(self, name: str | None = None, *, state: str | None = None) -> list[dict[str, Any]]:
        """The notification outbox (of the deployment, in `state`), newest first: each delivery
        with its channel, state, attempts and last error."""
        from mlops_widgets.ops.notify import deliveries

        return deliveries(self.workspace, state=state, deployment_name=name)

    def channels(self) -> list[dict[str, Any]]:
        """The notification channels as listings show them (a webhook's URL masked)."""
        from mlops_widgets.ops.channels import list_channels

        return list_channels(self.workspace)
