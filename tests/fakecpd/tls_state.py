"""What a test compares before and after cpd commands: the process-wide state the IBM SDKs are
known to change (warning filters, TLS environment, the default HTTPS context factory, the WML
wrapper's verify switch). Test-only: the product restores this state, tests check it."""

from __future__ import annotations

import os
import ssl
import sys
import warnings
from typing import Any

from mlops_widgets.backends.cpd.contain import _WML_WRAPPER, ENV_KEYS


def process_tls_state() -> dict[str, Any]:
    wrapper = sys.modules.get(_WML_WRAPPER)
    return {
        "warning_filters": list(warnings.filters),
        "env": {k: os.environ.get(k) for k in ENV_KEYS},
        "https_context": ssl._create_default_https_context,
        "wml_verify": getattr(wrapper, "verify", None),
    }
