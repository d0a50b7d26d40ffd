"""Parameter validation before any kernel starts, and the parameters bound to the deployment
config, which the config model checks (so a run reports exactly the CLI's errors).

Papermill injects whatever it is given; a wrong name or type would only surface as a failed
cell after a kernel start. Here every problem is reported at once, up front.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping
from typing import Any

from mlops_widgets.errors import MlopsError
from mlops_widgets.runner.templates import Template
from mlops_widgets.workspace import Workspace

WorkspaceLike = Workspace | str | os.PathLike[str] | None

# Parameter name -> where its value lives in a deployment metadata entry (() = the whole entry).
CONFIG_PARAMETERS: dict[str, tuple[str, ...]] = {
    "entry": (),
    "model_name": ("model_name",),
    "resource_configs": ("wmla_deployment", "resource_configs"),
    "monitors": ("openscale_custom_metric_provider",),
    "deployment_name": ("wmla_deployment", "deployment_name"),
}


def _unset(value: Any) -> bool:
    """None or "": a config parameter left out (templates use "" for "none", e.g. a pipeline's
    `deployment_name = ""` meaning "stage only")."""
    return value is None or value == ""


def entry_from_parameters(
    entry: Mapping[str, Any] | None = None, *, workspace: WorkspaceLike = None, **values: Any
) -> tuple[dict[str, Any], list[Any]]:
    """A validated deployment metadata entry from template parameters: `entry` as given when not
    None (then the other values are ignored), else a blank entry (`config.new_entry()`) with each
    value (`model_name`, `resource_configs`, `monitors`, `deployment_name`) that is not None or ""
    put in its place. Monitors are checked against the definitions known in `workspace` (its
    registered ids included; default: the current one, $MLOPS_HOME, which in a template's kernel
    is the run's). Returns `config.validate_entry`'s (entry, warnings); raises its ConfigError."""
    from mlops_widgets.config import new_entry, validate_entry
    from mlops_widgets.monitors import known_definitions

    unknown = sorted(set(values) - set(CONFIG_PARAMETERS))
    if unknown:
        raise MlopsError(
            f"entry_from_parameters(): unknown config parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(CONFIG_PARAMETERS)}"
        )
    if entry is not None:
        data = copy.deepcopy(dict(entry))
    else:
        data = new_entry()
        for name, value in values.items():
            if not _unset(value) and name != "entry":
                _put(data, CONFIG_PARAMETERS[name], copy.deepcopy(value))
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    return validate_entry(data, definitions=known_definitions(ws))


def _put(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(data.get(key), dict):
            data[key] = {}
        data = data[key]
    data[path[-1]] = value


def _get(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def validate_parameters(
    template: Template, params: Mapping[str, Any] | None, *, workspace: WorkspaceLike = None
) -> dict[str, Any]:
    """The given parameters checked against the template's parameters cell: unknown names and
    wrong types (all reported in one MlopsError), then the config-bound ones through the config
    model (its ConfigError), against the monitor definitions of `workspace`, the one the run
    will use (default: the current one). Returns them converted and normalized, ready to inject."""
    declared = template.parameters
    problems: list[str] = []
    checked: dict[str, Any] = {}
    for name, value in (params or {}).items():
        spec = declared.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, list(declared), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown parameter {name!r}{hint}")
            continue
        try:
            checked[name] = spec.check(value)
        except MlopsError as exc:
            problems.append(str(exc))
    if problems:
        known = ""
        if any(p.startswith("unknown parameter") for p in problems):
            known = f". Its parameters: {', '.join(declared) or 'none'}"
        raise MlopsError(f"template {template.name}: " + "; ".join(problems) + known)
    bound = [n for n in CONFIG_PARAMETERS if n in declared]
    if any(not _unset(checked.get(n)) for n in bound):
        values = {n: checked.get(n, declared[n].default) for n in bound}
        entry, _warnings = entry_from_parameters(**values, workspace=workspace)
        whole = values.get("entry") is not None  # then the other config values are not used
        for name in bound:
            if _unset(checked.get(name)):
                continue
            if name == "entry":
                checked[name] = entry
            elif not whole:
                checked[name] = _get(entry, CONFIG_PARAMETERS[name])
    return checked
