"""`mlops doctor`, the cpd settings, and the process left as it was found after cpd commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from fakecpd import FakeCpd
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)
from fakecpd.tls_state import process_tls_state

from mlops_widgets.backends.cpd.session import CpdSettings


def test_doctor_reports_each_service(cli, cpd_env: dict, fake_cpd: FakeCpd) -> None:  # noqa: ANN001
    fake_cpd.volumes.create("demo-volume")
    res = cli("doctor")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    services = [re.split(r"\s{2,}", line)[1] for line in lines]
    assert services == [
        "environment",
        "Cloud Pak for Data",
        "sign-in",
        "Watson Machine Learning",
        "WMLA (console)",
        "WMLA (inference)",
        "OpenScale",
        "storage volumes",
    ]
    assert all(line.startswith("ok") for line in lines)
    text = res.stdout
    assert "Watson Machine Learning 4.8.5" in text
    assert "ibm-watson-machine-learning 1.0" in text and "ibm-watson-openscale 3.1" in text
    assert "1 volume(s): demo-volume" in text
    # per service, the contract facts the backend relies on, in words
    assert "EDI v2 API with the token in X-Auth-Token, through ibm-wmla 0.1" in text
    assert (
        "data mart 00000000-0000-0000-0000-000000000000 (the Cloud Pak for Data instance) is active" in text
    )
    assert f"space {fake_cpd.space_id} found" in text
    assert cpd_env["APIKEY"] not in res.output


def test_doctor_says_what_is_missing(cli, cpd_env: dict, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("APIKEY")
    monkeypatch.delenv("SPACE_ID")
    res = cli("doctor", "--json")
    assert res.exit_code == 1
    checks = json.loads(res.stdout)
    env = checks[0]
    assert not env["ok"]
    assert "APIKEY: USERNAME is set but its API key is not" in env["detail"]
    assert "SPACE_ID: the Watson Machine Learning deployment space id" in env["detail"]
    failed = [c["service"] for c in checks if not c["ok"]]
    assert failed == [
        "environment",
        "sign-in",
        "Watson Machine Learning",
        "WMLA (console)",
        "WMLA (inference)",
        "OpenScale",
        "storage volumes",
    ]
    assert all(c["detail"] == "skipped: sign-in failed" for c in checks[3:])
    assert "checks failed: environment, sign-in, Watson" in res.stderr


def test_doctor_fails_on_an_expired_token(
    cli,
    cpd_env: dict,
    fake_cpd: FakeCpd,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    monkeypatch.setenv("USER_ACCESS_TOKEN", fake_cpd.router.issue_token("mlops-user", ttl=-60))
    res = cli("doctor", "--json")  # renewable from USERNAME and APIKEY: said, not a failure
    env = json.loads(res.stdout)[0]
    assert env["ok"] and "EXPIRED (renewed from USERNAME and APIKEY)" in env["detail"]
    monkeypatch.delenv("USERNAME")
    monkeypatch.delenv("APIKEY")
    res = cli("doctor", "--json")
    assert res.exit_code == 1
    env = json.loads(res.stdout)[0]
    assert not env["ok"] and "USER_ACCESS_TOKEN has EXPIRED: get a new one" in env["detail"]


def test_doctor_without_any_setting(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    for name in ("BASE_URL", "RUNTIME_ENV_APSX_URL", "USER_ACCESS_TOKEN", "USERNAME", "APIKEY"):
        monkeypatch.delenv(name, raising=False)
    res = cli("doctor")
    assert res.exit_code == 1
    assert "BASE_URL (or RUNTIME_ENV_APSX_URL): the Cloud Pak for Data URL" in res.stdout
    assert "USER_ACCESS_TOKEN, or USERNAME and APIKEY: how to sign in" in res.stdout
    assert "skipped: set BASE_URL first" in res.stdout


def test_doctor_names_an_unreachable_or_untrusted_cluster(
    cli,
    cpd_env: dict,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    monkeypatch.delenv("MLOPS_CPD_CA_BUNDLE")
    res = cli("doctor")
    assert res.exit_code == 1
    assert "TLS verification of" in res.stdout and "MLOPS_CPD_CA_BUNDLE" in res.stdout
    monkeypatch.setenv("BASE_URL", "https://127.0.0.1:9")  # nothing listens there
    res = cli("doctor")
    assert "cannot reach https://127.0.0.1:9" in res.stdout


def test_cpd_commands_leave_the_process_as_they_found_it(cli, cpd_env: dict) -> None:  # noqa: ANN001
    state, environ = process_tls_state(), dict(os.environ)
    for args in (
        ("doctor",),
        ("--backend", "cpd", "config", "list"),
        ("--backend", "cpd", "deploy", "list"),
        ("--backend", "cpd", "provider", "list"),
    ):
        res = cli(*args)
        assert res.exit_code == 0, res.output
        assert process_tls_state() == state, args
        assert dict(os.environ) == environ, args


def test_settings_from_the_environment() -> None:
    s = CpdSettings.from_env(
        {
            "RUNTIME_ENV_APSX_URL": "https://cpd-ns.apps.example.com/",
            "USER_ACCESS_TOKEN": "tok-secret",
            "WML_SPACE_ID": "space-1",
            "WMLA_HOST": "wmla-console-ns.apps.example.com",
            "APIKEY": "key-secret",
        }
    )
    assert s.base_url == "https://cpd-ns.apps.example.com"
    assert s.space_id == "space-1"
    assert s.wmla_url == "https://wmla-console-ns.apps.example.com"
    assert s.inference_url == "https://wmla-inference-ns.apps.example.com"
    assert s.verify is True  # never False
    assert "tok-secret" not in repr(s) and "key-secret" not in repr(s)
    assert s.missing("inference") == []
    both = CpdSettings.from_env(
        {
            "BASE_URL": "https://a",
            "WMLA_HOST": "https://w/dlim/v1",
            "WMLA_INFERENCE_HOST": "https://i",
            "MLOPS_CPD_CA_BUNDLE": "/no/such.pem",
        }
    )
    assert (both.wmla_url, both.inference_url) == ("https://w", "https://i")
    assert any("MLOPS_CPD_CA_BUNDLE: /no/such.pem is not a file" in m for m in both.missing("space"))


def test_the_backend_imports_no_sdk_until_used() -> None:
    code = (
        "import sys\n"
        "from mlops_widgets.backends import get_backend\n"
        "b = get_backend('cpd', '/tmp/unused-ws')\n"
        "loaded = [m for m in sys.modules if m.startswith(('ibm_', 'requests', 'httpx'))]\n"
        "assert not loaded, loaded\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_BACKEND"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr


_IMPORT_CHECK = """
import warnings, os
before = (list(warnings.filters), os.environ.get("REQUESTS_CA_BUNDLE"))
{importer}
after = (list(warnings.filters), os.environ.get("REQUESTS_CA_BUNDLE"))
print("same" if before == after else "changed")
"""


@pytest.mark.parametrize(
    ("importer", "expected"),
    [
        ("import ibm_watson_openscale", "changed"),  # what the SDK does on its own
        (
            "from mlops_widgets.backends.cpd.contain import import_sdk\n"
            "for kind in ('openscale', 'wml', 'watsonx'): import_sdk(kind, None)",
            "same",
        ),
    ],
)
def test_sdk_imports_are_contained(importer: str, expected: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_CHECK.format(importer=importer)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout.strip() == expected, proc.stderr


def test_deploy_commands_on_cpd(cli, cpd_backend, tmp_path) -> None:  # noqa: ANN001
    from helpers import cpd_submission

    cpd_backend.inference.deploy(
        "seg",
        cpd_submission(tmp_path),
        custom_args={"CPD_USERNAME": "a"},
        secret_args={"CPD_API_KEY": "secret-value-1"},
    )
    cpd_backend.inference.start("seg")
    view = cli("--backend", "cpd", "deploy", "view", "--name", "seg")
    assert view.exit_code == 0, view.output
    assert "status: IDLE" in view.stdout and "custom args: CPD_USERNAME; secret: CPD_API_KEY" in view.stdout
    assert "secret-value-1" not in view.output
    infer = cli("--backend", "cpd", "deploy", "infer", "--name", "seg", "--data", '{"a": 1}')
    assert infer.exit_code == 0 and infer.stdout.strip() == '{"a": 1}'
    refused = cli("--backend", "cpd", "deploy", "stop", "--name", "nope")
    assert refused.exit_code == 1 and "Model nope does not exist" in refused.stderr
