"""Settings from the environment, the Cloud Pak for Data token, and a small REST client.

Credentials come from the environment the original used and live only in this process's
memory: nothing here writes them to a file, a notebook or a log (`repr` hides them too).

    BASE_URL or RUNTIME_ENV_APSX_URL   the Cloud Pak for Data console, https://cpd-<ns>.apps...
    USER_ACCESS_TOKEN                  a bearer token, or:
    USERNAME + APIKEY                  exchanged for a token (and renewed when it expires)
    SPACE_ID (or WML_SPACE_ID)         the Watson Machine Learning deployment space
    WMLA_HOST                          the WMLA console (dlim management), https://wmla-console-...
    WMLA_INFERENCE_HOST                the WMLA inference host; default: WMLA_HOST with
                                       wmla-console replaced by wmla-inference
    MLOPS_CPD_CA_BUNDLE                a PEM file of CAs to trust (a cluster's private CA);
                                       default: REQUESTS_CA_BUNDLE, else the system's CAs
    MLOPS_CPD_SDK                      force `wml` (ibm-watson-machine-learning) or `watsonx`
                                       (ibm-watsonx-ai); default: chosen by the cluster's version
    MLOPS_CPD_EDI_TIMEOUT              seconds to wait for an EDI deployment to reach the started
                                       or disabled state after a start or stop (default 600)
    MLOPS_CPD_MEASUREMENT_WAIT         seconds to wait for a published measurement to become
                                       readable (OpenScale answers 202 and stores it later;
                                       default 60)
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_widgets import settings as s
from mlops_widgets.errors import ConflictError, MlopsError, NotFoundError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({500, 502, 503, 504})


def _url(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip().rstrip("/")
    if "://" not in value:
        value = "https://" + value
    return value.removesuffix("/dlim/v1")


@dataclass(frozen=True)
class CpdSettings:
    """Where the services are and how to authenticate; secrets are kept out of repr."""

    base_url: str | None = None
    space_id: str | None = None
    wmla_url: str | None = None
    inference_url: str | None = None
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    apikey: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    sdk: str | None = None
    retries: int = 3
    retry_delay: float = 0.5
    edi_timeout: float = 600.0
    measurement_wait: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CpdSettings:
        env = os.environ if env is None else env
        wmla = _url(env.get("WMLA_HOST"))
        inference = _url(env.get("WMLA_INFERENCE_HOST"))
        if inference is None and wmla is not None:
            inference = wmla.replace("wmla-console", "wmla-inference")
        return cls(
            base_url=_url(env.get("BASE_URL") or env.get("RUNTIME_ENV_APSX_URL")),
            space_id=env.get("SPACE_ID") or env.get("WML_SPACE_ID") or None,
            wmla_url=wmla,
            inference_url=inference,
            token=env.get("USER_ACCESS_TOKEN") or None,
            username=env.get("USERNAME") or None,
            apikey=env.get("APIKEY") or None,
            ca_bundle=s.CPD_CA_BUNDLE.from_env(env) or env.get("REQUESTS_CA_BUNDLE") or None,
            sdk=s.CPD_SDK.from_env(env),
            retries=s.CPD_RETRIES.from_env(env),
            retry_delay=s.CPD_RETRY_DELAY.from_env(env),
            edi_timeout=s.CPD_EDI_TIMEOUT.from_env(env),
            measurement_wait=s.CPD_MEASUREMENT_WAIT.from_env(env),
        )

    @property
    def verify(self) -> str | bool:
        """What TLS verification uses: the CA bundle, else the default trust store; never off."""
        return self.ca_bundle or True

    def missing(self, service: str) -> list[str]:
        """What the environment lacks for `service` (space, inference, monitoring), in words."""
        out: list[str] = []
        if not self.base_url:
            out.append("BASE_URL (or RUNTIME_ENV_APSX_URL): the Cloud Pak for Data URL")
        if not self.token and not (self.username and self.apikey):
            if self.username and not self.apikey:
                out.append("APIKEY: USERNAME is set but its API key is not")
            elif self.apikey and not self.username:
                out.append("USERNAME: APIKEY is set but the user name is not")
            else:
                out.append("USER_ACCESS_TOKEN, or USERNAME and APIKEY: how to sign in")
        if service == "space" and not self.space_id:
            out.append("SPACE_ID: the Watson Machine Learning deployment space id")
        if service == "inference" and not self.wmla_url:
            out.append("WMLA_HOST: the WMLA console URL (https://wmla-console-...)")
        if self.ca_bundle and not os.path.isfile(self.ca_bundle):
            out.append(f"MLOPS_CPD_CA_BUNDLE: {self.ca_bundle} is not a file")
        return out

    def require(self, service: str) -> None:
        missing = self.missing(service)
        if missing:
            raise MlopsError(f"the cpd backend cannot reach the {service} service: set " + "; ".join(missing))


def token_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT-shaped token (epoch seconds), None when it has none."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


class Tokens:
    """The current bearer token: USER_ACCESS_TOKEN as given, or one obtained (and renewed when
    refused or about to expire) from USERNAME and APIKEY."""

    def __init__(self, settings: CpdSettings, http: Callable[..., Any]) -> None:
        self._settings = settings
        self._post = http
        self._token = settings.token
        self.listeners: list[Callable[[str], None]] = []

    @property
    def renewable(self) -> bool:
        return bool(self._settings.username and self._settings.apikey)

    def get(self) -> str:
        if self._token is None and not self.renewable:
            raise MlopsError(
                "no way to sign in to Cloud Pak for Data: set USER_ACCESS_TOKEN, or USERNAME and APIKEY"
            )
        if self._token is None or (self.renewable and self._expiring(self._token)):
            self.renew()
        elif not self.renewable and (token_expiry(self._token) or float("inf")) < time.time():
            self.renew()  # raises: say it is expired before any server has to
        assert self._token is not None
        return self._token

    @staticmethod
    def _expiring(token: str) -> bool:
        exp = token_expiry(token)
        return exp is not None and exp - time.time() < 30

    def renew(self) -> str:
        """A new token from USERNAME and APIKEY; refused (MlopsError) when there are none."""
        s = self._settings
        if not self.renewable:
            raise MlopsError(
                "the Cloud Pak for Data token in USER_ACCESS_TOKEN has expired or was refused: "
                "get a new one, or set USERNAME and APIKEY so mlops can renew it"
            )
        resp = self._post(
            f"{s.base_url}/icp4d-api/v1/authorize",
            json={"username": s.username, "api_key": s.apikey},
        )
        if resp.status_code in (401, 403):
            raise MlopsError(
                f"Cloud Pak for Data at {s.base_url} refused USERNAME {s.username!r} with the "
                "given APIKEY: check both"
            )
        if resp.status_code != 200:
            raise MlopsError(
                f"signing in to Cloud Pak for Data at {s.base_url} failed: HTTP "
                f"{resp.status_code} {error_text(resp)}"
            )
        token = parse_json(resp).get("token")
        if not isinstance(token, str) or not token:
            raise MlopsError(f"Cloud Pak for Data at {s.base_url} answered the sign-in without a token")
        self._token = token
        for listener in self.listeners:
            listener(token)
        return token


def parse_json(resp: Any) -> Any:
    """The body as JSON whatever the content type says (WMLA labels JSON as text/plain)."""
    try:
        return json.loads(resp.content or b"null")
    except ValueError:
        raise MlopsError(
            f"{resp.request.method} {resp.url} answered HTTP {resp.status_code} with a body "
            f"that is not JSON: {resp.text[:200]!r}"
        ) from None


def error_text(resp: Any) -> str:
    """The server's own words from an error response (IBM services use several shapes)."""
    try:
        body = json.loads(resp.content or b"null")
    except ValueError:
        return (resp.text or "").strip()[:300]
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return "; ".join(str(e.get("message") or e.get("code")) for e in errors)
        for key in ("message", "error", "errorMessage", "description"):
            if body.get(key):
                return str(body[key])
    return json.dumps(body)[:300]


class Http:
    """REST calls to Cloud Pak for Data with the bearer token, TLS verification always on,
    a bounded retry on 5xx and connection failures (idempotent calls only), one token renewal
    on 401, and errors turned into MlopsError / NotFoundError / ConflictError."""

    def __init__(self, settings: CpdSettings) -> None:
        from mlops_widgets.backends.cpd.contain import contained

        with contained(settings.ca_bundle):  # importing requests adds warning filters
            import requests

        self.settings = settings
        self._requests = requests
        self.session = requests.Session()
        self.session.verify = settings.verify
        self.tokens = Tokens(settings, self._raw_post)

    def _raw_post(self, url: str, **kw: Any) -> Any:
        return self._send("POST", url, retry=True, **kw)

    def _send(self, method: str, url: str, *, retry: bool, **kw: Any) -> Any:
        kw.setdefault("timeout", (10, 300))
        kw["verify"] = self.settings.verify
        attempts = 1 + (self.settings.retries if retry else 0)
        for attempt in range(attempts):
            try:
                resp = self.session.request(method, url, **kw)
            except self._requests.exceptions.SSLError as exc:
                raise MlopsError(
                    f"TLS verification of {url} failed ({exc.__class__.__name__}): trust the "
                    "cluster's CA with MLOPS_CPD_CA_BUNDLE=/path/to/ca.pem (verification is never "
                    "switched off)"
                ) from None
            except self._requests.exceptions.ConnectionError as exc:
                if attempt + 1 < attempts:
                    self._pause(attempt)
                    continue
                raise MlopsError(f"cannot reach {url}: {exc.__class__.__name__}") from None
            if resp.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                self._pause(attempt)
                continue
            return resp
        raise AssertionError("unreachable")

    def _pause(self, attempt: int) -> None:
        time.sleep(self.settings.retry_delay * (2**attempt))

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        ok: tuple[int, ...] = (200, 201, 202, 204),
        retry: bool | None = None,
        headers: dict[str, str] | None = None,
        auth: str = "Authorization",
        **kw: Any,
    ) -> Any:
        """Send one call; `what` names it in errors ("deploy my-model to WMLA"). `auth` names the
        header carrying the token: Authorization (as a bearer token) or X-Auth-Token (EDI's)."""
        retry = method in ("GET", "PUT", "DELETE", "HEAD") if retry is None else retry
        for renewed in (False, True):
            token = self.tokens.get()
            hdrs = {auth: f"Bearer {token}" if auth == "Authorization" else token, **(headers or {})}
            resp = self._send(method, url, retry=retry, headers=hdrs, **kw)
            if resp.status_code == 401 and not renewed:
                self.tokens.renew()  # raises when the token cannot be renewed
                rewind = kw.get("data")
                if rewind is not None and hasattr(rewind, "seek"):
                    rewind.seek(0)
                continue
            break
        log.debug("%s %s (%s): HTTP %s", method, url.split("?")[0], what, resp.status_code)
        if resp.status_code in ok:
            return resp
        raise http_error(resp, what)

    def json(self, method: str, url: str, *, what: str, **kw: Any) -> Any:
        return parse_json(self.request(method, url, what=what, **kw))

    def stream_to(self, url: str, fh: Any, *, what: str, chunk: int = 1 << 20) -> int:
        """GET `url` into the open binary file `fh` in chunks (bounded memory); bytes written."""
        resp = self.request("GET", url, what=what, stream=True)
        n = 0
        with resp:
            for part in _chunks(resp, chunk):
                fh.write(part)
                n += len(part)
        return n


def _chunks(resp: Any, size: int) -> Iterator[bytes]:
    yield from resp.iter_content(chunk_size=size)


def http_error(resp: Any, what: str) -> MlopsError:
    """The user-facing error for a failed call."""
    return status_error(resp.status_code, what, error_text(resp))


def status_error(status: int, what: str, text: str) -> MlopsError:
    """The user-facing error for HTTP `status`, over REST or from an SDK (one mapping for both)."""
    if status == 401:
        return MlopsError(f"{what}: Cloud Pak for Data refused the token (401): {text}")
    if status == 403:
        return MlopsError(f"{what}: not allowed (403): {text}")
    if status == 404:
        return NotFoundError(f"{what}: not found (404): {text}")
    if status == 409:
        return ConflictError(f"{what}: refused (409): {text}")
    return MlopsError(f"{what}: HTTP {status}: {text}")
