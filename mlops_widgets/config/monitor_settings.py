"""The monitors of an entry (`openscale_custom_metric_provider`): monitor id -> settings, each
checked against its monitor definition (a versioned id such as `segmentation_metrics_v22`
against its base), thresholds by metric name, an optional schedule.

Definitions come in as an argument (config is pure: no registry, no workspace); see
`config/__init__.py`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from mlops_widgets.config.fields import (
    EVERY_PATTERN,
    Checker,
    Field,
    Flag,
    Integer,
    Limit,
    Record,
    RelPath,
    SchemaContext,
    Text,
    show,
    unknown,
)
from mlops_widgets.config.problems import join_path
from mlops_widgets.monitors.definitions import BUILTIN, MonitorDefinition

_VERSIONED = re.compile(r"(?P<base>.+)_v\d+")


def base_definition(
    monitor_id: str, definitions: Mapping[str, MonitorDefinition]
) -> MonitorDefinition | None:
    """The definition of `monitor_id`, or, for an unknown versioned id such as
    `segmentation_metrics_v22`, that of its base `segmentation_metrics` (a server-side copy of a
    built-in publishes the same metrics, so its metric names can still be checked)."""
    if monitor_id in definitions:
        return definitions[monitor_id]
    match = _VERSIONED.fullmatch(monitor_id)
    return definitions.get(match["base"]) if match else None


@dataclass(frozen=True)
class ThresholdMap:
    """Metric name -> `{threshold: [value, direction]}`; names checked against the monitor
    definition in scope (case-sensitive) when there is one."""

    threshold: Record
    expect: str = "a mapping of metric name -> {threshold: [number, 'lower' or 'upper']}"

    def check(self, value: Any, path: str, ck: Checker) -> Any:
        if not isinstance(value, Mapping):
            ck.error(path, f"must be {self.expect}, got {show(value)}")
            return value
        definition = ck.definition
        out: dict[Any, Any] = {}
        for metric, limit in value.items():
            metric_path = join_path(path, metric)
            if not isinstance(metric, str):
                ck.error(metric_path, f"a metric name must be a string, got {show(metric)}")
            elif definition is not None and metric not in definition.thresholds:
                ck.error(
                    metric_path,
                    unknown("metric", metric, definition.metric_names)
                    + f" (monitor definition {definition.id!r})",
                )
            out[metric] = checked = self.threshold.check(limit, metric_path, ck)
            span = definition.ranges.get(metric) if definition is not None else None
            number = _valid_limit(checked)
            if span is not None and number is not None and number not in span:
                ck.error(metric_path, f"must be within {span.text()} (the range of {metric}), got {number:g}")
        return out

    def schema(self, sc: SchemaContext) -> dict[str, Any]:
        limit = self.threshold.schema(sc)
        if sc.definition is None:
            return {"type": "object", "additionalProperties": limit}
        props = {
            name: {**limit, "description": f"Default: [{t.value}, {t.direction}]." + _range_note(sc, name)}
            for name, t in sc.definition.thresholds.items()
        }
        return {"type": "object", "properties": props, "additionalProperties": False}


@dataclass(frozen=True)
class MonitorMap:
    """Monitor id -> settings. An id not known locally is a warning (it may exist on the
    server); its metric names are checked against its versioned base when there is one."""

    settings: Record
    expect: str = "a mapping of monitor id -> monitor settings"

    def check(self, value: Any, path: str, ck: Checker) -> Any:
        if not isinstance(value, Mapping):
            ck.error(path, f"must be {self.expect}, got {show(value)}")
            return value
        out: dict[Any, Any] = {}
        for monitor_id, settings in value.items():
            monitor_path = join_path(path, monitor_id)
            definition = None
            if not isinstance(monitor_id, str) or not monitor_id.strip():
                ck.error(monitor_path, f"a monitor id must be a non-empty string, got {show(monitor_id)}")
            else:
                definitions = ck.definitions()
                definition = base_definition(monitor_id, definitions)
                if monitor_id not in definitions:
                    ck.warn(monitor_path, _unknown_monitor(monitor_id, definition, definitions))
            ck.definition = definition
            try:
                out[monitor_id] = self.settings.check(settings, monitor_path, ck)
            finally:
                ck.definition = None
        return out

    def schema(self, sc: SchemaContext) -> dict[str, Any]:
        props: dict[str, Any] = {}
        patterns: dict[str, Any] = {}
        for monitor_id, definition in sc.definitions.items():
            name = f"monitor_{monitor_id}"
            sc.defs[name] = {
                **self.settings.schema(replace(sc, definition=definition)),
                "description": f"Settings of monitor {monitor_id!r}: {definition.description}",
            }
            props[monitor_id] = {"$ref": f"#/$defs/{name}"}
            patterns[f"^{re.escape(monitor_id)}_v[0-9]+$"] = {"$ref": f"#/$defs/{name}"}
        return {
            "type": "object",
            "properties": props,
            "patternProperties": patterns,
            "additionalProperties": self.settings.schema(replace(sc, definition=None)),
            "propertyNames": {"minLength": 1},
        }


def _valid_limit(checked: Any) -> float | None:
    """The limit's value when the threshold passed its own checks (else those said what is wrong)."""
    limit = checked.get("threshold") if isinstance(checked, Mapping) else None
    if isinstance(limit, list) and len(limit) == 2 and limit[1] in ("lower", "upper"):
        value = limit[0]
        if isinstance(value, float) and math.isfinite(value):
            return value
    return None


def _range_note(sc: SchemaContext, metric: str) -> str:
    span = sc.definition.ranges.get(metric) if sc.definition is not None else None
    return f" Runs {span.text()}." if span is not None else ""


def _unknown_monitor(
    monitor_id: str, base: MonitorDefinition | None, definitions: Mapping[str, MonitorDefinition]
) -> str:
    text = f"monitor {monitor_id!r} is not known locally (it may exist on the server)"
    if base is not None:
        return text + f"; its metric names were checked against {base.id!r}"
    known = ", ".join(definitions) or "none"
    return text + f"; its metric names were not checked (known monitors: {known})"


THRESHOLD = Record(
    expect="a mapping {threshold: [number, 'lower' or 'upper']}",
    fields=(
        Field(
            "threshold",
            Limit(),
            "[value, 'lower' | 'upper']: with 'lower' a measured value below `value` is a "
            "violation, with 'upper' a value above it is.",
            required=True,
        ),
    ),
)


def _one_repeat(values: dict[str, Any], keys: dict[str, tuple[str, str]], ck: Checker) -> None:
    if "every" in values and "cron" in values:
        ck.error(keys["cron"][1], "give either every or cron, not both")


SCHEDULE = Record(
    expect="a mapping of schedule settings (every or cron and tz, paused)",
    rules=(_one_repeat,),
    rules_doc="every and cron exclude each other; one of them is needed to schedule.",
    fields=(
        Field(
            "every",
            Text(pattern=EVERY_PATTERN, rule="must be a whole number and a unit s, m, h or d (e.g. 30m, 1h)"),
            "How often the monitor is evaluated: a whole number and a unit s, m, h or d (30m, 1h, 1d).",
        ),
        Field(
            "cron",
            Text(),
            "Instead of `every` (local backend): the times of a cron expression, e.g. '0 8 * * 1-5'.",
        ),
        Field("tz", Text(), "The IANA time zone of `cron` (e.g. Europe/Paris; default: the machine's)."),
        Field("paused", Flag(), "A paused schedule keeps its repeat but evaluates nothing.", default=False),
    ),
)

MONITOR_SETTINGS = Record(
    expect="a mapping of monitor settings (dir_gt, dir_pred, volume_display_name, most_recent, thresholds, schedule)",
    fields=(
        Field(
            "dir_gt",
            RelPath(),
            "Folder of the ground-truth images, relative to the storage volume's root.",
            required=True,
        ),
        Field(
            "dir_pred",
            RelPath(),
            "Folder of the predicted images, relative to the storage volume's root.",
            required=True,
        ),
        Field(
            "volume_display_name",
            Text(),
            "Display name of the storage volume holding both folders.",
            required=True,
        ),
        Field(
            "most_recent",
            Integer(1, unit="days"),
            "Only images modified in the last this many days count.",
            required=True,
        ),
        Field(
            "thresholds",
            ThresholdMap(THRESHOLD),
            "Metric name -> limit. Names are the monitor definition's, case-sensitive; a metric "
            "left out keeps the definition's default threshold.",
            required=True,
        ),
        Field(
            "schedule",
            SCHEDULE,
            "Evaluate the monitor on its own at this repeat (OpenScale's monitor instance schedule); "
            "absent: only when asked.",
        ),
    ),
)


def new_monitor_settings(
    monitor_id: str, definitions: Mapping[str, MonitorDefinition] | None = None
) -> dict[str, Any]:
    """Settings for adding monitor `monitor_id` to an entry: its definition's default
    thresholds (its base's for a versioned id), a 7-day window, folders still to fill in.
    `definitions`: as for `validate_entry`."""
    definition = base_definition(monitor_id, BUILTIN if definitions is None else definitions)
    return {
        "dir_gt": "",
        "dir_pred": "",
        "volume_display_name": "",
        "most_recent": 7,
        "thresholds": definition.default_thresholds() if definition else {},
    }
