"""Typed views: both backends make the same `DeploymentView` of the same EDI documents (one
derivation, backends/edi_view.py), and `mlops deploy view --json` keeps the shape users read."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from fakecpd import FakeCpd
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)
from fakecpd.server import Response
from helpers import deploy_started, make_folder, wait_status

from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.local.inference import LocalInference
from mlops_widgets.backends.local.inference.service import API
from mlops_widgets.backends.views import DeploymentView, KernelView
from mlops_widgets.workspace import Workspace


def _document(inference: LocalInference, path: str) -> Any:
    status, body = inference.request("GET", f"{API}{path}")
    assert status == 200, body
    return json.loads(body)


def test_local_and_cpd_make_the_same_view_of_the_same_edi_documents(
    workspace: Workspace, cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path
) -> None:
    """The local service's own EDI documents of a started deployment, served verbatim by the
    fake WMLA: the cpd backend reads them through IBM's client into the same view the local
    backend shows, field for field where EDI says it."""
    local = LocalInference(workspace)
    local.deploy("dep", make_folder(tmp_path), custom_args={"GREETING": "hi"}, secret_args={"API_KEY": "k"})
    local.update_profile("dep", {"policy": {"kernel_min": 1, "kernel_max": 1}})
    local.start("dep", secret_args={"API_KEY": "k"})
    mine = wait_status(local, "dep", "IDLE")
    for path in ("/model/dep", "/model/dep/instance", "/model/dep/appprofile"):
        body = json.dumps(_document(local, path)).encode()
        fake_cpd.router.serve(
            "GET", f"^/dlim/v1{path}$", Response(200, body, {"Content-Type": "application/json"})
        )

    theirs = cpd_backend.inference.view("dep")

    assert type(theirs) is type(mine) is DeploymentView
    assert theirs.to_dict().keys() == mine.to_dict().keys()
    same = ("name", "state", "status", "model_path", "kernel_file", "deployed_at", "updated_at")
    same += ("custom_args", "secret_args", "queued")
    assert {f: getattr(theirs, f) for f in same} == {f: getattr(mine, f) for f in same}
    assert (theirs.custom_args, theirs.secret_args, theirs.status) == (("GREETING",), ("API_KEY",), "IDLE")
    assert [(k.pod, k.state, k.tasks_done) for k in theirs.kernels] == [
        (k.pod, k.state, k.tasks_done) for k in mine.kernels
    ]
    assert all(type(k) is KernelView for k in (*theirs.kernels, *mine.kernels)) and len(mine.kernels) == 1
    # what only the local service knows (its processes) is unknown on a cluster, not missing
    (kernel,) = theirs.kernels
    assert (kernel.pid, kernel.log) == (None, None) and mine.kernels[0].pid is not None
    assert theirs.service == "wmla" and theirs.url == f"{fake_cpd.inference_url}/dlim/v1/inference/dep"
    assert theirs.profile["policy"]["kernel_min"] == mine.kernel_min == theirs.kernel_min == 1


# The shape of `mlops deploy view --json` for a started local deployment, as users and the REST
# API docs read it: every key, in this order, with its JSON type.
VIEW_KEYS = {
    "name": str,
    "state": str,
    "status": str,
    "service": str,
    "url": str,
    "model_path": str,
    "kernel_file": str,
    "deployed_at": str,
    "updated_at": str,
    "custom_args": list,
    "secret_args": list,
    "profile": dict,
    "kernels": list,
    "queued": int,
    "error": type(None),
    "error_log": type(None),
    "warnings": list,
    "requests": dict,
    "model_asset_id": type(None),
    "training_job": type(None),
}
KERNEL_KEYS = {
    "pod": str,
    "pid": int,
    "state": str,
    "gpu": type(None),
    "cpus": list,
    "started_at": str,
    "tasks_done": int,
    "log": str,
}


def test_deploy_view_json_keeps_its_shape(workspace: Workspace, tmp_path: Path, cli: Any) -> None:
    deploy_started(LocalInference(workspace), make_folder(tmp_path), kernel_min=1, kernel_max=1)
    res = cli("deploy", "view", "--name", "dep", "--json")
    assert res.exit_code == 0, res.output
    view = json.loads(res.stdout)
    assert list(view) == list(VIEW_KEYS)
    assert {k: type(v) for k, v in view.items()} == VIEW_KEYS
    (kernel,) = view["kernels"]
    assert {k: type(v) for k, v in kernel.items()} == KERNEL_KEYS
    assert view["requests"] == {"total": 0, "failed": 0} and view["status"] == "IDLE"
    assert view["profile"]["policy"]["kernel_min"] == 1
    # every field of the typed view is in the JSON, under its own name
    assert {f.name for f in fields(DeploymentView)} <= set(view)
    assert {f.name for f in fields(KernelView)} == set(kernel)
