"""What a published metric provider runs on the cluster (a WML deployable function).

OpenScale evaluates a custom monitor by calling its integrated system's endpoint with the
custom-metrics payload: `{"input_data": [{"values": {subscription_id, custom_monitor_id,
custom_monitor_instance_id, custom_monitor_run_id, custom_monitor_instance_params: {...}}}]}`
(older releases carry the run id as `custom_monitor_instance_params.run_details.run_id`; both
are read). `handle` then does what the original's provider functions did, with this package's
providers: copy the instance's `dir_gt` and `dir_pred` from its storage volume, compute the
metrics, publish one measurement on the run and mark the run finished, or failed with the
reason.

How it signs in, first that applies (docs/cluster-facts.md has the research):
1. the bearer token WML passes as the second argument of `score(payload, token)` where the
   platform offers that form (watsonx.ai Runtime): OpenScale's, from the integrated system's
   credentials;
2. where `score` gets one argument (Cloud Pak for Data 4.x), USERNAME and APIKEY (or a
   USER_ACCESS_TOKEN) in the function's runtime environment, which the cluster's administrator
   sets there, so that no credential is in the function's code, a notebook or a record.
Without either (or with one refused) it cannot reach OpenScale to mark the run, so it answers
with the reason, which OpenScale records as the run's failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

NO_CREDENTIALS = (
    "the provider got no token and has no credentials: where WML hands score() only the payload "
    "(Cloud Pak for Data 4.x), set USERNAME and APIKEY in the environment of the provider's "
    "runtime; where it hands the caller's token too, publish the monitor again so its "
    "integrated system carries credentials"
)


def _run_id(values: dict[str, Any], params: dict[str, Any]) -> str:
    run_id = values.get("custom_monitor_run_id") or (params.get("run_details") or {}).get("run_id")
    if not run_id:
        raise KeyError("run id")
    return str(run_id)


def handle(
    payload: dict[str, Any],
    token: str | None,
    *,
    monitor_id: str,
    provider: str,
    cpd_url: str,
    ca_pem: str | None = None,
) -> dict[str, Any]:
    """Compute and publish one run's measurement; the answer OpenScale expects."""
    try:
        values = payload["input_data"][0]["values"]
        instance_id = values["custom_monitor_instance_id"]
        params = dict(values.get("custom_monitor_instance_params") or {})
        run_id = _run_id(values, params)
    except (KeyError, IndexError, TypeError):
        return {"predictions": [], "errors": ["the payload is not OpenScale's custom-metrics payload"]}
    env = os.environ
    if not token and not env.get("USER_ACCESS_TOKEN") and not (env.get("USERNAME") and env.get("APIKEY")):
        return {"predictions": [], "errors": [NO_CREDENTIALS]}
    with tempfile.TemporaryDirectory(prefix="mlops-provider-") as tmp:
        ca_bundle = None
        if ca_pem:
            ca_bundle = os.path.join(tmp, "ca.pem")
            with open(ca_bundle, "w", encoding="utf-8") as fh:
                fh.write(ca_pem)
        return _evaluate(
            params,
            run_id,
            instance_id,
            token,
            monitor_id=monitor_id,
            provider=provider,
            cpd_url=cpd_url,
            ca_bundle=ca_bundle,
            tmp=Path(tmp),
        )


def _evaluate(
    params: dict[str, Any],
    run_id: str,
    instance_id: str,
    token: str | None,
    *,
    monitor_id: str,
    provider: str,
    cpd_url: str,
    ca_bundle: str | None,
    tmp: Path,
) -> dict[str, Any]:
    from mlops_widgets.backends.cpd.client import CpdSession
    from mlops_widgets.backends.cpd.monitoring import CpdMonitoring
    from mlops_widgets.backends.cpd.session import CpdSettings
    from mlops_widgets.backends.cpd.volumes import CpdVolumes
    from mlops_widgets.errors import MlopsError
    from mlops_widgets.monitors import registry
    from mlops_widgets.monitors.base import ProviderInput
    from mlops_widgets.monitors.thresholds import metric_id

    # the caller's token when WML passes one, else the runtime's own credentials
    given = {"USER_ACCESS_TOKEN": token, "USERNAME": "", "APIKEY": ""} if token else {}
    settings = CpdSettings.from_env(
        {
            **os.environ,
            "BASE_URL": cpd_url,
            **({"MLOPS_CPD_CA_BUNDLE": ca_bundle} if ca_bundle else {}),
            **given,
        }
    )
    session = CpdSession(settings)
    monitoring = CpdMonitoring(session)
    try:
        volume = params.get("volume_display_name")
        folders = [params.get("dir_gt"), params.get("dir_pred")]
        if not volume or not all(folders):
            raise MlopsError(
                f"monitor {monitor_id}: the instance needs volume_display_name, dir_gt and dir_pred"
            )
        volumes = CpdVolumes(session)
        gt, pred = (
            volumes.download_folder(str(volume), str(f), tmp / f"{i}-{Path(str(f)).name}")
            for i, f in enumerate(folders)
        )
        try:
            most_recent = params.get("most_recent")
            computed = registry.provider(provider).evaluate(
                ProviderInput(
                    gt,
                    pred,
                    most_recent=None if most_recent is None else float(most_recent),
                    parameters={k: v for k, v in params.items() if k != "run_details"},
                )
            )
        finally:
            shutil.rmtree(gt, ignore_errors=True)
            shutil.rmtree(pred, ignore_errors=True)
        measurement = monitoring.measurements.add(
            instance_id, run_id=run_id, metrics={metric_id(k): v for k, v in computed.items()}
        )
        monitoring.runs.update(instance_id, run_id, state="finished")
        return {"predictions": [{"fields": ["measurement_id"], "values": [[measurement["metadata"]["id"]]]}]}
    except Exception as exc:  # any failure is the run's error, in words
        message = str(exc) if isinstance(exc, MlopsError) else f"{type(exc).__name__}: {exc}"
        try:
            monitoring.runs.update(instance_id, run_id, state="error", error=message)
        except MlopsError:
            pass
        return {"predictions": [], "errors": [message]}
