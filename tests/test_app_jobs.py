"""Long work as jobs of the application core, and live state: an evaluation, a deploy or any
template run started through the core, the CLI or the server extension's REST API leaves the
same record; started as a job it answers at once with an id (202 over REST) and can be followed
and cancelled; its progress, and the state changes the local inference service makes to a
deployment, reach the workspace's change feed with growing sequence numbers, and a follower that
reconnects with `since` misses nothing."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _jlab import lab_server
from helpers import make_template, stage, wait_for

from mlops_widgets import events_feed
from mlops_widgets.app import App
from mlops_widgets.backends.base import Backend
from mlops_widgets.runner import get_run, list_runs
from mlops_widgets.workspace import Workspace

WAIT_S = 240.0  # a failsafe for a loaded machine, not a timing


@pytest.fixture
def lab(backend: Backend, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """JupyterLab whose server extension works on the test's workspace."""
    root = tmp_path / "files"
    root.mkdir()
    with lab_server(tmp_path / "lab", root, env={"MLOPS_HOME": str(backend.workspace.root)}) as served:
        yield served


def _call(lab: dict[str, Any], path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{lab['url']}/mlops/{path}",
        data=data,
        method="GET" if body is None else "POST",
        headers={"Authorization": f"token {lab['token']}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _until_ended(lab: dict[str, Any], job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while (view := _call(lab, f"jobs/{job_id}")[1])["state"] != "ended":
        assert time.monotonic() < deadline, view
        time.sleep(0.2)
    return view


def _progress(ws: Workspace, job_id: str, after: int = 0) -> list[events_feed.Change]:
    return [c for c in events_feed.since(ws, after) if c.kind == "progress" and c.subject == job_id]


def _a5_records(ws: Workspace) -> list[tuple[Any, ...]]:
    runs = [get_run(r.run_id, ws) for r in list_runs(ws) if r.template == "A5_Monitor_Evaluation"]
    return [(r.kind, r.parameters, r.status, sorted(r.results)) for r in runs]


def test_an_evaluation_leaves_the_same_record_through_the_core_the_cli_the_panel_and_the_rest_api(
    ready: Backend, cli: Any, lab: dict[str, Any]
) -> None:
    from mlops_widgets.widgets import MLOpsPanel

    ws = ready.workspace
    assert App(ws, ready).evaluate("demo").ok
    res = cli("monitor", "run", "--name", "demo")
    assert res.exit_code == 0, res.output
    panel = MLOpsPanel(workspace=ws, follow=False)
    m = panel.monitor
    m.refresh()
    assert m.deployment.value == "demo" and not m.run_now.disabled, m.run_now.reason.value
    m.run_now.button.click()  # all of its monitors, as the others evaluate
    assert panel.wait(WAIT_S)
    assert panel.ctx.tasks.last_error is None, panel.ctx.tasks.message.value
    panel.close()
    status, started = _call(lab, "deployments/demo/evaluate", {})
    assert status == 202 and started["job_id"] and started["run_id"], started
    view = _until_ended(lab, started["job_id"])
    assert view["result"]["status"] == "ok", view
    assert [m["monitor_id"] for m in view["result"]["results"]["runs"]]  # the monitors that ran

    records = _a5_records(ws)
    assert len(records) == 4 and records[0] == records[1] == records[2] == records[3], records
    assert records[0][1] == {
        "deployment_name": "demo",
        "monitor_id": None,
        "triggered_by": "user",
        "fail_on_error": True,
    }
    assert get_run(started["run_id"], ws).process["pid"] != lab["pid"]  # its own process

    # Its progress is in the change feed under the job's id: numbered upward, from running to ended.
    changes = _progress(ws, started["job_id"])
    seqs = [c.seq for c in changes]
    assert seqs == sorted(set(seqs)) and len(changes) >= 3
    assert {c.payload["state"] for c in changes[:-1]} == {"running"}
    assert changes[-1].payload == {
        "action": "evaluate",
        "state": "ended",
        "run_id": started["run_id"],
        "status": "ok",
    }
    dones = [c.payload["done"] for c in changes[:-1]]
    assert dones == sorted(dones) and dones[-1] == changes[-2].payload["total"]
    # A follower that dropped after some of them resumes with `since`: the rest, none lost.
    middle = changes[len(changes) // 2].seq
    status, resumed = _call(lab, f"events?since={middle}&wait=0")
    assert status == 200
    got = [e for e in resumed["events"] if e["kind"] == "progress" and e["subject"] == started["job_id"]]
    assert [e["seq"] for e in got] == [c.seq for c in changes if c.seq > middle]
    assert resumed["last"] >= changes[-1].seq


def test_a_deploy_through_the_rest_api_is_a_job_followed_and_cancelled_and_the_service_says_its_state(
    backend: Backend, example_paths: Any, lab: dict[str, Any]
) -> None:
    ws = backend.workspace
    first, second = stage(backend, example_paths), stage(backend, example_paths)
    status, refused = _call(lab, "deployments", {"name": "d1", "model_asset_id": "nosuchasset"})
    assert status in (400, 404) and "nosuchasset" in refused["message"]  # refused before any run
    assert (
        _call(lab, "deployments", {"name": "d1", "model_asset_id": first, "wait_timeout": "soon"})[0] == 400
    )

    # Cancelled while it runs: the run is recorded cancelled, the job ends.
    status, started = _call(lab, "deployments", {"name": "d1", "model_asset_id": first})
    assert status == 202 and started["state"] in ("running", "ended"), started
    assert _call(lab, f"jobs/{started['job_id']}/cancel", {})[0] == 202
    view = _until_ended(lab, started["job_id"])
    assert view["result"] and view["result"]["status"] in ("cancelled", "ok"), (
        view
    )  # ok only if it had ended already
    assert get_run(started["run_id"], ws).status == view["result"]["status"]

    # Followed to its end: the deployment serves, and the service announced it started and ready.
    before = events_feed.last_seq(ws)
    status, started = _call(lab, "deployments", {"name": "d2", "model_asset_id": second})
    assert status == 202, started
    view = _until_ended(lab, started["job_id"])
    assert view["result"]["status"] == "ok", view
    assert view["result"]["results"]["deployment_name"] == "d2"
    states = [
        c.payload["state"]
        for c in events_feed.since(ws, before)
        if c.kind == "deployment" and c.subject == "d2"
    ]
    assert states[:2] == ["started", "ready"], states
    ended = _progress(ws, started["job_id"], before)[-1]
    assert ended.payload["state"] == "ended" and ended.payload["status"] == "ok"

    # A change made through the core reaches the feed from the service that makes it.
    before = events_feed.last_seq(ws)
    App(ws, backend).deploy_stop("d2")
    wait_for(
        lambda: [c for c in events_feed.since(ws, before) if c.kind == "deployment" and c.subject == "d2"],
        WAIT_S,
        "the service's stopped state in the feed",
    )
    (change,) = [c for c in events_feed.since(ws, before) if c.kind == "deployment" and c.subject == "d2"]
    assert change.payload == {"state": "stopped", "source": "service"}


def test_a_core_job_returns_at_once_and_can_be_cancelled(backend: Backend, tmp_path: Path) -> None:
    """`App.start`: a handle with an id, progress, cancel and wait, whichever front end holds it."""
    ws = backend.workspace
    slow = make_template(
        tmp_path / "Slow.ipynb", "seconds = 0  # how long\n", ["import time; time.sleep(seconds)"]
    )
    app = App(ws, backend)
    job = app.start("run", template=slow, params={"seconds": 600})
    assert not job.done and job.view()["state"] == "running"
    wait_for(lambda: job.progress is not None and job.progress.status == "running", WAIT_S, "a running cell")
    job.cancel()
    record = job.wait(WAIT_S)
    assert record.status == "cancelled" and job.done
    changes = _progress(ws, job.id)
    assert changes[-1].payload["state"] == "ended" and changes[-1].payload["status"] == "cancelled"
    assert {c.payload["run_id"] for c in changes} == {record.run_id}

    refused = app.start("run", template=slow, params={"nope": 1})
    with pytest.raises(Exception, match="nope"):
        refused.wait(WAIT_S)
    assert _progress(ws, refused.id)[-1].payload == {
        "action": "run",
        "state": "ended",
        "run_id": None,
        "status": "refused",
    }
    with pytest.raises(Exception, match="not an action that runs as a job"):
        app.start("deploy_delete", name="x").wait(WAIT_S)


def _deployment_states(ws: Workspace, name: str, after: int) -> list[str]:
    return [
        str(c.payload["state"])
        for c in events_feed.since(ws, after)
        if c.kind == "deployment" and c.subject == name
    ]


def test_the_service_publishes_a_replaced_kernel_and_a_failed_start(
    workspace: Workspace, tmp_path: Path
) -> None:
    """From inside the inference service: a kernel that dies in a task is replaced (said once), a
    kernel whose start fails fails the deployment; IDLE and BUSY are never published."""
    from helpers import ECHO_KERNEL, ask, deploy_started, make_folder, wait_status

    from mlops_widgets.backends.local.inference import LocalInference

    inf = LocalInference(workspace)
    before = events_feed.last_seq(workspace)
    deploy_started(inf, make_folder(tmp_path), kernel_min=1, kernel_max=1)
    assert _deployment_states(workspace, "dep", before) == ["started", "ready"]
    ask(inf, do="echo")  # serving: no state change published
    with pytest.raises(Exception):  # noqa: B017 - the kernel dies under the request
        ask(inf, do="die")
    wait_for(
        lambda: "kernel_replaced" in _deployment_states(workspace, "dep", before), WAIT_S, "kernel_replaced"
    )
    wait_status(inf, "dep", "IDLE")
    assert _deployment_states(workspace, "dep", before) == ["started", "ready", "kernel_replaced"]

    broken = ECHO_KERNEL.replace('print("kernel started", self.instance)', 'raise RuntimeError("no model")')
    before = events_feed.last_seq(workspace)
    inf.deploy("bad", make_folder(tmp_path, broken, name="bad"))
    inf.start("bad")
    wait_for(lambda: "failed" in _deployment_states(workspace, "bad", before), WAIT_S, "failed")
    assert _deployment_states(workspace, "bad", before) == ["started", "failed"]


def test_a_profile_change_is_validated_recorded_and_kept_in_the_entry(
    backend: Backend, example_paths: Any
) -> None:
    from mlops_widgets.errors import MlopsError
    from mlops_widgets.ops import space

    app = App(backend.workspace, backend)
    key = stage(backend, example_paths)
    space.update_entry(backend, key, lambda e: e["wmla_deployment"].update(deployment_name="p1"))
    with pytest.raises(MlopsError, match="kernel_min"):
        app.profile_change("p1", {"kernel_min": "many"})
    rc = space.get_entry(backend, model_asset_id=key)[1]["wmla_deployment"]["resource_configs"]
    assert rc["kernel_min"] == 1  # nothing half-written
    out = app.profile_change("p1", {"kernel_min": 2, "kernel_max": 2})
    assert out == {"model_asset_id": key, "profile": None}  # not deployed: the entry keeps it
    rc = space.get_entry(backend, model_asset_id=key)[1]["wmla_deployment"]["resource_configs"]
    assert (rc["kernel_min"], rc["kernel_max"]) == (2, 2)
    (recorded,) = [r for r in list_runs(backend.workspace) if r.template == "deploy.profile"]
    rec = get_run(recorded.run_id, backend.workspace)
    assert rec.status == "ok" and rec.parameters["resource_configs"] == {"kernel_min": 2, "kernel_max": 2}
