"""Keep the IBM SDKs' side effects inside the cpd backend.

Measured (../shared/reference/CPD-SDKs.md): importing ibm_watson_openscale switches off every
Python warning process-wide, its client sets REQUESTS_CA_BUNDLE and turns TLS verification off
for Cloud Pak for Data; the WML SDK disables urllib3 warnings, sets environment variables and,
after one SSL error, silently retries everything with verify=False. Every SDK call of this
backend runs inside `contained()`, which:

- snapshots warning filters, the TLS-related environment variables, the SDK loggers and the WML
  wrapper's verify switch, and restores them all afterwards, whatever happened;
- points the SDKs at the configured CA bundle for the duration of the call (so their plain
  `requests` calls verify against it) and pins the WML wrapper's verify to it, so an SSL error
  is an error, never a silent downgrade;
- swallows what the SDKs print on stdout, log and warn (progress chatter and deprecation
  notices, not results), except a warning about an unverified HTTPS request.

Nothing outside this package imports an SDK, so `mlops --help` and the local backend never pay.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from mlops_widgets.errors import MlopsError

# Environment variables the SDKs read or write that decide TLS and platform behaviour.
ENV_KEYS = (
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "WML_CLIENT_VERIFY_REQUESTS",
    "WX_CLIENT_VERIFY_REQUESTS",
    "DEPLOYMENT_PLATFORM",
    "DEPLOYMENT_PRIVATE",
    "WSD_PLATFORM",
)
SDK_LOGGERS = (
    "ibm_watson_machine_learning",
    "ibm_watsonx_ai",
    "ibm_watson_openscale",
    "ibm_cloud_sdk_core",
)
_WML_WRAPPER = "ibm_watson_machine_learning._wrappers.requests"

SDK_PACKAGES = {
    "wml": "ibm_watson_machine_learning",
    "watsonx": "ibm_watsonx_ai",
    "openscale": "ibm_watson_openscale",
}


def process_tls_state() -> dict[str, Any]:
    """What a test compares before and after a cpd command: warning filters, TLS environment,
    the default HTTPS context factory and the WML wrapper's verify switch."""
    import ssl

    wrapper = sys.modules.get(_WML_WRAPPER)
    return {
        "warning_filters": list(warnings.filters),
        "env": {k: os.environ.get(k) for k in ENV_KEYS},
        "https_context": ssl._create_default_https_context,
        "wml_verify": getattr(wrapper, "verify", None),
    }


# The state touched is process-wide: one SDK call at a time, so that two threads never
# restore each other's snapshots.
_LOCK = threading.RLock()


@contextlib.contextmanager
def contained(ca_bundle: str | None) -> Iterator[None]:
    """Run SDK code with its side effects undone on exit (see the module docstring)."""
    with _LOCK, _contained(ca_bundle):
        yield


@contextlib.contextmanager
def _contained(ca_bundle: str | None) -> Iterator[None]:
    import ssl

    filters = list(warnings.filters)
    showwarning = warnings.showwarning
    env = {k: os.environ.get(k) for k in ENV_KEYS}
    https_context = ssl._create_default_https_context
    loggers = {name: logging.getLogger(name) for name in SDK_LOGGERS}
    logger_state = {n: (lg.level, lg.propagate, lg.disabled) for n, lg in loggers.items()}
    wrapper = sys.modules.get(_WML_WRAPPER)
    wrapper_verify = getattr(wrapper, "verify", None)
    try:
        for lg in loggers.values():
            lg.setLevel(logging.CRITICAL + 10)  # children inherit it: the SDKs' chatter stays in
        # their deprecation notices are not the user's business; a TLS warning always is
        warnings.simplefilter("ignore")
        warnings.filterwarnings("default", message="Unverified HTTPS request")
        if ca_bundle:
            os.environ["REQUESTS_CA_BUNDLE"] = ca_bundle
        _pin_wml_verify(ca_bundle)
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        warnings.filters[:] = filters
        warnings._filters_mutated()  # type: ignore[attr-defined]
        warnings.showwarning = showwarning
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        ssl._create_default_https_context = https_context
        for name, (level, propagate, disabled) in logger_state.items():
            lg = loggers[name]
            lg.setLevel(level)
            lg.propagate = propagate
            lg.disabled = disabled
        wrapper = sys.modules.get(_WML_WRAPPER)
        if wrapper is not None:
            wrapper.verify = wrapper_verify  # type: ignore[attr-defined]


def _pin_wml_verify(ca_bundle: str | None) -> None:
    """The WML SDK's request wrapper downgrades to verify=False after an SSL error unless its
    module-level `verify` is set: pin it to the CA bundle (or 'True', the default trust store)."""
    wrapper = sys.modules.get(_WML_WRAPPER)
    if wrapper is not None:
        wrapper.verify = ca_bundle or "True"  # type: ignore[attr-defined]


def import_sdk(kind: str, ca_bundle: str | None) -> ModuleType:
    """Import one SDK package (wml, watsonx, openscale) with its import-time side effects undone;
    a clear error when the `cpd` extra is not installed."""
    package = SDK_PACKAGES[kind]
    try:
        with contained(ca_bundle):
            module = importlib.import_module(package)
            if kind == "wml":
                importlib.import_module(_WML_WRAPPER)
    except ImportError as exc:
        raise MlopsError(
            f"the cpd backend needs {package.replace('_', '-')} ({exc.name} is missing): "
            "pip install 'mlops-widgets[cpd]'"
        ) from None
    return module
