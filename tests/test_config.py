"""The deployment-metadata model: every class of bad input is reported (all at once, with its
path and line), the original's files still load, YAML is read safely, and the JSON Schema
agrees with the validator."""

from __future__ import annotations

import copy
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mlops_widgets.config import (
    RESOURCE_DEFAULTS,
    ConfigError,
    Problem,
    dump_yaml,
    json_schema,
    load_config,
    load_yaml_text,
    new_entry,
    new_monitor_settings,
    validate_entry,
)
from mlops_widgets.config.problems import join_path, parent_path
from mlops_widgets.errors import MlopsError, NotFoundError
from mlops_widgets.monitors.definitions import BUILTIN, SEGMENTATION

SEG = "openscale_custom_metric_provider.segmentation_metrics"
RES = "wmla_deployment.resource_configs"


def good_entry() -> dict[str, Any]:
    """A valid entry in the original's shape, both built-in monitors attached."""
    return {
        "model_asset": None,
        "model_name": "deepliif",
        "deployment_id": None,
        "deployment_space_id": None,
        "openscale_subscription_id": None,
        "openscale_custom_metric_provider": {
            "segmentation_metrics": {
                "dir_gt": "DeepLIIF_Datasets/model_eval/gt_images",
                "dir_pred": "DeepLIIF_Datasets/model_eval/model_images",
                "volume_display_name": "AdditionalDeepLIIFVolume",
                "most_recent": 7,
                "thresholds": {"Dice": {"threshold": [20.0, "lower"]}},
            },
            "generic_metrics": {
                "dir_gt": "gt",
                "dir_pred": "pred",
                "volume_display_name": "vol",
                "most_recent": 1,
                "thresholds": {"num_images_total_predicted": {"threshold": [40, "lower"]}},
            },
        },
        "wmla_deployment": {
            "deployment_name": None,
            "deployment_url": None,
            "dependency_filename": None,
            "resource_configs": {
                "enable_gpus": "True",
                "n_cpus": 8,
                "memory_allocation": 10000,
                "kernel_min": 0,
                "task_execution_timeout": 120,
            },
        },
    }


def with_value(path: str, value: Any) -> dict[str, Any]:
    """good_entry() with the dotted `path` set to `value`."""
    entry = copy.deepcopy(good_entry())
    *parents, last = path.split(".")
    target = entry
    for key in parents:
        target = target[key]
    target[last] = value
    return entry


def without(path: str) -> dict[str, Any]:
    entry = copy.deepcopy(good_entry())
    *parents, last = path.split(".")
    target = entry
    for key in parents:
        target = target[key]
    del target[last]
    return entry


def problems(data: Any, **kwargs: Any) -> dict[str, str]:
    """path -> message of every error validate_entry reports (it must report some)."""
    with pytest.raises(ConfigError) as info:
        validate_entry(data, **kwargs)
    return {p.path: p.message for p in info.value.errors}


def only_error(data: Any) -> tuple[str, str]:
    found = problems(data)
    assert len(found) == 1, found
    return next(iter(found.items()))


def write(tmp_path: Path, text: str, name: str = "deployment_metadata.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def file_problems(path: Path, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, **kwargs)
    return info.value


# --- the original's files ------------------------------------------------------------------------


def test_reference_single_entry_validates_with_warnings_for_versioned_monitors(reference_dir: Path):
    loaded = load_config(reference_dir / "deployment_metadata_cli_example.yml")
    assert list(loaded.entries) == [None]
    entry = loaded.entries[None]
    resources = entry["wmla_deployment"]["resource_configs"]
    assert resources["enable_gpus"] is True
    assert resources["kernel_min"] == 0
    monitors = entry["openscale_custom_metric_provider"]
    assert set(monitors) == {"generic_metrics_v5", "segmentation_metrics_v22"}
    assert len(monitors["segmentation_metrics_v22"]["thresholds"]) == 18
    assert {w.path: w.severity for w in loaded.warnings} == {
        "openscale_custom_metric_provider.generic_metrics_v5": "warning",
        "openscale_custom_metric_provider.segmentation_metrics_v22": "warning",
    }
    seg_warning = loaded.warnings[1]
    assert seg_warning.line == 28
    assert "checked against 'segmentation_metrics'" in seg_warning.message


def test_reference_keyed_file_validates(reference_dir: Path):
    loaded = load_config(reference_dir / "deployment_metadata_cli_example2.yml", with_key=True)
    assert list(loaded.entries) == ["54b19403-9c10-48e5-b3f3-dc958e2cfbb1"]
    assert loaded.warnings == []
    entry = loaded.entries["54b19403-9c10-48e5-b3f3-dc958e2cfbb1"]
    assert entry["wmla_deployment"]["resource_configs"]["kernel_min"] == 1


def test_with_key_mismatch_gives_a_hint(reference_dir: Path):
    err = file_problems(reference_dir / "deployment_metadata_cli_example.yml", with_key=True)
    assert err.hint.action == "config.without_key" and "--with-key" not in str(err)
    err = file_problems(reference_dir / "deployment_metadata_cli_example2.yml")
    assert err.hint.action == "config.with_key" and "--with-key" not in str(err)
    assert len(err.problems) == 1 and err.problems[0].line == 1


def test_normalized_entry_keeps_the_shape_and_fills_the_workflow_nulls():
    data = without("model_asset")
    del data["wmla_deployment"]["deployment_url"]
    entry, warnings = validate_entry(data)
    assert warnings == []
    assert list(entry) == [
        "model_asset",
        "model_name",
        "deployment_id",
        "deployment_space_id",
        "openscale_subscription_id",
        "openscale_custom_metric_provider",
        "wmla_deployment",
    ]
    assert entry["model_asset"] is None and entry["wmla_deployment"]["deployment_url"] is None
    limit = entry["openscale_custom_metric_provider"]["generic_metrics"]["thresholds"]
    assert limit["num_images_total_predicted"] == {"threshold": [40.0, "lower"]}
    assert good_entry()["wmla_deployment"]["resource_configs"]["enable_gpus"] == "True"  # input untouched


# --- keys ----------------------------------------------------------------------------------------


def test_unknown_key_suggests_the_closest():
    path, message = only_error(with_value("model_nme", "x"))
    assert path == "model_nme"
    assert message == "unknown key 'model_nme'; did you mean 'model_name'?"
    path, message = only_error(with_value(f"{RES}.n_cpu", 4))
    assert path == f"{RES}.n_cpu" and "did you mean 'n_cpus'?" in message


def test_unknown_key_without_a_close_match_lists_the_allowed_ones():
    _, message = only_error(with_value(f"{SEG}.colour", "red"))
    assert "unknown key 'colour' (allowed: dir_gt, dir_pred, volume_display_name" in message


def test_non_string_key_is_an_unknown_key():
    data = good_entry()
    data[1] = "x"
    path, message = only_error(data)
    assert path == "1" and "unknown key '1'" in message


@pytest.mark.parametrize(
    "path",
    [
        "openscale_custom_metric_provider",
        "wmla_deployment",
        f"{RES}",
        f"{SEG}.dir_gt",
        f"{SEG}.dir_pred",
        f"{SEG}.volume_display_name",
        f"{SEG}.most_recent",
        f"{SEG}.thresholds",
    ],
)
def test_missing_required_key(path: str):
    assert only_error(without(path)) == (path, f"missing required key {path.split('.')[-1]!r}")


def test_missing_threshold_key_and_unknown_threshold_key():
    found = problems(with_value(f"{SEG}.thresholds.Dice", {"treshold": [1, "lower"]}))
    assert found == {
        f"{SEG}.thresholds.Dice.treshold": "unknown key 'treshold'; did you mean 'threshold'?",
        f"{SEG}.thresholds.Dice.threshold": "missing required key 'threshold'",
    }


@pytest.mark.parametrize(
    "path", ["openscale_custom_metric_provider", "wmla_deployment", RES, f"{SEG}.thresholds"]
)
def test_null_where_the_workflow_does_not_fill_it(path: str):
    found_path, message = only_error(with_value(path, None))
    assert found_path == path and message.endswith("got null")


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_string_for_a_workflow_filled_value_asks_for_null(value: str):
    path, message = only_error(with_value("deployment_space_id", value))
    assert path == "deployment_space_id" and "write null" in message


@pytest.mark.parametrize("data", [None, [], "entry", 3])
def test_an_entry_must_be_a_mapping(data: Any):
    assert problems(data) == {"": f"must be a mapping (a deployment metadata entry), got {show(data)}"}


def show(value: Any) -> str:
    from mlops_widgets.config.fields import show as config_show

    return config_show(value)


# --- thresholds and monitors ---------------------------------------------------------------------

LIMIT = f"{SEG}.thresholds.Dice.threshold"


@pytest.mark.parametrize(
    ("value", "path", "fragment"),
    [
        ([float("nan"), "lower"], f"{LIMIT}[0]", "finite number, got .nan"),
        ([float("inf"), "lower"], f"{LIMIT}[0]", "finite number, got .inf"),
        ([float("-inf"), "upper"], f"{LIMIT}[0]", "finite number, got -.inf"),
        ([True, "lower"], f"{LIMIT}[0]", "finite number, got true (a boolean)"),
        (["20", "lower"], f"{LIMIT}[0]", "finite number, got '20' (a string)"),
        ([None, "lower"], f"{LIMIT}[0]", "finite number, got null"),
        ([20, "Lower"], f"{LIMIT}[1]", "got 'Lower' (a string); did you mean 'lower'?"),
        ([20, "uper"], f"{LIMIT}[1]", "did you mean 'upper'?"),
        ([20, "sideways"], f"{LIMIT}[1]", "must be 'lower' or 'upper', got 'sideways'"),
        ([20, 1], f"{LIMIT}[1]", "must be 'lower' or 'upper', got 1 (a number)"),
        ([20], LIMIT, "2 items, got 1"),
        ([20, "lower", "x"], LIMIT, "2 items, got 3"),
        (20, LIMIT, "must be a list [number, 'lower' or 'upper'], got 20 (a number)"),
        ({"v": 1}, LIMIT, "got a mapping"),
    ],
)
def test_bad_threshold(value: Any, path: str, fragment: str):
    found_path, message = only_error(with_value(f"{SEG}.thresholds.Dice.threshold", value))
    assert found_path == path
    assert fragment in message


def test_threshold_that_is_not_a_mapping():
    path, message = only_error(with_value(f"{SEG}.thresholds.Dice", [20, "lower"]))
    assert path == f"{SEG}.thresholds.Dice" and "{threshold: [number" in message


def test_both_bad_parts_of_a_threshold_are_reported():
    found = problems(with_value(LIMIT, [float("nan"), "Upper"]))
    assert set(found) == {f"{LIMIT}[0]", f"{LIMIT}[1]"}


def test_metric_names_are_case_sensitive():
    entry = with_value(f"{SEG}.thresholds.dice", {"threshold": [20, "lower"]})
    path, message = only_error(entry)
    assert path == f"{SEG}.thresholds.dice"
    assert message.startswith("unknown metric 'dice'; did you mean 'Dice'?")
    assert "'segmentation_metrics'" in message


def test_unknown_metric_of_a_generic_monitor():
    metric = "openscale_custom_metric_provider.generic_metrics.thresholds.num_images"
    path, message = only_error(with_value(metric, {"threshold": [1, "lower"]}))
    assert path == metric and "unknown metric 'num_images'" in message


def test_unknown_monitor_is_a_warning_and_its_metrics_are_not_checked():
    entry = good_entry()
    settings = copy.deepcopy(entry["openscale_custom_metric_provider"]["generic_metrics"])
    settings["thresholds"] = {"anything": {"threshold": [1, "upper"]}}
    entry["openscale_custom_metric_provider"]["my_monitor"] = settings
    _, warnings = validate_entry(entry)
    assert [(w.path, w.severity) for w in warnings] == [
        ("openscale_custom_metric_provider.my_monitor", "warning")
    ]
    assert "not known locally" in warnings[0].message
    assert "not checked" in warnings[0].message


def test_versioned_monitor_id_is_checked_against_its_base():
    entry = good_entry()
    monitors = entry["openscale_custom_metric_provider"]
    monitors["segmentation_metrics_v22"] = monitors.pop("segmentation_metrics")
    monitors["segmentation_metrics_v22"]["thresholds"]["Dise"] = {"threshold": [1, "lower"]}
    with pytest.raises(ConfigError) as info:
        validate_entry(entry)
    assert [(p.path, p.severity) for p in info.value.problems] == [
        ("openscale_custom_metric_provider.segmentation_metrics_v22.thresholds.Dise", "error"),
        ("openscale_custom_metric_provider.segmentation_metrics_v22", "warning"),
    ]
    assert "did you mean 'Dice'?" in info.value.problems[0].message


def test_a_monitor_known_locally_under_a_versioned_id_gives_no_warning():
    definitions = {
        **BUILTIN,
        "segmentation_metrics_v22": replace(SEGMENTATION, id="segmentation_metrics_v22"),
    }
    entry = good_entry()
    monitors = entry["openscale_custom_metric_provider"]
    monitors["segmentation_metrics_v22"] = monitors.pop("segmentation_metrics")
    assert validate_entry(entry, definitions=definitions)[1] == []


def test_monitor_settings_must_be_a_mapping():
    path, message = only_error(with_value(SEG, "all defaults"))
    assert path == SEG and "must be a mapping of monitor settings" in message


def test_no_monitors_is_fine():
    entry, _ = validate_entry(with_value("openscale_custom_metric_provider", {}))
    assert entry["openscale_custom_metric_provider"] == {}


# --- monitor settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (0, "got 0 (a number)"),
        (-1, "got -1 (a number)"),
        ("7", "got '7' (a string)"),
        (7.5, "got 7.5 (a number)"),
        (True, "got true (a boolean)"),
    ],
)
def test_most_recent_must_be_a_positive_integer(value: Any, fragment: str):
    path, message = only_error(with_value(f"{SEG}.most_recent", value))
    assert path == f"{SEG}.most_recent"
    assert message == f"must be a positive integer (days), {fragment}"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("../x", "'..' is not allowed"),
        ("a/../../b", "'..' is not allowed"),
        ("a\\..\\b", "'..' is not allowed"),
        ("/abs/gt", "absolute path '/abs/gt'"),
        ("\\\\server\\share", "absolute path"),
        ("C:\\data", "absolute path"),
        ("", "must not be empty"),
        (3, "got 3 (a number)"),
    ],
)
@pytest.mark.parametrize("key", ["dir_gt", "dir_pred"])
def test_image_folders_stay_inside_the_volume(key: str, value: Any, fragment: str):
    path, message = only_error(with_value(f"{SEG}.{key}", value))
    assert path == f"{SEG}.{key}"
    assert fragment in message


@pytest.mark.parametrize("value", ["gt", "a/b/c", "./a", "a..b/c", "..hidden"])
def test_relative_folders_are_accepted(value: str):
    validate_entry(with_value(f"{SEG}.dir_gt", value))


@pytest.mark.parametrize("value", ["", "  ", None, 5])
def test_volume_display_name_must_be_a_non_empty_string(value: Any):
    path, _ = only_error(with_value(f"{SEG}.volume_display_name", value))
    assert path == f"{SEG}.volume_display_name"


# --- resources -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"), [("True", True), ("False", False), (True, True), (False, False), ("false", False)]
)
def test_enable_gpus_is_parsed_not_read_by_truthiness(value: Any, parsed: bool):
    entry, _ = validate_entry(with_value(f"{RES}.enable_gpus", value))
    assert entry["wmla_deployment"]["resource_configs"]["enable_gpus"] is parsed


@pytest.mark.parametrize("value", ["yes", "FALSE", "0", 1, 0, ""])
def test_enable_gpus_refuses_anything_else(value: Any):
    path, message = only_error(with_value(f"{RES}.enable_gpus", value))
    assert path == f"{RES}.enable_gpus" and "true or false" in message


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("n_cpus", 0, "must be a number > 0, got 0"),
        ("n_cpus", -2, "must be a number > 0"),
        ("n_cpus", "8", "got '8' (a string)"),
        ("n_cpus", True, "got true (a boolean)"),
        ("n_cpus", float("nan"), "got .nan"),
        ("memory_allocation", 0, "must be a number > 0 (MB), got 0"),
        ("memory_allocation", float("inf"), "got .inf"),
        ("kernel_min", -1, "must be an integer from 0 to 64, got -1"),
        ("kernel_min", 0.5, "got 0.5"),
        ("kernel_min", 10**30, "must be an integer from 0 to 64, got a number of 31 digits"),
        ("kernel_max", 0, "must be an integer from 1 to 64, got 0"),
        ("kernel_max", 65, "must be an integer from 1 to 64, got 65"),
        ("kernel_delay_release_time", 0, "must be an integer from 1 to 86400 (seconds), got 0"),
        ("task_execution_timeout", 0, "must be an integer from 1 to 86400 (seconds) or -1, got 0"),
        ("task_execution_timeout", -2, "or -1, got -2"),
        ("task_execution_timeout", 10**10, "must be an integer from 1 to 86400 (seconds) or -1"),
        ("task_batch_size", 0, "must be an integer from 1 to 1024, got 0"),
        ("connection_timeout", 0, "must be an integer from 1 to 3600 (seconds), got 0"),
        ("connection_timeout", 3601, "must be an integer from 1 to 3600 (seconds), got 3601"),
        ("n_cpus", None, "got null"),
    ],
)
def test_resource_rules(key: str, value: Any, fragment: str):
    path, message = only_error(with_value(f"{RES}.{key}", value))
    assert path == f"{RES}.{key}"
    assert fragment in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("n_cpus", 0.5),
        ("task_execution_timeout", -1),
        ("task_batch_size", 4),
        ("kernel_delay_release_time", 30),
        ("kernel_max", 1),
        ("kernel_max", 64),
    ],
)
def test_resource_values_accepted(key: str, value: Any):
    entry, _ = validate_entry(with_value(f"{RES}.{key}", value))
    assert entry["wmla_deployment"]["resource_configs"][key] == value


def test_unknown_resource_key_is_an_error():
    path, message = only_error(with_value(f"{RES}.gpu_count", 1))
    assert path == f"{RES}.gpu_count" and message.startswith("unknown key 'gpu_count'")


def test_seed_aliases_become_kernel_min_and_kernel_max():
    resources = {
        "enable_gpus": "True",
        "n_cpus": 8,
        "memory_allocation": 10000,
        "n_replicas": 1,
        "n_min_kernels": 1,
        "task_execution_timeout": 2 * 60,
    }  # the seed's own example
    entry, _ = validate_entry(with_value(RES, resources))
    assert entry["wmla_deployment"]["resource_configs"] == {
        "enable_gpus": True,
        "n_cpus": 8,
        "memory_allocation": 10000,
        "kernel_min": 1,
        "kernel_max": 1,
        "task_execution_timeout": 120,
    }


def test_alias_and_its_key_together_are_refused():
    entry = with_value(f"{RES}.n_min_kernels", 1)  # good_entry already has kernel_min
    path, message = only_error(entry)
    assert path == f"{RES}.n_min_kernels"
    assert "'n_min_kernels' and 'kernel_min' both set 'kernel_min'" in message


def test_kernel_min_above_kernel_max():
    entry = with_value(f"{RES}.kernel_max", 2)
    entry["wmla_deployment"]["resource_configs"]["kernel_min"] = 3
    assert only_error(entry) == (f"{RES}.kernel_min", "kernel_min (3) is greater than kernel_max (2)")


def test_kernel_bounds_compare_with_the_default_of_the_missing_one():
    above = RESOURCE_DEFAULTS["kernel_max"] + 1
    path, message = only_error(with_value(f"{RES}.kernel_min", above))
    assert path == f"{RES}.kernel_min" and "default kernel_max" in message
    entry = without(f"{RES}.kernel_min")
    entry["wmla_deployment"]["resource_configs"]["n_replicas"] = 1
    validate_entry(entry)  # default kernel_min 1 <= 1


def test_an_invalid_kernel_bound_is_reported_once():
    entry = with_value(f"{RES}.kernel_max", 0)
    entry["wmla_deployment"]["resource_configs"]["kernel_min"] = 1
    assert list(problems(entry)) == [f"{RES}.kernel_max"]


def test_empty_resource_configs_takes_the_defaults():
    entry, _ = validate_entry(with_value(RES, {}))
    assert entry["wmla_deployment"]["resource_configs"] == {}


# --- deployment name -----------------------------------------------------------------------------

NAME = "wmla_deployment.deployment_name"


@pytest.mark.parametrize("value", ["my-model-1", "a", "0", "a" * 63, None])
def test_deployment_name_accepted(value: str | None):
    validate_entry(with_value(NAME, value))


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("My_Model", "lower-case letters"),
        ("-model", "lower-case letters"),
        ("model-", "lower-case letters"),
        ("my model", "lower-case letters"),
        ("a" * 64, "64 characters long; at most 63"),
        ("", "must not be empty"),
        (12, "got 12 (a number)"),
    ],
)
def test_deployment_name_refused(value: Any, fragment: str):
    path, message = only_error(with_value(NAME, value))
    assert path == NAME and fragment in message


# --- many problems at once, paths and lines ------------------------------------------------------

BAD = """\
model_asset: null
model_nme: x
openscale_custom_metric_provider:
  segmentation_metrics:
    dir_gt: ../gt
    dir_pred: pred
    volume_display_name: ''
    most_recent: '7'
    thresholds:
      Dice:
        threshold:
        - .nan
        - Lower
  segmentation_metrics_v22:
    dir_gt: a
    dir_pred: b
    volume_display_name: v
    most_recent: 1
    thresholds: {}
wmla_deployment:
  deployment_name: My_Model
  resource_configs:
    enable_gpus: 'yes'
    n_cpus: 0
    n_min_kernels: 4
    n_replicas: 2
"""


def test_every_problem_is_reported_with_its_path_and_line(tmp_path: Path):
    path = write(tmp_path, BAD)
    err = file_problems(path)
    assert [(p.line, p.path, p.severity) for p in err.problems] == [
        (2, "model_nme", "error"),
        (5, f"{SEG}.dir_gt", "error"),
        (7, f"{SEG}.volume_display_name", "error"),
        (8, f"{SEG}.most_recent", "error"),
        (12, f"{LIMIT}[0]", "error"),
        (13, f"{LIMIT}[1]", "error"),
        (21, NAME, "error"),
        (23, f"{RES}.enable_gpus", "error"),
        (24, f"{RES}.n_cpus", "error"),
        (25, f"{RES}.n_min_kernels", "error"),
        (14, "openscale_custom_metric_provider.segmentation_metrics_v22", "warning"),
    ]
    lines = str(err).splitlines()
    assert lines[0] == f"10 problems in {path} (and 1 warning)"
    assert lines[1] == f"{path}:2: model_nme: unknown key 'model_nme'; did you mean 'model_name'?"
    assert lines[-1].startswith(
        f"{path}:14: openscale_custom_metric_provider.segmentation_metrics_v22: warning: "
    )
    assert "Traceback" not in str(err)


def test_a_missing_key_takes_the_line_of_its_parent(tmp_path: Path):
    text = "openscale_custom_metric_provider: {}\n\nwmla_deployment:\n  deployment_name: null\n"
    err = file_problems(write(tmp_path, text))
    assert [(p.path, p.line) for p in err.problems] == [(RES, 3)]


def test_keyed_file_prefixes_paths_with_the_asset_id(tmp_path: Path):
    entry = dump_yaml({"abc-1": good_entry(), "model.v2": with_value(f"{RES}.n_cpus", 0)})
    err = file_problems(write(tmp_path, entry), with_key=True)
    assert [p.path for p in err.problems] == [f'["model.v2"].{RES}.n_cpus']
    assert err.problems[0].line == entry.splitlines().index("      n_cpus: 0") + 1


def test_keyed_file_reports_problems_of_every_entry(tmp_path: Path):
    data = {"a": with_value("model_nme", 1), "b": without("wmla_deployment"), 7: good_entry()}
    err = file_problems(write(tmp_path, dump_yaml(data)), with_key=True)
    assert {p.path for p in err.problems} == {"a.model_nme", "b.wmla_deployment", "7"}


def test_validate_entry_with_lines_and_prefix():
    parsed = load_yaml_text(dump_yaml({"m1": with_value(f"{SEG}.most_recent", 0)}))
    with pytest.raises(ConfigError) as info:
        validate_entry(parsed.data["m1"], lines=parsed.lines, path_prefix="m1")
    (problem,) = info.value.problems
    assert problem.path == f"m1.{SEG}.most_recent"
    assert problem.line == parsed.lines[problem.path]
    assert str(info.value).splitlines()[0] == "1 problem in the entry"
    assert str(problem) == f"line {problem.line}: m1.{SEG}.most_recent: {problem.message}"


def test_paths_quote_odd_keys_and_know_their_parent():
    assert join_path("", "abc-1") == "abc-1"
    assert join_path("a", "b.c") == 'a["b.c"]'
    assert parent_path('a["b.c"].d[1]') == 'a["b.c"].d'
    assert parent_path('a["b.c"].d') == 'a["b.c"]'
    assert parent_path('a["b.c"]') == "a"
    assert parent_path("a") == ""


def test_problem_format():
    assert Problem("a.b", "bad", 3).format("f.yml") == "f.yml:3: a.b: bad"
    assert Problem("a.b", "bad").format("f.yml") == "f.yml: a.b: bad"
    assert Problem("", "empty", 1, "warning").format() == "line 1: warning: empty"


# --- YAML safety ---------------------------------------------------------------------------------


def yaml_error(tmp_path: Path, text: str) -> ConfigError:
    err = file_problems(write(tmp_path, text))
    assert "Traceback" not in str(err)
    return err


@pytest.mark.parametrize(
    "text",
    [
        "model_name: !!python/object/apply:os.system ['echo hacked']\n",
        "model_name: !!python/object:collections.OrderedDict {}\n",
        "model_name: !!python/name:os.system\n",
        "model_name: !custom x\n",
        "model_name: !!binary aGk=\n",
        "model_name: !!set {a: null}\n",
    ],
)
def test_object_and_unknown_tags_are_refused(tmp_path: Path, text: str):
    err = yaml_error(tmp_path, text)
    assert [(p.path, p.line) for p in err.problems] == [("model_name", 1)]
    assert "is not allowed" in err.problems[0].message


def test_all_refused_tags_are_reported_and_nothing_is_built(tmp_path: Path):
    marker = tmp_path / "hacked"
    text = f"a: !!python/object/apply:os.system ['touch {marker}']\nb: !!python/object:os.x {{}}\n"
    err = yaml_error(tmp_path, text)
    assert [p.line for p in err.problems] == [1, 2]
    assert not marker.exists()


def test_duplicate_keys_are_refused(tmp_path: Path):
    text = "model_name: a\nwmla_deployment:\n  resource_configs: {}\n  resource_configs: {n_cpus: 1}\nmodel_name: b\n"
    err = yaml_error(tmp_path, text)
    assert [(p.path, p.line, p.message) for p in err.problems] == [
        ("wmla_deployment.resource_configs", 4, "duplicate key 'resource_configs' (first at line 3)"),
        ("model_name", 5, "duplicate key 'model_name' (first at line 1)"),
    ]


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        name, prev = chr(97 + i), chr(96 + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly(tmp_path: Path):
    path = write(tmp_path, billion_laughs())
    start = time.perf_counter()
    err = file_problems(path)
    elapsed = time.perf_counter() - start
    assert "alias bomb" in str(err)
    assert elapsed < 2, elapsed  # loose: it takes a few tens of ms; expanded it would never end


def test_recursive_alias_is_refused(tmp_path: Path):
    assert "recursive alias" in str(yaml_error(tmp_path, "model_name: &x [*x]\n"))
    assert "recursive merge" in str(yaml_error(tmp_path, "a: &x {<<: *x}\n"))


def test_moderate_aliases_and_merge_keys_still_work(tmp_path: Path):
    entry = good_entry()
    text = dump_yaml(entry).replace("  generic_metrics:\n", "  generic_metrics: &g\n") + "x: *g\n"
    parsed = load_yaml_text(text)
    assert parsed.data["x"] == entry["openscale_custom_metric_provider"]["generic_metrics"]
    merged = load_yaml_text("base: &b {n_cpus: 1, kernel_min: 0}\nres:\n  <<: *b\n  n_cpus: 4\n")
    assert merged.data["res"] == {"n_cpus": 4, "kernel_min": 0}
    assert merged.lines["res.n_cpus"] == 4


def test_deep_nesting_is_refused_quickly(tmp_path: Path):
    start = time.perf_counter()
    err = yaml_error(tmp_path, "model_name: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested deeper" in str(err)
    assert time.perf_counter() - start < 2  # PyYAML's scanner alone would take seconds
    block = "".join(" " * i + "k:\n" for i in range(200))
    assert "nested" in str(yaml_error(tmp_path, block))


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file_is_refused(tmp_path: Path, text: str):
    err = yaml_error(tmp_path, text)
    assert err.problems[0].message.startswith("the file is empty")


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- a\n- b\n", "a list"), ("just text\n", "'just text' (a string)"), ("3\n", "3 (a number)")],
)
def test_non_mapping_top_level_is_refused(tmp_path: Path, text: str, kind: str):
    err = yaml_error(tmp_path, text)
    assert f"the top level is {kind}, expected a mapping" in err.problems[0].message


def test_keyed_file_without_entries(tmp_path: Path):
    err = file_problems(write(tmp_path, "{}\n"), with_key=True)
    assert "no entries" in str(err)


@pytest.mark.parametrize(
    ("text", "line"),
    [("model_name: [a\nwmla_deployment: {}\n", 2), ("a: b: c\n", 1), ("a: 1\n---\nb: 2\n", 2)],
)
def test_syntax_errors_give_a_line(tmp_path: Path, text: str, line: int):
    err = yaml_error(tmp_path, text)
    (problem,) = err.problems
    assert problem.message.startswith("invalid YAML:") and problem.line == line


def test_control_characters_are_a_yaml_error(tmp_path: Path):
    assert "invalid YAML" in str(yaml_error(tmp_path, "model_name: a\x07b\n"))


def test_unreadable_files_are_user_errors(tmp_path: Path):
    with pytest.raises(NotFoundError, match="does not exist"):
        load_config(tmp_path / "missing.yml")
    with pytest.raises(MlopsError, match="not a file"):
        load_config(tmp_path)
    binary = tmp_path / "bin.yml"
    binary.write_bytes(b"model_name: \xff\xfe\n")
    with pytest.raises(MlopsError, match="not UTF-8"):
        load_config(binary)
    big = tmp_path / "big.yml"
    big.write_bytes(b"#" * (1024 * 1024 + 1))
    with pytest.raises(MlopsError, match="at most"):
        load_config(big)


def test_yaml_dates_and_numbers_are_typed_like_safe_load():
    parsed = load_yaml_text("a: 2024-01-01\nb: .inf\nc: '7'\nd: 0x10\ne: ~\n")
    assert str(parsed.data["a"]) == "2024-01-01"
    assert parsed.data["b"] == float("inf") and parsed.data["c"] == "7"
    assert parsed.data["d"] == 16 and parsed.data["e"] is None
    assert parsed.lines == {"": 1, "a": 1, "b": 2, "c": 3, "d": 4, "e": 5}


# --- blank entries, dumping, schema --------------------------------------------------------------


def test_new_entry_is_valid_and_round_trips():
    blank = new_entry()
    entry, warnings = validate_entry(blank)
    assert entry == blank and warnings == []
    assert blank["wmla_deployment"]["resource_configs"] == {}
    assert load_yaml_text(dump_yaml(blank)).data == blank


def test_new_monitor_settings_carry_the_default_thresholds():
    settings = new_monitor_settings("segmentation_metrics_v3")
    assert settings["thresholds"] == SEGMENTATION.default_thresholds()
    entry = new_entry()
    settings.update(dir_gt="gt", dir_pred="pred", volume_display_name="vol")
    entry["openscale_custom_metric_provider"]["segmentation_metrics"] = settings
    validate_entry(entry)
    assert new_monitor_settings("nobody_knows")["thresholds"] == {}


def test_dump_yaml_is_block_style_in_key_order():
    text = dump_yaml({"z": 1, "a": {"threshold": (20.0, "lower")}, "m": None})
    assert text == "z: 1\na:\n  threshold:\n  - 20.0\n  - lower\nm: null\n"
    shared = [1, 2]
    assert "&" not in dump_yaml({"x": shared, "y": shared})


def test_schema_is_valid_and_accepts_the_reference_files(reference_dir: Path):
    import yaml

    single = json_schema()
    keyed = json_schema(keyed=True)
    for schema in (single, keyed):
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    with open(reference_dir / "deployment_metadata_cli_example.yml") as f:
        jsonschema.validate(yaml.safe_load(f), single)
    with open(reference_dir / "deployment_metadata_cli_example2.yml") as f:
        jsonschema.validate(yaml.safe_load(f), keyed)
    jsonschema.validate(good_entry(), single)
    jsonschema.validate(new_entry(), single)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("model_nme", "x"),
        (f"{SEG}.thresholds.dice", {"threshold": [1, "lower"]}),
        (f"{LIMIT}", [1, "Lower"]),
        (f"{LIMIT}", [1, "lower", 2]),
        (f"{SEG}.most_recent", 0),
        (f"{SEG}.dir_gt", "../x"),
        (f"{SEG}.dir_gt", "/abs"),
        (f"{SEG}.volume_display_name", " "),
        (f"{RES}.enable_gpus", "yes"),
        (f"{RES}.n_cpus", 0),
        (f"{RES}.task_execution_timeout", -2),
        (f"{RES}.kernel_max", 65),
        (f"{RES}.kernel_min", 10**30),
        (f"{RES}.gpus", 1),
        (NAME, "My_Model"),
        (NAME, "a" * 64),
    ],
)
def test_schema_refuses_what_the_validator_refuses(path: str, value: Any):
    entry = with_value(path, value)
    problems(entry)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(entry, json_schema())


def test_every_schema_field_has_a_description():
    schema = json_schema()
    missing: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for name, prop in node.get("properties", {}).items():
                if "description" not in prop and "$ref" not in prop:
                    missing.append(f"{where}.{name}")
            for key, child in node.items():
                walk(child, f"{where}.{key}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{where}[{i}]")

    walk(schema, "")
    assert missing == []
    resources = schema["properties"]["wmla_deployment"]["properties"]["resource_configs"]
    assert resources["properties"]["kernel_max"]["default"] == RESOURCE_DEFAULTS["kernel_max"]
    assert "n_replicas" in resources["properties"]
    assert schema["$defs"]["monitor_segmentation_metrics"]["properties"]["thresholds"]["properties"]["Dice"]


def test_config_import_stays_light():
    import subprocess
    import sys

    code = (
        "import sys, mlops_widgets.config as c; c.load_yaml_text('a: 1');"
        "print(any(m in sys.modules for m in ('papermill', 'nbformat', 'ipywidgets', 'numpy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("digits", [20, 400, 4000])
def test_a_huge_number_is_a_problem_of_the_entry_not_an_overflow(tmp_path: Path, example_paths, cli, digits):
    """Issue 23: `memory_allocation` with 4,000 digits crashed `config validate` with an
    OverflowError traceback; thresholds and integers are bounded the same way."""
    huge = "9" * digits
    text = example_paths.config.read_text()
    text = re.sub(r"memory_allocation: .*", f"memory_allocation: {huge}", text)
    text = re.sub(r"n_cpus: .*", f"n_cpus: {huge}", text)
    path = tmp_path / "huge.yml"
    path.write_text(text)
    result = cli("config", "validate", "--path-yml", str(path))
    assert result.exit_code == 1 and "Traceback" not in result.output and result.exception is None
    assert (
        f"memory_allocation: must be a number > 0 (MB), at most 1e+15 in size, got a number of {digits} digits"
        in result.output
    )
    assert (
        "n_cpus: must be a number > 0, at most 1e+15 in size" in result.output and huge not in result.output
    )
