"""Binder: the pinned requirements and postBuild set up a working demo in a fresh environment.

postBuild installs the package as a wheel (not editable) into a new virtual environment, so this
also checks that the templates and examples ship as package data. It runs offline: the new
environment takes the pinned requirements from the tested one (a .pth file), which may be newer
than the pins; the pins are checked to be met, not matched exactly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
BINDER = REPO / "binder"


def test_the_tested_versions_meet_the_pins():
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", (BINDER / "requirements.txt").read_text(), re.M))
    assert {"jupyterlab", "ipywidgets", "papermill"} <= set(pins)
    older = {
        name: (metadata.version(name), pin)
        for name, pin in pins.items()
        if Version(metadata.version(name)) < Version(pin)
    }
    assert not older, f"tested versions older than Binder's pins (tested, pinned): {older}"


@pytest.mark.timeout(900)
def test_postbuild_in_a_fresh_virtual_environment(tmp_path):
    checkout = tmp_path / "repo"
    shutil.copytree(
        REPO,
        checkout,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".git",
            ".mlops",
            "mlops-demo",
            "__pycache__",
            "*.egg-info",
            ".pytest_cache",
            "build",
            "node_modules",
        ),
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    # Offline: the requirements come from the tested environment (after the venv's own packages),
    # pip never asks an index, and the wheel is built with this environment's hatchling.
    (Path(sysconfig.get_path("purelib", vars={"base": str(venv)})) / "_tested_env.pth").write_text(
        sysconfig.get_path("purelib") + "\n"
    )
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    env.update(PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("MLOPS_HOME", None)
    check = (
        "from mlops_widgets.backends.local.inference import service_info, stop_service\n"
        "print(service_info('demo-workspace') is None); stop_service('demo-workspace')"
    )
    try:
        subprocess.run(
            ["bash", BINDER / "postBuild"], check=True, env=env, cwd=checkout, capture_output=True, text=True
        )
    finally:  # report whether postBuild left the inference service running, and stop it if so
        left = subprocess.run(
            [venv / "bin" / "python", "-c", check], env=env, cwd=checkout, capture_output=True, text=True
        )
    assert left.stdout.strip() == "True", f"postBuild left the inference service running: {left.stderr}"

    installed = subprocess.run(
        [venv / "bin" / "python", "-c", "import mlops_widgets; print(mlops_widgets.__file__)"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert str(venv) in installed  # the wheel, not the checkout
    # Both halves of the JupyterLab extension are enabled by the install alone.
    python = str(venv / "bin" / "python")
    labext = subprocess.run(
        [python, "-m", "jupyterlab.labextensions", "list"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert re.search(r"mlops-widgets v\S+ .*enabled.*OK", labext.stdout + labext.stderr), labext
    serverext = subprocess.run(
        [python, "-m", "jupyter_server.extension.serverextension", "list"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert re.search(r"mlops_widgets\.server .*enabled", serverext.stdout + serverext.stderr), serverext
    runs = sorted((checkout / "demo-workspace" / "runs").iterdir())
    assert len(runs) >= 5 and all(json.loads((r / "run.json").read_text())["status"] == "ok" for r in runs)
    notebook = json.loads((checkout / "MLOps_Panel.ipynb").read_text())
    assert "MLOpsPanel(workspace=" in "".join(notebook["cells"][1]["source"])
    start = subprocess.run(
        ["bash", BINDER / "start", "sh", "-c", "echo $MLOPS_HOME"],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
    )
    assert start.stdout.strip() == str(checkout / "demo-workspace")
