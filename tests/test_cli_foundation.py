"""The `mlops` command's foundation: config commands, staging, exit codes, lazy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_widgets import __version__
from mlops_widgets.backends.base import DEPLOYMENT_METADATA
from mlops_widgets.ops import space
from mlops_widgets.runner import get_run, list_runs


def test_version(cli):
    res = cli("version")
    assert (res.exit_code, res.stdout.strip()) == (0, __version__)


@pytest.mark.parametrize("argv", [["--help"], ["config", "list"]])
def test_cheap_commands_do_not_import_heavy_modules(argv, tmp_path):
    code = (
        "import sys\n"
        "from mlops_widgets.cli import cli\n"
        f"try:\n    cli.main(args={argv!r}, prog_name='mlops')\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('papermill', 'nbformat', 'ipywidgets', 'ibm_watson_machine_learning',"
        " 'ibm_watsonx_ai', 'ibm_watson_openscale', 'numpy') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"MLOPS_HOME": str(tmp_path / "ws"), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_unknown_backend_is_a_user_error(cli):
    res = cli("--backend", "nope", "config", "list")
    assert res.exit_code == 1
    assert "unknown backend 'nope'" in res.stderr and "local" in res.stderr


def test_reading_the_audit_trail_needs_no_backend(cli):
    """The core resolves the backend when an action first needs it: the audit trail and the
    templates read even when the chosen backend is not installed."""
    assert cli("--backend", "nope", "runs", "list").stdout.strip() == "no runs"
    assert cli("--backend", "nope", "templates", "list", "--json").exit_code == 0
    res = cli("--backend", "nope", "deploy", "list")
    assert res.exit_code == 1 and "unknown backend 'nope'" in res.stderr


def test_usage_error_exits_2(cli):
    res = cli("config", "validate")
    assert res.exit_code == 2
    assert "--path-yml" in res.stderr


def test_validate_bundled_and_reference_configs(cli, example_paths, reference_dir):
    assert cli("config", "validate", "--path-yml", example_paths.config).exit_code == 0
    single = cli("config", "validate", "--path-yml", reference_dir / "deployment_metadata_cli_example.yml")
    assert single.exit_code == 0, single.stderr
    assert "segmentation_metrics_v22" in single.stderr  # unknown locally: a warning, not an error
    keyed = cli(
        "config",
        "validate",
        "--with-key",
        "--path-yml",
        reference_dir / "deployment_metadata_cli_example2.yml",
    )
    assert keyed.exit_code == 0, keyed.stderr


def _stage(cli, paths, *extra):
    return cli(
        "prepare",
        "stage",
        "--path-model",
        paths.model,
        "--path-dependency",
        paths.deployment,
        "--path-yml",
        paths.config,
        *extra,
    )


def test_stage_writes_the_entry_keyed_by_model_asset_id(cli, backend, example_paths):
    res = _stage(cli, example_paths)
    assert res.exit_code == 0, res.output
    asset_id = res.stdout.strip().splitlines()[-1].split()[-1]
    entry = backend.space.read_document(DEPLOYMENT_METADATA)[asset_id]
    assert entry["model_asset"] == "model.zip"
    assert entry["deployment_space_id"] == backend.space.space_id
    assert entry["wmla_deployment"]["dependency_filename"] == "deployment.zip"
    assert entry["wmla_deployment"]["resource_configs"]["enable_gpus"] is False
    assert {a.name for a in backend.space.list_assets()} == {"model.zip", "deployment.zip"}

    listed = cli("config", "list", "--json")
    assert json.loads(listed.stdout) == {asset_id: entry}
    table = cli("config", "list")
    assert asset_id in table.stdout and "deepliif-demo" in table.stdout


def test_stage_name_clash_without_tty_explains_force_and_new(cli, backend, example_paths):
    assert _stage(cli, example_paths).exit_code == 0
    res = _stage(cli, example_paths)
    assert res.exit_code == 1
    assert "--force" in res.stderr and "--new" in res.stderr
    assert len(backend.space.list_assets()) == 2

    assert _stage(cli, example_paths, "--new").exit_code == 0
    assert len(backend.space.list_assets("model.zip")) == 2
    assert len(space.list_entries(backend)) == 2

    forced = _stage(cli, example_paths, "--force")
    assert forced.exit_code == 0
    (model,) = backend.space.list_assets("model.zip")
    # the replaced assets' entries went with them: only the new one is left
    assert list(space.list_entries(backend)) == [model.asset_id] == [forced.stdout.split()[-1]]


def test_stage_force_refuses_to_replace_a_deployed_model(cli, backend, example_paths):
    asset_id = _stage(cli, example_paths).stdout.split()[-1]
    space.update_entry(backend, asset_id, lambda e: e["wmla_deployment"].update(deployment_name="live"))
    res = _stage(cli, example_paths, "--force")
    assert res.exit_code == 1
    assert "deployed as 'live'" in res.stderr and "mlops deploy delete --name live" in res.stderr
    assert [a.asset_id for a in backend.space.list_assets("model.zip")] == [asset_id]
    assert list(space.list_entries(backend)) == [asset_id]


def test_stage_leaves_exactly_one_run(cli, workspace, example_paths):
    res = _stage(cli, example_paths)
    assert res.exit_code == 0
    (run,) = list_runs(workspace)
    record = get_run(run.run_id, workspace)
    assert (record.template, record.status) == ("A_MLOps_Pipeline", "ok")
    assert record.results["model_asset_id"] == res.stdout.split()[-1]
    assert Path(run.notebook).is_file()


def test_a_stage_that_fails_in_its_notebook_leaves_a_failed_run(cli, workspace, example_paths, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (tmp_path / "outside.txt").write_text("not part of the model")
    (model / "weights").symlink_to(tmp_path / "outside.txt")
    res = cli(
        "prepare",
        "stage",
        "--path-model",
        model,
        "--path-dependency",
        example_paths.deployment,
        "--path-yml",
        example_paths.config,
    )
    assert res.exit_code == 1
    assert "points outside the folder" in res.stderr
    (run,) = list_runs(workspace)
    record = get_run(run.run_id, workspace)
    assert record.status == "failed"
    assert "points outside the folder" in record.error["summary"]
    assert record.error["heading"].startswith("2. Stage")
    assert Path(run.notebook).is_file()


def test_unusable_workspace_is_one_clear_error(cli, tmp_path):
    (tmp_path / "ws2").mkdir()
    (tmp_path / "ws2" / "mlops.db").write_text("not a database")
    res = cli("--workspace", tmp_path / "ws2", "config", "list")
    assert res.exit_code == 1
    assert "cannot open its database" in res.stderr and "Traceback" not in res.output


BAD_CONFIGS = {
    "unknown key": ("model_nme: x\n", "model_nme"),
    "bad threshold direction": (
        "openscale_custom_metric_provider:\n  generic_metrics:\n    dir_gt: a\n    dir_pred: b\n"
        "    volume_display_name: v\n    most_recent: 1\n    thresholds:\n"
        "      num_images_total_predicted: {threshold: [1.0, sideways]}\n",
        "num_images_total_predicted.threshold[1]",
    ),
    "bad resource": ("wmla_deployment:\n  resource_configs:\n    n_cpus: -1\n", "n_cpus"),
    "bad yaml tag": ("model_name: !!python/object:os.system x\n", "model_name"),
    "empty file": ("", "empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_exits_1_names_the_field_and_writes_nothing(case, cli, backend, example_paths, tmp_path):
    text, needle = BAD_CONFIGS[case]
    bad = tmp_path / "bad.yml"
    bad.write_text(text)
    for args in (
        ("config", "validate", "--path-yml", bad),
        (
            "prepare",
            "stage",
            "--path-model",
            example_paths.model,
            "--path-dependency",
            example_paths.deployment,
            "--path-yml",
            bad,
        ),
    ):
        res = cli(*args)
        assert res.exit_code == 1, res.output
        assert needle in res.stderr, res.stderr
        assert "Traceback" not in res.output
    assert backend.space.list_assets() == []
    assert backend.space.read_document(DEPLOYMENT_METADATA) == {}


def test_stage_missing_path_names_the_option(cli, backend, example_paths, tmp_path):
    res = cli(
        "prepare",
        "stage",
        "--path-model",
        tmp_path / "nope",
        "--path-dependency",
        example_paths.deployment,
        "--path-yml",
        example_paths.config,
    )
    assert res.exit_code == 1
    assert "--path-model" in res.stderr
    assert backend.space.list_assets() == []


def test_config_add_list_delete(cli, backend, reference_dir):
    keyed = reference_dir / "deployment_metadata_cli_example2.yml"
    res = cli("config", "add", "--path-yml", keyed)
    assert res.exit_code == 0, res.output
    key = "54b19403-9c10-48e5-b3f3-dc958e2cfbb1"
    assert key in json.loads(cli("config", "list", "--json").stdout)
    again = cli("config", "add", "--path-yml", keyed)
    assert again.exit_code == 1 and "-f" in again.stderr
    assert cli("config", "add", "--path-yml", keyed, "-f").exit_code == 0
    assert cli("config", "delete", "--model-asset-id", key).exit_code == 0
    assert json.loads(cli("config", "list", "--json").stdout) == {}
    missing = cli("config", "delete", "--name", "nope")
    assert missing.exit_code == 1 and "nope" in missing.stderr


def test_config_schema_is_json(cli):
    schema = json.loads(cli("config", "schema").stdout)
    assert "wmla_deployment" in schema["properties"]


def test_config_schema_lists_the_monitors_registered_in_the_named_workspace(cli, tmp_path):
    """The schema is the named workspace's, not $MLOPS_HOME's (which points elsewhere here)."""
    ws = tmp_path / "wsA"

    def monitors_in_schema(workspace):
        schema = json.loads(cli("--workspace", workspace, "config", "schema").stdout)
        return set(schema["properties"]["openscale_custom_metric_provider"]["properties"])

    assert "segmentation_metrics_v22" not in monitors_in_schema(ws)
    registered = cli(
        "--workspace",
        ws,
        "monitor",
        "register",
        "--monitor",
        "segmentation_metrics_v22",
        "--provider",
        "segmentation_metrics",
    )
    assert registered.exit_code == 0, registered.stderr
    assert "segmentation_metrics_v22" in monitors_in_schema(ws)
    assert "segmentation_metrics_v22" not in monitors_in_schema(tmp_path / "wsB")


def test_console_script_exit_codes(example_paths, tmp_path):
    mlops = Path(sys.executable).parent / "mlops"
    ok = subprocess.run(
        [mlops, "config", "validate", "--path-yml", example_paths.config], capture_output=True, text=True
    )
    assert ok.returncode == 0
    bad = tmp_path / "bad.yml"
    bad.write_text("- a list\n")
    res = subprocess.run([mlops, "config", "validate", "--path-yml", bad], capture_output=True, text=True)
    assert res.returncode == 1 and res.stderr.startswith("Error:") and "Traceback" not in res.stderr


@pytest.mark.parametrize(("answer", "models"), [("n", 2), ("y", 1), ("", 1)])
def test_stage_name_clash_on_a_tty_asks_as_the_original_did(
    answer, models, backend, workspace, example_paths
):
    """y = overwrite, n = add another asset of the same name, empty = abort (nothing changes)."""
    pexpect = pytest.importorskip("pexpect")
    mlops = str(Path(sys.executable).parent / "mlops")
    args = [
        "prepare",
        "stage",
        "--path-model",
        str(example_paths.model),
        "--path-dependency",
        str(example_paths.deployment),
        "--path-yml",
        str(example_paths.config),
    ]
    env = {**os.environ, "MLOPS_HOME": str(workspace.root)}
    assert subprocess.run([mlops, *args], env=env, capture_output=True).returncode == 0
    child = pexpect.spawn(mlops, args, env=env, encoding="utf-8", timeout=60)
    child.expect(r"Overwrite them \(y\), add new assets of the same name \(n\), or abort \(empty\)\?")
    child.sendline(answer)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == (1 if answer == "" else 0), child.before
    assert len(backend.space.list_assets("model.zip")) == models
    assert len(list_runs(workspace)) == (1 if answer == "" else 2)


def test_a_second_demo_on_the_same_workspace_is_refused_while_the_first_runs(cli, tmp_path):
    import fcntl

    from mlops_widgets.workspace import Workspace

    ws = tmp_path / "demo-ws"
    lock_path = Workspace(ws).path("demo", "demo.lock")  # the first demo made its workspace
    with open(lock_path, "a") as first_demo:  # what a running demo holds
        fcntl.flock(first_demo, fcntl.LOCK_EX)
        res = cli("demo", "--workspace", ws)
    assert res.exit_code == 1
    assert f"another demo is running on the workspace {ws}" in res.stderr
    assert "give this one another --workspace" in res.stderr
    assert not (ws / "runs").exists()  # nothing of the demo ran
