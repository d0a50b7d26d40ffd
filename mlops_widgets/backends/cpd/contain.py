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
- swallows what the SDKs log and warn (progress chatter and deprecation notices, not results),
  except a warning about an unverified HTTPS request, and what the calling thread prints while
  inside (other threads' output passes); stdout is redirected as a whole only around an import.

The first thread in snapshots the process-wide state and the last one out restores it: no lock
is held while an SDK call waits on the network.

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
from typing import Any, cast

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
    "ibm_wmla",
)
_WML_WRAPPER = "ibm_watson_machine_learning._wrappers.requests"

SDK_PACKAGES = {
    "wml": "ibm_watson_machine_learning",
    "watsonx": "ibm_watsonx_ai",
    "openscale": "ibm_watson_openscale",
    "wmla": "ibm_wmla.wmla_api_edi_v2",
}


class _QuietStdout:
    """sys.stdout while SDK calls run: drops what the threads inside a call print (the SDKs'
    progress chatter) and passes every other thread's output through unchanged."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def write(self, text: str) -> int:
        if _quiet.get(threading.get_ident()):
            return len(text)
        self.target.write(text)  # some streams return None, not the count
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)


# The state touched is process-wide. The first thread in takes the snapshot and applies the
# settings, the last one out restores it; the lock guards only that bookkeeping, never the SDK
# call itself (a blocking deployment create must not stall other threads' calls).
_STATE = threading.Condition(threading.Lock())
_depth = 0
_bundle: str | None = None
_snapshot: dict[str, Any] = {}
_quiet: dict[int, int] = {}
_IMPORT_LOCK = threading.Lock()


@contextlib.contextmanager
def contained(ca_bundle: str | None) -> Iterator[None]:
    """Run SDK code with its side effects undone on exit (see the module docstring)."""
    _enter(ca_bundle)
    try:
        yield
    finally:
        _leave()


def _enter(ca_bundle: str | None) -> None:
    global _depth, _bundle
    me = threading.get_ident()
    with _STATE:
        # calls for another CA bundle wait until the current ones are done (the pinned settings
        # are process-wide); nested calls of the same thread always share its bundle
        while _depth and _bundle != ca_bundle and not _quiet.get(me):
            _STATE.wait()
        if _depth == 0:
            _snapshot.update(_take_snapshot())
            _apply(ca_bundle)
            _bundle = ca_bundle
        _depth += 1
        _quiet[me] = _quiet.get(me, 0) + 1
        if not isinstance(sys.stdout, _QuietStdout):
            sys.stdout = _QuietStdout(sys.stdout)


def _leave() -> None:
    global _depth
    me = threading.get_ident()
    with _STATE:
        _quiet[me] -= 1
        if not _quiet[me]:
            del _quiet[me]
        _depth -= 1
        if _depth == 0:
            if isinstance(sys.stdout, _QuietStdout):
                sys.stdout = sys.stdout.target
            _restore(_snapshot)
            _snapshot.clear()
            _STATE.notify_all()


def _take_snapshot() -> dict[str, Any]:
    import ssl

    loggers = {name: logging.getLogger(name) for name in SDK_LOGGERS}
    wrapper = sys.modules.get(_WML_WRAPPER)
    return {
        "filters": list(warnings.filters),
        "showwarning": warnings.showwarning,
        "env": {k: os.environ.get(k) for k in ENV_KEYS},
        "https_context": ssl._create_default_https_context,
        "loggers": {n: (lg, lg.level, lg.propagate, lg.disabled) for n, lg in loggers.items()},
        "wrapper_verify": getattr(wrapper, "verify", None),
    }


def _apply(ca_bundle: str | None) -> None:
    for name in SDK_LOGGERS:
        # children inherit it: the SDKs' chatter stays in
        logging.getLogger(name).setLevel(logging.CRITICAL + 10)
    # their deprecation notices are not the user's business (only warnings raised from the SDKs'
    # modules or attributed to our calls into them); a TLS warning always is
    warnings.filterwarnings("ignore", module=r"(ibm_|mlops_widgets\.backends\.cpd)")
    # ibm-watsonx-ai passes verify=<path> to httpx, which deprecates it
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="httpx")
    warnings.filterwarnings("default", message="Unverified HTTPS request")
    if ca_bundle:
        os.environ["REQUESTS_CA_BUNDLE"] = ca_bundle
    _pin_wml_verify(ca_bundle)


def _restore(snap: dict[str, Any]) -> None:
    import ssl

    cast(list[Any], warnings.filters)[:] = snap["filters"]  # a list at run time, a Sequence in typeshed
    warnings._filters_mutated()  # type: ignore[attr-defined]
    warnings.showwarning = snap["showwarning"]
    for key, value in snap["env"].items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    ssl._create_default_https_context = snap["https_context"]
    for lg, level, propagate, disabled in snap["loggers"].values():
        lg.setLevel(level)
        lg.propagate = propagate
        lg.disabled = disabled
    wrapper = sys.modules.get(_WML_WRAPPER)
    if wrapper is not None:
        wrapper.verify = snap["wrapper_verify"]  # type: ignore[attr-defined]


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
        # importing prints and warns (deprecations, pkg_resources): silence the whole process
        # for that moment only; it is local work, no network
        with (
            _IMPORT_LOCK,
            contained(ca_bundle),
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            module = importlib.import_module(package)
            if kind == "wml":
                importlib.import_module(_WML_WRAPPER)
    except ImportError as exc:
        raise MlopsError(
            f"the cpd backend needs {package.split('.')[0].replace('_', '-')} ({exc.name} is missing): "
            "pip install 'mlops-widgets[cpd]'"
        ) from None
    return module
