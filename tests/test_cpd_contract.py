"""Contract tests: every response of the fake that IBM's clients parse goes through their own
model classes (ibm_wmla's EDI v2 models, ibm-watson-openscale's result classes), so the fake
cannot drift from the services' published shapes without a test failing here.

A workflow runs against the fake with response capture on; each captured JSON body is matched
to the class IBM's client declares for that call and parsed with its `from_dict`. A response no
rule covers fails the test (a new endpoint cannot slip past), and a mutated response (a required
field dropped on purpose) shows the check failing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakecpd import FakeCpd
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)
from fakecpd.fixtures import seed_volume
from helpers import cpd_submission

from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.monitoring_protocol import RUN_RUNNING
from mlops_widgets.errors import MlopsError
from mlops_widgets.ops.publish import publish

OS = r"/openscale/00000000-0000-0000-0000-000000000000/v2"
ID = r"[^/]+"


def _edi(name: str) -> Callable[[Any], Any]:
    from ibm_wmla import wmla_api_edi_v2

    return getattr(wmla_api_edi_v2, name).from_dict


def _wos(name: str) -> Callable[[Any], Any]:
    from ibm_watson_openscale.base_classes import watson_open_scale_v2

    return getattr(watson_open_scale_v2, name).from_dict


def _each(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda body: [parse(item) for item in body]


# (method, path) -> the class IBM's client declares for the result; None: IBM's client declares
# no result class (acknowledgements), so there is nothing of theirs to check
RULES: list[tuple[str, str, Callable[[], Callable[[Any], Any]] | None]] = [
    ("GET", r"/dlim/v1/model", lambda: _each(_edi("Model"))),
    ("GET", rf"/dlim/v1/model/{ID}", lambda: _edi("Model")),
    ("GET", rf"/dlim/v1/model/{ID}/instance", lambda: _edi("ModelInstance")),
    ("GET", rf"/dlim/v1/model/{ID}/appprofile", lambda: _edi("ModelAppProfile")),
    ("POST", r"/dlim/v1/deployment/model(/[^/]+)?", None),
    ("PUT", rf"/dlim/v1/model/{ID}/(appprofile|operation/(start|stop))", None),
    ("DELETE", rf"/dlim/v1/model/{ID}", None),
    ("POST", rf"/dlim/v1/inference/{ID}", None),  # the kernel's own answer
    ("GET", OS + r"/data_marts", lambda: _wos("DataMartDatabaseResponseCollection")),
    ("GET", OS + rf"/data_marts/{ID}", lambda: _wos("DataMartDatabaseResponse")),
    ("GET", OS + r"/service_providers", lambda: _wos("ServiceProviderResponseCollection")),
    ("(GET|POST)", OS + rf"/service_providers(/{ID})?", lambda: _wos("ServiceProviderResponse")),
    ("GET", OS + r"/subscriptions", lambda: _wos("SubscriptionResponseCollection")),
    ("(GET|POST)", OS + rf"/subscriptions(/{ID})?", lambda: _wos("SubscriptionResponse")),
    ("GET", OS + r"/monitor_definitions", lambda: _wos("MonitorCollections")),
    ("(GET|POST)", OS + rf"/monitor_definitions(/{ID})?", lambda: _wos("MonitorDisplayForm")),
    ("GET", OS + r"/integrated_systems", lambda: _wos("IntegratedSystemCollection")),
    ("(GET|POST)", OS + rf"/integrated_systems(/{ID})?", lambda: _wos("IntegratedSystemResponse")),
    ("GET", OS + r"/monitor_instances", lambda: _wos("MonitorInstanceCollection")),
    ("(GET|POST|PATCH)", OS + rf"/monitor_instances(/{ID})?", lambda: _wos("MonitorInstanceResponse")),
    ("GET", OS + rf"/monitor_instances/{ID}/runs", lambda: _wos("MonitoringRunCollection")),
    ("(GET|POST|PATCH)", OS + rf"/monitor_instances/{ID}/runs(/{ID})?", lambda: _wos("MonitoringRun")),
    (
        "GET",
        OS + rf"/monitor_instances/{ID}/measurements",
        lambda: _wos("MonitorMeasurementResponseCollection"),
    ),
    ("GET", OS + rf"/monitor_instances/{ID}/measurements/{ID}", lambda: _wos("MonitorMeasurementResponse")),
    ("POST", OS + rf"/monitor_instances/{ID}/measurements", None),
    ("GET", OS + r"/measurements", lambda: _wos("MeasurementsResponseCollection")),
]
COVERED = re.compile(r"^(/dlim/v1/|/openscale/)")


def check(responses: list[tuple[str, str, int, Any]]) -> list[str]:
    """Parse every captured success response of dlim and OpenScale with IBM's class; what fails,
    in words (empty: all conform)."""
    problems = []
    for method, path, status, body in responses:
        if status >= 300 or not COVERED.match(path):
            continue
        rule = next((r for r in RULES if re.fullmatch(r[0], method) and re.fullmatch(r[1], path)), None)
        if rule is None:
            problems.append(f"{method} {path}: no contract rule (which class of IBM's client reads it?)")
            continue
        if rule[2] is not None:
            try:
                rule[2]()(body)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                problems.append(f"{method} {path}: {exc}")
    return problems


def _wait(mon: Any, iid: str, run: dict) -> dict:
    deadline = time.monotonic() + 120
    while run["entity"]["status"]["state"] == RUN_RUNNING and time.monotonic() < deadline:
        time.sleep(0.1)
        run = mon.runs.get(iid, run["metadata"]["id"])
    return run


def _workflow(backend: Backend, fake: FakeCpd, tmp_path: Path) -> None:
    """Every call the backend makes to dlim and OpenScale, at least once."""
    from mlops_widgets.backends.cpd.doctor import run_checks

    inf = backend.inference
    folder = cpd_submission(tmp_path)
    inf.deploy("seg", folder)
    inf.update_profile("seg", {"policy": {"kernel_min": 1, "kernel_max": 2}})
    inf.start("seg")
    inf.infer("seg", b'{"a": 1}')
    inf.list()
    inf.deploy("seg", folder)  # a redeploy: stop, wait, update
    inf.undeploy("seg")

    mon = backend.monitoring
    published = publish(backend, "generic_metrics")
    seed_volume(fake, "Vol", "gt", {"a_Seg.png": b"x"})
    seed_volume(fake, "Vol", "pred", {"a_Seg.png": b"x"})
    sp = mon.service_providers.add("OpenScale Headless Service Provider")
    mon.service_providers.list()
    mon.service_providers.get(sp["metadata"]["id"])
    sub = mon.subscriptions.add(
        service_provider_id=sp["metadata"]["id"],
        name="seg Monitor",
        deployment_name="seg",
        deployment_url="https://x/seg",
    )
    sub_id = sub["metadata"]["id"]
    mon.subscriptions.list()
    mon.subscriptions.get(sub_id)
    inst = mon.monitor_instances.create(
        monitor_definition_id="generic_metrics",
        target_id=sub_id,
        thresholds=[],
        parameters={
            "custom_metrics_provider_id": published["integrated_system_id"],
            "volume_display_name": "Vol",
            "dir_gt": "gt",
            "dir_pred": "pred",
        },
    )
    iid = inst["metadata"]["id"]
    mon.monitor_instances.update(
        iid, thresholds=[{"metric_id": "num_images_total_predicted", "type": "lower_limit", "value": 2}]
    )
    mon.integrated_systems.get(published["integrated_system_id"])
    run = _wait(mon, iid, mon.runs.add(iid))
    assert run["entity"]["status"]["state"] == "finished", run["entity"]["status"]
    mon.runs.list(iid)
    mon.measurements.list(iid)
    mon.measurements.query(target_id=sub_id, monitor_definition_id="generic_metrics")
    assert all(c.ok for c in run_checks()), [c for c in run_checks() if not c.ok]


@pytest.fixture
def cpd_version() -> str:
    return "5.1.0"


def test_every_parsed_response_of_the_fake_has_ibms_shape(
    cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path
) -> None:
    fake_cpd.router.capture = True
    _workflow(cpd_backend, fake_cpd, tmp_path)
    seen = {(m, p) for m, p, _, _ in fake_cpd.router.responses}
    assert any(p.endswith("/instance") for _, p in seen) and any("/runs" in p for _, p in seen)
    assert check(fake_cpd.router.responses) == []


@pytest.mark.parametrize(
    ("method", "pattern", "drop", "expected"),
    [
        (
            "GET",
            r"/dlim/v1/model/seg/instance$",
            "state",
            "Required property 'state' not present in ModelInstance",
        ),
        (
            "GET",
            r"/dlim/v1/model/seg$",
            "kernel_path",
            "Required property 'kernel_path' not present in Model",
        ),
        (
            "GET",
            r"/monitor_instances/[^/]+/runs/[^/]+$",
            "entity",
            "Required property 'entity' not present in MonitoringRun",
        ),
    ],
)
def test_a_response_that_loses_a_required_field_fails_the_contract(
    cpd_backend: Backend,
    fake_cpd: FakeCpd,
    tmp_path: Path,
    method: str,
    pattern: str,
    drop: str,
    expected: str,
) -> None:
    """The check can fail: the same workflow with one response drifted (a required field
    dropped) is reported, naming the field and IBM's class."""

    def without(body: Any) -> Any:
        body.pop(drop, None)
        return body

    fake_cpd.router.mutate(method, pattern, without)
    fake_cpd.router.capture = True
    try:
        _workflow(cpd_backend, fake_cpd, tmp_path)
    except (MlopsError, AssertionError):
        pass  # our client may stumble on the drifted shape too; the contract check must say why
    problems = check(fake_cpd.router.responses)
    assert problems and all(expected in p for p in problems), problems


def test_the_client_reports_a_drifted_edi_document_instead_of_guessing(
    cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path
) -> None:
    """Our client reads EDI documents through IBM's classes too: a state-less instance
    document is an error naming the field, not an 'unknown' state."""
    cpd_backend.inference.deploy("seg", cpd_submission(tmp_path))
    fake_cpd.router.mutate("GET", r"/instance$", lambda body: {k: v for k, v in body.items() if k != "state"})
    with pytest.raises(MlopsError, match="instance document this client cannot read.*'state'"):
        cpd_backend.inference.view("seg")
