"""Metric providers (images in, metrics out), monitor definitions, thresholds and violations.

Pure computation: knows nothing of backends or notebooks. Light to import (numpy and Pillow load
only when a provider computes), because the config model lists the known definitions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_widgets.monitors.base import MetricProvider, ProviderError, ProviderInput
from mlops_widgets.monitors.definitions import (
    BUILTIN,
    DIRECTIONS,
    MonitorDefinition,
    Threshold,
)

if TYPE_CHECKING:
    from mlops_widgets.workspace import Workspace

__all__ = [
    "BUILTIN",
    "DIRECTIONS",
    "MetricProvider",
    "MonitorDefinition",
    "ProviderError",
    "ProviderInput",
    "Threshold",
    "known_definitions",
]


def known_definitions(workspace: Workspace) -> dict[str, MonitorDefinition]:
    """Every monitor definition known in `workspace`: built-ins, providers installed through the
    `mlops_widgets.monitors` entry point group, and ids registered there; what front ends pass
    to the config model."""
    from mlops_widgets.monitors.registry import definitions

    return definitions(workspace)
