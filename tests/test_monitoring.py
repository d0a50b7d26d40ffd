"""Monitoring on the embedded backend: OpenScale's model in the workspace DB, and the monitor ops
(provider, create/update, run, status, history, list, delete, thresholds, compute)."""

from __future__ import annotations

import copy
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ASSET, VOLUME, add_entry, monitors_settings, write_masks

from mlops_widgets.backends import monitoring_protocol as base
from mlops_widgets.backends.base import Backend
from mlops_widgets.errors import ConflictError, MlopsError, NotFoundError
from mlops_widgets.monitors.definitions import GENERIC, SEGMENTATION
from mlops_widgets.ops import monitor, monitor_views, space


@pytest.fixture
def volume(backend: Backend) -> Path:
    folder = backend.workspace.root / "volumes" / VOLUME / "eval"
    write_masks(folder, 4, seed=0)
    return folder


@pytest.fixture
def ready(backend: Backend, volume: Path) -> Backend:
    """A provider and an entry deployed as `demo` with both monitors."""
    monitor.provider_create(backend)
    add_entry(backend)
    return backend


def _entry(backend: Backend) -> dict[str, Any]:
    return space.get_entry(backend, model_asset_id=ASSET)[1]


def _subscription(backend: Backend) -> str:
    """A provider and a subscription made straight on the backend (no entry); the latter's id."""
    mon = backend.monitoring
    sp = mon.service_providers.add("P")
    sub = mon.subscriptions.add(
        service_provider_id=sp["metadata"]["id"], name="d Monitor", deployment_name="d"
    )
    return sub["metadata"]["id"]


# --- the protocol and OpenScale's shapes ---------------------------------------------------------


def test_local_monitoring_implements_the_protocol(backend: Backend) -> None:
    mon = backend.monitoring
    assert isinstance(mon, base.Monitoring)
    for attr, proto in [
        ("service_providers", base.ServiceProviders),
        ("subscriptions", base.Subscriptions),
        ("monitor_definitions", base.MonitorDefinitions),
        ("integrated_systems", base.IntegratedSystems),
        ("monitor_instances", base.MonitorInstances),
        ("runs", base.Runs),
        ("measurements", base.Measurements),
    ]:
        assert isinstance(getattr(mon, attr), proto), attr


def test_resources_have_openscale_shapes(backend: Backend) -> None:
    mon = backend.monitoring
    sp = mon.service_providers.add("P")
    assert set(sp) == {"metadata", "entity"}
    assert {"id", "url", "created_at"} <= set(sp["metadata"])
    assert sp["entity"]["name"] == "P" and sp["entity"]["service_type"] == "custom_machine_learning"
    sub = mon.subscriptions.add(
        service_provider_id=sp["metadata"]["id"], name="d Monitor", deployment_name="d"
    )
    assert sub["entity"]["asset"]["name"] == "d Monitor"
    assert sub["entity"]["deployment"]["name"] == "d"
    assert sub["metadata"]["url"] == f"/v2/subscriptions/{sub['metadata']['id']}"
    seg = mon.monitor_definitions.get("segmentation_metrics")
    dice = next(m for m in seg["entity"]["metrics"] if m["name"] == "Dice")
    assert dice == {
        "id": "dice",
        "name": "Dice",
        "thresholds": [{"type": "lower_limit", "default": 20.0}],
        "expected_direction": "increasing",
    }
    assert {d["metadata"]["id"] for d in mon.monitor_definitions.list()} >= {
        "segmentation_metrics",
        "generic_metrics",
    }
    isys = mon.integrated_systems.add("seg provider", connection={"endpoint": "local"})
    assert isys["entity"]["type"] == "custom_metrics_provider"
    assert (
        mon.integrated_systems.list(type="custom_metrics_provider")[0]["metadata"]["id"]
        == isys["metadata"]["id"]
    )
    mon.integrated_systems.delete(isys["metadata"]["id"])
    assert mon.integrated_systems.list() == []
    with pytest.raises(NotFoundError, match="no subscription with id nope"):
        mon.subscriptions.get("nope")
    with pytest.raises(ConflictError, match="still has 1 subscription"):
        mon.service_providers.delete(sp["metadata"]["id"])


def test_instance_thresholds_are_checked_against_metric_ids(backend: Backend) -> None:
    mon = backend.monitoring
    sub_id = _subscription(backend)
    for threshold, message in [
        (
            {"metric_id": "images", "type": "lower_limit", "value": 1},
            r"no metric id 'images'.*num_images_total_predicted \(num_images_total_predicted\)",
        ),
        (
            {"metric_id": "num_images_total_predicted", "type": "lower", "value": 1},
            "lower_limit or upper_limit",
        ),
    ]:
        with pytest.raises(MlopsError, match=message):
            mon.monitor_instances.create(
                monitor_definition_id="generic_metrics",
                target_id=sub_id,
                thresholds=[threshold],
                parameters={},
            )
    inst = mon.monitor_instances.create(
        monitor_definition_id="generic_metrics", target_id=sub_id, thresholds=[], parameters={"a": 1}
    )
    assert inst["entity"]["target"] == {"target_type": "subscription", "target_id": sub_id}
    with pytest.raises(ConflictError, match="already has a generic_metrics monitor instance"):
        mon.monitor_instances.create(
            monitor_definition_id="generic_metrics", target_id=sub_id, thresholds=[], parameters={}
        )
    updated = mon.monitor_instances.update(
        inst["metadata"]["id"],
        thresholds=[{"metric_id": "num_images_total_predicted", "type": "upper_limit", "value": 3}],
    )
    assert updated["entity"]["parameters"] == {"a": 1}
    assert "modified_at" in updated["metadata"]
    with pytest.raises(MlopsError, match="must be a finite number, got 'x'"):
        mon.monitor_instances.update(
            inst["metadata"]["id"],
            thresholds=[{"metric_id": "num_images_total_predicted", "type": "upper_limit", "value": "x"}],
        )


def test_measurement_limits_and_issue_count_for_lower_and_upper(backend: Backend) -> None:
    mon = backend.monitoring
    sub_id = _subscription(backend)
    inst = mon.monitor_instances.create(
        monitor_definition_id="generic_metrics",
        target_id=sub_id,
        thresholds=[
            {"metric_id": "num_images_total_predicted", "type": "upper_limit", "value": 10},
            {"metric_id": "num_images_recent_predicted", "type": "lower_limit", "value": 2},
        ],
        parameters={},
    )
    iid = inst["metadata"]["id"]
    m = mon.measurements.add(
        iid,
        run_id="r1",
        metrics={
            "num_images_total_predicted": 11,  # above its upper limit 10: issue
            "num_images_recent_predicted": 2,  # at its lower limit: fine
            "num_images_total_ground_truth": 4,  # below the default lower limit 5: issue
            "num_images_recent_ground_truth": 5,
        },
    )
    e = m["entity"]
    assert e["issue_count"] == 2
    assert e["run_id"] == "r1" and e["monitor_definition_id"] == "generic_metrics"
    metrics = {x["id"]: x for x in e["values"][0]["metrics"]}
    assert metrics["num_images_total_predicted"] == {
        "id": "num_images_total_predicted",
        "value": 11.0,
        "upper_limit": 10.0,
    }
    assert metrics["num_images_total_ground_truth"]["lower_limit"] == 5.0
    latest = mon.measurements.query(target_id=sub_id, monitor_definition_id="generic_metrics")
    assert [x["metadata"]["id"] for x in latest] == [m["metadata"]["id"]]
    with pytest.raises(MlopsError, match="unknown metric id"):
        mon.measurements.add(iid, run_id="r2", metrics={"nope": 1})
    # a run's measurement is read by its run id, whatever came after it
    later = mon.measurements.add(iid, run_id="r3", metrics={"num_images_total_predicted": 1})
    assert [x["metadata"]["id"] for x in mon.measurements.list(iid, run_id="r1")] == [m["metadata"]["id"]]
    assert [x["metadata"]["id"] for x in mon.measurements.list(iid, limit=1)] == [later["metadata"]["id"]]
    assert mon.measurements.list(iid, run_id="r2") == []


# --- ops: providers and monitor create -----------------------------------------------------------


def test_provider_create_is_idempotent(backend: Backend) -> None:
    first = monitor.provider_create(backend)
    again = monitor.provider_create(backend)
    assert first["created"] and not again["created"]
    assert first["service_provider_id"] == again["service_provider_id"]
    assert first["name"] == "OpenScale Headless Service Provider"
    monitor.provider_create(backend, "Other")
    assert [p["name"] for p in monitor.provider_list(backend)] == [
        "OpenScale Headless Service Provider",
        "Other",
    ]


def test_monitor_create_needs_the_provider(backend: Backend) -> None:
    add_entry(backend)
    with pytest.raises(NotFoundError) as err:
        monitor.monitor_create(backend, "demo", "My Provider")
    assert "no OpenScale service provider named 'My Provider'" in str(err.value)
    assert err.value.hint.action == "provider.create" and err.value.hint.args == {"name": "My Provider"}
    assert backend.monitoring.subscriptions.list() == []


def test_monitor_create_subscribes_and_maps_thresholds(ready: Backend) -> None:
    out = monitor.monitor_create(ready, "demo")
    assert out["created"] and out["name"] == "demo Monitor"
    sub_id = out["subscription_id"]
    assert _entry(ready)["openscale_subscription_id"] == sub_id
    sub = ready.monitoring.subscriptions.get(sub_id)
    assert sub["entity"]["deployment"]["url"].endswith("/demo")
    assert sorted((m["monitor_id"], m["action"]) for m in out["monitors"]) == [
        ("generic_metrics", "created"),
        ("segmentation_metrics", "created"),
    ]
    inst = ready.monitoring.monitor_instances.list(
        target_id=sub_id, monitor_definition_id="segmentation_metrics"
    )[0]
    assert {"metric_id": "dice", "type": "lower_limit", "value": 20.0} in inst["entity"]["thresholds"]
    assert inst["entity"]["parameters"] == {
        "dir_gt": "eval/gt",
        "dir_pred": "eval/pred",
        "volume_display_name": VOLUME,
        "most_recent": 7,
    }
    assert out["runs"] == []


def test_rerunning_monitor_create_updates_thresholds(ready: Backend) -> None:
    first = monitor.monitor_create(ready, "demo")

    def change(entry: dict[str, Any]) -> None:
        entry["openscale_custom_metric_provider"]["segmentation_metrics"]["thresholds"]["Dice"] = {
            "threshold": [99.0, "lower"]
        }
        entry["openscale_custom_metric_provider"]["generic_metrics"]["most_recent"] = 2

    space.update_entry(ready, ASSET, change)
    again = monitor.monitor_create(ready, "demo")
    assert again["subscription_id"] == first["subscription_id"] and not again["created"]
    assert {m["action"] for m in again["monitors"]} == {"updated"}
    assert {m["monitor_instance_id"] for m in again["monitors"]} == {
        m["monitor_instance_id"] for m in first["monitors"]
    }
    seg = ready.monitoring.monitor_instances.list(monitor_definition_id="segmentation_metrics")[0]
    assert {"metric_id": "dice", "type": "lower_limit", "value": 99.0} in seg["entity"]["thresholds"]
    gen = ready.monitoring.monitor_instances.list(monitor_definition_id="generic_metrics")[0]
    assert gen["entity"]["parameters"]["most_recent"] == 2
    status = monitor_views.monitor_status(ready, "demo")
    assert status.subscription_id == first["subscription_id"]
    # the entry's id pointing at a dropped subscription: a new one is made and written back
    ready.monitoring.subscriptions.delete(first["subscription_id"])
    third = monitor.monitor_create(ready, "demo")
    assert third["created"] and _entry(ready)["openscale_subscription_id"] == third["subscription_id"]


def test_rerunning_monitor_create_deletes_monitors_removed_from_the_entry(ready: Backend) -> None:
    first = monitor.monitor_create(ready, "demo")
    generic_id = next(
        m["monitor_instance_id"] for m in first["monitors"] if m["monitor_id"] == "generic_metrics"
    )

    def drop_generic(entry: dict[str, Any]) -> None:
        del entry["openscale_custom_metric_provider"]["generic_metrics"]

    space.update_entry(ready, ASSET, drop_generic)
    again = monitor.monitor_create(ready, "demo")
    assert sorted((m["monitor_id"], m["action"]) for m in again["monitors"]) == [
        ("generic_metrics", "deleted"),
        ("segmentation_metrics", "updated"),
    ]
    assert {"monitor_id": "generic_metrics", "monitor_instance_id": generic_id, "action": "deleted"} in again[
        "monitors"
    ]
    instances = ready.monitoring.monitor_instances.list(target_id=again["subscription_id"])
    assert [i["entity"]["monitor_definition_id"] for i in instances] == ["segmentation_metrics"]
    # run and status now agree: only the entry's monitor is evaluated and shown
    assert [r["monitor_id"] for r in monitor.monitor_run(ready, "demo")] == ["segmentation_metrics"]
    assert [m.monitor_id for m in monitor_views.monitor_status(ready, "demo").monitors] == [
        "segmentation_metrics"
    ]


def test_a_bad_threshold_deletes_no_removed_monitor(ready: Backend) -> None:
    monitor.monitor_create(ready, "demo")
    entry = copy.deepcopy(_entry(ready))
    del entry["openscale_custom_metric_provider"]["generic_metrics"]
    entry["openscale_custom_metric_provider"]["segmentation_metrics"]["thresholds"] = {
        "dice": {"threshold": [1, "lower"]}
    }
    space.add_entries(ready, {ASSET: entry}, force=True)  # as a hand-edited space document would be
    with pytest.raises(MlopsError, match="has no metric 'dice'"):
        monitor.monitor_create(ready, "demo")
    assert len(ready.monitoring.monitor_instances.list()) == 2


def test_unknown_metric_name_fails_before_any_change(ready: Backend) -> None:
    monitors = monitors_settings()
    monitors["generic_metrics"]["thresholds"] = {"num_images": {"threshold": [1, "lower"]}}
    entry = copy.deepcopy(_entry(ready))
    entry["openscale_custom_metric_provider"] = monitors
    space.add_entries(ready, {ASSET: entry}, force=True)  # as a hand-edited space document would be
    with pytest.raises(MlopsError) as err:
        monitor.monitor_create(ready, "demo")
    msg = str(err.value)
    assert "monitor 'generic_metrics' has no metric 'num_images'" in msg
    assert "num_images_recent_ground_truth, num_images_recent_predicted" in msg
    assert ready.monitoring.monitor_instances.list() == []


def test_monitor_create_errors(ready: Backend) -> None:
    with pytest.raises(NotFoundError, match="no entry has deployment name 'ghost'"):
        monitor.monitor_create(ready, "ghost")
    add_entry(ready, "bare", monitors={}, key="asset-2")
    with pytest.raises(MlopsError, match="has no monitors under openscale_custom_metric_provider"):
        monitor.monitor_create(ready, "bare")
    with pytest.raises(NotFoundError, match="'demo' has no monitor subscription") as err:
        monitor_views.monitor_status(ready, "demo")
    assert err.value.hint.action == "monitor.create" and "mlops" not in str(err.value)


# --- runs, status, history -----------------------------------------------------------------------


def test_run_and_status_report_violations(ready: Backend, volume: Path) -> None:
    out = monitor.monitor_create(ready, "demo", evaluate=True)
    runs = {r["monitor_id"]: r for r in out["runs"]}
    assert runs["segmentation_metrics"]["state"] == "finished"
    assert runs["segmentation_metrics"]["error"] is None
    # 4 images: generic's recent predicted (lower limit 40) and totals (5) are violated
    gen = runs["generic_metrics"]
    assert gen["issue_count"] == 4
    assert {v["metric"] for v in gen["violations"]} == set(GENERIC.metric_names)

    status = monitor_views.monitor_status(ready, "demo")
    by_id = {m.monitor_id: m for m in status.monitors}
    g = by_id["generic_metrics"]
    assert g.state == "issues" and g.measurement and g.measurement.issue_count == 4
    assert g.measurement.run_id == gen["run_id"] and g.measurement.id == gen["measurement_id"]
    assert g.latest_run and g.latest_run.state == "finished"
    v = next(x for x in g.violations if x.metric == "num_images_recent_predicted")
    assert (v.value, v.limit, v.direction) == (4.0, 40.0, "lower")
    # as `monitor status --json` shows it: the violations apart, in the evaluation's shape
    (shown,) = (x for x in status.to_dict()["monitors"] if x["monitor_id"] == "generic_metrics")
    assert list(shown) == [
        *("monitor_id", "monitor_instance_id", "schedule", "latest_run", "measurement_id", "run_id"),
        *("timestamp", "issue_count", "violations", "metrics", "state"),
    ]
    assert shown["violations"] == gen["violations"] and shown["metrics"][0] == g.metrics[0].to_dict()
    # segmentation values equal the provider's, each with its limit
    computed = monitor.monitor_compute(ready, "segmentation_metrics", volume / "gt", volume / "pred")
    s = by_id["segmentation_metrics"]
    assert {m.metric: m.value for m in s.metrics} == {m["metric"]: m["value"] for m in computed["metrics"]}
    assert len(s.metrics) == 18 and all(m.limit is not None for m in s.metrics)
    assert s.measurement and s.measurement.issue_count == len(s.violations) == computed["issue_count"]


def test_upper_limit_from_the_entry_is_applied(ready: Backend) -> None:
    def change(entry: dict[str, Any]) -> None:
        entry["openscale_custom_metric_provider"]["generic_metrics"]["thresholds"] = {
            "num_images_total_predicted": {"threshold": [3.0, "upper"]},
            "num_images_total_ground_truth": {"threshold": [4.0, "upper"]},
            "num_images_recent_predicted": {"threshold": [1.0, "lower"]},
            "num_images_recent_ground_truth": {"threshold": [1.0, "lower"]},
        }

    space.update_entry(ready, ASSET, change)
    monitor.monitor_create(ready, "demo")
    (run,) = monitor.monitor_run(ready, "demo", "generic_metrics")
    assert run["issue_count"] == 1
    assert run["violations"] == [
        {"metric": "num_images_total_predicted", "value": 4.0, "limit": 3.0, "direction": "upper"}
    ]


def test_failed_run_is_recorded_with_its_message(ready: Backend, volume: Path) -> None:
    for name in ("img2_Seg.png", "img3_Seg.png"):
        (volume / "pred" / name).unlink()
    monitor.monitor_create(ready, "demo")
    runs = {r["monitor_id"]: r for r in monitor.monitor_run(ready, "demo")}
    seg = runs["segmentation_metrics"]
    assert seg["state"] == "error"
    assert "Needs at least 3 newly created files in the past 7 days" in seg["error"]
    assert "currently only 2 files can be found" in seg["error"]
    assert "measurement_id" not in seg
    assert runs["generic_metrics"]["state"] == "finished"
    status = {m.monitor_id: m for m in monitor_views.monitor_status(ready, "demo").monitors}
    failed = status["segmentation_metrics"]
    assert failed.state == "error" and failed.latest_run and failed.latest_run.error == seg["error"]
    assert failed.measurement is None and "measurement_id" not in failed.to_dict()
    iid = failed.monitor_instance_id
    assert iid
    stored = ready.monitoring.runs.get(iid, seg["run_id"])
    assert stored["entity"]["status"]["failure"]["errors"][0]["message"] == seg["error"]
    assert stored["entity"]["status"]["completed_at"]


def test_old_images_fall_out_of_the_window(ready: Backend, volume: Path) -> None:
    old = time.time() - 30 * 86400
    for f in (volume / "gt").iterdir():
        os.utime(f, (old, old))
    monitor.monitor_create(ready, "demo")
    runs = {r["monitor_id"]: r for r in monitor.monitor_run(ready, "demo")}
    assert "currently only 0 files" in runs["segmentation_metrics"]["error"]
    hist = monitor_views.monitor_history(ready, "demo", "generic_metrics", "num_images_recent_ground_truth")
    assert hist[0].reading and hist[0].reading.value == 0.0 and hist[0].reading.violated


def test_run_errors_for_bad_volume_paths(ready: Backend) -> None:
    def change(entry: dict[str, Any]) -> None:
        entry["openscale_custom_metric_provider"]["generic_metrics"]["dir_gt"] = "../../outside"

    space.update_entry(ready, ASSET, change)
    monitor.monitor_create(ready, "demo")
    (run,) = monitor.monitor_run(ready, "demo", "generic_metrics")
    assert run["state"] == "error" and "points outside the storage volume" in run["error"]


def test_volumes_root_can_be_configured(
    ready: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_VOLUMES", str(tmp_path / "elsewhere"))
    write_masks(tmp_path / "elsewhere" / VOLUME / "eval", 5, seed=3)
    monitor.monitor_create(ready, "demo")
    (run,) = monitor.monitor_run(ready, "demo", "generic_metrics")
    assert run["state"] == "finished"
    status = {m.monitor_id: m for m in monitor_views.monitor_status(ready, "demo").monitors}
    assert {m.metric: m.value for m in status["generic_metrics"].metrics}["num_images_total_predicted"] == 5.0


def test_history_newest_first_and_by_metric(ready: Backend) -> None:
    monitor.monitor_create(ready, "demo")
    first = monitor.monitor_run(ready, "demo", "generic_metrics")[0]
    second = monitor.monitor_run(ready, "demo", "generic_metrics")[0]
    monitor.monitor_run(ready, "demo", "segmentation_metrics")
    rows = monitor_views.monitor_history(ready, "demo", "generic_metrics")
    assert [r.measurement.run_id for r in rows] == [second["run_id"], first["run_id"]]
    assert rows[0].to_dict()["metrics"]["num_images_total_ground_truth"] == 4.0
    assert list(rows[0].to_dict()) == [
        *("monitor_id", "measurement_id", "run_id", "timestamp", "issue_count", "metrics"),
    ]
    assert len(monitor_views.monitor_history(ready, "demo")) == 3
    dice = monitor_views.monitor_history(ready, "demo", metric="Dice")
    assert len(dice) == 1 and dice[0].monitor_id == "segmentation_metrics"
    assert dice[0].reading and dice[0].reading.metric == "Dice"
    assert list(dice[0].to_dict()) == [
        *("monitor_id", "measurement_id", "run_id", "timestamp", "issue_count"),
        *("metric", "value", "limit", "direction", "violated"),
    ]
    assert len(monitor_views.monitor_history(ready, "demo", limit=1)) == 1
    with pytest.raises(MlopsError, match="has a metric 'dice'.*Dice"):
        monitor_views.monitor_history(ready, "demo", metric="dice")
    with pytest.raises(NotFoundError, match="has no 'other_metrics' monitor"):
        monitor_views.monitor_history(ready, "demo", "other_metrics")


def test_list_and_delete(ready: Backend) -> None:
    created = monitor.monitor_create(ready, "demo", evaluate=True)
    (row,) = monitor_views.monitor_list(ready)
    assert row.subscription.id == created["subscription_id"]
    assert row.subscription.name == "demo Monitor" and row.subscription.deployment_name == "demo"
    assert row.model_asset_id == ASSET
    assert sorted(m.monitor_id for m in row.monitors) == ["generic_metrics", "segmentation_metrics"]
    assert list(row.to_dict()) == [
        *("subscription_id", "name", "deployment_name", "service_provider_id", "model_asset_id"),
        *("created_at", "monitors"),
    ]
    out = monitor.monitor_delete(ready, "demo")
    assert out["deleted_subscription_ids"] == [created["subscription_id"]]
    assert monitor_views.monitor_list(ready) == []
    assert _entry(ready)["openscale_subscription_id"] is None
    conn = sqlite3.connect(ready.workspace.db_path)
    for table in ("mon_monitor_instances", "mon_runs", "mon_measurements"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,), table
    conn.close()
    with pytest.raises(NotFoundError, match="has no monitor subscription to delete"):
        monitor.monitor_delete(ready, "demo")


def test_delete_subscription_for_works_without_the_entry(ready: Backend) -> None:
    created = monitor.monitor_create(ready, "demo")
    space.delete_entry(ready, name="demo")
    assert monitor.delete_subscription_for(ready, "demo") == [created["subscription_id"]]
    assert monitor.delete_subscription_for(ready, "demo") == []


def test_thresholds_and_compute(ready: Backend, volume: Path) -> None:
    assert (
        monitor_views.monitor_thresholds(ready, "segmentation_metrics") == SEGMENTATION.default_thresholds()
    )
    assert monitor_views.monitor_thresholds(ready, "generic_metrics") == GENERIC.default_thresholds()
    with pytest.raises(NotFoundError, match="unknown monitor 'nope'"):
        monitor_views.monitor_thresholds(ready, "nope")
    out = monitor.monitor_compute(
        ready,
        "generic_metrics",
        volume / "gt",
        volume / "pred",
        thresholds={"num_images_total_predicted": {"threshold": [4.0, "upper"]}},
    )
    assert out["issue_count"] == 3  # the three lower limits of 5 / 40; 4 is not above 4
    assert all(v["direction"] == "lower" for v in out["violations"])
    with pytest.raises(MlopsError, match="currently only 0 files"):
        monitor.monitor_compute(ready, "segmentation_metrics", volume / "gt", volume / "pred", most_recent=0)


def test_registered_versioned_monitor_runs_end_to_end(ready: Backend) -> None:
    monitors = monitors_settings()
    monitors = {"segmentation_metrics_v22": monitors["segmentation_metrics"]}
    add_entry(ready, "v22", monitors=monitors, key="asset-2")
    with pytest.raises(NotFoundError, match="unknown monitor 'segmentation_metrics_v22'") as refused:
        monitor.monitor_create(ready, "v22")
    assert refused.value.hint.args == {
        "monitor": "segmentation_metrics_v22",
        "provider": "segmentation_metrics",
    }
    reg = monitor.monitor_register(ready, "segmentation_metrics_v22", "segmentation_metrics")
    assert reg["metrics"] == SEGMENTATION.metric_names
    assert "segmentation_metrics_v22" in {d["monitor_id"] for d in monitor_views.monitor_definitions(ready)}
    out = monitor.monitor_create(ready, "v22", evaluate=True)
    assert out["runs"][0]["monitor_id"] == "segmentation_metrics_v22"
    assert out["runs"][0]["state"] == "finished"


PLUGIN = """
from mlops_widgets.monitors import MetricProvider, MonitorDefinition, Threshold

def compute(inputs):
    kind = inputs.parameters.get("raise", "RuntimeError")
    raise {"RuntimeError": RuntimeError("plugin exploded"), "KeyboardInterrupt": KeyboardInterrupt(),
           "SystemExit": SystemExit(3)}[kind]

PROVIDER = MetricProvider(
    MonitorDefinition(id="boom_metrics", name="Boom", description="fails", provider="boom_metrics",
                      thresholds={"x": Threshold(1.0, "lower")}),
    compute,
)
"""


@pytest.fixture
def boom_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An installed third-party provider `boom_metrics` that raises what its instance's `raise`
    parameter names."""
    site = tmp_path / "site"
    (site / "mlw_boom-0.1.dist-info").mkdir(parents=True)
    (site / "mlw_boom.py").write_text(PLUGIN)
    (site / "mlw_boom-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mlw-boom\nVersion: 0.1\n"
    )
    (site / "mlw_boom-0.1.dist-info" / "entry_points.txt").write_text(
        "[mlops_widgets.monitors]\nboom_metrics = mlw_boom:PROVIDER\n"
    )
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("mlw_boom", None)


def test_a_crashing_plugin_provider_is_a_run_error(ready: Backend, boom_plugin: None) -> None:
    add_entry(
        ready,
        "boom",
        monitors={
            "boom_metrics": {
                "dir_gt": "eval/gt",
                "dir_pred": "eval/pred",
                "volume_display_name": VOLUME,
                "most_recent": 7,
                "thresholds": {"x": {"threshold": [2, "lower"]}},
            }
        },
        key="asset-3",
    )
    out = monitor.monitor_create(ready, "boom", evaluate=True)
    assert out["runs"][0]["state"] == "error"
    assert out["runs"][0]["error"] == "RuntimeError: plugin exploded"


@pytest.mark.parametrize(
    ("kind", "message"),
    [("KeyboardInterrupt", "interrupted (KeyboardInterrupt)"), ("SystemExit", "interrupted (SystemExit: 3)")],
)
def test_an_interrupted_run_ends_in_error_and_the_interruption_goes_on(
    backend: Backend, boom_plugin: None, kind: str, message: str
) -> None:
    mon = backend.monitoring
    inst = mon.monitor_instances.create(
        monitor_definition_id="boom_metrics",
        target_id=_subscription(backend),
        thresholds=[],
        parameters={"dir_gt": "gt", "dir_pred": "pred", "raise": kind},
    )
    iid = inst["metadata"]["id"]
    with pytest.raises(KeyboardInterrupt if kind == "KeyboardInterrupt" else SystemExit):
        mon.runs.add(iid)
    (run,) = mon.runs.list(iid)
    status = run["entity"]["status"]
    assert status["state"] == "error" and status["completed_at"]
    assert status["failure"]["errors"] == [{"code": "interrupted", "message": message}]
