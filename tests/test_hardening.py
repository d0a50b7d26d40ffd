"""Reproductions of issue 12 checked end to end where the unit tests stop short: a zip bomb as a
staged dependency refused at deploy with nothing unpacked, the service's own profile bounded as
the deployment metadata is (kernel_min: 10**30 reaches no kernel pool), a run on a full
or read-only workspace refused in plain words before any cell (no temporary run folder left),
everything a deployment and a run write private, and kernel logs bounded by default (issue 13)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ECHO_KERNEL, in_tmpfs, make_folder, make_template, needs_unshare, stage

from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.local.inference import InferenceError, LocalInference, stop_service
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
    """Issue 12: a small dependency zip (here 64 MiB in ~64 KB) was staged, deployed and grew the
    workspace by its uncompressed size; now deploy refuses it by the ratio limit. (Its bytes are
    not zeros: zeros unpack as holes, taking no disk, and count for nothing.)"""
    bomb = tmp_path / "dep.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("kernel.py", ECHO_KERNEL.replace("WHICH", "b'x'"))
        with zf.open("weights.bin", "w") as fh:
            for _ in range(64):
                fh.write(b"\1" * (1 << 20))
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
        inference.update_profile("dep", {"policy": {"kernel_min": 10**30, "kernel_max": 64}})
    assert (
        inference.update_profile("dep", {"policy": {"kernel_min": 64, "kernel_max": 64}})["policy"][
            "kernel_min"
        ]
        == 64
    )


@needs_unshare
def test_a_run_on_a_full_workspace_says_so_and_leaves_no_temporary_run_folder(tmp_path: Path) -> None:
    """Issue 12: a full disk left a temporary run folder and said "disk I/O error"."""
    marker = tmp_path / "executed"
    template = make_template(
        tmp_path / "T_Full.ipynb", "n = 1  # unused", [f"open({str(marker)!r}, 'w').close()"]
    )
    out = in_tmpfs(
        tmp_path,
        "2m",
        f"""
        export MLOPS_HOME=$M/ws
        eval "$MLOPS config list" >/dev/null || exit 98
        mkdir -p $M/ws/runs
        dd if=/dev/zero of=$M/filler bs=64k 2>/dev/null
        eval "$MLOPS run {template}"
        echo "exit=$?"
        ls -a $M/ws/runs
    """,
    )
    assert out.returncode not in (98, 99), out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("Error: ")]
    assert (
        len(errors) == 1
        and errors[0].startswith("Error: no space left on ")
        and f"{tmp_path}/mnt/ws" in errors[0]
    ), out.stderr
    assert "exit=1" in out.stdout and "disk I/O error" not in out.stderr
    assert [
        n for n in out.stdout.split() if n.startswith(".") and n not in (".", "..")
    ] == []  # no .<run>.tmp
    assert not marker.exists()  # refused before any cell ran


def test_kernel_logs_rotate_at_10_mb_times_3_unless_configured() -> None:
    """Issue 13: a chatty kernel wrote 353 MB of log; the log is bounded by default."""
    from mlops_widgets.backends.local.inference.kernel_logs import limits

    assert limits({}) == (10 * 2**20, 3)
    assert limits({"MLOPS_KERNEL_LOG_MB": "1", "MLOPS_KERNEL_LOG_FILES": "5"}) == (2**20, 5)
    with pytest.raises(MlopsError, match="MLOPS_KERNEL_LOG_MB must be a positive number"):
        limits({"MLOPS_KERNEL_LOG_MB": "lots"})


def test_everything_a_deployment_and_a_run_write_is_private(
    backend: Backend, workspace: Workspace, example_paths: Any, tmp_path: Path
) -> None:
    """Issue 12: folders were 0755, mlops.db, service.log and kernel logs 0644. After a real
    stage, deployment (service, kernel log), request and template run, with the usual umask,
    nothing in the workspace is open to others."""
    import os
    import stat

    from mlops_widgets.runner import run_template

    old = os.umask(0o022)
    try:
        asset_id = stage(backend, example_paths)
        deploy.deploy_create(backend, "private", asset_id)
        with pytest.raises(InferenceError, match="must be JSON"):  # its traceback goes to the kernel log
            deploy.infer(backend, "private", b'{"text": "hi"}')
        assert run_template(make_template(tmp_path / "T_Private.ipynb", "n = 1  # unused", ["print(n)"])).ok
    finally:
        os.umask(old)
    logs = list((workspace.root / "inference").rglob("*.log"))
    assert {p.name for p in logs} >= {"service.log", "kernels.log"}
    open_to_others = [
        f"{p.relative_to(workspace.root)} {stat.filemode(p.lstat().st_mode)}"
        for p in [workspace.root, *workspace.root.rglob("*")]
        if not p.is_symlink() and p.lstat().st_mode & 0o077
    ]
    assert open_to_others == [], "\n".join(open_to_others)


@needs_unshare
def test_a_run_on_a_read_only_workspace_is_refused_before_any_cell(tmp_path: Path) -> None:
    """Issue 12: on a read-only workspace the whole template executed before saving failed."""
    marker = tmp_path / "executed"
    template = make_template(
        tmp_path / "T_Ro.ipynb", "n = 1  # unused", [f"open({str(marker)!r}, 'w').close()"]
    )
    out = in_tmpfs(
        tmp_path,
        "4m",
        f"""
        export MLOPS_HOME=$M/ws
        eval "$MLOPS config list" >/dev/null || exit 98
        mount -o remount,ro $M
        eval "$MLOPS run {template}"
        echo "exit=$?"
    """,
    )
    assert out.returncode not in (98, 99), out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and errors[0].startswith(
        f"Error: the workspace {tmp_path}/mnt/ws is read-only"
    ), out.stderr
    assert "exit=1" in out.stdout and "sqlite" not in out.stderr.lower()
    assert not marker.exists()  # refused before any cell ran
