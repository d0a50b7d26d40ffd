"""`mlops doctor`: is each Cloud Pak for Data service reachable, does it accept us, which
versions answer, the facts of each service's contract this backend relies on, and, in plain
words, what is missing. Secrets are never shown."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mlops_widgets.backends.cpd.client import OPENSCALE_CPD_INSTANCE, CpdSession
from mlops_widgets.backends.cpd.session import CpdSettings, token_expiry
from mlops_widgets.errors import MlopsError


@dataclass(frozen=True)
class Check:
    service: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pkg(name: str) -> str:
    try:
        return f"{name} {version(name)}"
    except PackageNotFoundError:
        return f"{name} not installed (pip install 'mlops-widgets[cpd]')"


def _settings_check(s: CpdSettings) -> Check:
    missing = s.missing("space") + [m for m in s.missing("inference") if m not in s.missing("space")]
    parts = [
        f"BASE_URL {s.base_url or 'not set'}",
        f"SPACE_ID {s.space_id or 'not set'}",
        f"WMLA_HOST {s.wmla_url or 'not set'}",
        f"inference host {s.inference_url or 'not set'}",
    ]
    renewable = bool(s.username and s.apikey)
    if s.token:
        exp = token_expiry(s.token)
        left = (
            ""
            if exp is None
            else (f", expires in {int((exp - time.time()) // 60)} min" if exp > time.time() else ", EXPIRED")
        )
        if left == ", EXPIRED":
            if not renewable:  # every call would be refused: say so here, not in every check
                missing = [
                    *missing,
                    "USER_ACCESS_TOKEN has EXPIRED: get a new one, or set "
                    "USERNAME and APIKEY so mlops can renew it",
                ]
            left += " (renewed from USERNAME and APIKEY)" if renewable else ""
        parts.append(f"USER_ACCESS_TOKEN set{left}")
    if s.username:
        parts.append(f"USERNAME {s.username} with {'an' if s.apikey else 'no'} APIKEY")
    parts.append(f"CA bundle {s.ca_bundle or 'system default'}")
    if missing:
        return Check("environment", False, "missing: " + "; ".join(missing) + " (" + ", ".join(parts) + ")")
    return Check("environment", True, ", ".join(parts))


# what run_checks reports after sign-in, in order
SERVICES = (
    "sign-in",
    "Watson Machine Learning",
    "WMLA (console)",
    "WMLA (inference)",
    "OpenScale",
    "storage volumes",
)


def run_checks(settings: CpdSettings | None = None) -> list[Check]:
    """Every check, in order; a failed prerequisite marks what depends on it as skipped."""
    s = settings or CpdSettings.from_env()
    session = CpdSession(s)
    checks = [_settings_check(s)]
    if not s.base_url:
        return [*checks, Check("Cloud Pak for Data", False, "skipped: set BASE_URL first")]

    def attempt(service: str, fn: Callable[[], str]) -> bool:
        try:
            checks.append(Check(service, True, fn()))
            return True
        except MlopsError as exc:
            checks.append(Check(service, False, str(exc)))
            return False

    def skip_rest(why: str) -> list[Check]:
        return [
            *checks,
            *(
                Check(service, False, f"skipped: {why}")
                for service in SERVICES
                if service not in {c.service for c in checks}
            ),
        ]

    if not attempt(
        "Cloud Pak for Data", lambda: f"{s.base_url} answers, Watson Machine Learning {session.version()}"
    ):
        return skip_rest("Cloud Pak for Data does not answer")
    if not attempt("sign-in", lambda: _sign_in(session)):
        return skip_rest("sign-in failed")

    def wml() -> str:
        kind, _client = session.wml()
        sdk = _pkg("ibm-watson-machine-learning" if kind == "wml" else "ibm-watsonx-ai")
        return (
            f"space {s.space_id} found, through {sdk} (chosen for Watson Machine Learning "
            f"{session.version()}); assets listed by the CAMS search, page by page"
        )

    if s.space_id:
        attempt("Watson Machine Learning", wml)
    else:
        checks.append(Check("Watson Machine Learning", False, "skipped: set SPACE_ID"))

    if s.wmla_url:
        attempt("WMLA (console)", lambda: _wmla(session))
        attempt("WMLA (inference)", lambda: _inference_host(session))
    else:
        checks.append(Check("WMLA", False, "skipped: set WMLA_HOST (https://wmla-console-...)"))
    attempt("OpenScale", lambda: _openscale(session))
    attempt("storage volumes", lambda: _volumes(session))
    return checks


def record_checks(path: Path) -> list[Check]:
    """`run_checks`, then the workflow's other read-only calls, every answer written to `path`
    (recorder.py says what is kept and what is redacted); the file is written whole or not."""
    from mlops_widgets.backends.cpd.recorder import Recorder, read_only_tour, write_transcript

    if not Path(path).parent.is_dir():
        raise MlopsError(f"cannot write the transcript {path}: folder {Path(path).parent} does not exist")
    s = CpdSettings.from_env()
    recorder = Recorder()
    session = CpdSession(s)
    with recorder.active():
        checks = run_checks(s)
        cluster_version = None
        if s.base_url and all(c.ok for c in checks[:3]):
            cluster_version = session.version()
            read_only_tour(session)
    write_transcript(path, recorder.documents(session, cluster_version))
    checks.append(Check("transcript", True, f"{len(recorder.exchanges)} answers written to {path}"))
    return checks


def _sign_in(session: CpdSession) -> str:
    s = session.settings
    session.http.request(
        "GET",
        f"{s.base_url}/v2/spaces",
        params={"limit": 1},
        what="checking the token with Cloud Pak for Data",
    )
    how = "USERNAME and APIKEY" if session.http.tokens.renewable else "USER_ACCESS_TOKEN"
    return f"signed in with {how}; the token is accepted"


def _wmla(session: CpdSession) -> str:
    from mlops_widgets.backends.cpd.inference import CpdInference

    s = session.settings
    views = CpdInference(session).list()  # every document read as recorded (edi.py)
    return (
        f"{s.wmla_url} answers the EDI v2 API with the token in X-Auth-Token, through "
        f"{_pkg('ibm-wmla')}; {len(views)} deployment(s), their model and instance documents "
        "in the recorded shapes"
    )


def _inference_host(session: CpdSession) -> str:
    s = session.settings
    # an unknown deployment's inference must be a 404 from WMLA, not a connection failure
    resp = session.http.request(
        "POST",
        f"{s.inference_url}/dlim/v1/inference/mlops-doctor-probe",
        what=f"reaching the WMLA inference host {s.inference_url}",
        data=b"{}",
        ok=tuple(range(200, 500)),
        retry=False,
    )
    if resp.status_code in (401, 403):
        raise MlopsError(f"the WMLA inference host {s.inference_url} refused the token ({resp.status_code})")
    return f"{s.inference_url} answers"


def _openscale(session: CpdSession) -> str:
    from mlops_widgets.backends.cpd.openscale import CpdMonitorDefinitions, CpdServiceProviders

    mart = session.call(
        "reading the OpenScale data mart",
        lambda: session.openscale().data_marts.get(OPENSCALE_CPD_INSTANCE).result,
    )
    state = ((mart.to_dict().get("entity") or {}).get("status") or {}).get("state", "unknown")
    n = len(CpdServiceProviders(session).list())
    custom = [d["metadata"]["id"] for d in CpdMonitorDefinitions(session).list()]
    return (
        f"data mart {OPENSCALE_CPD_INSTANCE} (the Cloud Pak for Data instance) is {state}, "
        f"through {_pkg('ibm-watson-openscale')}; {n} service provider(s); custom monitor "
        f"definitions: {', '.join(custom) or 'none yet'}; providers are called with "
        "enable_custom_metric_runs and a ?version= scoring URL"
    )


def _volumes(session: CpdSession) -> str:
    from mlops_widgets.backends.cpd.volumes import CpdVolumes

    names = CpdVolumes(session).list_volumes()
    return f"{len(names)} volume(s)" + (f": {', '.join(names)}" if names else "")
