"""The deployment-metadata model: YAML in and out, strict validation, JSON Schema.

Knows nothing of I/O beyond reading a file. Public API:
- `load_config(path, *, with_key=False, definitions=None) -> LoadedConfig(entries, warnings)`
- `validate_entry(data, *, lines=None, path_prefix="", definitions=None) -> (entry, warnings)`,
  raising `ConfigError` whose `.problems` are `Problem(path, message, line, severity)`
- `check_deployment_name(name)`, `new_entry()`, `new_monitor_settings(monitor_id, definitions=None)`,
  `json_schema(*, keyed=False, definitions=None)`
- `load_yaml_text(text, source)`, `dump_yaml(obj)`

Pure: `definitions` (monitor id -> MonitorDefinition) is an argument of every entry point,
defaulting to the built-in monitors only; the config reads no registry, entry point or
database. Front ends pass their workspace's, read from the monitor registry.
"""

from mlops_widgets.config.loading import LoadedConfig, load_config
from mlops_widgets.config.model import (
    DEPLOYMENT_NAME_PATTERN,
    ENTRY_KEYS,
    RESOURCE_DEFAULTS,
    check_deployment_name,
    new_entry,
    validate_entry,
)
from mlops_widgets.config.monitor_settings import new_monitor_settings
from mlops_widgets.config.problems import ConfigError, Problem
from mlops_widgets.config.schema import json_schema
from mlops_widgets.config.yamlio import ParsedYaml, dump_yaml, load_yaml_text, read_yaml_file

__all__ = [
    "DEPLOYMENT_NAME_PATTERN",
    "ENTRY_KEYS",
    "RESOURCE_DEFAULTS",
    "ConfigError",
    "check_deployment_name",
    "LoadedConfig",
    "ParsedYaml",
    "Problem",
    "dump_yaml",
    "json_schema",
    "load_config",
    "load_yaml_text",
    "new_entry",
    "new_monitor_settings",
    "read_yaml_file",
    "validate_entry",
]
