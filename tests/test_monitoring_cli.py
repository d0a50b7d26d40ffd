"""`mlops provider ...` and `mlops monitor ...`: templates C1 and A3 through the runner, and the
read-only commands' text and JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers import ASSET, add_entry, write_masks

from mlops_widgets.backends.base import Backend
from mlops_widgets.ops import monitor, space


def test_provider_create_runs_template_c1(cli, backend: Backend) -> None:
    res = cli("provider", "create", "--name", "Headless")
    assert res.exit_code == 0, res.output
    assert "service provider 'Headless' created" in res.stdout
    assert "C1_OpenScale_Dummy_ML_Provider" in res.stderr  # the run folder of the audit trail
    listed = cli("provider", "list", "--json")
    assert [p["name"] for p in json.loads(listed.stdout)] == ["Headless"]
    assert "Headless" in cli("provider", "list").stdout


def test_monitor_create_without_provider_says_how_to_create_it(cli, backend: Backend) -> None:
    add_entry(backend)
    res = cli("monitor", "create", "--name", "demo")
    assert res.exit_code == 1
    assert "no OpenScale service provider named 'OpenScale Headless Service Provider'" in res.stderr
    assert "create it" in res.stderr and "C1_OpenScale_Dummy_ML_Provider" in res.stderr
    assert "Traceback" not in res.output


def test_monitor_commands_end_to_end(cli, backend: Backend) -> None:
    volume = backend.workspace.root / "volumes" / "vol" / "eval"
    write_masks(volume, 4, seed=5)
    monitor.provider_create(backend)
    add_entry(backend)

    res = cli("monitor", "create", "--name", "demo", "--evaluate")
    assert res.exit_code == 0, res.output
    sub_id = space.get_entry(backend, model_asset_id=ASSET)[1]["openscale_subscription_id"]
    assert f"subscription {sub_id} (demo Monitor)" in res.stdout
    assert "segmentation_metrics: created" in res.stdout
    assert "num_images_recent_predicted: 4 < lower limit 40" in res.stdout

    status = cli("monitor", "status", "--name", "demo")
    assert status.exit_code == 0, status.output
    assert "generic_metrics: issues, measurement" in status.stdout
    assert "4 issue(s)" in status.stdout
    full = json.loads(cli("monitor", "status", "--name", "demo", "--json").stdout)
    seg = next(m for m in full["monitors"] if m["monitor_id"] == "segmentation_metrics")
    assert len(seg["metrics"]) == 18

    (volume / "pred" / "img0_Seg.png").unlink()
    (volume / "pred" / "img1_Seg.png").unlink()
    run = cli("monitor", "run", "--name", "demo", "--monitor", "segmentation_metrics")
    assert run.exit_code == 1, run.output  # the evaluation failed, and so did its template run
    assert "failed: Needs at least 3 newly created files" in run.stdout
    assert "A5_Monitor_Evaluation" in run.stderr  # the run in the audit trail
    status = cli("monitor", "status", "--name", "demo")
    assert "segmentation_metrics: error: the latest run" in status.stdout
    assert "currently only 2 files can be found" in status.stdout

    hist = cli("monitor", "history", "--name", "demo", "--metric", "Dice")
    assert hist.exit_code == 0 and "segmentation_metrics" in hist.stdout and "20 lower" in hist.stdout
    rows = json.loads(cli("monitor", "history", "--name", "demo", "--json").stdout)["measurements"]
    assert len(rows) == 2
    bad = cli("monitor", "history", "--name", "demo", "--metric", "nope")
    assert bad.exit_code == 1 and "has a metric 'nope'" in bad.stderr

    listed = json.loads(cli("monitor", "list", "--json").stdout)
    assert listed[0]["subscription_id"] == sub_id
    assert "demo" in cli("monitor", "list").stdout

    deleted = cli("monitor", "delete", "--name", "demo")
    assert deleted.exit_code == 0 and sub_id in deleted.stdout
    again = cli("monitor", "delete", "--name", "demo")
    assert again.exit_code == 1 and "no monitor subscription to delete" in again.stderr


def test_thresholds_compute_register(cli, backend: Backend, tmp_path: Path) -> None:
    res = cli("monitor", "thresholds", "--monitor", "segmentation_metrics")
    assert res.exit_code == 0
    assert "precision: {threshold: [60, lower]}" in res.stdout
    as_json = json.loads(cli("monitor", "thresholds", "--monitor", "generic_metrics", "--json").stdout)
    assert as_json["num_images_recent_predicted"] == {"threshold": [40.0, "lower"]}

    write_masks(tmp_path, 3, seed=2)

    def compute(monitor_id: str, *more: str) -> Any:
        folders = ("--dir-gt", tmp_path / "gt", "--dir-pred", tmp_path / "pred")
        return cli("monitor", "compute", "--monitor", monitor_id, *folders, *more)

    out = compute("segmentation_metrics", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert len(data["metrics"]) == 18 and data["issue_count"] == len(data["violations"])
    text = compute("generic_metrics", "--most-recent", "1")
    assert "num_images_total_predicted" in text.stdout and "VIOLATED" in text.stdout
    few = compute("segmentation_metrics", "--most-recent", "0")
    assert few.exit_code == 1 and "currently only 0 files" in few.stderr

    reg = cli(
        "monitor", "register", "--monitor", "segmentation_metrics_v22", "--provider", "segmentation_metrics"
    )
    assert reg.exit_code == 0, reg.output
    defs = json.loads(cli("monitor", "definitions", "--json").stdout)
    assert "segmentation_metrics_v22" in {d["monitor_id"] for d in defs}
    unknown = cli("monitor", "thresholds", "--monitor", "generic_metrics_v5")
    assert unknown.exit_code == 1
    assert "--monitor generic_metrics_v5 --provider generic_metrics" in unknown.stderr


def test_published_provider_reaches_the_monitor_instance(cli, backend: Backend) -> None:
    res = cli("monitor", "publish", "--monitor", "generic_metrics", "--json")
    assert res.exit_code == 0, res.output
    system_id = json.loads(res.stdout)["integrated_system_id"]
    monitor.provider_create(backend)
    add_entry(backend)
    sub = monitor.ensure_subscription(
        backend, "demo", monitor.find_service_provider(backend)["metadata"]["id"]
    )
    monitor.configure_monitors(backend, "demo")
    (gen,) = backend.monitoring.monitor_instances.list(
        target_id=sub["subscription_id"], monitor_definition_id="generic_metrics"
    )
    assert gen["entity"]["parameters"]["custom_metrics_provider_id"] == system_id
