"""Typed reads of the monitoring protocol: both backends answer in OpenScale's document shape
(the contract on the wire, kept where they talk to OpenScale); this one adapter, shared by
them, derives the typed views (backends/views.py) from those documents once, so ops, the core,
the CLI and the panel read attributes instead of `entity`/`metadata` keys."""

from __future__ import annotations

from mlops_widgets.backends.monitoring_protocol import Monitoring
from mlops_widgets.backends.views import MeasurementView, MonitorInstanceView, RunView, SubscriptionView


class MonitoringViews:
    """The read side of a `Monitoring`, as views (the writes stay on the protocol)."""

    def __init__(self, monitoring: Monitoring):
        self.monitoring = monitoring

    def subscriptions(self, *, name: str | None = None) -> list[SubscriptionView]:
        return [SubscriptionView.from_document(d) for d in self.monitoring.subscriptions.list(name=name)]

    def subscription(self, subscription_id: str) -> SubscriptionView:
        return SubscriptionView.from_document(self.monitoring.subscriptions.get(subscription_id))

    def instances(
        self, *, target_id: str | None = None, monitor_definition_id: str | None = None
    ) -> list[MonitorInstanceView]:
        found = self.monitoring.monitor_instances.list(
            target_id=target_id, monitor_definition_id=monitor_definition_id
        )
        return [MonitorInstanceView.from_document(d) for d in found]

    def instance(self, monitor_instance_id: str) -> MonitorInstanceView:
        return MonitorInstanceView.from_document(self.monitoring.monitor_instances.get(monitor_instance_id))

    def runs(self, monitor_instance_id: str, *, limit: int | None = None) -> list[RunView]:
        found = self.monitoring.runs.list(monitor_instance_id, limit=limit)
        return [RunView.from_document(d, monitor_instance_id) for d in found]

    def run(self, monitor_instance_id: str, run_id: str) -> RunView:
        return RunView.from_document(
            self.monitoring.runs.get(monitor_instance_id, run_id), monitor_instance_id
        )

    def measurements(
        self, monitor_instance_id: str, *, limit: int | None = None, run_id: str | None = None
    ) -> list[MeasurementView]:
        found = self.monitoring.measurements.list(monitor_instance_id, limit=limit, run_id=run_id)
        return [MeasurementView.from_document(d) for d in found]

    def latest(
        self, *, target_id: str, monitor_definition_id: str, recent_count: int = 1
    ) -> list[MeasurementView]:
        found = self.monitoring.measurements.query(
            target_id=target_id, monitor_definition_id=monitor_definition_id, recent_count=recent_count
        )
        return [MeasurementView.from_document(d) for d in found]
