"""The deployment-metadata model: YAML in and out, strict validation, JSON Schema.

Knows nothing of I/O beyond reading a file. Public API:
- `load_config(path, *, with_key=False) -> LoadedConfig(entries, warnings)`
- `validate_entry(data, *, lines=None, path_prefix="") -> (entry, warnings)`, raising
  `ConfigError` whose `.problems` are `Problem(path, message, line, severity)`
- `check_deployment_name(name)`, `new_entry()`, `new_monitor_settings(monitor_id)`, `json_schema(*, keyed=False)`
- `load_yaml_text(text, source)`, `dump_yaml(obj)`
"""

from mlops_widgets.config.model import (
    DEPLOYMENT_NAME_PATTERN,
    ENTRY_KEYS,
    RESOURCE_DEFAULTS,
    LoadedConfig,
    check_deployment_name,
    json_schema,
    load_config,
    new_entry,
    new_monitor_settings,
    validate_entry,
)
from mlops_widgets.config.problems import ConfigError, Problem
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
