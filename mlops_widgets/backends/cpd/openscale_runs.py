"""OpenScale monitoring runs and their measurements (ibm-watson-openscale), the part of the
Monitoring protocol a metric provider uses: a run is marked finished or failed by a JSON patch
of its status, and a measurement is published (answered 202, stored asynchronously, as
recorded: tests/data/cluster_answers/openscale-*.json) and read back once OpenScale shows it.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops_widgets.backends.cpd.openscale import Area, _v2, created
from mlops_widgets.backends.monitoring_protocol import Resource
from mlops_widgets.errors import Hint, MlopsError


class CpdRuns(Area):
    def add(self, monitor_instance_id: str, *, triggered_by: str = "user") -> Resource:
        return self._call(
            f"starting a run of monitor instance {monitor_instance_id}",
            lambda: self._wos.monitor_instances.run(
                monitor_instance_id=monitor_instance_id, triggered_by=triggered_by, background_mode=True
            ),
            idempotent=False,
        )

    def get(self, monitor_instance_id: str, run_id: str) -> Resource:
        return self._call(
            f"reading run {run_id}",
            lambda: self._wos.monitor_instances.get_run_details(
                monitor_instance_id=monitor_instance_id, monitoring_run_id=run_id
            ),
        )

    def list(self, monitor_instance_id: str, *, limit: int | None = None) -> list[Resource]:
        runs = self._call(
            f"listing the runs of monitor instance {monitor_instance_id}",
            lambda: self._wos.monitor_instances.list_runs(
                monitor_instance_id=monitor_instance_id, limit=limit
            ),
        )["runs"]
        runs = sorted(runs, key=created, reverse=True)
        return runs if limit is None else runs[:limit]

    def update(
        self, monitor_instance_id: str, run_id: str, *, state: str, error: str | None = None
    ) -> Resource:
        """Mark a run finished or failed (what a provider does once it has published)."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        changes: list[tuple[str, Any]] = [("/status/state", state), ("/status/completed_at", now)]
        if error:
            changes.append(
                (
                    "/status/failure",
                    {"trace": str(uuid.uuid4()), "errors": [{"code": "provider_failed", "message": error}]},
                )
            )
        return self._call(
            f"updating run {run_id}",
            lambda: self._wos.monitor_instances.runs.update(
                monitor_instance_id=monitor_instance_id,
                monitoring_run_id=run_id,
                json_patch_operation=[
                    _v2().JsonPatchOperation(op="replace", path=p, value=v) for p, v in changes
                ],
            ),
        )


class CpdMeasurements(Area):
    def add(
        self,
        monitor_instance_id: str,
        *,
        run_id: str,
        metrics: dict[str, float],
        timestamp: str | None = None,
    ) -> Resource:
        when = timestamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        values = {k: float(v) for k, v in metrics.items()}
        self._call(
            f"publishing a measurement for monitor instance {monitor_instance_id}",
            lambda: self._wos.monitor_instances.measurements.add(
                monitor_instance_id=monitor_instance_id,
                monitor_measurement_request=[
                    _v2().MonitorMeasurementRequest(timestamp=when, run_id=run_id, metrics=[values])
                ],
            ),
            idempotent=False,
        )
        return self._read_back(monitor_instance_id, run_id)

    def _read_back(self, monitor_instance_id: str, run_id: str) -> Resource:
        """The measurement just published: OpenScale answers the POST 202 and stores it
        asynchronously (recorded), so poll for it, at most MLOPS_CPD_MEASUREMENT_WAIT seconds."""
        wait = self._s.settings.measurement_wait
        deadline = time.monotonic() + wait
        delay = 0.1
        while True:
            mine = self.list(monitor_instance_id, run_id=run_id)
            if mine:
                return mine[0]
            if time.monotonic() >= deadline:
                raise MlopsError(
                    f"OpenScale accepted the measurement of run {run_id} but did not show it within "
                    f"{wait:g} s",
                    hint=Hint("cpd.measurement_wait", "allow more time with MLOPS_CPD_MEASUREMENT_WAIT"),
                )
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 2.0)

    def query(self, *, target_id: str, monitor_definition_id: str, recent_count: int = 1) -> list[Resource]:
        found = self._call(
            f"querying the latest {monitor_definition_id} measurements of {target_id}",
            lambda: self._wos.monitor_instances.measurements.query(
                target_id=target_id,
                target_type="subscription",
                monitor_definition_id=monitor_definition_id,
                recent_count=recent_count,
            ),
        )["measurements"]
        return sorted(found, key=lambda m: str(m["entity"].get("timestamp")), reverse=True)

    def list(
        self, monitor_instance_id: str, *, limit: int | None = None, run_id: str | None = None
    ) -> list[Resource]:
        """Newest first; `run_id`: only that run's (OpenScale filters, and so do we)."""
        end = datetime.now(UTC) + timedelta(days=1)
        start = datetime(2000, 1, 1, tzinfo=UTC)
        found = self._call(
            f"listing the measurements of monitor instance {monitor_instance_id}",
            lambda: self._wos.monitor_instances.measurements.list(
                monitor_instance_id=monitor_instance_id, start=start, end=end, limit=limit, run_id=run_id
            ),
        )["measurements"]
        found = [m for m in found if run_id is None or m["entity"].get("run_id") == run_id]
        found = sorted(found, key=lambda m: str(m["entity"].get("timestamp")), reverse=True)
        return found if limit is None else found[:limit]
