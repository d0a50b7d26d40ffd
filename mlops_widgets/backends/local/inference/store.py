"""Where the local inference service keeps its deployments, so they outlive the service.

    <workspace>/inference/
        service.json            address, token, pid of the running service (mode 0600)
        service.log             the service's own log
        runtimes.json           runtimes: named Python interpreters kernels run on (runtimes.py)
        run/<pod>.pid           live kernel processes (so a dead service's kernels can be reaped)
        deployments/<name>/
            deployment.json     model.json, profile, desired state, custom arg names (no secret value)
            model/              the submission folder (REDHARE_MODEL_PATH)
            logs/kernels.log    the kernels' stdout and stderr (rotated: kernels.log.1...)

Only the service writes here while it runs; clients read these files when it does not.
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path
from typing import Any

from mlops_widgets.backends.inference_protocol import overlay_profile
from mlops_widgets.backends.packing import copy_sparse
from mlops_widgets.backends.views import DeploymentView
from mlops_widgets.config import check_deployment_name
from mlops_widgets.config.model import CONNECTION_TIMEOUT_MAX, KERNELS_MAX, TASK_BATCH_MAX, TIMEOUT_MAX
from mlops_widgets.errors import Hint, MlopsError, NotFoundError
from mlops_widgets.workspace import Workspace, atomic_write, make_private

# `dlim model viewprofile -j`, the parts a local service honours, with WMLA's defaults.
DEFAULT_PROFILE: dict[str, Any] = {
    "policy": {
        "kernel_min": 1,
        "kernel_max": 3,
        "kernel_delay_release_time": 60,
        "task_execution_timeout": 60,
        "task_batch_size": 1,
        "schedule_interval": 3,
        "task_pipe_size": 1,
    },
    "resource_allocation": {"kernel": {"resources": "ncpus=1,ncpus_limit=1,mem=1024,mem_limit=1024"}},
    "kernel": {"connection_timeout": 90, "gpu": "no", "envs": []},
}
GPU_MODES = ("no", "shared", "exclusive")
TASK_PIPE_MAX = 16  # batches sent ahead to a kernel while it runs one
REQUIRED_FILES = ("model.json", "README.md")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def read_model_json(folder: Path) -> dict[str, Any]:
    """Check a submission folder as EDI would and return its model.json."""
    if not folder.is_dir():
        raise NotFoundError(f"submission folder {folder} does not exist")
    missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    if missing:
        raise MlopsError(f"submission folder {folder} lacks {', '.join(missing)} (EDI requires them)")
    try:
        model = json.loads((folder / "model.json").read_text())
    except (OSError, ValueError) as exc:
        raise MlopsError(f"{folder / 'model.json'} is not valid JSON: {exc}") from None
    if not isinstance(model, dict):
        raise MlopsError(f"{folder / 'model.json'} must hold a JSON object")
    kernel = model.get("kernel_path") or "kernel.py"
    kernel_file = (folder / kernel).resolve()
    if not kernel_file.is_relative_to(folder.resolve()) or not kernel_file.is_file():
        raise MlopsError(f"submission folder {folder} has no kernel file {kernel!r} (model.json kernel_path)")
    envs = model.get("mk_environments") or []
    if not isinstance(envs, list) or not all(isinstance(e, dict) and "name" in e for e in envs):
        raise MlopsError(f"{folder / 'model.json'}: mk_environments must be a list of {{name, value}}")
    return model


def merge_profile(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`update` laid over `current` (so a caller may send only the policy), then checked."""
    if not isinstance(update, dict):
        raise MlopsError("a profile must be a JSON object")
    profile = overlay_profile(overlay_profile(DEFAULT_PROFILE, current), update)
    policy, kernel = profile.get("policy", {}), profile.get("kernel", {})

    def integer(section: dict[str, Any], key: str, low: int, high: int, also: tuple[int, ...] = ()) -> int:
        """Bounded as the deployment metadata bounds it (kernels are processes of this machine;
        timers overflow past a day)."""
        value = section.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not (low <= value <= high or value in also)
        ):
            extra = "".join(f" or {a}" for a in also)
            raise MlopsError(f"profile {key} must be an integer from {low} to {high}{extra}, got {value!r}")
        return value

    kmin = integer(policy, "kernel_min", 0, KERNELS_MAX)
    kmax = integer(policy, "kernel_max", 1, KERNELS_MAX)
    if kmax < kmin:
        raise MlopsError(f"profile kernel_max must be at least kernel_min ({kmin}), got {kmax}")
    integer(policy, "kernel_delay_release_time", 0, TIMEOUT_MAX)
    integer(policy, "task_execution_timeout", 1, TIMEOUT_MAX, also=(-1,))
    integer(policy, "task_batch_size", 1, TASK_BATCH_MAX)
    integer(policy, "task_pipe_size", 0, TASK_PIPE_MAX)
    integer(kernel, "connection_timeout", 1, CONNECTION_TIMEOUT_MAX)
    if kernel.get("gpu") not in GPU_MODES:
        raise MlopsError(
            f"profile kernel.gpu must be one of {', '.join(GPU_MODES)}, got {kernel.get('gpu')!r}"
        )
    envs = kernel.get("envs") or []
    if not isinstance(envs, list) or not all(isinstance(e, dict) and "name" in e for e in envs):
        raise MlopsError("profile kernel.envs must be a list of {name, value}")
    return profile


class Store:
    """The deployments of one workspace on disk."""

    def __init__(self, workspace: Workspace) -> None:
        self.root = workspace.root / "inference"
        self.deployments = self.root / "deployments"
        self.run_dir = self.root / "run"
        try:  # 0700, as the workspace's
            workspace.dir("inference", "deployments")
            workspace.dir("inference", "run")
        except OSError:  # a workspace that cannot be written is still listed: no deployments
            if self.root.is_dir():
                raise

    def dir(self, name: str) -> Path:
        return self.deployments / check_deployment_name(name)

    def model_dir(self, name: str) -> Path:
        return self.dir(name) / "model"

    def logs_dir(self, name: str) -> Path:
        return self.dir(name) / "logs"

    def names(self) -> list[str]:
        if not self.deployments.is_dir():
            return []
        return sorted(p.parent.name for p in self.deployments.glob("*/deployment.json"))

    def exists(self, name: str) -> bool:
        return (self.dir(name) / "deployment.json").is_file()

    def load(self, name: str) -> dict[str, Any]:
        try:
            return json.loads((self.dir(name) / "deployment.json").read_text())
        except FileNotFoundError:
            raise NotFoundError(
                f"no deployment named {name!r}",
                hint=Hint("deploy.list", "list the deployments to see their names"),
            ) from None

    def view(
        self,
        record: dict[str, Any],
        *,
        service: str,
        url: str | None,
        status: str = "STOPPED",
        error: str | None = None,
    ) -> DeploymentView:
        """A deployment as `view` and `list` show it from its record alone, for a client reading
        the files while no service runs (no kernel runs then)."""
        return DeploymentView(
            name=record["name"],
            state=record["state"],
            status=status,
            service=service,
            url=url,
            model_path=str(self.model_dir(record["name"])),
            kernel_file=record["model"].get("kernel_path") or "kernel.py",
            deployed_at=record.get("deployed_at"),
            updated_at=record.get("updated_at"),
            custom_args=tuple(sorted(record.get("custom_args") or {})),
            secret_args=tuple(record.get("secret_args") or ()),
            profile=record["profile"],
            error=error,
        )

    def save(self, record: dict[str, Any]) -> None:
        self.dir(record["name"]).mkdir(mode=0o700, exist_ok=True)
        atomic_write(self.dir(record["name"]) / "deployment.json", json.dumps(record, indent=2))

    def install(self, name: str, folder: Path) -> None:
        """Copy a submission folder in as the deployment's model folder, replacing any old one
        only once the copy is complete."""
        target = self.model_dir(name)
        fresh, old = target.with_name("model.new"), target.with_name("model.old")
        for leftover in (fresh, old):
            shutil.rmtree(leftover, ignore_errors=True)
        target.parent.mkdir(mode=0o700, exist_ok=True)
        shutil.copytree(folder, fresh, symlinks=True, copy_function=copy_sparse)
        make_private(fresh)  # copied with the submission's modes: private like the workspace
        if target.exists():
            target.rename(old)
        fresh.rename(target)
        shutil.rmtree(old, ignore_errors=True)

    def remove(self, name: str) -> None:
        shutil.rmtree(self.dir(name), ignore_errors=True)
