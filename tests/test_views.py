"""Typed views: both backends make the same `DeploymentView` of the same EDI documents (one
derivation, backends/edi_view.py), and `mlops deploy view --json` keeps the shape users read;
both read the same monitoring views of the same OpenScale documents (backends/monitoring_views.py)."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from fakecpd import FakeCpd
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)
from fakecpd.server import Response
from helpers import add_entry, deploy_started, make_folder, wait_status

from mlops_widgets.backends import get_backend
from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.local.inference import LocalInference
from mlops_widgets.backends.local.inference.service import API
from mlops_widgets.backends.monitoring_views import MonitoringViews
from mlops_widgets.backends.views import (
    AlertView,
    DeploymentView,
    KernelView,
    MeasurementView,
    MonitorInstanceView,
    RunView,
    SubscriptionView,
)
from mlops_widgets.monitors.schedule import make_schedule, parse_time
from mlops_widgets.ops import alerts, monitor
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


def _start_parsed(view: MonitorInstanceView) -> MonitorInstanceView:
    assert view.schedule is not None
    start = dict(view.schedule["start_time"], timestamp=parse_time(view.schedule["start_time"]["timestamp"]))
    return replace(view, schedule={**view.schedule, "start_time": start})


def test_local_and_cpd_make_the_same_monitoring_views_of_the_same_openscale_documents(
    workspace: Workspace, cpd_backend: Backend, fake_cpd: FakeCpd
) -> None:
    """The embedded backend's own OpenScale documents (a subscription, a monitor instance with a
    threshold override and a paused schedule, a failed run, a measurement with an issue), put
    verbatim into the fake OpenScale: the cpd backend reads them through IBM's client into the
    same views, field for field."""
    workspace.open()
    mon = get_backend("local", workspace).monitoring
    sp = mon.service_providers.add("P")
    sub = mon.subscriptions.add(
        service_provider_id=sp["metadata"]["id"], name="d Monitor", deployment_name="d"
    )
    sub_id = sub["metadata"]["id"]
    inst = mon.monitor_instances.create(
        monitor_definition_id="generic_metrics",
        target_id=sub_id,
        thresholds=[{"metric_id": "num_images_total_predicted", "type": "upper_limit", "value": 10}],
        parameters={"dir_gt": "gt"},
    )
    iid = inst["metadata"]["id"]
    inst = mon.monitor_instances.set_schedule(iid, make_schedule("1h", min_s=60, paused=True))
    run = mon.runs.add(iid)  # no images to read: the run ends in error, with its message
    measured = mon.measurements.add(
        iid, run_id="r1", metrics={"num_images_total_predicted": 11, "num_images_recent_predicted": 50}
    )
    store = fake_cpd.openscale.store
    for kind, doc in (
        ("subscriptions", sub),
        ("monitor_instances", inst),
        ("runs", mon.runs.get(iid, run["metadata"]["id"])),
        ("measurements", measured),
    ):
        store[kind][doc["metadata"]["id"]] = json.loads(json.dumps(doc))
    local, cpd = MonitoringViews(mon), MonitoringViews(cpd_backend.monitoring)

    pairs = [
        (local.subscription(sub_id), cpd.subscription(sub_id), SubscriptionView),
        (local.instance(iid), cpd.instance(iid), MonitorInstanceView),
        (local.runs(iid)[0], cpd.runs(iid)[0], RunView),
        (local.measurements(iid, run_id="r1")[0], cpd.measurements(iid, run_id="r1")[0], MeasurementView),
        (
            local.latest(target_id=sub_id, monitor_definition_id="generic_metrics")[0],
            cpd.latest(target_id=sub_id, monitor_definition_id="generic_metrics")[0],
            MeasurementView,
        ),
    ]
    for mine, theirs, kind in pairs:
        assert type(mine) is type(theirs) is kind
        if isinstance(mine, MonitorInstanceView):  # IBM's client writes the start time its own way
            mine, theirs = _start_parsed(mine), _start_parsed(theirs)
        assert theirs == mine, kind.__name__
    instance, run_view, measurement = pairs[1][0], pairs[2][0], pairs[3][0]
    assert (instance.monitor_id, instance.target_id, instance.parameters) == (
        "generic_metrics",
        sub_id,
        {"dir_gt": "gt"},
    )
    assert [t.to_dict() for t in instance.thresholds] == [
        {"metric_id": "num_images_total_predicted", "type": "upper_limit", "value": 10.0}
    ]
    assert instance.schedule is not None and instance.schedule["status"] == "disabled"
    assert run_view.state == "error" and run_view.error
    by_id = {m.id: m for m in measurement.metrics}
    assert (by_id["num_images_total_predicted"].limit, by_id["num_images_total_predicted"].violated) == (
        10.0,
        True,
    )
    assert not by_id["num_images_recent_predicted"].violated
    assert measurement.issue_count == sum(m.violated for m in measurement.metrics)


def test_an_alert_read_back_keeps_the_shape_monitor_alerts_json_shows(backend: Backend) -> None:
    """An alert recorded from a measurement is read back as an `AlertView` whose JSON is the
    record as `monitor alerts --json` has always shown it (keys, order, values)."""
    monitor.provider_create(backend)
    add_entry(backend)
    monitor.monitor_create(backend, "demo")
    (inst,) = MonitoringViews(backend.monitoring).instances(monitor_definition_id="generic_metrics")
    backend.monitoring.measurements.add(inst.id, run_id="r1", metrics={"num_images_recent_predicted": 3})

    (raised,) = alerts.record(backend, "demo")
    (listed,) = alerts.list_alerts(backend.workspace)

    assert type(raised) is type(listed) is AlertView and listed.alert_id == raised.alert_id
    assert list(listed.to_dict()) == [
        "alert_id", "deployment_name", "monitor_id", "monitor_instance_id", "measurement_id", "run_id",
        "audit_run_id", "measured_at", "violations", "new_violations", "acknowledged_at", "notified_at",
        "opens_episode",
    ]  # fmt: skip
    assert listed.to_dict()["violations"] == [
        {"metric": "num_images_recent_predicted", "value": 3.0, "limit": 40.0, "direction": "lower"}
    ]
    assert (listed.run_id, listed.new_violations, listed.opens_episode) == (
        "r1",
        ("num_images_recent_predicted",),
        True,
    )
    assert AlertView.from_record(listed.to_dict()) == listed
