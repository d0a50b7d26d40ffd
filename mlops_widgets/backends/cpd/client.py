"""One connection to a Cloud Pak for Data cluster, shared by the space, inference and
monitoring services of a cpd backend: settings, token, REST client, the cluster's version, and
the SDK clients built on first use inside the side-effect containment.

The WML SDK is chosen by the version the cluster reports: ibm-watson-machine-learning for
Cloud Pak for Data 4.x, ibm-watsonx-ai for 5.0 and later (the old SDK refuses 5.1+; 5.0 falls
back to it when ibm-watsonx-ai is missing). MLOPS_CPD_SDK=wml|watsonx forces one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from mlops_widgets.backends.cpd.contain import contained, import_sdk
from mlops_widgets.backends.cpd.session import (
    RETRY_STATUSES,
    CpdSettings,
    Http,
    error_text,
    parse_json,
    status_error,
)
from mlops_widgets.errors import MlopsError

T = TypeVar("T")
OPENSCALE_CPD_INSTANCE = "00000000-0000-0000-0000-000000000000"


# The WML SDKs' wording for a 401 during their connection check (the response is not kept).
_SDK_401_TEXT = "Authorization failed with the error message"


def sdk_status(exc: BaseException) -> int | None:
    """The HTTP status behind an SDK exception, when it carries one."""
    if _SDK_401_TEXT in str(exc):
        return 401
    for candidate in (exc, getattr(exc, "reason", None), exc.__cause__):
        if candidate is None:
            continue
        for attr in ("status_code", "code"):
            value = getattr(candidate, attr, None)
            if isinstance(value, int) and 100 <= value < 600:
                return value
        status = getattr(_response(candidate), "status_code", None)
        if isinstance(status, int):
            return status
    return None


def _response(exc: object) -> Any:
    # not `or`: a requests.Response is falsy when its status is an error
    resp = getattr(exc, "response", None)
    return resp if resp is not None else getattr(exc, "http_response", None)


def _sdk_message(exc: BaseException) -> str:
    resp = _response(exc)
    if resp is not None:
        return error_text(resp)
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _is_tls_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        name = type(e).__name__
        if "SSL" in name or "CERTIFICATE_VERIFY_FAILED" in str(e):
            return True
        e = e.__cause__ or e.__context__ or getattr(e, "reason", None)
        if not isinstance(e, BaseException):
            e = None
    return False


class CpdSession:
    """Settings, token, REST client and lazily built SDK clients for one cluster."""

    def __init__(self, settings: CpdSettings | None = None) -> None:
        self.settings = settings or CpdSettings.from_env()
        self._http: Http | None = None
        self._version: str | None = None
        self._wml: Any = None
        self._wml_kind: str | None = None
        self._openscale: Any = None
        self._edi: Any = None

    @property
    def http(self) -> Http:
        if self._http is None:
            self._http = Http(self.settings)
            self._http.tokens.listeners.append(self._token_changed)
        return self._http

    # -- version and SDK choice ----------------------------------------------------------------

    def version(self) -> str:
        """The cluster's Watson Machine Learning version, e.g. "4.8.5" (asked once)."""
        if self._version is None:
            base = self.settings.base_url
            for path in ("/ml/wml_services/v2/version", "/ml/wml_services/version"):
                resp = self.http._send("GET", f"{base}{path}", retry=True)
                if resp.status_code == 200:
                    version = parse_json(resp).get("version")
                    if isinstance(version, str) and version:
                        self._version = version
                        break
            else:
                raise MlopsError(
                    f"{base} does not report a Watson Machine Learning version "
                    "(/ml/wml_services/version): is BASE_URL the Cloud Pak for Data console URL?"
                )
        return self._version

    def sdk_kind(self) -> str:
        """`wml` or `watsonx`: the SDK that supports this cluster."""
        forced = self.settings.sdk
        if forced:
            if forced not in ("wml", "watsonx"):
                raise MlopsError(f"MLOPS_CPD_SDK must be wml or watsonx, not {forced!r}")
            return forced
        major_minor = tuple(int(p) for p in self.version().split(".")[:2])
        if major_minor < (5, 0):
            return "wml"
        if major_minor == (5, 0):
            try:
                import_sdk("watsonx", self.settings.ca_bundle)
            except MlopsError:
                return "wml"
        return "watsonx"

    # -- SDK calls -----------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[[], T], *, idempotent: bool = True) -> T:
        """Run `fn` (SDK code) contained, renewing the token once on 401, retrying 5xx when
        idempotent, and turning SDK exceptions into our errors naming `what` failed."""
        s = self.settings
        renewed = False
        attempt = 0
        while True:
            try:
                with contained(s.ca_bundle):
                    return fn()
            except MlopsError:
                raise
            except Exception as exc:
                status = sdk_status(exc)
                if status == 401 and not renewed:
                    renewed = True
                    self.http.tokens.renew()
                    continue
                if status in RETRY_STATUSES and idempotent and attempt < s.retries:
                    time.sleep(s.retry_delay * (2**attempt))
                    attempt += 1
                    continue
                raise self._error(exc, status, what) from None

    def _error(self, exc: BaseException, status: int | None, what: str) -> MlopsError:
        if _is_tls_error(exc):
            return MlopsError(
                f"{what}: TLS verification failed: trust the cluster's CA with "
                "MLOPS_CPD_CA_BUNDLE=/path/to/ca.pem (verification is never switched off)"
            )
        msg = _sdk_message(exc)
        if status is not None:
            return status_error(status, what, msg)
        return MlopsError(f"{what}: {type(exc).__name__}: {msg}")

    # -- SDK clients ---------------------------------------------------------------------------

    def wml(self) -> tuple[str, Any]:
        """(kind, client): the WML (or watsonx.ai) client with the default space set."""
        if self._wml is None:
            s = self.settings
            s.require("space")
            kind = self.sdk_kind()
            version = ".".join(self.version().split(".")[:2])
            module = import_sdk(kind, s.ca_bundle)

            def build() -> Any:
                token = self.http.tokens.get()  # here: a retry after a 401 takes the renewed one
                if kind == "wml":
                    client = module.APIClient(
                        {"url": s.base_url, "token": token, "instance_id": "openshift", "version": version}
                    )
                    client.set.default_space(s.space_id)
                    return client
                creds = module.Credentials(url=s.base_url, token=token, version=version, verify=s.verify)
                return module.APIClient(creds, space_id=s.space_id)

            self._wml = self.call(f"connecting to Watson Machine Learning at {s.base_url}", build)
            self._wml_kind = kind
        assert self._wml_kind is not None
        return self._wml_kind, self._wml

    def openscale(self) -> Any:
        """The OpenScale client, with TLS verification put back on after construction."""
        if self._openscale is None:
            s = self.settings
            s.require("monitoring")
            module = import_sdk("openscale", s.ca_bundle)

            def build() -> Any:
                token = self.http.tokens.get()  # here: a retry after a 401 takes the renewed one
                from ibm_cloud_sdk_core import BaseService
                from ibm_cloud_sdk_core.authenticators import BearerTokenAuthenticator

                # The client switches verification off for Cloud Pak for Data in its constructor,
                # and calls the server right after: refuse the switch while it is built.
                switch = BaseService.set_disable_ssl_verification

                def keep_verifying(service: Any, status: bool = False) -> None:
                    switch(service, False)

                BaseService.set_disable_ssl_verification = keep_verifying
                try:
                    client = module.APIClient(
                        authenticator=BearerTokenAuthenticator(bearer_token=token),
                        service_url=s.base_url,
                        service_instance_id=OPENSCALE_CPD_INSTANCE,
                    )
                finally:
                    BaseService.set_disable_ssl_verification = switch
                client.set_http_config({"verify": s.verify, "timeout": 300})
                return client

            self._openscale = self.call(f"connecting to OpenScale at {s.base_url}", build)
        return self._openscale

    def edi(self) -> Any:
        """IBM's EDI v2 client (ibm-wmla) on the WMLA console, sending the Cloud Pak for Data
        token as `X-Auth-Token` as IBM's own authenticator does (that one signs in with a
        password only, so ours hands it the token this session holds and renews)."""
        if self._edi is None:
            s = self.settings
            s.require("inference")
            module = import_sdk("wmla", s.ca_bundle)
            from ibm_cloud_sdk_core.authenticators import Authenticator

            tokens = self.http.tokens

            class EdiToken(Authenticator):
                def validate(self) -> None:
                    pass

                def authenticate(self, req: Any) -> None:
                    req["headers"]["X-Auth-Token"] = tokens.get()

            def build() -> Any:
                client = module.ElasticDistributedInferenceV2(authenticator=EdiToken())
                client.set_service_url(s.wmla_url)
                client.set_http_config({"verify": s.verify, "timeout": (10, 300)})
                return client

            self._edi = self.call(f"connecting to WMLA at {s.wmla_url}", build)
        return self._edi

    def _token_changed(self, token: str) -> None:
        if self._wml is not None:
            if self._wml_kind == "wml":
                self._wml.wml_credentials["token"] = token
            else:
                with contained(self.settings.ca_bundle):
                    self._wml.set_token(token)
        if self._openscale is not None:
            self._openscale.authenticator.set_bearer_token(token)
