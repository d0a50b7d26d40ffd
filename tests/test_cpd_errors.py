"""Error paths of the cpd backend: expired tokens, missing objects, refusals, server errors
with retry, and TLS verification that never silently drops."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakecpd import USER, FakeCpd
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)

from mlops_widgets.backends import get_backend
from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.cpd.contain import contained
from mlops_widgets.errors import ConflictError, MlopsError, NotFoundError
from mlops_widgets.workspace import Workspace


def _authorizations(fake: FakeCpd) -> int:
    return sum(1 for m, p, s in fake.router.log if p == "/icp4d-api/v1/authorize" and s == 200)


def test_an_expired_user_access_token_is_named(
    cpd_env: dict, fake_cpd: FakeCpd, monkeypatch: pytest.MonkeyPatch, workspace: Workspace
) -> None:
    monkeypatch.delenv("USERNAME")
    monkeypatch.delenv("APIKEY")
    monkeypatch.setenv("USER_ACCESS_TOKEN", fake_cpd.router.issue_token(USER, ttl=-60))
    backend = get_backend("cpd", workspace)
    for action in (lambda: backend.space.list_assets(), lambda: backend.inference.list()):
        with pytest.raises(MlopsError, match="USER_ACCESS_TOKEN has expired") as err:
            action()
        assert "USERNAME and APIKEY" in str(err.value)


def test_a_token_refused_by_the_server_is_named(
    cpd_env: dict, fake_cpd: FakeCpd, monkeypatch: pytest.MonkeyPatch, workspace: Workspace
) -> None:
    """A token that looks valid but that the cluster no longer accepts (expired server-side)."""
    monkeypatch.delenv("USERNAME")
    monkeypatch.delenv("APIKEY")
    monkeypatch.setenv("USER_ACCESS_TOKEN", fake_cpd.router.issue_token(USER))
    backend = get_backend("cpd", workspace)
    assert backend.inference.list() == []
    fake_cpd.router.revoke_tokens()
    with pytest.raises(MlopsError, match="USER_ACCESS_TOKEN has expired or was refused"):
        backend.inference.list()
    with pytest.raises(MlopsError, match="USER_ACCESS_TOKEN has expired or was refused"):
        backend.space.list_assets()


def test_an_expired_token_is_renewed_from_username_and_apikey(
    cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path
) -> None:
    space, inference, monitoring = cpd_backend.space, cpd_backend.inference, cpd_backend.monitoring
    space.list_assets()
    monitoring.service_providers.list()
    before = _authorizations(fake_cpd)
    fake_cpd.router.revoke_tokens()
    # every path picks up the new token: REST, the WML SDK, OpenScale
    assert inference.list() == []
    assert space.list_assets() == []
    assert monitoring.service_providers.list() == []
    (tmp_path / "f.txt").write_text("x")
    assert space.upload(tmp_path / "f.txt").name == "f.txt"
    assert _authorizations(fake_cpd) == before + 1


@pytest.mark.parametrize("cpd_version", ["4.8.5", "5.1.0"], ids=["wml-sdk", "watsonx-sdk"])
def test_the_first_sdk_use_after_a_renewal_takes_the_new_token(
    cpd_backend: Backend, fake_cpd: FakeCpd
) -> None:
    """Signed in over REST, then the token is refused: the SDK clients built afterwards (their
    401 retry included) must use the renewed token, not the one read before."""
    assert cpd_backend.inference.list() == []
    fake_cpd.router.revoke_tokens()
    assert cpd_backend.space.list_assets() == []  # builds the WML client
    fake_cpd.router.revoke_tokens()
    assert cpd_backend.monitoring.service_providers.list() == []  # builds the OpenScale client


def test_wrong_apikey_is_named(cpd_env: dict, monkeypatch: pytest.MonkeyPatch, workspace: Workspace) -> None:
    monkeypatch.setenv("APIKEY", "not-the-key")
    with pytest.raises(MlopsError, match="refused USERNAME 'mlops-user' with the given APIKEY"):
        get_backend("cpd", workspace).inference.list()


def test_missing_objects_are_not_found(cpd_backend: Backend, tmp_path: Path) -> None:
    missing = "4f1c9a52-0000-4000-8000-000000000000"
    with pytest.raises(NotFoundError, match=f"no asset with id {missing} in space"):
        cpd_backend.space.get_asset(missing)
    with pytest.raises(NotFoundError, match=missing):
        cpd_backend.space.download(missing, tmp_path / "x")
    with pytest.raises(NotFoundError, match="Model nope does not exist"):
        cpd_backend.inference.view("nope")
    with pytest.raises(NotFoundError, match="no monitor definition 'nope_metrics'") as err:
        cpd_backend.monitoring.monitor_definitions.get("nope_metrics")
    assert err.value.hint is not None and err.value.hint.action == "monitor.publish"
    assert "--" not in err.value.message


def test_a_refused_undeploy_is_a_conflict(cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path) -> None:
    """EDI refuses to delete a started model; should it refuse anyway (another user started it
    between our stop and our delete), the refusal reaches the user as a conflict, in its words."""
    from helpers import cpd_submission

    inf = cpd_backend.inference
    inf.deploy("seg", cpd_submission(tmp_path))
    fake_cpd.router.fail("DELETE", r"^/dlim/v1/model/seg$", 409, times=1)
    with pytest.raises(ConflictError, match="undeploying seg: refused \\(409\\)"):
        inf.undeploy("seg")
    inf.undeploy("seg")


def test_server_errors_are_retried(cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path) -> None:
    router = fake_cpd.router
    # REST (dlim): two 500s, then an answer
    router.fail("GET", r"^/dlim/v1/model$", 500, times=2)
    assert cpd_backend.inference.list() == []
    # SDK (WML search): one 503, then an answer
    cpd_backend.space.list_assets()
    router.fail("POST", r"/v2/asset_types/data_asset/search", 503, times=1)
    assert cpd_backend.space.list_assets() == []
    # OpenScale: one 502
    router.fail("GET", r"/v2/service_providers$", 502, times=1)
    assert cpd_backend.monitoring.service_providers.list() == []


def test_a_persistent_server_error_is_reported(cpd_backend: Backend, fake_cpd: FakeCpd) -> None:
    fake_cpd.router.fail("GET", r"^/dlim/v1/model$", 500, times=100)
    with pytest.raises(MlopsError, match="listing WMLA deployments: HTTP 500: injected fault"):
        cpd_backend.inference.list()
    tries = [e for e in fake_cpd.router.log if e[:2] == ("GET", "/dlim/v1/model")]
    assert len(tries) == 4  # one call and three retries, no more


def test_a_create_is_not_retried(cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path) -> None:
    """Retrying a POST that may have landed could deploy twice: report instead."""
    from helpers import cpd_submission

    fake_cpd.router.fail("POST", r"^/dlim/v1/deployment/model$", 500, times=1)
    with pytest.raises(MlopsError, match="deploying seg to WMLA: HTTP 500"):
        cpd_backend.inference.deploy("seg", cpd_submission(tmp_path))
    posts = [e for e in fake_cpd.router.log if e[:2] == ("POST", "/dlim/v1/deployment/model")]
    assert len(posts) == 1


def test_tls_verification_failure_is_an_error_never_a_downgrade(
    cpd_env: dict, fake_cpd: FakeCpd, monkeypatch: pytest.MonkeyPatch, workspace: Workspace
) -> None:
    monkeypatch.delenv("MLOPS_CPD_CA_BUNDLE")  # the system trust store does not know the fake's CA
    backend = get_backend("cpd", workspace)
    for action in (
        lambda: backend.space.list_assets(),
        lambda: backend.inference.list(),
        lambda: backend.monitoring.service_providers.list(),
    ):
        with pytest.raises(MlopsError, match="TLS verification .*failed.*MLOPS_CPD_CA_BUNDLE"):
            action()
    # a handshake that fails never reaches the server: anything logged would mean a retry
    # without verification got through
    assert fake_cpd.router.log == []


def test_the_wml_sdk_cannot_silently_retry_without_verification(fake_cpd: FakeCpd) -> None:
    """Left alone, the WML SDK's request wrapper retries an SSL failure with verify=False for the
    rest of the process; inside the containment the failure stays a failure."""

    from mlops_widgets.backends.cpd.contain import import_sdk

    import_sdk("wml", None)
    import ibm_watson_machine_learning._wrappers.requests as wrapper

    url = f"{fake_cpd.base_url}/ml/wml_services/version"
    with contained(None):
        with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
            wrapper.get(url)
        assert wrapper.verify == "True"  # the failure did not switch verification off
        with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
            wrapper.get(url)  # and the next call is not silently unverified either
    with contained(str(fake_cpd.certs.ca)):
        assert wrapper.get(url).status_code == 200


def test_openscale_keeps_verification_on(cpd_backend: Backend, fake_cpd: FakeCpd) -> None:
    client = cpd_backend.session.openscale()  # type: ignore[attr-defined]
    assert client.disable_ssl_verification is False
    assert client.http_config["verify"] == str(fake_cpd.certs.ca)


def test_only_the_calling_threads_output_is_swallowed(capsys: pytest.CaptureFixture[str]) -> None:
    """The SDKs' chatter inside a call is dropped; another thread printing meanwhile is not."""
    import threading

    with contained(None):
        print("sdk chatter")
        other = threading.Thread(target=lambda: print("other thread"))
        other.start()
        other.join()
    print("after")
    assert capsys.readouterr().out == "other thread\nafter\n"
