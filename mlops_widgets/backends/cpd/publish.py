"""Publishing a metric provider on the cluster (the B2 notebook): the provider becomes a WML
deployable function in the space, deployed online, whose scoring URL OpenScale calls."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from mlops_widgets.backends.cpd.client import CpdSession
from mlops_widgets.backends.cpd.provider_function import function_source
from mlops_widgets.errors import MlopsError
from mlops_widgets.monitors.definitions import MonitorDefinition

SOFTWARE_SPEC_ENV = "MLOPS_CPD_SOFTWARE_SPEC"


def deploy_provider(
    session: CpdSession, definition: MonitorDefinition, *, software_spec: str | None = None
) -> dict[str, Any]:
    """Store the provider function and deploy it online; its ids and scoring URL.

    `software_spec` (default $MLOPS_CPD_SOFTWARE_SPEC) names the runtime. There is no default:
    it must provide mlops-widgets[cpd], which no stock runtime does (a custom software
    specification built once by the cluster's admin from a base runtime plus this package)."""
    spec_name = software_spec or os.environ.get(SOFTWARE_SPEC_ENV)
    if not spec_name:
        raise MlopsError(
            "publishing a provider on Cloud Pak for Data needs a software specification that "
            f"provides mlops-widgets[cpd]: name it with --software-spec or ${SOFTWARE_SPEC_ENV} "
            "(stock runtimes such as runtime-24.1-py3.11 cannot import mlops_widgets)"
        )
    kind, client = session.wml()
    name = f"mlops-widgets {definition.id} provider"

    with tempfile.TemporaryDirectory(prefix="mlops-function-") as tmp:
        code = Path(tmp) / f"{definition.id}_provider.py.gz"
        code.write_bytes(function_source(definition.id, definition.provider))

        def spec_id() -> str:
            found = client.software_specifications.get_id_by_name(spec_name)
            if not found or found == "Not Found":
                raise MlopsError(
                    f"the cluster has no software specification {spec_name!r}: name one that "
                    f"provides mlops-widgets[cpd] with --software-spec or ${SOFTWARE_SPEC_ENV}"
                )
            return found

        spec = session.call(f"finding software specification {spec_name}", spec_id)

        def store() -> dict[str, Any]:
            names = client.repository.FunctionMetaNames
            # the old SDK calls it SOFTWARE_SPEC_UID, ibm-watsonx-ai SOFTWARE_SPEC_ID
            spec_key = getattr(names, "SOFTWARE_SPEC_ID", None) or names.SOFTWARE_SPEC_UID
            return client.repository.store_function(
                function=str(code),
                meta_props={names.NAME: name, spec_key: spec,
                            names.DESCRIPTION: f"metric provider of monitor {definition.id}"},
            )

        stored = session.call(f"storing the {definition.id} provider function", store,
                              idempotent=False)
    function_id = stored["metadata"].get("id") or stored["metadata"]["guid"]

    def deploy() -> dict[str, Any]:
        names = client.deployments.ConfigurationMetaNames
        props = {names.NAME: name, names.ONLINE: {}}
        if kind == "watsonx":  # no 5-second sleeps: poll below
            return client.deployments.create(function_id, meta_props=props, background_mode=True)
        return client.deployments.create(function_id, meta_props=props)  # waits until ready

    deployment = session.call(f"deploying the {definition.id} provider function", deploy,
                              idempotent=False)
    deployment_id = deployment["metadata"].get("id") or deployment["metadata"]["guid"]
    deployment = _wait_ready(session, client, deployment_id, deployment)
    scoring_url = session.call(
        "reading the provider's scoring URL",
        lambda: client.deployments.get_scoring_href(deployment),
    )
    return {"function_id": function_id, "wml_deployment_id": deployment_id,
            "scoring_url": scoring_url, "software_spec": spec_name, "sdk": kind}


def provider_credentials(session: CpdSession) -> dict[str, Any]:
    """How OpenScale signs in before calling the provider: USERNAME and APIKEY, exchanged for a
    token at each run (a token alone would expire). Kept by OpenScale on the cluster only."""
    s = session.settings
    if not (s.username and s.apikey):
        raise MlopsError(
            "publishing a provider needs USERNAME and APIKEY (OpenScale signs in with them at "
            "every evaluation; a USER_ACCESS_TOKEN would expire)"
        )
    return {
        "auth_type": "bearer",
        "token_info": {
            "url": f"{s.base_url}/icp4d-api/v1/authorize",
            "headers": {"Content-Type": "application/json", "Accept": "application/json"},
            "payload": {"username": s.username, "api_key": s.apikey},
            "method": "post",
        },
    }


def _wait_ready(session: CpdSession, client: Any, deployment_id: str,
                details: dict[str, Any], timeout: float = 600.0) -> dict[str, Any]:
    """Poll a deployment until it is ready (failed: the reason)."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        state = str(((details.get("entity") or {}).get("status") or {}).get("state", "")).lower()
        if state == "ready":
            return details
        if state == "failed":
            raise MlopsError(f"deploying the provider function failed: {details['entity']['status']}")
        if time.monotonic() > deadline:
            raise MlopsError(f"the provider deployment {deployment_id} is not ready after {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 5.0)
        details = session.call("reading the provider deployment",
                               lambda: client.deployments.get_details(deployment_id))
