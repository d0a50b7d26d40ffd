"""Preparing a run's secrets and its kernel's environment before any kernel starts.

What a template kernel inherits from the caller's environment:
- variables named with a word of the secret list (KEY, TOKEN, PASSWORD, SECRET, APIKEY: what the
  Cloud Pak for Data backend reads, e.g. USER_ACCESS_TOKEN) are passed, and scrubbed from all
  the run saves;
- other credential-looking variables (DB_PASSWD, WML_CREDENTIALS, *_PASS, SSHPASS, *_PAT,
  BEARER, JWT, *WEBHOOK*, *_PWD, *CREDENTIAL*, *AUTH*... see
  `mlops_widgets.masking.looks_like_credential`) and variables whose value is a URL carrying a
  credential (`DATABASE_URL=postgres://u:pw@h/db`: `masking.url_credentials`) are NOT passed,
  unless declared in $MLOPS_KERNEL_CREDENTIALS (names separated by commas or spaces): then they
  are passed and scrubbed like the others;
- $MLOPS_SECRET_* is never inherited: a run's secrets are given to it (argument, or its
  template's secret parameters read from the environment) and reach only its own kernel.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mlops_widgets.errors import Hint, MlopsError
from mlops_widgets.masking import MASK, declared_credentials, is_credential
from mlops_widgets.runner.record import RESULTS_ENV
from mlops_widgets.runner.secrets import (
    SECRET_ENV_PREFIX,
    Scrubber,
    ambient_secrets,
    check_secret,
    env_name,
    from_environment,
)
from mlops_widgets.runner.templates import Template
from mlops_widgets.secret_names import is_secret_name


def kernel_environment(
    workspace_root: str, backend_name: str, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment every template kernel of this workspace and backend starts with (what a
    warm kernel is started with too): the caller's, filtered as the module says, plus the
    workspace and the backend. A run's own settings and secrets come on top (`run_environment`)."""
    env = os.environ if environ is None else environ
    declared = declared_credentials(env)
    kept = {
        k: v
        for k, v in env.items()
        if not k.startswith(SECRET_ENV_PREFIX)
        and (is_secret_name(k) or not is_credential(k, v) or k in declared)
    }
    kept.update(MLOPS_HOME=workspace_root, MLOPS_BACKEND=backend_name, PYDEVD_DISABLE_FILE_VALIDATION="1")
    return kept


def run_environment(run_id: str, results_path: str, secret_values: Mapping[str, str]) -> dict[str, str]:
    """What only this run's kernel gets: its id, its results file, its secrets."""
    env = {"MLOPS_RUN_ID": run_id, RESULTS_ENV: results_path}
    env.update({env_name(name): value for name, value in secret_values.items()})
    return env


def split_secrets(
    template: Template, params: Mapping[str, Any] | None, secrets: Mapping[str, str] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Secret parameters out of `params`, plus `secrets`, plus declared secrets found in the
    caller's environment; an empty one is left out (the parameter keeps its empty default), the
    others are checked to be scrubbable (`check_secret`) before any kernel starts."""
    given = dict(params or {})
    found: dict[str, tuple[Any, str]] = {}
    for name in template.secret_names:
        if name in given:
            found[name] = (given.pop(name), "given as a parameter")
    found.update((name, (value, "given as a secret")) for name, value in (secrets or {}).items())
    for name in template.secret_names:
        if name not in found and (value := from_environment(name)) is not None:
            found[name] = (value, "from the environment")
    kept: dict[str, str] = {}
    for name, (value, origin) in found.items():
        if value is None or value == "":
            continue
        check_secret(name, value, origin)
        kept[name] = value
    return given, kept


def strings(value: Any) -> list[str]:
    """Every string in a parameter value (nested lists and dicts included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings(v)]
    return []


def scrubber(
    secret_values: Mapping[str, str], params: Mapping[str, Any], kernel_env: Mapping[str, str]
) -> Scrubber:
    """This run's secrets, plus the credential-named variables its kernel inherits, except a
    value the user wrote into a parameter: that one is plain data of this run (e.g. a path),
    and masking it would make the run impossible to re-run or clone."""
    written = strings(dict(params))
    ambient = [v for v in ambient_secrets(kernel_env) if not any(v in text for text in written)]
    return Scrubber([*secret_values.values(), *ambient])


def refuse_masked(run_id: str, params: Mapping[str, Any], action: str) -> None:
    """MlopsError when a stored parameter holds the mask: its value was scrubbed when the run
    was saved, and running or cloning with "********" in it would silently go wrong. `action`
    is the hint's action ("runs.rerun" or "runs.clone")."""
    masked = [name for name, value in params.items() if any(MASK in s for s in strings(value))]
    if masked:
        raise MlopsError(
            f"run {run_id}: parameter(s) {', '.join(masked)} were stored masked ({MASK}): their "
            f"values held a secret or a credential of the environment when the run was saved",
            hint=Hint(
                action,
                f"give {', '.join(masked)} again as parameters",
                {"run": run_id, "params": " ".join(masked)},
            ),
        )
