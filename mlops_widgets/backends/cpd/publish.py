"""Publishing a metric provider on the cluster (the B2 notebook): the provider becomes a WML
deployable function in the space, deployed online, whose scoring URL OpenScale calls.

Per IBM's own custom-monitor helper (`ibm_watson_openscale/custom_monitor.py`): the function
deployment gets a hardware specification, its scoring URL is registered with
`?version=<YYYY-MM-DD>` (OpenScale calls the URL as registered), and re-publishing replaces the
previous function and deployment of the same name (see `monitoring.py` for the integrated
system).

How the function signs in (provider_function.py): where WML calls a `score(payload, token)`
with the bearer token of the caller (watsonx.ai Runtime: "Writing deployable Python functions"),
with OpenScale's token, from the integrated system's credentials (kept in OpenScale's vault);
where `score` gets only the payload (Cloud Pak for Data 4.x), with USERNAME and APIKEY set in
its runtime's environment by the cluster's administrator. Either way the function's source
holds no secret, only the cluster URL and, for a private CA, the CA's public certificate.
"""

from __future__ import annotations

import gzip
import tempfile
import time
from pathlib import Path
from typing import Any

from mlops_widgets.backends.cpd.client import CpdSession
from mlops_widgets.errors import Hint, MlopsError, NotFoundError
from mlops_widgets.monitors.definitions import MonitorDefinition
from mlops_widgets.settings import CPD_HARDWARE_SPEC, CPD_SOFTWARE_SPEC

SOFTWARE_SPEC_ENV = CPD_SOFTWARE_SPEC.env
HARDWARE_SPEC_ENV = CPD_HARDWARE_SPEC.env
HARDWARE_SPEC = "M"  # what IBM's custom-monitor helper deploys providers on
WML_API_VERSION = "2021-06-24"

SOURCE = '''"""mlops-widgets metric provider for monitor {monitor_id} (provider {provider}).

Published by mlops-widgets; needs the mlops-widgets[cpd] package in its runtime. It signs in
with the bearer token WML hands to score() where it hands one, else with USERNAME and APIKEY
from its runtime's environment: no credential is stored here.
"""

MONITOR_ID = {monitor_id!r}
PROVIDER = {provider!r}
CPD_URL = {cpd_url!r}
CA_PEM = {ca_pem!r}


def score(payload, token=None):
    from mlops_widgets.backends.cpd.provider_function import handle

    return handle(payload, token, monitor_id=MONITOR_ID, provider=PROVIDER, cpd_url=CPD_URL,
                  ca_pem=CA_PEM)
'''


def function_source(monitor_id: str, provider: str, cpd_url: str, ca_pem: str | None) -> bytes:
    """The gzip-compressed Python file WML stores as the function's code."""
    return gzip.compress(
        SOURCE.format(monitor_id=monitor_id, provider=provider, cpd_url=cpd_url, ca_pem=ca_pem).encode()
    )


def function_name(definition: MonitorDefinition) -> str:
    return f"mlops-widgets {definition.id} provider"


def _spec_hint(what: str) -> Hint:
    return Hint(
        "monitor.publish.software_spec",
        f"name {what} that provides mlops-widgets[cpd] (or set ${SOFTWARE_SPEC_ENV})",
    )


def deploy_provider(
    session: CpdSession, definition: MonitorDefinition, *, software_spec: str | None = None
) -> dict[str, Any]:
    """Store the provider function and deploy it online; its ids and versioned scoring URL.

    `software_spec` (default $MLOPS_CPD_SOFTWARE_SPEC) names the runtime. There is no default:
    it must provide mlops-widgets[cpd], which no stock runtime does (a custom software
    specification built once by the cluster's admin from a base runtime plus this package)."""
    spec_name = software_spec or CPD_SOFTWARE_SPEC.from_env()
    if not spec_name:
        raise MlopsError(
            "publishing a provider on Cloud Pak for Data needs a software specification that "
            "provides mlops-widgets[cpd] (stock runtimes such as runtime-24.1-py3.11 cannot "
            "import mlops_widgets)",
            hint=_spec_hint("a software specification"),
        )
    hw_name = CPD_HARDWARE_SPEC.from_env() or HARDWARE_SPEC
    kind, client = session.wml()
    name = function_name(definition)
    s = session.settings
    ca_pem = Path(s.ca_bundle).read_text(encoding="utf-8") if s.ca_bundle else None

    def spec_ids() -> tuple[str, str]:
        spec = client.software_specifications.get_id_by_name(spec_name)
        if not spec or spec == "Not Found":
            raise MlopsError(
                f"the cluster has no software specification {spec_name!r}",
                hint=_spec_hint("another software specification"),
            )
        hw = client.hardware_specifications.get_id_by_name(hw_name)
        if not hw or hw == "Not Found":
            raise MlopsError(
                f"the cluster has no hardware specification {hw_name!r} (${HARDWARE_SPEC_ENV} names another)"
            )
        return spec, hw

    spec, hw = session.call(f"finding software specification {spec_name}", spec_ids)
    with tempfile.TemporaryDirectory(prefix="mlops-function-") as tmp:
        code = Path(tmp) / f"{definition.id}_provider.py.gz"
        assert s.base_url is not None  # required by the session
        code.write_bytes(function_source(definition.id, definition.provider, s.base_url, ca_pem))

        def store() -> dict[str, Any]:
            names = client.repository.FunctionMetaNames
            # the old SDK calls it SOFTWARE_SPEC_UID, ibm-watsonx-ai SOFTWARE_SPEC_ID
            spec_key = getattr(names, "SOFTWARE_SPEC_ID", None) or names.SOFTWARE_SPEC_UID
            return client.repository.store_function(
                function=str(code),
                meta_props={
                    names.NAME: name,
                    spec_key: spec,
                    names.DESCRIPTION: f"metric provider of monitor {definition.id}",
                },
            )

        stored = session.call(f"storing the {definition.id} provider function", store, idempotent=False)
    function_id = stored["metadata"].get("id") or stored["metadata"]["guid"]

    def deploy() -> dict[str, Any]:
        names = client.deployments.ConfigurationMetaNames
        props = {names.NAME: name, names.ONLINE: {}, names.HARDWARE_SPEC: {"id": hw}}
        if kind == "watsonx":  # no 5-second sleeps: poll below
            return client.deployments.create(function_id, meta_props=props, background_mode=True)
        return client.deployments.create(function_id, meta_props=props)  # waits until ready

    deployment = session.call(f"deploying the {definition.id} provider function", deploy, idempotent=False)
    deployment_id = deployment["metadata"].get("id") or deployment["metadata"]["guid"]
    deployment = _wait_ready(session, client, deployment_id, deployment)
    href = session.call(
        "reading the provider's scoring URL", lambda: client.deployments.get_scoring_href(deployment)
    )
    created = str(deployment["metadata"].get("created_at") or "")
    day = created.split("T")[0] if "T" in created else time.strftime("%Y-%m-%d", time.gmtime())
    return {
        "function_id": function_id,
        "wml_deployment_id": deployment_id,
        "scoring_url": f"{href}?version={day}",
        "software_spec": spec_name,
        "hardware_spec": hw_name,
        "sdk": kind,
    }


def remove_other_deployments(session: CpdSession, definition: MonitorDefinition, keep: str) -> list[str]:
    """Delete the earlier deployments of this provider (same name, another id) and their
    functions, as IBM's helper cleans up before it re-creates. Over REST: both SDKs list
    deployments without a name filter and resolve an asset's type by trial requests."""
    s = session.settings
    params = {"space_id": s.space_id, "version": WML_API_VERSION}
    found = session.http.json(
        "GET", f"{s.base_url}/ml/v4/deployments", params=params, what="listing the space's deployments"
    )
    removed = []
    for d in found.get("resources") or []:
        meta = d.get("metadata") or {}
        if meta.get("name") != function_name(definition) or meta.get("id") == keep:
            continue
        session.http.request(
            "DELETE",
            f"{s.base_url}/ml/v4/deployments/{meta['id']}",
            params=params,
            what=f"deleting the earlier provider deployment {meta['id']}",
        )
        removed.append(meta["id"])
        function_id = ((d.get("entity") or {}).get("asset") or {}).get("id")
        if function_id:
            try:
                session.http.request(
                    "DELETE",
                    f"{s.base_url}/ml/v4/functions/{function_id}",
                    params=params,
                    what=f"deleting the earlier provider function {function_id}",
                )
            except NotFoundError:
                pass  # shared by another deployment that went first
    return removed


def _wait_ready(
    session: CpdSession, client: Any, deployment_id: str, details: dict[str, Any], timeout: float = 600.0
) -> dict[str, Any]:
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
        details = session.call(
            "reading the provider deployment", lambda: client.deployments.get_details(deployment_id)
        )
