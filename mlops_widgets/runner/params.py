"""Parameter validation before any kernel starts, and the parameters bound to the deployment
config, which the config model checks (so a run reports exactly the CLI's errors).

Papermill injects whatever it is given; a wrong name or type would only surface as a failed
cell after a kernel start. Here every problem is reported at once, up front.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from typing import Any

from mlops_widgets.errors import MlopsError
from mlops_widgets.runner.templates import Template

# Parameter name -> where its value lives in a deployment metadata entry (() = the whole entry).
CONFIG_PARAMETERS: dict[str, tuple[str, ...]] = {
    "entry": (),
    "model_name": ("model_name",),
    "resource_configs": ("wmla_deployment", "resource_configs"),
    "monitors": ("openscale_custom_metric_provider",),
    "deployment_name": ("wmla_deployment", "deployment_name"),
}


def entry_from_parameters(
    entry: Mapping[str, Any] | None = None, **values: Any
) -> tuple[dict[str, Any], list[Any]]:
    """A validated deployment metadata entry from template parameters: `entry` as given when not
    None (then the other values are ignored), else a blank entry (`config.new_entry()`) with each
    non-None value (`model_name`, `resource_configs`, `monitors`, `deployment_name`) put in its
    place. Returns `config.validate_entry`'s (entry, warnings); raises its ConfigError."""
    from mlops_widgets.config import new_entry, validate_entry

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
            if value is not None and name != "entry":
                _put(data, CONFIG_PARAMETERS[name], copy.deepcopy(value))
    return validate_entry(data)


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


def validate_parameters(template: Template, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The given parameters checked against the template's parameters cell: unknown names and
    wrong types (all reported in one MlopsError), then the config-bound ones through the config
    model (its ConfigError). Returns them converted and normalized, ready to inject."""
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
    if any(n in checked for n in bound):
        values = {n: checked.get(n, declared[n].default) for n in bound}
        entry, _warnings = entry_from_parameters(**values)
        whole = values.get("entry") is not None  # then the other config values are not used
        for name in bound:
            if checked.get(name) is None:
                continue
            if name == "entry":
                checked[name] = entry
            elif not whole:
                checked[name] = _get(entry, CONFIG_PARAMETERS[name])
    return checked
