"""OpenScale through ibm-watson-openscale, behind the Monitoring protocol (backends/monitoring_protocol.py):
one attribute per OpenScale client area (openscale.py, integrated_systems.py)."""

from __future__ import annotations

from mlops_widgets.backends.cpd.client import CpdSession
from mlops_widgets.backends.cpd.integrated_systems import CpdIntegratedSystems
from mlops_widgets.backends.cpd.openscale import (
    CpdMonitorDefinitions,
    CpdMonitorInstances,
    CpdServiceProviders,
    CpdSubscriptions,
)
from mlops_widgets.backends.cpd.openscale_runs import CpdMeasurements, CpdRuns


class CpdMonitoring:
    """The Monitoring protocol on OpenScale."""

    def __init__(self, session: CpdSession) -> None:
        session.settings.require("monitoring")
        self.session = session
        self.service_providers = CpdServiceProviders(session)
        self.subscriptions = CpdSubscriptions(session)
        self.monitor_definitions = CpdMonitorDefinitions(session)
        self.integrated_systems = CpdIntegratedSystems(session)
        self.monitor_instances = CpdMonitorInstances(session, self.monitor_definitions)
        self.runs = CpdRuns(session)
        self.measurements = CpdMeasurements(session)
