"""Secrets: they reach a template's kernel only through its environment, and are scrubbed from
everything the runner saves.

Papermill writes every parameter as a literal into the notebook and into its metadata; the
original workflow wrote credentials into notebooks and kernel files. Here a secret parameter's
injected value is `secret("<name>")`, code that reads `$MLOPS_SECRET_<name>` in the kernel, and
every string of the executed notebook, the run record and the results is scrubbed of each
secret value before anything touches the disk.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from mlops_widgets.errors import MlopsError

SECRET_ENV_PREFIX = "MLOPS_SECRET_"
SECRET_WORDS = ("KEY", "TOKEN", "PASSWORD", "SECRET", "APIKEY")
MASK = "********"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_secret_name(name: str) -> bool:
    """Whether a parameter or custom-arg name looks like a credential (the team's convention)."""
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


def env_name(name: str) -> str:
    """The kernel environment variable carrying secret `name` (case kept: names are identifiers)."""
    if not _NAME.match(name):
        raise MlopsError(f"secret name {name!r} must be an identifier (letters, digits, _)")
    return SECRET_ENV_PREFIX + name


def from_environment(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A secret's value from the caller's environment: $MLOPS_SECRET_<name>, $<name>, $<NAME>."""
    env = os.environ if environ is None else environ
    for key in (SECRET_ENV_PREFIX + name, name, name.upper()):
        if env.get(key):
            return env[key]
    return None


def ambient_secrets(environ: Mapping[str, str] | None = None, min_length: int = 8) -> list[str]:
    """Values of the caller's environment variables named like credentials (USER_ACCESS_TOKEN,
    APIKEY... as the Cloud Pak for Data backend reads them): the kernel inherits them, so they
    are scrubbed too. Short values are left out: masking "1" everywhere would wreck a notebook."""
    env = os.environ if environ is None else environ
    return [v for k, v in env.items() if is_secret_name(k) and len(v) >= min_length]


def get_secrets() -> dict[str, str]:
    """Inside a template's kernel: every secret this run was given, by name (for ops that hand
    them on, e.g. a deployment's secret custom args)."""
    return {
        key[len(SECRET_ENV_PREFIX) :]: value
        for key, value in os.environ.items()
        if key.startswith(SECRET_ENV_PREFIX)
    }


def secret(name: str) -> str:
    """One secret, as the injected parameters cell reads it; also works in a cloned notebook run
    by hand, from $MLOPS_SECRET_<name>, $<name> or $<NAME>."""
    value = from_environment(name)
    if value is None:
        raise MlopsError(
            f"secret {name!r} is not set: export MLOPS_SECRET_{name} (or {name.upper()}) "
            "in the environment that runs this notebook"
        )
    return value


class Scrubber:
    """Replaces each secret value, and the escaped forms it takes in JSON, repr and HTML output,
    by a mask in every string of a structure (dict keys included)."""

    def __init__(self, values: Iterable[str]) -> None:
        forms: set[str] = set()
        for value in values:
            if not value:
                continue
            forms.update(
                {
                    value,
                    json.dumps(value)[1:-1],
                    json.dumps(value, ensure_ascii=False)[1:-1],
                    repr(value)[1:-1],
                    html.escape(value),
                    html.escape(value, quote=False),
                }
            )
        # Longest first, so a secret that contains another is masked whole.
        self.forms = sorted((f for f in forms if f), key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.forms)

    def text(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def __call__(self, obj: Any) -> Any:
        if not self.forms:
            return obj
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):  # NotebookNode included: its type is kept
            return type(obj)((self(k), self(v)) for k, v in obj.items())
        if isinstance(obj, list | tuple):
            return type(obj)(self(v) for v in obj)
        return obj

    def leaks(self, data: bytes) -> bool:
        """Whether any form of a secret is still in `data` (the last check before writing)."""
        return any(form.encode() in data for form in self.forms)
