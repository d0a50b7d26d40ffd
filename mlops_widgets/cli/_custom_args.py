"""`--custom-arg K=V | K` of `mlops deploy create`: split into plain and secret custom args."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from mlops_widgets.errors import MlopsError


def split_custom_args(
    pairs: list[str], is_secret: Callable[[str], bool], environ: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """`K=V` or `K` (value from environment variable K) into (custom args, secret custom args),
    a key being secret when `is_secret(K)`."""
    env = os.environ if environ is None else environ
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not key.isidentifier():
            raise MlopsError(f"custom arg {pair!r}: {key!r} is not a valid Python name (use K=V or K)")
        if not sep:
            if key not in env:
                raise MlopsError(
                    f"custom arg {key}: the environment variable {key} is not set (use {key}=VALUE)"
                )
            value = env[key]
        (secret if is_secret(key) else plain)[key] = value
    return plain, secret
