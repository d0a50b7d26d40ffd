"""pytest fixtures for the cpd tests: a test module takes them all with
`from fakecpd.fixtures import *` (pytest finds fixtures by name in the module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakecpd import Certs, FakeCpd, make_certs
from mlops_widgets.backends import get_backend
from mlops_widgets.backends.base import Backend
from mlops_widgets.workspace import Workspace

# What a user's shell might carry that would leak into a test.
CPD_VARIABLES = (
    "BASE_URL",
    "RUNTIME_ENV_APSX_URL",
    "USER_ACCESS_TOKEN",
    "USERNAME",
    "APIKEY",
    "SPACE_ID",
    "WML_SPACE_ID",
    "WMLA_HOST",
    "WMLA_INFERENCE_HOST",
    "MLOPS_CPD_CA_BUNDLE",
    "MLOPS_CPD_SDK",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "MLOPS_CPD_SOFTWARE_SPEC",
)


@pytest.fixture(scope="session")
def cpd_certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("cpd-certs"))


@pytest.fixture(params=["4.8.5"])
def cpd_version(request: pytest.FixtureRequest) -> str:
    """The version the fake reports (4.x: ibm-watson-machine-learning; 5.x: ibm-watsonx-ai)."""
    return str(request.param)


@pytest.fixture
def fake_cpd(cpd_certs: Certs, cpd_version: str) -> Iterator[FakeCpd]:
    fake = FakeCpd(cpd_certs, version=cpd_version).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def cpd_env(fake_cpd: FakeCpd, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The process environment pointed at the fake (USERNAME + APIKEY), fast retries."""
    for name in CPD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = {**fake_cpd.env(), "MLOPS_CPD_RETRY_DELAY": "0.01"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def cpd_backend(cpd_env: dict[str, str], workspace: Workspace) -> Backend:
    return get_backend("cpd", workspace)


def seed_volume(
    fake: FakeCpd, volume: str, folder: str, files: dict[str, bytes], mtime: float | None = None
) -> None:
    for name, data in files.items():
        fake.volumes.put(volume, f"{folder}/{name}", data, mtime)


__all__ = ["cpd_backend", "cpd_certs", "cpd_env", "cpd_version", "fake_cpd"]
