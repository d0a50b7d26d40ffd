"""Deploy steps (template A2) and `mlops deploy ...`: the submission folder, the original's checks,
the entry's fields, re-running after a failure, delete, and the CLI end to end."""

from __future__ import annotations

import base64
import copy
import dataclasses
import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.local.inference import stop_service
from mlops_widgets.cli._custom_args import split_custom_args
from mlops_widgets.config import load_config
from mlops_widgets.errors import ConflictError, MlopsError, NotFoundError
from mlops_widgets.examples import synthetic
from mlops_widgets.ops import deploy, monitor, space, submission
from mlops_widgets.workspace import Workspace

# An EDI-style kernel that needs a custom arg (a bare global) and the model asset to start.
NEEDY_KERNEL = """\
import redhareapiversion
from redhareapi import Kernel
import json, os

class NeedyKernel(Kernel):
    def on_kernel_start(self, kernel_context):
        self.greeting = GREETING  # a custom arg: NameError without --custom-arg GREETING=...
        model_dir = os.path.join(os.environ["REDHARE_MODEL_PATH"], os.environ["MODEL_ASSET"][:-4])
        with open(os.path.join(model_dir, "weights.json")) as fh:
            self.weights = json.load(fh)

    def on_task_invoke(self, task_context):
        task_context.set_output_data(json.dumps({
            "greeting": self.greeting, "version": self.weights["version"], "token": API_TOKEN,
            "space": os.environ["SPACE_ID"], "asset_id": os.environ["MODEL_ASSET_ID"],
        }))

if __name__ == '__main__':
    NeedyKernel().run()
"""


@pytest.fixture(autouse=True)
def _stop_inference(workspace: Workspace) -> Iterator[None]:
    yield
    stop_service(workspace)


def example_entry(example_paths: Any, **resources: Any) -> dict[str, Any]:
    (entry,) = load_config(example_paths.config).entries.values()
    entry = copy.deepcopy(entry)
    entry["wmla_deployment"]["resource_configs"].update(resources)
    return entry


def stage(backend: Backend, example_paths: Any, dependency: Path | None = None, **resources: Any) -> str:
    resources = {"kernel_min": 1, "kernel_max": 1, **resources}
    staged = space.stage(
        backend,
        example_paths.model,
        dependency or example_paths.deployment,
        example_entry(example_paths, **resources),
        on_clash="new",
    )
    return staged["model_asset_id"]


def needy_dependency(tmp_path: Path) -> Path:
    folder = tmp_path / "needy"
    folder.mkdir()
    (folder / "kernel.py").write_text(NEEDY_KERNEL)
    return folder  # no README.md: the deploy step writes one


def tile_request(seed: int = 1, name: str = "tile_001") -> tuple[bytes, np.ndarray]:
    image, mask = synthetic.tile(seed)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return json.dumps({"image": base64.b64encode(buf.getvalue()).decode(), "name": name}).encode(), mask


# --- profile and custom args ---------------------------------------------------------------------


def test_profile_from_resource_configs() -> None:
    profile = deploy.profile_from_resource_configs(
        {
            "enable_gpus": True,
            "n_cpus": 8,
            "memory_allocation": 10000,
            "kernel_min": 0,
            "task_execution_timeout": 120,
        }
    )
    assert profile["policy"] == {
        "kernel_min": 0,
        "kernel_max": 3,
        "kernel_delay_release_time": 60,
        "task_execution_timeout": 120,
        "task_batch_size": 1,
    }
    assert profile["kernel"] == {"gpu": "exclusive", "connection_timeout": 90}
    assert (
        deploy.profile_from_resource_configs({"connection_timeout": 240})["kernel"]["connection_timeout"]
        == 240
    )
    assert (
        profile["resource_allocation"]["kernel"]["resources"]
        == "ncpus=8,ncpus_limit=8,mem=10000,mem_limit=10000"
    )
    plain = deploy.profile_from_resource_configs({"enable_gpus": False, "kernel_min": 4})
    assert plain["kernel"]["gpu"] == "no" and plain["policy"]["kernel_max"] == 4
    assert "resource_allocation" not in plain


def test_split_custom_args() -> None:
    def is_secret(key: str) -> bool:
        return "KEY" in key.upper()

    plain, secret = split_custom_args(
        ["USER=bob", "A_KEY=x=y", "FROM_ENV", "OTHER_KEY"], is_secret, {"FROM_ENV": "e", "OTHER_KEY": "k"}
    )
    assert plain == {"USER": "bob", "FROM_ENV": "e"} and secret == {"A_KEY": "x=y", "OTHER_KEY": "k"}
    with pytest.raises(MlopsError, match="environment variable MISSING is not set"):
        split_custom_args(["MISSING"], is_secret, {})
    with pytest.raises(MlopsError, match="not a valid Python name"):
        split_custom_args(["bad-name=1"], is_secret, {})


# --- checks, create, re-run, delete ------------------------------------------------------------------


def test_check_create_applies_the_original_checks(backend: Backend, example_paths: Any) -> None:
    first, second = stage(backend, example_paths), stage(backend, example_paths)
    with pytest.raises(MlopsError, match="invalid deployment name"):
        deploy.check_create(backend, "Not_Valid", first)
    with pytest.raises(NotFoundError, match="no entry for model asset id nope"):
        deploy.check_create(backend, "demo", "nope")
    deploy.deploy_create(backend, "demo", first)
    with pytest.raises(ConflictError, match="already used by the entry of model asset"):
        deploy.check_create(backend, "demo", second)
    with pytest.raises(ConflictError, match="already deployed as 'demo'"):
        deploy.check_create(backend, "other", first)
    with pytest.raises(ConflictError, match="already deployed as 'demo' and running"):
        deploy.check_create(backend, "demo", first)


def test_deploy_create_serves_the_example_and_fills_the_entry(
    backend: Backend, example_paths: Any, tmp_path: Path
) -> None:
    asset_id = stage(backend, example_paths)
    out_dir = tmp_path / "volume" / "model_images"
    result = deploy.deploy_create(backend, "demo", asset_id, custom_args={"OUTPUT_DIR": str(out_dir)})
    assert result["status"] == "IDLE"
    _, entry = space.get_entry(backend, model_asset_id=asset_id)
    assert entry["wmla_deployment"]["deployment_name"] == "demo"
    assert (
        entry["wmla_deployment"]["deployment_url"]
        == backend.inference.url("demo")
        == result["deployment_url"]
    )
    profile = backend.inference.get_profile("demo")
    assert profile["policy"]["kernel_min"] == 1 and profile["policy"]["task_execution_timeout"] == 60

    body, truth = tile_request()
    answer = json.loads(deploy.infer(backend, "demo", body))
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["mask"]))))
    assert mask.shape == truth.shape and answer["name"] == "tile_001"
    assert answer["positive_pixels"] > 0 and answer["negative_pixels"] > 0
    # A colour rule, not a perfect model: most stained pixels are found, few background ones.
    for channel in (0, 2):
        truth_px, found = truth[..., channel] > 0, mask[..., channel] > 0
        recall = (truth_px & found).sum() / truth_px.sum()
        precision = (truth_px & found).sum() / found.sum()
        assert 0.5 < recall < 1.0 and precision > 0.8
    assert (out_dir / "tile_001_Seg.png").is_file()  # the OUTPUT_DIR custom arg, read as a global
    with pytest.raises(MlopsError, match="500.*must be JSON") as info:
        deploy.infer(backend, "demo", b'{"no": "image"}')
    assert getattr(info.value, "status", None) == 500
    assert not submission.submission_dir(backend, "demo").exists()  # the built folder was removed


def test_kernel_min_zero_does_not_wait(backend: Backend, example_paths: Any) -> None:
    asset_id = stage(backend, example_paths, kernel_min=0, kernel_max=1)
    result = deploy.deploy_create(backend, "lazy", asset_id)
    assert result["status"] == "IDLE" and backend.inference.view("lazy").kernels == ()
    body, _ = tile_request()
    assert "mask" in json.loads(deploy.infer(backend, "lazy", body))  # the first request starts one


def test_a_model_of_zeros_is_staged_and_deployed_and_stays_sparse(
    backend: Backend, example_paths: Any, tmp_path: Path, workspace: Workspace
) -> None:
    # mlops zips the folder itself: its own archive limits must never refuse what it built
    # (a 50 MB file of zeros deflates about 1000:1), and the zeros take no disk on the way.
    model = tmp_path / "model"
    shutil.copytree(example_paths.model, model)
    with open(model / "padding.bin", "wb") as fh:
        fh.truncate(50 * 1024**2)
    sparse = (model / "padding.bin").stat().st_blocks * 512 < 1 << 20
    asset_id = stage(backend, dataclasses.replace(example_paths, model=model), kernel_min=0, kernel_max=1)
    assert deploy.deploy_create(backend, "zeros", asset_id)["status"] == "IDLE"
    if sparse:  # the filesystem has holes: the asset and every copy of the model keep them
        used = sum(p.lstat().st_blocks * 512 for p in workspace.root.rglob("*"))
        assert used < 30 * 1024**2, used


def test_a_half_way_failure_can_be_run_again(backend: Backend, example_paths: Any, tmp_path: Path) -> None:
    asset_id = stage(backend, example_paths, needy_dependency(tmp_path))
    secret = {"API_TOKEN": "tok-123"}
    with pytest.raises(MlopsError, match="did not start.*NameError: name 'GREETING' is not defined"):
        deploy.deploy_create(backend, "needy", asset_id, secret_args=secret, timeout=120)
    (row,) = deploy.deploy_list(backend)
    assert row.status == "FAILED" and row.model_asset_id == asset_id
    result = deploy.deploy_create(
        backend, "needy", asset_id, custom_args={"GREETING": "hi"}, secret_args=secret
    )
    assert result["status"] == "IDLE"
    assert json.loads(deploy.infer(backend, "needy", b"{}")) == {
        "greeting": "hi",
        "version": 1,
        "token": "tok-123",
        "space": backend.space.space_id,
        "asset_id": asset_id,
    }


def test_a_half_way_failure_is_cleaned_by_delete(
    backend: Backend, example_paths: Any, tmp_path: Path
) -> None:
    asset_id = stage(backend, example_paths, needy_dependency(tmp_path))
    with pytest.raises(MlopsError, match="did not start"):
        deploy.deploy_create(backend, "needy", asset_id, timeout=120)
    result = deploy.deploy_delete(backend, "needy")
    assert result == {
        "deployment_name": "needy",
        "undeployed": True,
        "model_asset_id": asset_id,
        "entry": "cleared",
        "deleted_subscription_ids": [],
    }
    assert backend.inference.list() == []
    _, entry = space.get_entry(backend, model_asset_id=asset_id)
    assert entry["wmla_deployment"]["deployment_name"] is None
    assert entry["wmla_deployment"]["deployment_url"] is None
    deploy.check_create(backend, "another-name", asset_id)  # free to deploy again


def test_an_entry_naming_a_missing_deployment_is_listed_and_deletable(
    backend: Backend, example_paths: Any
) -> None:
    asset_id = stage(backend, example_paths)

    def name_it(entry: dict[str, Any]) -> None:
        entry["wmla_deployment"]["deployment_name"] = "ghost"

    space.update_entry(backend, asset_id, name_it)
    (row,) = deploy.deploy_list(backend)
    assert row.state == "absent" and "does not exist" in (row.error or "")
    assert deploy.deploy_delete(backend, "ghost")["undeployed"] is False
    with pytest.raises(NotFoundError, match="no deployment named 'ghost'"):
        deploy.deploy_delete(backend, "ghost")


def test_delete_with_remove_monitor_and_remove_config(backend: Backend, example_paths: Any) -> None:
    asset_id = stage(backend, example_paths, kernel_min=0)
    deploy.deploy_create(backend, "demo", asset_id)
    provider = monitor.provider_create(backend)
    sub = monitor.ensure_subscription(backend, "demo", provider["service_provider_id"])
    result = deploy.deploy_delete(backend, "demo", remove_monitor=True, remove_config=True)
    assert result["deleted_subscription_ids"] == [sub["subscription_id"]] and result["entry"] == "removed"
    assert backend.monitoring.subscriptions.list() == []
    assert asset_id not in space.list_entries(backend)
    assert backend.inference.list() == []


# --- the CLI --------------------------------------------------------------------------------------------


def test_cli_deploy_create_and_every_command(
    cli: Any,
    backend: Backend,
    workspace: Workspace,
    example_paths: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asset_id = stage(backend, example_paths, needy_dependency(tmp_path))
    secret = "tok-cli-must-not-be-saved-9731"
    monkeypatch.setenv("API_TOKEN", secret)
    res = cli(
        "deploy",
        "create",
        "--name",
        "needy",
        "--model-asset-id",
        asset_id,
        "--custom-arg",
        "GREETING=hello",
        "--custom-arg",
        "API_TOKEN",
        "--connection-timeout",
        "150",
    )
    assert res.exit_code == 0, res.output
    # The start-up timeout is kept in the entry (later deploys use it) and reached the profile.
    assert backend.inference.get_profile("needy")["kernel"]["connection_timeout"] == 150
    _, entry = space.get_entry(backend, model_asset_id=asset_id)
    assert entry["wmla_deployment"]["resource_configs"]["connection_timeout"] == 150
    assert "deployment needy: IDLE" in res.stdout and "/dlim/v1/inference/needy" in res.stdout
    monkeypatch.delenv("API_TOKEN")
    for path in workspace.root.rglob("*"):  # run folder, notebook, record, metadata, deployment
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"secret written to {path}"

    res = cli("deploy", "list", "--json")
    (row,) = json.loads(res.stdout)
    assert row["name"] == "needy" and row["status"] == "IDLE" and row["model_asset_id"] == asset_id
    res = cli("deploy", "list")
    assert res.exit_code == 0 and "needy" in res.stdout and "IDLE" in res.stdout
    res = cli("deploy", "view", "--name", "needy", "--json")
    view = json.loads(res.stdout)
    assert view["secret_args"] == ["API_TOKEN"] and view["custom_args"] == ["GREETING"]
    assert "status: IDLE" in cli("deploy", "view", "--name", "needy").stdout

    (tmp_path / "req.json").write_text("{}")
    res = cli("deploy", "infer", "--name", "needy", "--data", f"@{tmp_path / 'req.json'}")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["token"] == secret and json.loads(res.stdout)["greeting"] == "hello"
    res = cli("deploy", "infer", "--name", "needy", "--data", "{}", "--output", str(tmp_path / "answer.json"))
    assert json.loads((tmp_path / "answer.json").read_text())["greeting"] == "hello"

    assert "[needy-" in cli("deploy", "logs", "--name", "needy").stdout
    assert "deployment needy: STOPPED" in cli("deploy", "stop", "--name", "needy").stdout
    res = cli("deploy", "start", "--name", "needy")
    assert res.exit_code == 0 and "deployment needy: IDLE" in res.stdout
    res = cli("deploy", "delete", "--name", "needy", "--remove-config")
    assert res.exit_code == 0 and "undeployed" in res.stdout and "removed" in res.stdout
    assert asset_id not in space.list_entries(backend)


def test_cli_errors_are_one_line(
    cli: Any, backend: Backend, example_paths: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    asset_id = stage(backend, example_paths)
    res = cli("deploy", "create", "--name", "Bad_Name", "--model-asset-id", asset_id)
    assert res.exit_code == 1 and "Error: invalid deployment name 'Bad_Name'" in res.stderr
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    res = cli(
        "deploy", "create", "--name", "ok", "--model-asset-id", asset_id, "--custom-arg", "NOT_SET_ANYWHERE"
    )
    assert res.exit_code == 1 and "environment variable NOT_SET_ANYWHERE is not set" in res.stderr
    res = cli("deploy", "view", "--name", "missing")
    assert res.exit_code == 1 and "no deployment named 'missing'" in res.stderr
    res = cli("deploy", "infer", "--name", "missing", "--data", "@/no/such/file.json")
    assert res.exit_code == 1 and "cannot read the file" in res.stderr
    assert cli("deploy", "list").stdout.strip() == "no deployments"
    assert os.environ.get("MLOPS_BACKEND") is None
