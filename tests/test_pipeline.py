"""A_MLOps_Pipeline end to end: stage, then its deploy and monitor steps when switched on."""

from __future__ import annotations

from mlops_widgets.ops import space
from mlops_widgets.runner import get_run, list_runs


def test_pipeline_stages_deploys_and_attaches_monitors(cli, backend, workspace):
    assert cli("provider", "create").exit_code == 0
    res = cli(
        "run", "A_MLOps_Pipeline", "-p", "deployment_name", "pipe-demo", "-p", "create_monitors", "True"
    )
    assert res.exit_code == 0, res.output
    run = get_run(list_runs(workspace, template="A_MLOps_Pipeline")[0].run_id, workspace)
    asset_id, entry = space.get_entry(backend, deployment_name="pipe-demo")
    assert run.results["model_asset_id"] == asset_id
    assert run.results["deployment_url"] == entry["wmla_deployment"]["deployment_url"]
    assert run.results["subscription_id"] == entry["openscale_subscription_id"]
    assert backend.inference.view("pipe-demo").status in ("IDLE", "BUSY")
    assert {m["monitor_id"] for m in run.results["monitors"]} == {"segmentation_metrics", "generic_metrics"}


def test_pipeline_without_a_deployment_name_only_stages(cli, backend, workspace):
    res = cli("run", "A_MLOps_Pipeline")
    assert res.exit_code == 0, res.output
    (entry,) = space.list_entries(backend).values()
    assert entry["wmla_deployment"]["deployment_name"] is None
    assert backend.inference.list() == []
