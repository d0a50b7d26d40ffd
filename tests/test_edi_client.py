"""IBM's own EDI client (`ibm-wmla`, ElasticDistributedInferenceV2) and curl against `mlops serve`:
the local service answers in the shapes of IBM's models, start and stop are asynchronous."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import ECHO_KERNEL, deploy_started, make_folder
from ibm_cloud_sdk_core.authenticators import BearerTokenAuthenticator, NoAuthAuthenticator
from ibm_wmla.wmla_api_edi_v2 import ElasticDistributedInferenceV2, Model, ModelAppProfile, ModelInstance

from mlops_widgets.backends.local.inference import LocalInference, start_service
from mlops_widgets.workspace import Workspace


def poll(check: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def ibm_client(info: dict[str, Any]) -> ElasticDistributedInferenceV2:
    client = ElasticDistributedInferenceV2(authenticator=BearerTokenAuthenticator(info["token"]))
    client.set_service_url(f"http://{info['host']}:{info['port']}")
    return client


def test_ibm_wmla_client_drives_a_deployment_of_the_local_service(
    workspace: Workspace, tmp_path: Path
) -> None:
    info = start_service(workspace)
    edi = ibm_client(info)
    folder = make_folder(tmp_path, name="pingpong", tag="demo", mk_environments=[{"name": "K", "value": "V"}])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname="pingpong")
    buf.seek(0)
    assert edi.deploy_model(body=buf).get_status_code() == 200

    (listed,) = edi.get_models().get_result()
    model = Model.from_dict(edi.get_model("pingpong").get_result())
    assert Model.from_dict(listed) == model
    assert model.name == "pingpong" and model.tag == "demo" and model.kernel_path == "kernel.py"
    assert model.runtime == "dlipy3" and model.size > 0 and Path(model.model_path).is_dir()
    assert model.service_uri.endswith("/dlim/v1/inference/pingpong")
    assert [e.to_dict() for e in model.mk_environments] == [{"name": "K", "value": "V"}]
    assert ModelInstance.from_dict(edi.get_model_instance("pingpong").get_result()).state == "disabled"

    profile = ModelAppProfile.from_dict(edi.get_model_profile("pingpong").get_result())
    assert profile.policy.kernel_min == 1
    doc = profile.to_dict()
    doc["policy"].update(kernel_min=2, kernel_max=2)
    updated = ModelAppProfile.from_dict(edi.update_model_profile("pingpong", doc).get_result())
    assert (updated.policy.kernel_min, updated.policy.kernel_max) == (2, 2)
    assert edi.get_model_profile("pingpong").get_result()["policy"]["kernel_min"] == 2

    # Start answers at once; the instance shows `enabled` once both kernels serve.
    assert edi.start_model_inference("pingpong").get_status_code() == 200

    def enabled() -> ModelInstance | None:
        instance = ModelInstance.from_dict(edi.get_model_instance("pingpong").get_result())
        return instance if instance.state == "enabled" else None

    instance = poll(enabled, "enabled")
    assert len(instance.instances[0].isd_container) == 2
    assert all(c.container_status == "idle" for c in instance.instances[0].isd_container)

    out = edi.run_inference("pingpong", {"hello": "edi"}).get_result()
    assert out["input"] == {"hello": "edi"} and out["env"] == {}

    assert edi.stop_model_inference("pingpong").get_status_code() == 200
    poll(lambda: edi.get_model_instance("pingpong").get_result()["state"] == "disabled", "disabled")
    assert edi.delete_model("pingpong").get_status_code() == 200
    assert edi.get_models().get_result() == []


def test_ibm_client_with_its_x_auth_token_header(workspace: Workspace) -> None:
    info = start_service(workspace)
    edi = ElasticDistributedInferenceV2(authenticator=NoAuthAuthenticator())
    edi.set_service_url(f"http://{info['host']}:{info['port']}")
    edi.set_default_headers({"X-Auth-Token": info["token"]})
    assert edi.get_models().get_result() == []


def test_ibm_client_lists_the_runtimes(workspace: Workspace) -> None:
    from ibm_cloud_sdk_core import ApiException
    from ibm_wmla.wmla_api_edi_v2 import Runtime, Runtimes

    edi = ibm_client(start_service(workspace))
    runtimes = Runtimes.from_dict(edi.get_runtimes().get_result())
    own = runtimes.runtimes[0]
    assert own.description.startswith("dlipy3: Python 3.") and Path(own.launcher).exists()
    assert Runtime.from_dict(edi.get_runtime_details("dlipy3").get_result()) == own
    with pytest.raises(ApiException) as info:
        edi.get_runtime_details("nope")
    assert info.value.status_code == 404


def test_curl_with_x_auth_token_reaches_a_deployment(workspace: Workspace, tmp_path: Path) -> None:
    inference = LocalInference(workspace)
    deploy_started(inference, make_folder(tmp_path, ECHO_KERNEL), kernel_min=1, kernel_max=1)
    token = json.loads((workspace.root / "inference" / "service.json").read_text())["token"]
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--fail-with-body",
            "-H",
            f"X-Auth-Token: {token}",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{"do": "echo", "n": 1}',
            inference.url("dep"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["input"] == {"do": "echo", "n": 1}
    denied = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-d", "{}", inference.url("dep")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert denied.stdout == "401"


@pytest.mark.parametrize("state", ["enabled", "disabled"])
def test_the_protocol_view_follows_the_edi_instance(workspace: Workspace, tmp_path: Path, state: str) -> None:
    inference = LocalInference(workspace)
    view = deploy_started(inference, make_folder(tmp_path), kernel_min=1, kernel_max=1)
    if state == "disabled":
        view = inference.stop("dep")  # waits for `disabled`
    edi = ibm_client(start_service(workspace))
    instance = edi.get_model_instance("dep").get_result()
    assert instance["state"] == state
    assert view.state == ("started" if state == "enabled" else "stopped")
    assert view.status == ("IDLE" if state == "enabled" else "STOPPED")
    pods = [c["container_uid"] for i in instance["instances"] for c in i["isd_container"]]
    assert [k.pod for k in view.kernels] == pods


def test_ibm_client_logs_on_with_basic_auth_and_reads_the_readme(
    workspace: Workspace, tmp_path: Path
) -> None:
    """Issue 27: IBM's pingpong README starts with POST /dlim/v1/auth/token (404 with an HTML
    body), and get_model_readme answered 404. Both now answer as EDI does, in JSON."""
    from ibm_wmla.edi_authentication import ElasticDistributedInferenceAuthenticator as EDIAuthenticator

    info = start_service(workspace)
    base = f"http://{info['host']}:{info['port']}"
    LocalInference(workspace).deploy("pingpong", make_folder(tmp_path, name="pingpong"))
    # IBM's authenticator logs on with Basic auth (the token as the password) and sends the
    # user token it gets back as X-Auth-Token on every call.
    edi = ElasticDistributedInferenceV2(
        authenticator=EDIAuthenticator(username="someone", password=info["token"], url=base)
    )
    edi.set_service_url(base)
    token = edi.get_auth_token().get_result()
    assert token == {"user_token": info["token"], "service_token": info["token"]}
    assert [m["name"] for m in edi.get_models().get_result()] == ["pingpong"]
    readme = edi.get_model_readme("pingpong").get_result()
    assert readme == {"readme": (tmp_path / "pingpong" / "README.md").read_text()}
    wrong = ElasticDistributedInferenceV2(
        authenticator=EDIAuthenticator(username="someone", password="wrong", url=base)
    )
    wrong.set_service_url(base)
    with pytest.raises(Exception, match="401|service.json"):
        wrong.get_models()
    missing = ibm_client(info).get_model_readme
    with pytest.raises(Exception, match="no deployment named 'nope'"):
        missing("nope")


def test_a_profile_changed_by_ibms_client_is_recorded_and_kept_in_the_entry(
    backend: Any, workspace: Workspace, example_paths: Any
) -> None:
    """Issue 27: the connection timeout raised through IBM's client was reset by the next deploy."""
    from test_deploy import stage

    from mlops_widgets.ops import deploy, space
    from mlops_widgets.runner.trail import get_run, list_runs

    asset_id = stage(backend, example_paths, kernel_min=0, kernel_max=1)
    deploy.deploy_create(backend, "edited", asset_id)
    deploy.stop(backend, "edited")
    poll(lambda: backend.inference.view("edited").status == "STOPPED", "stopped")
    edi = ibm_client(start_service(workspace))
    doc = edi.get_model_profile("edited").get_result()
    doc["policy"]["kernel_max"] = 2
    doc["kernel"]["connection_timeout"] = 240
    assert edi.update_model_profile("edited", doc).get_status_code() == 200

    (event,) = list_runs(workspace, template="deploy.profile_edit")
    record = get_run(event.run_id, workspace)
    assert record.kind == "event" and record.status == "ok"
    assert record.parameters["deployment_name"] == "edited"
    assert record.parameters["client"].startswith("wmla-python-sdk")
    assert record.parameters["changed"] == {
        "kernel.connection_timeout": [90, 240],
        "policy.kernel_max": [1, 2],
    }
    _, entry = space.get_entry(backend, model_asset_id=asset_id)
    resources = entry["wmla_deployment"]["resource_configs"]
    assert resources["connection_timeout"] == 240 and resources["kernel_max"] == 2

    # The next deploy applies the entry: the change stays. Our own changes are not events.
    deploy.deploy_create(backend, "edited", asset_id)
    profile = backend.inference.get_profile("edited")
    assert profile["kernel"]["connection_timeout"] == 240 and profile["policy"]["kernel_max"] == 2
    assert len(list_runs(workspace, template="deploy.profile_edit")) == 1


def test_the_kernel_log_level_follows_dlim_mk_log_level(workspace: Workspace, tmp_path: Path) -> None:
    """Issue 27: DLIM_MK_LOG_LEVEL was ignored (DEBUG always)."""
    kernel = """\
import redhareapiversion
from redhareapi import Kernel

class Chatty(Kernel):
    def on_task_invoke(self, task_context):
        for say in (self.log_debug, self.log_info, self.log_warn, self.log_error):
            say("level-check " + say.__name__)
        task_context.set_output_data("{}")

if __name__ == '__main__':
    Chatty().run()
"""
    inference = LocalInference(workspace)
    seen = {}
    for level in ("WARN", "DEBUG", ""):
        name = f"chatty-{level.lower() or 'default'}"
        envs = [{"name": "DLIM_MK_LOG_LEVEL", "value": level}] if level else []
        deploy_started(
            inference,
            make_folder(tmp_path / name, kernel, name=name, mk_environments=envs),
            name,
            kernel_min=1,
        )
        inference.infer(name, b"{}")
        text = "\n".join(inference.logs(name))
        seen[level] = sorted(w.split("_")[1] for w in text.split() if w.startswith("log_"))
        inference.stop(name)
    assert seen == {
        "WARN": ["error", "warn"],
        "DEBUG": ["debug", "error", "info", "warn"],
        "": ["error", "info", "warn"],  # EDI's default profile sets INFO
    }
