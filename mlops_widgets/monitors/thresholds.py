"""Thresholds as the entry writes them, and which measured values violate them.

Entry shape (the original's): `{<metric name>: {threshold: [<number>, 'lower'|'upper']}}`.
A monitor instance overrides some defaults; metrics it does not mention keep the definition's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_widgets.errors import MlopsError
from mlops_widgets.monitors.definitions import DIRECTIONS, MonitorDefinition, Threshold


def metric_id(name: str) -> str:
    """OpenScale's id for a metric name: lower case, runs of other characters as '_'
    (the original's provider published `name.lower()`)."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def parse_threshold(raw: Any, where: str) -> Threshold:
    """`{threshold: [value, direction]}` -> Threshold; MlopsError saying what is wrong at `where`."""
    pair = raw.get("threshold") if isinstance(raw, Mapping) else None
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        raise MlopsError(f"{where}: expected {{threshold: [<number>, lower|upper]}}, got {raw!r}")
    value, direction = pair
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MlopsError(f"{where}: threshold value must be a finite number, got {value!r}")
    if direction not in DIRECTIONS:
        raise MlopsError(f"{where}: threshold direction must be one of {DIRECTIONS}, got {direction!r}")
    return Threshold(float(value), direction)


def parse_thresholds(definition: MonitorDefinition, config: Mapping[str, Any] | None) -> dict[str, Threshold]:
    """An entry's threshold overrides for `definition`; an unknown metric name is an error that
    lists the definition's metrics."""
    out: dict[str, Threshold] = {}
    for name, raw in (config or {}).items():
        if name not in definition.thresholds:
            raise MlopsError(
                f"monitor {definition.id!r} has no metric {name!r}; its metrics are: "
                f"{', '.join(definition.metric_names)}"
            )
        out[name] = parse_threshold(raw, f"{definition.id}.thresholds.{name}")
    return out


def effective_thresholds(
    definition: MonitorDefinition, overrides: Mapping[str, Threshold] | None = None
) -> dict[str, Threshold]:
    """The definition's defaults with the instance's overrides applied, in metric order."""
    return {name: (overrides or {}).get(name, default) for name, default in definition.thresholds.items()}


@dataclass(frozen=True)
class Violation:
    """A measured value outside its threshold."""

    metric: str
    value: float
    threshold: Threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "limit": self.threshold.value,
            "direction": self.threshold.direction,
        }


def violations(values: Mapping[str, float], thresholds: Mapping[str, Threshold]) -> list[Violation]:
    """Metrics whose value is below their lower or above their upper limit, in `values` order;
    the run's issue count is their number."""
    return [
        Violation(name, value, thresholds[name])
        for name, value in values.items()
        if name in thresholds and thresholds[name].violated_by(value)
    ]
