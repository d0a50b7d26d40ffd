"""The submission folder (`ops.submission`): built as the original A2 built it, the dependency
taken by its asset id, the general dependencies, model.json, and hostile dependencies refused."""

from __future__ import annotations

import json
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import example_entry, stage

from mlops_widgets import edi_helpers
from mlops_widgets.backends.base import DEPLOYMENT_METADATA, Backend
from mlops_widgets.backends.local.inference import stop_service
from mlops_widgets.errors import MlopsError, NotFoundError
from mlops_widgets.ops import deploy, space, submission
from mlops_widgets.workspace import Workspace

ECHO_KERNEL = """\
import redhareapiversion
from redhareapi import Kernel

class EchoKernel(Kernel):
    def on_task_invoke(self, task_context):
        task_context.set_output_data(WHICH)

if __name__ == "__main__":
    EchoKernel().run()
"""


@pytest.fixture(autouse=True)
def _stop_inference(workspace: Workspace) -> Iterator[None]:
    yield
    stop_service(workspace)


def write_zip(path: Path, members: dict[str, str], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def test_folder_as_a2_built_it(backend: Backend, example_paths: Any) -> None:
    asset_id = stage(backend, example_paths)
    folder = submission.build_submission_folder(backend, "demo", asset_id)
    assert (folder / "kernel.py").read_bytes() == (example_paths.deployment / "kernel.py").read_bytes()
    assert (folder / "README.md").is_file()
    assert json.loads((folder / "model" / "weights.json").read_text())["name"] == "deepliif-demo"
    for module in edi_helpers.MODULES:  # the general dependencies, ours as nobody brought theirs
        assert (folder / module).read_bytes() == edi_helpers.path(module).read_bytes()
    model = json.loads((folder / "model.json").read_text())
    assert model["name"] == "demo" and model["kernel_path"] == "kernel.py" and model["runtime"] == "dlipy3"
    assert model["weight_path"] == "./" and model["framework"] == "PyTorch" and model["schema_version"] == "1"
    envs = {e["name"]: e["value"] for e in model["mk_environments"]}
    space_id = backend.space.space_id
    assert envs["WML_SPACE_ID"] == envs["SPACE_ID"] == space_id
    assert (
        envs["WML_SPACE_MODEL"] == envs["MODEL_ASSET"] == "model.zip" and envs["MODEL_ASSET_ID"] == asset_id
    )
    assert envs["MLOPS_BACKEND"] == "local" and envs["MLOPS_HOME"] == str(backend.workspace.root)
    assert envs["MLOPS_VOLUMES"] == str(backend.workspace.root / "volumes")


def test_the_dependencys_model_json_and_modules_win(
    backend: Backend, example_paths: Any, tmp_path: Path
) -> None:
    dep = tmp_path / "mine"
    dep.mkdir()
    (dep / "main.py").write_text(ECHO_KERNEL)
    (dep / "cpd_utils.py").write_text("# the user's own\n")
    (dep / "model.json").write_text(
        json.dumps(
            {
                "name": "ignored",
                "kernel_path": "main.py",
                "runtime": "condaenvpy39",
                "tag": "prod",
                "attributes": [{"key": "k", "value": "v"}],
                "mk_environments": [
                    {"name": "MINE", "value": "1"},
                    {"name": "WML_SPACE_ID", "value": "their-cluster"},
                ],
            }
        )
    )
    (tmp_path / "wml_sdk_utils.py").write_text("# from the space\n")
    backend.space.upload(tmp_path / "wml_sdk_utils.py")
    asset_id = stage(backend, example_paths, dep)
    folder = submission.build_submission_folder(backend, "mine", asset_id)
    model = json.loads((folder / "model.json").read_text())
    assert model["name"] == "mine" and model["kernel_path"] == "main.py"  # kernel from model.json
    assert (
        model["runtime"] == "condaenvpy39"
        and model["tag"] == "prod"
        and model["attributes"] == [{"key": "k", "value": "v"}]
    )
    envs = {e["name"]: e["value"] for e in model["mk_environments"]}
    assert envs["MINE"] == "1" and envs["WML_SPACE_ID"] == backend.space.space_id  # ours: where it runs now
    assert (folder / "cpd_utils.py").read_text() == "# the user's own\n"
    assert (folder / "wml_sdk_utils.py").read_text() == "# from the space\n"
    assert (folder / "storage_volume_utils.py").read_bytes() == edi_helpers.path(
        "storage_volume_utils.py"
    ).read_bytes()

    only = submission.build_submission_folder(
        backend, "mine", asset_id, general_dependencies=["wml_sdk_utils.py"]
    )
    assert not (only / "storage_volume_utils.py").exists()
    with pytest.raises(NotFoundError, match="general dependency 'extra.py' is neither"):
        submission.build_submission_folder(backend, "mine", asset_id, general_dependencies=["extra.py"])


def test_wrapped_dependency_and_missing_kernel(backend: Backend, example_paths: Any, tmp_path: Path) -> None:
    wrapped = write_zip(
        tmp_path / "wrapped.zip", {"wrapped/kernel.py": ECHO_KERNEL, "wrapped/README.md": "r"}
    )
    asset_id = stage(backend, example_paths, wrapped)
    folder = submission.build_submission_folder(backend, "wrapped", asset_id)
    assert (folder / "kernel.py").read_text() == ECHO_KERNEL and not (folder / "wrapped").exists()
    with pytest.raises(MlopsError, match="no kernel file 'main.py'") as info:
        submission.build_submission_folder(backend, "wrapped", asset_id, "main.py")
    assert info.value.hint is not None and "--" not in str(info.value)
    assert not submission.submission_dir(backend, "wrapped").exists()  # nothing half-built left


@pytest.mark.parametrize(
    ("members", "links"),
    [
        ({"kernel.py": "k", "../../escaped.py": "x"}, None),
        # issue 12's hostile dependency: y -> deep, model.json -> y/../.. (looks inside), y -> .
        (
            {"kernel.py": "k"},
            {"y": "a/b/c/d/e/f/g/h/i/j", "model.json": "y/../../../../../../../../../../escaped.py"},
        ),
        ({"kernel.py": "k"}, {"README.md": "../../../../escaped.py"}),
    ],
)
def test_a_hostile_dependency_writes_nothing_outside(
    backend: Backend,
    example_paths: Any,
    tmp_path: Path,
    members: dict[str, str],
    links: dict[str, str] | None,
) -> None:
    archive = write_zip(tmp_path / "evil.zip", members, links)
    if links and "y" in links:  # append the swap of y after model.json, as the zip did
        with zipfile.ZipFile(archive, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
            info = zipfile.ZipInfo("y")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, ".")
    asset_id = stage(backend, example_paths, archive)
    with pytest.raises(MlopsError, match="refusing"):
        submission.build_submission_folder(backend, "evil", asset_id)
    assert not list(tmp_path.parent.rglob("escaped.py"))
    assert not submission.submission_dir(backend, "evil").exists()


def test_same_named_dependencies_each_deploy_their_own_kernel(
    backend: Backend, example_paths: Any, tmp_path: Path
) -> None:
    """Two staged `dep.zip` of different content: deploying the older one must not unpack the
    newer one (the original looked the dependency up by file name, keeping the latest)."""
    ids = []
    for which in ("first", "second"):
        dep = tmp_path / which / "dep"
        dep.mkdir(parents=True)
        (dep / "kernel.py").write_text(ECHO_KERNEL)
        ids.append(stage(backend, example_paths, dep))
        ids_entry = space.get_entry(backend, model_asset_id=ids[-1])[1]["wmla_deployment"]
        assert ids_entry["dependency_filename"] == "dep.zip" and ids_entry["dependency_asset_id"]
    assert len(backend.space.list_assets("dep.zip")) == 2
    for which, asset_id in zip(("first", "second"), ids, strict=True):
        deploy.deploy_create(backend, f"dep-{which}", asset_id, custom_args={"WHICH": which})
    # each deployment's kernel was unpacked from its own dep.zip: tell them apart by content
    for which, asset_id in zip(("first", "second"), ids, strict=True):
        wmla = space.get_entry(backend, model_asset_id=asset_id)[1]["wmla_deployment"]
        assert deploy.infer(backend, f"dep-{which}", b"{}") == which.encode()
        assert backend.space.get_asset(wmla["dependency_asset_id"]).name == "dep.zip"


def test_dependency_by_id_even_when_names_clash(backend: Backend, example_paths: Any, tmp_path: Path) -> None:
    kernels = {}
    ids = []
    for which in ("old", "new"):
        dep = tmp_path / which / "dep"
        dep.mkdir(parents=True)
        kernels[which] = ECHO_KERNEL.replace("WHICH", repr(which))
        (dep / "kernel.py").write_text(kernels[which])
        ids.append(stage(backend, example_paths, dep))
    for which, asset_id in zip(("old", "new"), ids, strict=True):
        folder = submission.build_submission_folder(backend, f"by-id-{which}", asset_id)
        assert (folder / "kernel.py").read_text() == kernels[which]

    # An entry that names its dependency only by file name (written before ids were recorded, or
    # added from the original's YAML) is refused when several assets share that name.
    def forget_id(doc: dict[str, Any]) -> None:
        doc[ids[0]]["wmla_deployment"].pop("dependency_asset_id")

    backend.space.update_document(DEPLOYMENT_METADATA, forget_id)
    with pytest.raises(MlopsError, match="2 assets in the space have the name 'dep.zip'") as info:
        submission.build_submission_folder(backend, "legacy", ids[0])
    assert info.value.hint is not None
    backend.space.delete(
        space.get_entry(backend, model_asset_id=ids[1])[1]["wmla_deployment"]["dependency_asset_id"]
    )
    folder = submission.build_submission_folder(backend, "legacy", ids[0])  # one asset of that name: it
    assert (folder / "kernel.py").read_text() == kernels["old"]


def test_cli_general_dependencies_reach_the_folder(backend: Backend, example_paths: Any, cli: Any) -> None:
    asset_id = stage(backend, example_paths)
    res = cli(
        "deploy",
        "create",
        "--name",
        "chosen",
        "--model-asset-id",
        asset_id,
        "--general-dependency",
        "cpd_utils.py",
        "--general-dependency",
        "storage_volume_utils.py",
    )
    assert res.exit_code == 0, res.output
    deployed = Path(backend.inference.view("chosen").model_path)
    helpers = sorted(p.name for p in deployed.iterdir() if p.name in edi_helpers.MODULES)
    assert helpers == ["cpd_utils.py", "storage_volume_utils.py"]
    model = json.loads((deployed / "model.json").read_text())
    assert model["kernel_path"] == "kernel.py"  # no model.json of its own: the default


def test_a_failure_inside_a2_keeps_its_hint_for_the_cli(
    backend: Backend, example_paths: Any, cli: Any, workspace: Workspace, tmp_path: Path
) -> None:
    """`mlops deploy create` fails inside template A2 (the dependency has no kernel.py): the CLI
    prints the same rendered hint as a direct call, and the run's record keeps it as data."""
    from mlops_widgets.cli._hints import error_text, render
    from mlops_widgets.runner import get_run, list_runs

    dep = tmp_path / "nokernel"
    dep.mkdir()
    (dep / "main.py").write_text(ECHO_KERNEL)
    asset_id = stage(backend, example_paths, dep)
    with pytest.raises(MlopsError) as direct:
        submission.build_submission_folder(backend, "nokernel", asset_id)
    assert direct.value.hint is not None and direct.value.hint.action == "deploy.kernel_filename"
    rendered = render(direct.value.hint)
    assert "--kernel-filename" in rendered and error_text(direct.value).endswith(rendered)

    res = cli("deploy", "create", "--name", "nokernel", "--model-asset-id", asset_id)
    assert res.exit_code == 1
    lines = res.stderr.rstrip().splitlines()
    assert lines[-1] == rendered  # the hint on its own line after the run's failure
    assert f"MlopsError: {direct.value.message}" in lines[-3]  # the step's error, then the notebook
    (run,) = [r for r in list_runs(workspace) if r.template == "A2_WMLA_Model_Deploy"]
    record = get_run(run.run_id, workspace)
    assert record.status == "failed"
    assert record.error["hint"] == {
        "action": "deploy.kernel_filename",
        "text": direct.value.hint.text,
        "args": dict(direct.value.hint.args),
    }
    assert "--" not in record.error["summary"] and "--" not in (run.error or "")  # words, not flags
    assert f"fix: {rendered}" in cli("runs", "show", run.run_id).stdout.splitlines()


WEIGHTS_KERNEL = """\
import os
import redhareapiversion
from redhareapi import Kernel

class WeightsKernel(Kernel):
    def on_task_invoke(self, task_context):
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "weights", "net.pt")) as fh:
            task_context.set_output_data(fh.read())

if __name__ == "__main__":
    WeightsKernel().run()
"""


def test_a_deployment_folder_holding_its_weights_is_staged_without_a_model(
    backend: Backend, example_paths: Any, cli: Any, tmp_path: Path
) -> None:
    """The team's folders carry their weights: `prepare stage` without --path-model uploads the
    folder once, it is the model asset too, and the deployment answers from those weights."""
    folder = tmp_path / "deepliif_deployment"
    (folder / "weights").mkdir(parents=True)
    (folder / "kernel.py").write_text(WEIGHTS_KERNEL)
    (folder / "weights" / "net.pt").write_text("the weights")
    res = cli("prepare", "stage", "--path-dependency", str(folder), "--path-yml", str(example_paths.config))
    assert res.exit_code == 0, res.output
    asset_id = res.stdout.strip().rsplit(" ", 1)[-1]
    (asset,) = backend.space.list_assets()
    assert asset.asset_id == asset_id and asset.name == "deepliif_deployment.zip"  # one upload
    _, entry = space.get_entry(backend, model_asset_id=asset_id)
    assert entry["model_asset"] == "deepliif_deployment.zip"
    assert entry["wmla_deployment"]["dependency_asset_id"] == asset_id
    built = submission.build_submission_folder(backend, "weights", asset_id)
    assert (built / "weights" / "net.pt").read_text() == "the weights"
    assert not (built / "deepliif_deployment").exists()  # not unpacked a second time
    deployed = deploy.deploy_create(backend, "weights", asset_id)
    assert deployed["deployment_name"] == "weights"
    assert backend.inference.infer("weights", b"{}").decode() == "the weights"
    both = cli(
        "prepare",
        "stage",
        "--path-model",
        str(folder),
        "--from-job",
        "j",
        "--path-dependency",
        str(folder),
        "--path-yml",
        str(example_paths.config),
    )
    assert both.exit_code != 0 and "not both" in both.output


def test_a_model_zip_of_a_folder_of_its_name_unpacks_flat(
    backend: Backend, example_paths: Any, tmp_path: Path
) -> None:
    """`zip -r M.zip M` holds M/...: the deployment gets M/net.pt, not M/M/net.pt."""
    model = write_zip(tmp_path / "M.zip", {"M/net.pt": "w", "M/sub/more.pt": "x"})
    asset_id = space.stage(
        backend, model, example_paths.deployment, example_entry(example_paths), on_clash="new"
    )["model_asset_id"]
    folder = submission.build_submission_folder(backend, "flat", asset_id)
    assert (folder / "M" / "net.pt").read_text() == "w" and (folder / "M" / "sub" / "more.pt").is_file()
    assert not (folder / "M" / "M").exists()
