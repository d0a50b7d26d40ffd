"""The deployment-metadata entry: its fields (defined once, below), validation and blank entries
(the monitors' settings are in config/monitor_settings.py; the JSON Schema is built from these
fields in config/schema.py; files are read in config/loading.py).

An entry keeps the original workflow's YAML shape so users bring their files unchanged. A
validated entry is normalized: keys in the order below, absent workflow-filled keys present as
null, `n_min_kernels`/`n_replicas` renamed to `kernel_min`/`kernel_max`, `enable_gpus` a bool,
threshold values floats.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mlops_widgets.config.fields import (
    Checker,
    Facts,
    Field,
    Flag,
    Integer,
    Number,
    Record,
    Text,
)
from mlops_widgets.config.monitor_settings import MONITOR_SETTINGS, MonitorMap
from mlops_widgets.config.problems import ConfigError, Problem
from mlops_widgets.errors import MlopsError
from mlops_widgets.monitors.definitions import MonitorDefinition

DEPLOYMENT_NAME_PATTERN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DEPLOYMENT_NAME_MAX = 63


def check_deployment_name(name: object) -> str:
    """A deployment name as WMLA requires it (the original's rule), else one clear error."""
    if (
        not isinstance(name, str)
        or not re.fullmatch(DEPLOYMENT_NAME_PATTERN, name)
        or len(name) > DEPLOYMENT_NAME_MAX
    ):
        raise MlopsError(
            f"invalid deployment name {name!r}: use lower-case letters, digits and '-', starting and "
            f"ending with a letter or digit, at most {DEPLOYMENT_NAME_MAX} characters "
            f"(^{DEPLOYMENT_NAME_PATTERN}$)"
        )
    return name


def _kernel_order(values: dict[str, Any], keys: dict[str, tuple[str, str]], ck: Checker) -> None:
    """0 <= kernel_min <= kernel_max, comparing with the default of the one left out."""
    low = values.get("kernel_min", RESOURCE_DEFAULTS["kernel_min"])
    high = values.get("kernel_max", RESOURCE_DEFAULTS["kernel_max"])
    if low <= high or not keys.keys() & {"kernel_min", "kernel_max"}:
        return
    if "kernel_min" in keys and "kernel_max" in keys:
        (low_key, path), (high_key, _) = keys["kernel_min"], keys["kernel_max"]
        ck.error(path, f"{low_key} ({low}) is greater than {high_key} ({high})")
    elif "kernel_min" in keys:
        low_key, path = keys["kernel_min"]
        ck.error(path, f"{low_key} ({low}) is greater than the default kernel_max ({high}); set kernel_max")
    else:
        high_key, path = keys["kernel_max"]
        ck.error(path, f"{high_key} ({high}) is less than the default kernel_min ({low}); set kernel_min")


# A deployment's kernels are processes on one machine (or a WMLA resource group): more than this
# is a typo, not a plan, and would try to start that many processes.
KERNELS_MAX = 64
# Seconds: a request may run, an idle surplus kernel may wait, at most a day (1e10 s overflowed
# the service's timers); a kernel's on_kernel_start (pip installs, weights) at most an hour.
TIMEOUT_MAX = 86_400
CONNECTION_TIMEOUT_MAX = 3_600
TASK_BATCH_MAX = 1_024

RESOURCE_DEFAULTS: dict[str, Any] = {
    "enable_gpus": False,
    "kernel_min": 1,
    "kernel_max": 3,
    "kernel_delay_release_time": 60,
    "task_execution_timeout": 60,
    "task_batch_size": 1,
    "connection_timeout": 90,
}
"""What a deployment uses for a resource key the entry leaves out (the original's defaults)."""

RESOURCE_CONFIGS = Record(
    expect="a mapping of resource settings",
    rules=(_kernel_order,),
    rules_doc="kernel_min must not exceed kernel_max (the default of whichever is left out).",
    fields=(
        Field(
            "enable_gpus",
            Flag(),
            "Give each kernel a GPU of its own. A boolean, or the strings 'True'/'False' the "
            "original wrote (parsed, so 'False' means no GPU).",
            default=RESOURCE_DEFAULTS["enable_gpus"],
        ),
        Field("n_cpus", Number(), "CPUs per kernel."),
        Field("memory_allocation", Number(unit="MB"), "Memory per kernel in MB."),
        Field(
            "kernel_min",
            Integer(0, maximum=KERNELS_MAX),
            f"Fewest kernels kept running, 0 to {KERNELS_MAX}; 0 starts none until the first request. "
            "The seed's n_min_kernels is accepted as an alias.",
            default=RESOURCE_DEFAULTS["kernel_min"],
            aliases=("n_min_kernels",),
        ),
        Field(
            "kernel_max",
            Integer(1, maximum=KERNELS_MAX),
            f"Most kernels run under load, 1 to {KERNELS_MAX}; at least kernel_min. "
            "The seed's n_replicas is accepted as an alias.",
            default=RESOURCE_DEFAULTS["kernel_max"],
            aliases=("n_replicas",),
        ),
        Field(
            "kernel_delay_release_time",
            Integer(1, unit="seconds", maximum=TIMEOUT_MAX),
            "Seconds an idle surplus kernel waits before it stops.",
            default=RESOURCE_DEFAULTS["kernel_delay_release_time"],
        ),
        Field(
            "task_execution_timeout",
            Integer(1, also=(-1,), unit="seconds", maximum=TIMEOUT_MAX),
            "Seconds a request may run before it fails (HTTP 504); -1 for no limit.",
            default=RESOURCE_DEFAULTS["task_execution_timeout"],
        ),
        Field(
            "task_batch_size",
            Integer(1, maximum=TASK_BATCH_MAX),
            "Requests handed to a kernel at once.",
            default=RESOURCE_DEFAULTS["task_batch_size"],
        ),
        Field(
            "connection_timeout",
            Integer(1, unit="seconds", maximum=CONNECTION_TIMEOUT_MAX),
            "Seconds a kernel may take to start (its on_kernel_start: loading weights, installing "
            "packages) before the start fails; the profile's kernel.connection_timeout.",
            default=RESOURCE_DEFAULTS["connection_timeout"],
        ),
    ),
)

WMLA_DEPLOYMENT = Record(
    expect="a mapping of deployment settings",
    fields=(
        Field(
            "deployment_name",
            Text(
                pattern=DEPLOYMENT_NAME_PATTERN,
                max_length=DEPLOYMENT_NAME_MAX,
                rule="must be lower-case letters, digits and '-', starting and ending with a "
                "letter or digit (like 'my-model-1')",
            ),
            "Name of the inference deployment: lower-case letters, digits and '-', starting and "
            "ending with a letter or digit, at most 63 characters; null until `mlops deploy create` "
            "sets it.",
            nullable=True,
        ),
        Field(
            "deployment_url",
            Text(),
            "URL of the inference deployment; null until `mlops deploy create` sets it.",
            nullable=True,
        ),
        Field(
            "dependency_filename",
            Text(),
            "Asset name of the deployment folder (<folder>.zip); null until staging sets it.",
            nullable=True,
        ),
        Field(
            "dependency_asset_id",
            Text(),
            "Asset id of the deployment folder, which the deploy step unpacks (several assets may "
            "share its name); null until staging sets it.",
            nullable=True,
        ),
        Field(
            "resource_configs",
            RESOURCE_CONFIGS,
            "Resources and scaling of the deployment's kernels; a key left out takes its default.",
            required=True,
        ),
    ),
)

TRAINING_JOB = Record(
    expect="a mapping naming the training job that produced the model",
    fields=(
        Field("job_id", Text(), "Id of the training job (`mlops train list`).", required=True),
        Field("backend", Text(), "Backend that ran it (local or cpd).", nullable=True),
        Field("framework", Text(), "Its WMLA framework (e.g. distPyTorch).", nullable=True),
        Field("main", Text(), "Its main script.", nullable=True),
        Field("output", Text(), "Where its output folder was.", nullable=True),
        Field("ended_at", Text(), "When it finished (ISO 8601, UTC).", nullable=True),
        Field("params", Facts(), "What it ran with (arguments, variables, workers, runtime).", nullable=True),
        Field(
            "metrics",
            Facts(),
            "What its script reported: per metric its last value and count.",
            nullable=True,
        ),
    ),
)

ENTRY = Record(
    expect="a mapping (a deployment metadata entry)",
    fields=(
        Field(
            "model_asset",
            Text(),
            "Asset name of the model in the space (e.g. mymodel.zip); null until staging sets it.",
            nullable=True,
        ),
        Field("model_name", Text(), "Free-text name of the model; may be null.", nullable=True),
        Field(
            "deployment_id",
            Text(),
            "Unused by the workflow (normally null); kept so the original's files still load.",
            nullable=True,
        ),
        Field(
            "deployment_space_id",
            Text(),
            "Id of the deployment space that holds the entry's assets; null until staging sets it.",
            nullable=True,
        ),
        Field(
            "openscale_subscription_id",
            Text(),
            "Id of the monitoring subscription of the deployment; null until `mlops monitor create` sets it.",
            nullable=True,
        ),
        Field(
            "openscale_custom_metric_provider",
            MonitorMap(MONITOR_SETTINGS),
            "Monitor id -> its settings: one monitor instance per id is attached to the "
            "deployment. Ids known locally (segmentation_metrics, generic_metrics) have their "
            "metric names checked; other ids (e.g. segmentation_metrics_v22, defined on the "
            "server) give a warning, and a versioned id is checked against its base.",
            required=True,
        ),
        Field(
            "wmla_deployment",
            WMLA_DEPLOYMENT,
            "The inference deployment of the model.",
            required=True,
        ),
        Field(
            "training_job",
            TRAINING_JOB,
            "The training job whose output was staged as the model (`mlops prepare stage "
            "--from-job`); absent for a model staged from files.",
        ),
    ),
)

ENTRY_KEYS = frozenset(ENTRY.keys)


def validate_entry(
    data: Any,
    *,
    lines: Mapping[str, int] | None = None,
    path_prefix: str = "",
    definitions: Mapping[str, MonitorDefinition] | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """Check one entry; return it normalized with its warnings, or raise ConfigError listing
    every problem. `lines` maps paths (including `path_prefix`) to YAML lines. `definitions`:
    the monitor definitions entries may use (default: the built-in ones; front ends pass their
    workspace's, from the monitor registry)."""
    ck = Checker(lines, definitions)
    entry = ENTRY.check(data, path_prefix, ck)
    if any(p.severity == "error" for p in ck.problems):
        raise ConfigError(ck.problems)
    return entry, ck.problems


def new_entry() -> dict[str, Any]:
    """A blank, valid entry: the workflow-filled keys null, no monitors, default resources."""
    return ENTRY.blank()
