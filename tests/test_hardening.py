"""Reproductions of issue 12 checked end to end where the unit tests stop short: a zip bomb as a
staged dependency refused at deploy with nothing unpacked, and the service's own profile bounded
as the deployment metadata is (kernel_min: 10**30 reaches no kernel pool)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_inference import ECHO_KERNEL, make_folder
from test_submission import stage

from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.local.inference import LocalInference, stop_service
from mlops_widgets.errors import MlopsError
from mlops_widgets.ops import deploy, submission
from mlops_widgets.workspace import Workspace


@pytest.fixture(autouse=True)
def _stop_inference(workspace: Workspace) -> Iterator[None]:
    yield
    stop_service(workspace)


def du(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def test_a_zip_bomb_dependency_goes_through_stage_but_deploy_unpacks_nothing(
    backend: Backend, workspace: Workspace, example_paths: Any, tmp_path: Path
) -> None:
    """Issue 12: a small dependency zip of zeros (here 64 MiB in ~64 KB) was staged, deployed and
    grew the workspace by its uncompressed size; now deploy refuses it by the ratio limit."""
    bomb = tmp_path / "dep.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("kernel.py", ECHO_KERNEL.replace("WHICH", "b'x'"))
        with zf.open("weights.bin", "w") as fh:
            for _ in range(64):
                fh.write(bytes(1 << 20))
    assert bomb.stat().st_size < 1 << 20
    asset_id = stage(backend, example_paths, bomb)
    before = du(workspace.root)
    with pytest.raises(MlopsError, match="max_ratio") as info:
        deploy.deploy_create(backend, "bomb", asset_id)
    assert info.value.hint is not None and info.value.hint.action == "archive.limit"
    assert not submission.submission_dir(backend, "bomb").exists()
    assert du(workspace.root) - before < 8 << 20  # nothing of the 64 MiB landed (records only)
    assert not list(workspace.root.rglob("weights.bin"))


def test_the_services_profile_bounds_kernel_min(workspace: Workspace, tmp_path: Path) -> None:
    inference = LocalInference(workspace)
    inference.deploy("dep", make_folder(tmp_path, ECHO_KERNEL))
    with pytest.raises(MlopsError, match=r"kernel_min must be an integer from 0 to 64, got 10{30}"):
        inference.update_profile("dep", {"policy": {"kernel_min": 10**30, "kernel_max": -1}})
    assert inference.update_profile("dep", {"policy": {"kernel_min": 64, "kernel_max": -1}})["policy"]["kernel_min"] == 64
