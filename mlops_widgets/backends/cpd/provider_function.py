"""What a published metric provider runs on the cluster (a WML deployable function).

OpenScale evaluates a custom monitor by calling its integrated system's endpoint with the
custom-metrics payload (`{"input_data": [{"values": {subscription_id, custom_monitor_id,
custom_monitor_instance_id, custom_monitor_instance_params: {..., run_details: {run_id}}}}]}`).
`handle` then does what the original's provider functions did, with this package's providers:
copy the instance's `dir_gt` and `dir_pred` from its storage volume, compute the metrics,
publish one measurement on the run and mark the run finished, or failed with the reason.

It signs in from its runtime's environment like the original (RUNTIME_ENV_APSX_URL, then
USER_ACCESS_TOKEN or USERNAME + APIKEY), and never logs them.
"""

from __future__ import annotations

import gzip
import shutil
from typing import Any

SOURCE = '''"""mlops-widgets metric provider for monitor {monitor_id} (provider {provider}).

Published by `mlops monitor publish`; needs the mlops-widgets[cpd] package in its runtime.
"""

MONITOR_ID = {monitor_id!r}
PROVIDER = {provider!r}


def score(payload):
    from mlops_widgets.backends.cpd.provider_function import handle

    return handle(payload, monitor_id=MONITOR_ID, provider=PROVIDER)
'''


def function_source(monitor_id: str, provider: str) -> bytes:
    """The gzip-compressed Python file WML stores as the function's code."""
    return gzip.compress(SOURCE.format(monitor_id=monitor_id, provider=provider).encode())


def handle(payload: dict[str, Any], *, monitor_id: str, provider: str) -> dict[str, Any]:
    """Compute and publish one run's measurement; the answer OpenScale expects."""
    from mlops_widgets.backends.cpd.client import CpdSession
    from mlops_widgets.backends.cpd.monitoring import CpdMonitoring
    from mlops_widgets.backends.cpd.volumes import CpdVolumes
    from mlops_widgets.errors import MlopsError
    from mlops_widgets.monitors import registry
    from mlops_widgets.monitors.base import ProviderInput
    from mlops_widgets.monitors.thresholds import metric_id

    try:
        values = payload["input_data"][0]["values"]
        instance_id = values["custom_monitor_instance_id"]
        params = dict(values.get("custom_monitor_instance_params") or {})
        run_id = (params.pop("run_details", None) or {})["run_id"]
    except (KeyError, IndexError, TypeError):
        return {"predictions": [], "errors": ["the payload is not OpenScale's custom-metrics payload"]}
    session = CpdSession()
    monitoring = CpdMonitoring(session)
    try:
        volume = params.get("volume_display_name")
        folders = [params.get("dir_gt"), params.get("dir_pred")]
        if not volume or not all(folders):
            raise MlopsError(
                f"monitor {monitor_id}: the instance needs volume_display_name, dir_gt and dir_pred"
            )
        root, (gt, pred) = CpdVolumes(session).materialize(str(volume), [str(f) for f in folders])
        try:
            most_recent = params.get("most_recent")
            computed = registry.provider(provider).evaluate(ProviderInput(
                gt, pred, most_recent=None if most_recent is None else float(most_recent),
                parameters=params))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        measurement = monitoring.measurements.add(
            instance_id, run_id=run_id, metrics={metric_id(k): v for k, v in computed.items()})
        monitoring.runs.update(instance_id, run_id, state="finished")
        return {"predictions": [{"fields": ["measurement_id"],
                                 "values": [[measurement["metadata"]["id"]]]}]}
    except Exception as exc:  # any failure is the run's error, in words
        message = str(exc) if isinstance(exc, MlopsError) else f"{type(exc).__name__}: {exc}"
        try:
            monitoring.runs.update(instance_id, run_id, state="error", error=message)
        except MlopsError:
            pass
        return {"predictions": [], "errors": [message]}
