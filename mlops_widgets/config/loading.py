"""Reading a deployment-metadata file: one entry, or model asset id -> entry (`with_key`),
every entry validated, every problem reported at once with its line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_widgets.config.fields import show
from mlops_widgets.config.model import ENTRY_KEYS, validate_entry
from mlops_widgets.config.problems import ConfigError, Problem, join_path
from mlops_widgets.config.yamlio import read_yaml_file
from mlops_widgets.errors import Hint
from mlops_widgets.monitors.definitions import BUILTIN, MonitorDefinition


@dataclass
class LoadedConfig:
    """A validated file: entries by model asset id (None for a single-entry file), warnings."""

    entries: dict[str | None, dict[str, Any]]
    warnings: list[Problem] = field(default_factory=list)


def _looks_keyed(data: Mapping[Any, Any]) -> bool:
    return (
        bool(data)
        and not ENTRY_KEYS.intersection(data)
        and all(isinstance(v, Mapping) and ENTRY_KEYS.intersection(v) for v in data.values())
    )


def load_config(
    path: str | Path,
    *,
    with_key: bool = False,
    definitions: Mapping[str, MonitorDefinition] | None = None,
) -> LoadedConfig:
    """Read and validate a deployment metadata file: one entry, or (with_key) model asset
    id -> entry. Raises ConfigError with every problem of every entry, with lines.
    `definitions`: the monitor definitions entries may use (default: the built-in ones; front
    ends pass their workspace's, from the monitor registry)."""
    source = str(path)
    data, lines = read_yaml_file(path)

    def fail(message: str, hint: Hint | None = None) -> ConfigError:
        return ConfigError([Problem("", message, 1)], source, hint=hint)

    if data is None:
        raise fail(
            "the file is empty: expected a deployment metadata entry (a YAML mapping)"
            + (" keyed by model asset id" if with_key else "")
        )
    if not isinstance(data, Mapping):
        raise fail(
            f"the top level is {show(data)}, expected a mapping: one deployment metadata entry, "
            "or model asset id -> entry"
        )
    if with_key and ENTRY_KEYS.intersection(data):
        found = ", ".join(k for k in data if k in ENTRY_KEYS)
        raise fail(
            f"this file is a single entry (keys such as {found}), not model asset id -> entry",
            Hint("config.without_key", "read it as one entry"),
        )
    if not with_key and _looks_keyed(data):
        raise fail(
            f"this file maps model asset ids ({next(iter(data))!r}...) to entries",
            Hint("config.with_key", "read it as model asset id -> entry"),
        )
    items = data.items() if with_key else [(None, data)]
    if with_key and not data:
        raise fail("the file has no entries: expected model asset id -> entry")
    entries: dict[str | None, dict[str, Any]] = {}
    problems: list[Problem] = []
    for key, value in items:
        prefix = "" if key is None else join_path("", key)
        if key is not None and (not isinstance(key, str) or not key.strip()):
            problems.append(
                Problem(
                    prefix, f"a model asset id must be a non-empty string, got {show(key)}", lines.get(prefix)
                )
            )
        try:
            entry, warnings = validate_entry(
                value,
                lines=lines,
                path_prefix=prefix,
                definitions=BUILTIN if definitions is None else definitions,
            )
        except ConfigError as exc:
            problems += exc.problems
        else:
            entries[key] = entry
            problems += warnings
    if any(p.severity == "error" for p in problems):
        raise ConfigError(problems, source)
    return LoadedConfig(entries, problems)
