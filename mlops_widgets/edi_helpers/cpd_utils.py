"""cpd_utils: sign-in to Cloud Pak for Data, and where the helper modules act.

The original team's API (`get_access_token(credentials, host_url)` -> a token string), written
anew for mlops-widgets. The helper modules act on one of two places, chosen by the variables
every deployment folder's model.json sets (mk_environments):
- MLOPS_BACKEND=local: the mlops-widgets workspace at MLOPS_HOME (its space, its volumes under
  MLOPS_VOLUMES) on this machine; the token is the local inference service's.
- otherwise (cpd, or a real WMLA cluster): the Cloud Pak for Data REST services at BASE_URL
  (else RUNTIME_ENV_APSX_URL), through `requests`; TLS is verified against MLOPS_CPD_CA_BUNDLE
  (when that file exists here) or REQUESTS_CA_BUNDLE, else the system's trust store (never off).
Standard library only on the local backend (a kernel may run on an interpreter without our
packages).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

AUTHENTICATE = "/icp4d-api/v1/authorize"
RETRIES = 3
RETRY_STATUSES = (429, 500, 502, 503, 504)


def is_local() -> bool:
    """Whether the helpers act on a local mlops-widgets workspace (MLOPS_BACKEND=local)."""
    return os.environ.get("MLOPS_BACKEND") == "local"


def workspace() -> Path:
    """The local workspace folder (MLOPS_HOME, set in every local deployment's environment)."""
    home = os.environ.get("MLOPS_HOME")
    if not home:
        raise RuntimeError(
            "MLOPS_HOME is not set: the deployment's model.json should carry it in mk_environments"
        )
    return Path(home)


def base_url(host_url: str | None = None) -> str:
    """The Cloud Pak for Data URL: the argument, else BASE_URL, else RUNTIME_ENV_APSX_URL."""
    url = host_url or os.environ.get("BASE_URL") or os.environ.get("RUNTIME_ENV_APSX_URL")
    if not url:
        raise RuntimeError("BASE_URL is not set: the Cloud Pak for Data URL the helpers should call")
    return url.rstrip("/")


def verify() -> str | bool:
    """What `requests` verifies TLS against: the CA bundle MLOPS_CPD_CA_BUNDLE names when that
    file is here (the deploying machine's bundle may not exist where the kernel runs), else
    REQUESTS_CA_BUNDLE, else the system's trust store. Never off."""
    bundle = os.environ.get("MLOPS_CPD_CA_BUNDLE")
    if bundle and os.path.isfile(bundle):
        return bundle
    return os.environ.get("REQUESTS_CA_BUNDLE") or True


def request(method: str, url: str, *, ok: tuple[int, ...] = (200,), **kwargs):
    """One REST call with the original's fault tolerance (a few retries on 429 and 5xx, and on
    a dropped connection for reads); any other status raises RuntimeError with the body."""
    import requests

    for attempt in range(RETRIES + 1):
        try:
            resp = requests.request(method, url, verify=verify(), timeout=300, **kwargs)
        except requests.ConnectionError:
            if method != "GET" or attempt == RETRIES:
                raise
            time.sleep(0.5 * 2**attempt)
            continue
        if resp.status_code in ok:
            return resp
        if resp.status_code not in RETRY_STATUSES or attempt == RETRIES:
            break
        time.sleep(0.5 * 2**attempt)
    raise RuntimeError(f"{method} {url}: HTTP {resp.status_code}: {resp.text[:500]}")


def local_token() -> str:
    """The local inference service's token (the one `Authorization: Bearer` takes)."""
    info = workspace() / "inference" / "service.json"
    try:
        token = json.loads(info.read_text()).get("token")
    except (OSError, ValueError):
        token = None
    if not token:
        raise RuntimeError(f"no token in {info}: the local inference service of {workspace()} is not running")
    return token


def get_access_token(credentials: dict | None = None, host_url: str | None = None) -> str:
    """A token for the REST services: POST /icp4d-api/v1/authorize with `credentials`
    ({"username", "api_key"} or {"username", "password"}); on the local backend the local
    service's token (no credentials needed)."""
    if is_local():
        return local_token()
    resp = request("POST", base_url(host_url) + AUTHENTICATE, json=dict(credentials or {}))
    token = resp.json().get("token")
    if not token:
        raise RuntimeError(f"{base_url(host_url)}{AUTHENTICATE} answered without a token")
    return token
