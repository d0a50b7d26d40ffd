"""OpenScale through ibm-watson-openscale against the fake, and publishing a monitor's provider
as a WML function that the fake's OpenScale calls at every run (notebook B2)."""

from __future__ import annotations

import io
import re
import time

import pytest
from fakecpd import FakeCpd
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)
from fakecpd.fixtures import seed_volume

from mlops_widgets.backends import get_backend
from mlops_widgets.backends.base import MONITOR_METADATA, Backend
from mlops_widgets.backends.monitoring_protocol import RUN_RUNNING
from mlops_widgets.errors import ConflictError, MlopsError
from mlops_widgets.monitors import BUILTIN
from mlops_widgets.ops.publish import publish
from mlops_widgets.workspace import Workspace


@pytest.fixture
def cpd_version() -> str:
    return "5.1.0"  # ibm-watsonx-ai deploys functions without the old SDK's 5-second sleeps


def _subscription(mon) -> str:  # noqa: ANN001
    sp = mon.service_providers.add("OpenScale Headless Service Provider")
    sub = mon.subscriptions.add(
        service_provider_id=sp["metadata"]["id"],
        name="seg Monitor",
        deployment_name="seg",
        deployment_url="https://x/seg",
    )
    return sub["metadata"]["id"]


def _wait(mon, instance_id: str, run: dict) -> dict:  # noqa: ANN001
    deadline = time.monotonic() + 120
    while run["entity"]["status"]["state"] == RUN_RUNNING and time.monotonic() < deadline:
        time.sleep(0.1)
        run = mon.runs.get(instance_id, run["metadata"]["id"])
    return run


def test_openscale_model_round_trip(cpd_backend: Backend) -> None:
    mon = cpd_backend.monitoring
    sub_id = _subscription(mon)
    assert [s["entity"]["asset"]["name"] for s in mon.subscriptions.list(name="seg Monitor")] == [
        "seg Monitor"
    ]
    assert (
        mon.service_providers.list(name="OpenScale Headless Service Provider")[0]["entity"]["service_type"]
        == "custom_machine_learning"
    )

    # structured as the original's subscriptions (reused by name), which our definitions apply to
    assert mon.subscriptions.get(sub_id)["entity"]["asset"]["input_data_type"] == "structured"
    definition = mon.monitor_definitions.add(BUILTIN["generic_metrics"])
    assert definition["metadata"]["id"] == "generic_metrics"
    assert "structured" in definition["entity"]["applies_to"]["input_data_type"]
    assert mon.monitor_definitions.add(BUILTIN["generic_metrics"]) == definition  # idempotent
    assert [d["metadata"]["id"] for d in mon.monitor_definitions.list()] == ["generic_metrics"]

    with pytest.raises(MlopsError, match="has no metric id 'nope'"):
        mon.monitor_instances.create(
            monitor_definition_id="generic_metrics",
            target_id=sub_id,
            thresholds=[{"metric_id": "nope", "type": "lower_limit", "value": 1}],
            parameters={},
        )
    limit = {"metric_id": "num_images_total_predicted", "type": "lower_limit", "value": 10}
    inst = mon.monitor_instances.create(
        monitor_definition_id="generic_metrics",
        target_id=sub_id,
        thresholds=[limit],
        parameters={"dir_gt": "gt"},
    )
    iid = inst["metadata"]["id"]
    with pytest.raises(ConflictError, match="already has a generic_metrics monitor"):
        mon.monitor_instances.create(
            monitor_definition_id="generic_metrics", target_id=sub_id, thresholds=[], parameters={}
        )
    assert [i["metadata"]["id"] for i in mon.monitor_instances.list(target_id=sub_id)] == [iid]
    updated = mon.monitor_instances.update(
        iid, thresholds=[{**limit, "value": 20}], parameters={"dir_gt": "gt2"}
    )
    assert updated["entity"]["thresholds"][0]["value"] == 20
    # IBM's custom-monitor conventions ride along: runs enabled, the original's 360 s wait
    assert updated["entity"]["parameters"] == {
        "dir_gt": "gt2",
        "enable_custom_metric_runs": True,
        "custom_metrics_wait_time": 360,
    }

    run = mon.runs.add(iid)  # no provider behind this instance: OpenScale fails the run
    run = _wait(mon, iid, run)
    assert run["entity"]["status"]["state"] == "error"
    assert "custom_metrics_provider_id" in run["entity"]["status"]["failure"]["errors"][0]["message"]

    m = mon.measurements.add(
        iid,
        run_id=run["metadata"]["id"],
        metrics={"num_images_total_predicted": 15, "num_images_total_ground_truth": 9},
    )
    assert m["entity"]["issue_count"] == 1  # 15 < 20 (lower limit); 9 >= 5 (the default)
    metrics = {x["id"]: x for x in m["entity"]["values"][0]["metrics"]}
    assert metrics["num_images_total_predicted"]["lower_limit"] == 20
    assert mon.measurements.query(target_id=sub_id, monitor_definition_id="generic_metrics") == [m]
    assert mon.measurements.list(iid, limit=1) == [m]
    assert [r["metadata"]["id"] for r in mon.runs.list(iid)] == [run["metadata"]["id"]]

    mon.subscriptions.delete(sub_id)
    assert mon.monitor_instances.list(target_id=sub_id) == []


def test_publishing_needs_a_runtime_that_provides_mlops_widgets(
    cpd_backend: Backend, fake_cpd: FakeCpd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No stock runtime can import mlops_widgets: without a named one nothing is deployed."""
    monkeypatch.delenv("MLOPS_CPD_SOFTWARE_SPEC")
    with pytest.raises(MlopsError, match="needs a software specification") as err:
        publish(cpd_backend, "generic_metrics")
    assert err.value.hint is not None and err.value.hint.action == "monitor.publish.software_spec"
    assert "--" not in err.value.message  # no CLI flag in a message the panel shows
    assert fake_cpd.wml.functions == {} and fake_cpd.wml.deployments == {}
    with pytest.raises(MlopsError, match="software specification.*runtime-9"):
        publish(cpd_backend, "generic_metrics", software_spec="runtime-9")


def test_published_provider_computes_runs_on_the_cluster(cpd_backend: Backend, fake_cpd: FakeCpd) -> None:
    out = publish(cpd_backend, "generic_metrics")
    # registered as IBM's helper does: with ?version=, on a deployment with a hardware spec
    assert re.search(r"/predictions\?version=\d{4}-\d\d-\d\d$", out["scoring_url"]), out["scoring_url"]
    deployment = fake_cpd.wml.deployments[out["wml_deployment_id"]]
    assert fake_cpd.wml.hardware_specs[deployment["entity"]["hardware_spec"]["id"]] == "M"
    code = fake_cpd.wml.function_code[deployment["entity"]["asset"]["id"]]
    assert b"def score(payload, token=None)" in code
    assert not [s for s in (b"fake-api-key", b"mlops-user", b"Bearer") if s in code]  # no credential
    recorded = cpd_backend.space.read_document(MONITOR_METADATA)
    assert recorded == {
        "generic_metrics": {
            "integrated_system_id": out["integrated_system_id"],
            "wml_deployment_id": out["wml_deployment_id"],
        }
    }
    assert (
        fake_cpd.openscale.credentials[out["integrated_system_id"]]["token_info"]["payload"]["username"]
        == "mlops-user"
    )

    now = time.time()
    seed_volume(fake_cpd, "Vol", "gt", {f"{i}_Seg.png": b"x" for i in range(6)}, now)
    seed_volume(fake_cpd, "Vol", "pred", {f"{i}_Seg.png": b"x" for i in range(2)}, now - 30 * 86400)
    mon = cpd_backend.monitoring
    sub_id = _subscription(mon)
    params = {
        "custom_metrics_provider_id": out["integrated_system_id"],
        "volume_display_name": "Vol",
        "dir_gt": "gt",
        "dir_pred": "pred",
        "most_recent": 7,
    }
    inst = mon.monitor_instances.create(
        monitor_definition_id="generic_metrics", target_id=sub_id, thresholds=[], parameters=params
    )
    iid = inst["metadata"]["id"]
    run = _wait(mon, iid, mon.runs.add(iid))
    assert run["entity"]["status"]["state"] == "finished", run["entity"]["status"]
    [measurement] = mon.measurements.list(iid)
    values = {x["id"]: x["value"] for x in measurement["entity"]["values"][0]["metrics"]}
    assert values == {
        "num_images_total_ground_truth": 6,
        "num_images_recent_ground_truth": 6,
        "num_images_total_predicted": 2,
        "num_images_recent_predicted": 0,
    }
    assert measurement["entity"]["run_id"] == run["metadata"]["id"]
    assert measurement["entity"]["issue_count"] == 2  # both predicted counts below 40


def test_a_failing_provider_fails_its_run_with_the_reason(cpd_backend: Backend, fake_cpd: FakeCpd) -> None:
    from PIL import Image

    out = publish(cpd_backend, "segmentation_metrics")
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(buf, "PNG")
    seed_volume(fake_cpd, "Vol", "gt", {"a_Seg.png": buf.getvalue()})
    seed_volume(fake_cpd, "Vol", "pred", {"a_Seg.png": buf.getvalue()})
    mon = cpd_backend.monitoring
    sub_id = _subscription(mon)
    inst = mon.monitor_instances.create(
        monitor_definition_id="segmentation_metrics",
        target_id=sub_id,
        thresholds=[],
        parameters={
            "custom_metrics_provider_id": out["integrated_system_id"],
            "volume_display_name": "Vol",
            "dir_gt": "gt",
            "dir_pred": "pred",
            "most_recent": 7,
        },
    )
    iid = inst["metadata"]["id"]
    run = _wait(mon, iid, mon.runs.add(iid))
    assert run["entity"]["status"]["state"] == "error"
    message = run["entity"]["status"]["failure"]["errors"][0]["message"]
    assert "3" in message and "1" in message  # fewer than 3 recent images: how many were found
    assert mon.measurements.list(iid) == []


def test_publishing_needs_username_and_apikey(
    cpd_env: dict, fake_cpd: FakeCpd, monkeypatch: pytest.MonkeyPatch, workspace: Workspace
) -> None:
    monkeypatch.delenv("USERNAME")
    monkeypatch.delenv("APIKEY")
    monkeypatch.setenv("USER_ACCESS_TOKEN", fake_cpd.router.issue_token("mlops-user"))
    with pytest.raises(MlopsError, match="needs USERNAME and APIKEY"):
        publish(get_backend("cpd", workspace), "generic_metrics")


def test_publish_on_the_embedded_backend_registers_only(backend: Backend) -> None:
    out = publish(backend, "generic_metrics")
    assert out["wml_deployment_id"] is None
    assert (
        backend.space.read_document(MONITOR_METADATA)["generic_metrics"]["integrated_system_id"]
        == out["integrated_system_id"]
    )
    assert (
        backend.monitoring.integrated_systems.get(out["integrated_system_id"])["entity"]["connection"][
            "endpoint"
        ]
        == "local:generic_metrics"
    )


@pytest.mark.parametrize("cpd_version", ["4.8.5"])
def test_publish_through_the_old_wml_sdk(cpd_backend: Backend, fake_cpd: FakeCpd) -> None:
    """Cloud Pak for Data 4.x: the function goes through ibm-watson-machine-learning (which
    waits 5 s before its first look at a new deployment)."""
    out = publish(cpd_backend, "generic_metrics")
    assert cpd_backend.session.sdk_kind() == "wml"  # type: ignore[attr-defined]
    assert fake_cpd.wml.deployments[out["wml_deployment_id"]]["entity"]["status"]["state"] == "ready"
    assert b"PROVIDER = 'generic_metrics'" in next(iter(fake_cpd.wml.function_code.values()))


def _provider_instance(cpd_backend: Backend, fake_cpd: FakeCpd, published: dict) -> str:  # type: ignore[type-arg]
    seed_volume(fake_cpd, "Vol", "gt", {f"{i}_Seg.png": b"x" for i in range(3)})
    seed_volume(fake_cpd, "Vol", "pred", {f"{i}_Seg.png": b"x" for i in range(3)})
    mon = cpd_backend.monitoring
    inst = mon.monitor_instances.create(
        monitor_definition_id="generic_metrics",
        target_id=_subscription(mon),
        thresholds=[],
        parameters={
            "custom_metrics_provider_id": published["integrated_system_id"],
            "volume_display_name": "Vol",
            "dir_gt": "gt",
            "dir_pred": "pred",
        },
    )
    return inst["metadata"]["id"]


@pytest.mark.parametrize("form", ["custom_monitor_run_id", "run_details"])
def test_the_provider_reads_both_payload_forms(cpd_backend: Backend, fake_cpd: FakeCpd, form: str) -> None:
    fake_cpd.openscale.payload_form = form
    iid = _provider_instance(cpd_backend, fake_cpd, publish(cpd_backend, "generic_metrics"))
    mon = cpd_backend.monitoring
    run = _wait(mon, iid, mon.runs.add(iid))
    assert run["entity"]["status"]["state"] == "finished", run["entity"]["status"]
    [measurement] = mon.measurements.list(iid)
    assert measurement["entity"]["run_id"] == run["metadata"]["id"]


def test_runs_without_the_enable_flag_never_call_the_provider(
    cpd_backend: Backend, fake_cpd: FakeCpd
) -> None:
    """OpenScale calls a custom provider only for instances with enable_custom_metric_runs (the
    fake too): our instances carry it; one without it gets a failed run and no call."""
    iid = _provider_instance(cpd_backend, fake_cpd, publish(cpd_backend, "generic_metrics"))
    fake_cpd.openscale.store["monitor_instances"][iid]["entity"]["parameters"].pop(
        "enable_custom_metric_runs"
    )
    mon = cpd_backend.monitoring
    run = _wait(mon, iid, mon.runs.add(iid))
    assert run["entity"]["status"]["state"] == "error"
    assert "enable_custom_metric_runs" in run["entity"]["status"]["failure"]["errors"][0]["message"]
    assert fake_cpd.openscale.provider_calls == []


def test_a_provider_without_a_token_fails_its_run_with_the_reason(
    cpd_backend: Backend, fake_cpd: FakeCpd
) -> None:
    """A runtime that hands score() only the payload (Cloud Pak for Data 4.x) and holds no
    credentials: the provider cannot sign in, says why, and OpenScale records that as the run's
    failure (no credential in the source to fall back on)."""
    iid = _provider_instance(cpd_backend, fake_cpd, publish(cpd_backend, "generic_metrics"))
    fake_cpd.wml.forward_token = False
    mon = cpd_backend.monitoring
    run = _wait(mon, iid, mon.runs.add(iid))
    assert run["entity"]["status"]["state"] == "error"
    message = run["entity"]["status"]["failure"]["errors"][0]["message"]
    assert "no token and has no credentials" in message and "USERNAME and APIKEY" in message
    assert mon.measurements.list(iid) == []


def test_on_cpd_4_the_provider_signs_in_with_its_runtimes_credentials(
    cpd_backend: Backend, fake_cpd: FakeCpd, cpd_env: dict[str, str]
) -> None:
    """score(payload) with one argument, as on Cloud Pak for Data 4.x: the provider signs in
    with USERNAME and APIKEY from its runtime's environment (set by the cluster's admin), and
    neither is in the function's code."""
    published = publish(cpd_backend, "generic_metrics")
    iid = _provider_instance(cpd_backend, fake_cpd, published)
    fake_cpd.wml.forward_token = False
    fake_cpd.wml.runtime_env = {"USERNAME": cpd_env["USERNAME"], "APIKEY": cpd_env["APIKEY"]}
    mon = cpd_backend.monitoring
    run = _wait(mon, iid, mon.runs.add(iid))
    assert run["entity"]["status"]["state"] == "finished", run["entity"]["status"]
    assert mon.measurements.list(iid)
    code = fake_cpd.wml.function_code[
        fake_cpd.wml.deployments[published["wml_deployment_id"]]["entity"]["asset"]["id"]
    ]
    assert cpd_env["APIKEY"].encode() not in code and cpd_env["USERNAME"].encode() not in code


def test_function_scoring_needs_a_version(cpd_backend: Backend, fake_cpd: FakeCpd) -> None:
    import requests

    out = publish(cpd_backend, "generic_metrics")
    bare = out["scoring_url"].split("?")[0]
    token = fake_cpd.router.issue_token("mlops-user")
    resp = requests.post(
        bare,
        json={"input_data": [{"values": {}}]},
        verify=str(fake_cpd.certs.ca),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert resp.status_code == 400 and "version" in resp.text


def test_republishing_replaces_the_function_deployment_and_integrated_system(
    cpd_backend: Backend, fake_cpd: FakeCpd
) -> None:
    first = publish(cpd_backend, "generic_metrics")
    iid = _provider_instance(cpd_backend, fake_cpd, first)
    second = publish(cpd_backend, "generic_metrics")
    assert second["integrated_system_id"] != first["integrated_system_id"]
    assert list(fake_cpd.wml.deployments) == [second["wml_deployment_id"]]
    assert len(fake_cpd.wml.functions) == 1
    assert list(fake_cpd.openscale.store["integrated_systems"]) == [second["integrated_system_id"]]
    # the monitor instance now calls the new provider
    mon = cpd_backend.monitoring
    params = mon.monitor_instances.get(iid)["entity"]["parameters"]
    assert params["custom_metrics_provider_id"] == second["integrated_system_id"]
    run = _wait(mon, iid, mon.runs.add(iid))
    assert run["entity"]["status"]["state"] == "finished", run["entity"]["status"]


def test_a_posted_measurement_is_read_back_by_its_run(cpd_backend: Backend, fake_cpd: FakeCpd) -> None:
    """Newer measurements of other runs fill the first page of a listing: the one just posted
    is found by its run id, not by page order."""
    mon = cpd_backend.monitoring
    mon.monitor_definitions.add(BUILTIN["generic_metrics"])
    inst = mon.monitor_instances.create(
        monitor_definition_id="generic_metrics", target_id=_subscription(mon), thresholds=[], parameters={}
    )
    iid = inst["metadata"]["id"]
    fake_cpd.openscale.page = 2
    for i in range(3):
        mon.measurements.add(
            iid,
            run_id=f"other-{i}",
            metrics={"num_images_total_predicted": i},
            timestamp=f"2999-01-0{i + 1}T00:00:00.000000Z",
        )
    mine = mon.measurements.add(iid, run_id="mine", metrics={"num_images_total_predicted": 7})
    assert mine["entity"]["run_id"] == "mine"
    assert [m["entity"]["run_id"] for m in mon.measurements.list(iid, run_id="other-1")] == ["other-1"]
