"""Thresholds as the entry writes them, as OpenScale stores them, and which measured values
violate them.

Entry shape (the original's): `{<metric name>: {threshold: [<number>, 'lower'|'upper']}}`.
OpenScale's monitor instance shape: `[{metric_id, type: 'lower_limit'|'upper_limit', value}]`.
A monitor instance overrides some defaults; metrics it does not mention keep the definition's.
Pure: both backends and the ops import it, so they agree on names and messages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from mlops_widgets.errors import MlopsError
from mlops_widgets.monitors.definitions import DIRECTIONS, Direction, MonitorDefinition, Threshold

# OpenScale's threshold type for each direction of the entry, and back.
LIMIT_TYPES: dict[Direction, str] = {"lower": "lower_limit", "upper": "upper_limit"}
DIRECTION_OF: dict[str, Direction] = {v: k for k, v in LIMIT_TYPES.items()}


def metric_id(name: str) -> str:
    """OpenScale's id for a metric name: lower case, runs of other characters as '_'
    (the original's provider published `name.lower()`)."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _is_finite_number(value: Any) -> TypeGuard[float]:
    """YAML and JSON give bools, strings and NaN where a number was meant; none is a limit."""
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def parse_threshold(raw: Any, where: str) -> Threshold:
    """`{threshold: [value, direction]}` -> Threshold; MlopsError saying what is wrong at `where`."""
    pair = raw.get("threshold") if isinstance(raw, Mapping) else None
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        raise MlopsError(f"{where}: expected {{threshold: [<number>, lower|upper]}}, got {raw!r}")
    value, direction = pair
    if not _is_finite_number(value):
        raise MlopsError(f"{where}: threshold value must be a finite number, got {value!r}")
    if direction not in DIRECTIONS:
        raise MlopsError(f"{where}: threshold direction must be one of {DIRECTIONS}, got {direction!r}")
    return Threshold(float(value), direction)


def check_instance_thresholds(
    definition: Mapping[str, Any], thresholds: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """OpenScale's monitor instance thresholds `[{metric_id, type, value}]`, checked against the
    definition resource's metric ids and returned normalized (value a float). Both backends check
    before storing or sending, so a bad threshold fails with the same message that names the
    definition's metrics, not the server's."""
    metrics = {m["id"]: m["name"] for m in definition["entity"]["metrics"]}
    out = []
    for t in thresholds:
        mid, kind, value = t.get("metric_id"), t.get("type"), t.get("value")
        if mid not in metrics:
            raise MlopsError(
                f"monitor {definition['metadata']['id']!r} has no metric id {mid!r}; its metrics "
                f"are: {', '.join(f'{n} ({i})' for i, n in metrics.items())}"
            )
        if kind not in DIRECTION_OF:
            raise MlopsError(f"threshold type for {mid!r} must be lower_limit or upper_limit, got {kind!r}")
        if not _is_finite_number(value):
            raise MlopsError(f"threshold value for {mid!r} must be a finite number, got {value!r}")
        out.append({"metric_id": mid, "type": kind, "value": float(value)})
    return out


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
