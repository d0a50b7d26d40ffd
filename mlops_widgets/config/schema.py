"""The JSON Schema of a deployment-metadata entry (or of a file of them), for editors that check
YAML; built from the same fields as the validator (config/model.py), so the two cannot drift."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_widgets.config.fields import SchemaContext
from mlops_widgets.config.model import ENTRY
from mlops_widgets.monitors.definitions import BUILTIN, MonitorDefinition


def json_schema(
    *, keyed: bool = False, definitions: Mapping[str, MonitorDefinition] | None = None
) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of an entry, or with `keyed` of a file mapping model asset
    id -> entry. Built from the same fields as the validator; rules across fields and the
    'unknown monitor id' warning are stated in descriptions only. `definitions`: the monitors
    the schema lists (default: the built-in ones; front ends pass their workspace's)."""
    sc = SchemaContext(definitions=BUILTIN if definitions is None else definitions)
    entry = {
        **ENTRY.schema(sc),
        "title": "Deployment metadata entry",
        "description": "One model's deployment and monitoring settings (mlops-widgets, in the "
        "shape of the original deployment_metadata.yml).",
    }
    root: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    if keyed:
        root.update(
            title="Deployment metadata",
            description="Model asset id -> deployment metadata entry.",
            type="object",
            propertyNames={"minLength": 1},
            additionalProperties=entry,
        )
    else:
        root.update(entry)
    root["$defs"] = sc.defs
    return root
