"""WMLA EDI through `/dlim/v1` against the fake: console and inference hosts apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakecpd import FakeCpd
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)
from helpers import cpd_submission

from mlops_widgets.backends import get_backend
from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.cpd.inference import INJECT_BEGIN
from mlops_widgets.backends.local.inference import InferenceError
from mlops_widgets.errors import ConflictError, MlopsError, NotFoundError
from mlops_widgets.workspace import Workspace


def test_deploy_lifecycle(cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path) -> None:
    inf = cpd_backend.inference
    folder = cpd_submission(tmp_path)
    view = inf.deploy(
        "seg", folder, custom_args={"CPD_USERNAME": "alice"}, secret_args={"CPD_API_KEY": "s3cr3t-value"}
    )
    assert view.state == "stopped" and view.status == "STOPPED"
    assert view.url == f"{fake_cpd.inference_url}/dlim/v1/inference/seg"

    package = fake_cpd.dlim.packages["seg"]
    assert set(package) == {"kernel.py", "README.md", "model.json", "weights/w.bin"}
    kernel = package["kernel.py"].decode()
    assert kernel.startswith("from __future__ import annotations\n" + INJECT_BEGIN)
    assert "CPD_USERNAME = 'alice'" in kernel
    assert "CPD_API_KEY = _mlops_os.environ.get('CPD_API_KEY')" in kernel
    assert "s3cr3t-value" not in kernel  # the secret lives only in the profile's kernel.envs
    assert (folder / "kernel.py").read_text().count("CPD_USERNAME") == 1  # the caller's folder untouched
    envs = fake_cpd.dlim.models["seg"]["_profile"]["kernel"]["envs"]
    assert {"name": "CPD_API_KEY", "value": "s3cr3t-value"} in envs
    assert "s3cr3t-value" not in json.dumps(inf.view("seg").to_dict())  # shown masked

    profile = inf.update_profile("seg", {"policy": {"kernel_min": 2, "kernel_max": 4}})
    assert profile["policy"]["kernel_min"] == 2
    assert profile["policy"]["task_execution_timeout"] == 60  # the rest of the profile kept
    assert {"name": "CPD_API_KEY", "value": "s3cr3t-value"} in profile["kernel"]["envs"]

    started = inf.start("seg")
    assert started.state == "started" and started.status == "IDLE"
    assert [k.state for k in started.kernels] == ["idle", "idle"]
    assert [m.name for m in inf.list()] == ["seg"]

    body = b'{"image": "aGVsbG8="}'
    assert inf.infer("seg", body) == body  # the fake's echo kernel, text/plain and all

    with pytest.raises(ConflictError, match="only be changed while the model is stopped"):
        inf.update_profile("seg", {"policy": {"kernel_min": 1}})

    # deploying again stops the running deployment, waits for `disabled`, then updates it
    (folder / "kernel.py").write_text("print('v2')\n")
    inf.deploy("seg", folder)
    assert fake_cpd.dlim.packages["seg"]["kernel.py"] == b"print('v2')\n"
    assert fake_cpd.dlim.models["seg"]["_profile"]["policy"]["kernel_min"] == 2
    assert _order(fake_cpd, "seg").index("stop") < _order(fake_cpd, "seg").index("redeploy")

    inf.undeploy("seg")
    with pytest.raises(NotFoundError, match="seg"):
        inf.view("seg")
    with pytest.raises(NotFoundError):
        inf.infer("seg", b"{}")


def _order(fake: FakeCpd, name: str) -> list[str]:
    """The lifecycle calls the fake saw for `name`, with the instance state polls between."""
    out = []
    for method, path, status in fake.router.log:
        if path == f"/dlim/v1/model/{name}/operation/stop":
            out.append("stop")
        elif path == f"/dlim/v1/model/{name}/operation/start":
            out.append("start")
        elif path == f"/dlim/v1/deployment/model/{name}":
            out.append("redeploy")
        elif method == "DELETE" and path == f"/dlim/v1/model/{name}":
            out.append("delete" if status < 300 else "refused delete")
    return out


def test_stop_waits_for_disabled_before_delete(
    cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path
) -> None:
    """EDI stops asynchronously and refuses to delete a model that is not disabled: undeploy
    of a started deployment stops it, polls until `disabled`, then deletes (no refused call)."""
    fake_cpd.dlim.stop_delay = 0.5
    inf = cpd_backend.inference
    inf.deploy("seg", cpd_submission(tmp_path))
    inf.start("seg")
    inf.undeploy("seg")
    assert _order(fake_cpd, "seg") == ["start", "stop", "delete"]
    polls = [s for m, p, s in fake_cpd.router.log if p == "/dlim/v1/model/seg/instance"]
    assert len(polls) > 2  # it waited through `stopping`
    assert "seg" not in fake_cpd.dlim.models


def test_start_waits_for_the_started_state_and_says_when_it_does_not_come(
    cpd_backend: Backend,
    fake_cpd: FakeCpd,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    workspace: Workspace,
) -> None:
    inf = cpd_backend.inference
    inf.deploy("seg", cpd_submission(tmp_path))
    fake_cpd.dlim.start_delay = 0.4
    view = inf.start("seg")  # answered at once by EDI (`deploying`): waits for `enabled`
    assert view.state == "started" and view.status == "IDLE"
    assert fake_cpd.dlim.state("seg") == "enabled"
    inf.stop("seg")
    assert fake_cpd.dlim.state("seg") == "disabled"  # stop returned only once disabled

    fake_cpd.dlim.start_delay = 3600  # a deployment whose kernels never come up
    monkeypatch.setenv("MLOPS_CPD_EDI_TIMEOUT", "0.3")
    with pytest.raises(
        MlopsError,
        match="did not reach the started state within 0.3 s \\(WMLA still reports 'not-available'\\)",
    ) as err:
        get_backend("cpd", workspace).inference.start("seg")
    assert err.value.hint is not None and "MLOPS_CPD_EDI_TIMEOUT" in err.value.hint.text


def test_the_fake_is_as_strict_as_edi(cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path) -> None:
    """What the fake refuses, so the client cannot pass by accident: a bearer token on dlim
    management (IBM's client sends X-Auth-Token), deleting a started model."""
    import requests

    inf = cpd_backend.inference
    inf.deploy("seg", cpd_submission(tmp_path))
    inf.start("seg")
    token = fake_cpd.router.issue_token("mlops-user")
    ca = str(fake_cpd.certs.ca)
    url = f"{fake_cpd.base_url}/dlim/v1/model/seg"
    assert (
        requests.get(url, headers={"Authorization": f"Bearer {token}"}, verify=ca, timeout=10).status_code
        == 401
    )
    refused = requests.delete(url, headers={"X-Auth-Token": token}, verify=ca, timeout=10)
    assert refused.status_code == 409 and "cannot be removed if it's started" in refused.text
    assert requests.get(url, headers={"X-Auth-Token": token}, verify=ca, timeout=10).json()["name"] == "seg"


def test_inference_goes_to_the_inference_host_only(
    cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path
) -> None:
    inf = cpd_backend.inference
    inf.deploy("seg", cpd_submission(tmp_path))
    with pytest.raises(InferenceError) as err:
        inf.infer("seg", b"{}")  # stopped: WMLA answers 503
    assert err.value.status == 503
    # the console host does not serve inference, the inference host serves nothing else
    import requests

    token = fake_cpd.router.issue_token("mlops-user")
    headers = {"X-Auth-Token": token}
    ca = str(fake_cpd.certs.ca)
    assert (
        requests.post(
            f"{fake_cpd.base_url}/dlim/v1/inference/seg", headers=headers, verify=ca, timeout=10
        ).status_code
        == 404
    )
    assert (
        requests.get(
            f"{fake_cpd.inference_url}/dlim/v1/model", headers=headers, verify=ca, timeout=10
        ).status_code
        == 404
    )


def test_custom_arg_names_must_be_python_names(cpd_backend: Backend, tmp_path: Path) -> None:
    with pytest.raises(MlopsError, match="not a valid Python name"):
        cpd_backend.inference.deploy("seg", cpd_submission(tmp_path), custom_args={"bad-name": "x"})


def test_inference_needs_wmla_host(cpd_env: dict, monkeypatch: pytest.MonkeyPatch, workspace) -> None:  # noqa: ANN001
    from mlops_widgets.backends import get_backend

    monkeypatch.delenv("WMLA_HOST")
    monkeypatch.delenv("WMLA_INFERENCE_HOST")
    with pytest.raises(MlopsError, match="WMLA_HOST"):
        get_backend("cpd", workspace).inference  # noqa: B018


def test_a_model_without_an_instance_yet_is_stopped(
    cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path
) -> None:
    """Some clusters answer 404 for the instance of a model never started: it is deployed and
    stopped (EDI's `not-available`), so a redeploy updates it and a start starts it."""
    fake_cpd.dlim.no_instance_until_started = True
    inf = cpd_backend.inference
    folder = cpd_submission(tmp_path)
    assert inf.deploy("seg", folder).state == "stopped"
    assert inf.deploy("seg", folder).state == "stopped"  # updated in place, not created twice
    assert _order(fake_cpd, "seg") == ["redeploy"]
    assert inf.start("seg").state == "started"
    inf.undeploy("seg")
    assert "seg" not in fake_cpd.dlim.models


def test_a_redeploy_during_a_start_lets_it_finish_then_stops(
    cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path
) -> None:
    """Right after a start EDI says not-available (recorded): that is starting, not stopped, so
    a redeploy waits for the start to finish, stops, waits for disabled and updates (the fake
    refuses a stop while not-available and an update while not disabled)."""
    inf = cpd_backend.inference
    folder = cpd_submission(tmp_path)
    inf.deploy("seg", folder)
    fake_cpd.dlim.start_delay = 0.5
    inf._edi("starting seg", lambda c: c.start_model_inference("seg"))
    view = inf.view("seg")
    assert (view.state, view.status) == ("started", "STARTING")
    assert [v.status for v in inf.list()] == ["STARTING"]
    again = inf.deploy("seg", folder)
    assert (again.state, again.status) == ("stopped", "STOPPED")
    assert fake_cpd.dlim.state("seg") == "disabled"
    statuses = [s for m, p, s in fake_cpd.router.log if p.endswith("/operation/stop")]
    assert statuses == [200]
