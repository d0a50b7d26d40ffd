"""Contract tests (fakecpd/contract.py): every answer the fake gives in a full workflow keeps the
contract of its endpoint family (WML v4, CAMS, volumes, execs, sign-in, version, EDI, OpenScale);
where IBM's class contradicts a recorded answer, the recording wins and a test says so; and a
mutation test, generated from the fields our client code reads, shows that renaming or dropping
any of them in the fake fails: the contract names it and our client's outcome changes.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakecpd import FakeCpd
from fakecpd.contract import CONTRADICTED, RULES, check, ibm_parser, problems_of
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)
from fakecpd.fixtures import CPD_VARIABLES, seed_volume
from helpers import cpd_submission

from mlops_widgets.backends import get_backend
from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.monitoring_protocol import RUN_RUNNING
from mlops_widgets.backends.training_protocol import JOB_ENDED, TrainingSpec
from mlops_widgets.backends.views import JobView
from mlops_widgets.ops.publish import publish
from mlops_widgets.workspace import Workspace

CORPUS = Path(__file__).parent / "data" / "cluster_answers"


def _wait_run(mon: Any, iid: str, run: dict) -> dict:
    deadline = time.monotonic() + 120
    while run["entity"]["status"]["state"] == RUN_RUNNING and time.monotonic() < deadline:
        time.sleep(0.1)
        run = mon.runs.get(iid, run["metadata"]["id"])
    return run


def _wait_job(backend: Backend, job_id: str) -> JobView:
    deadline = time.monotonic() + 60
    while (job := backend.training.get(job_id)).state not in JOB_ENDED and time.monotonic() < deadline:
        time.sleep(0.1)
    return job


def _trainer(tmp_path: Path) -> Path:
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "main.py").write_text(
        "import os, pathlib\nprint('epoch 1', flush=True)\n"
        "pathlib.Path(os.environ['RESULT_DIR'], 'model.txt').write_text('w')\n"
    )
    return folder


def _workflow(backend: Backend, fake: FakeCpd, tmp_path: Path) -> None:
    """Every call of the cpd backend, at least once."""
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

    space = backend.space
    (tmp_path / "notes.txt").write_text("n")
    asset = space.upload(tmp_path / "notes.txt")
    space.list_assets()
    space.download(asset.asset_id, tmp_path / "out" / "notes.txt")
    space.delete(asset.asset_id)

    job = backend.training.submit(_trainer(tmp_path), TrainingSpec(framework="PyTorch", main="main.py"))
    assert _wait_job(backend, job.id).state == "finished"
    list(backend.training.logs(job.id))
    backend.training.download_output(job.id, tmp_path / "trained")
    backend.training.list()

    mon = backend.monitoring
    published = publish(backend, "generic_metrics")
    seed_volume(fake, "Vol", "gt/sub", {"a_Seg.png": b"x"})
    seed_volume(fake, "Vol", "pred", {"a_Seg.png": b"x"})
    backend.volumes.list_volumes()
    backend.volumes.list_files("Vol", "gt", recursive=True)
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
            "dir_gt": "gt/sub",
            "dir_pred": "pred",
        },
    )
    iid = inst["metadata"]["id"]
    mon.monitor_instances.update(
        iid, thresholds=[{"metric_id": "num_images_total_predicted", "type": "lower_limit", "value": 2}]
    )
    mon.monitor_instances.set_schedule(
        iid, {"repeat_interval": 2, "repeat_unit": "hour", "repeat_type": "hour"}
    )
    mon.integrated_systems.get(published["integrated_system_id"])
    run = _wait_run(mon, iid, mon.runs.add(iid))
    assert run["entity"]["status"]["state"] == "finished", run["entity"]["status"]
    mon.runs.list(iid)
    mon.measurements.list(iid)
    mon.measurements.query(target_id=sub_id, monitor_definition_id="generic_metrics")
    assert all(c.ok for c in run_checks()), [c for c in run_checks() if not c.ok]


@pytest.fixture
def cpd_version() -> str:
    return "4.8.5"


def test_every_answer_of_the_fake_in_a_full_workflow_keeps_the_contract(
    cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path: Path
) -> None:
    fake_cpd.router.capture = True
    _workflow(cpd_backend, fake_cpd, tmp_path)
    families = {
        rule.family
        for method, path, _, _ in fake_cpd.router.responses
        for rule in RULES
        if re.fullmatch(rule.method, method) and re.fullmatch(rule.path, path)
    }
    assert families >= {"wml", "cams", "volumes", "execs", "authorize", "version", "dlim", "openscale"}
    assert check(fake_cpd.router.responses) == []
    # the integrated system is associated with its monitor, as IBM's helper does
    system = next(iter(fake_cpd.openscale.store["integrated_systems"].values()))
    assert system["entity"]["parameters"] == {"monitor_definition_ids": ["generic_metrics"]}
    definition = fake_cpd.openscale.store["monitor_definitions"]["generic_metrics"]
    assert definition["entity"]["monitor_runtime"] == {"type": "custom_metrics_provider"}


def _recorded() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(CORPUS.glob("*.json"))]


@pytest.mark.parametrize("doc", _recorded(), ids=lambda d: d["id"])
def test_every_recorded_answer_keeps_the_contract(doc: dict[str, Any]) -> None:
    """The contract is the recordings' (a rule the real cluster breaks would be wrong)."""
    path = re.sub(r"\{[a-z_]+\}", "x", doc["path"])
    body = doc.get("body")
    rule_problems = problems_of(doc["method"], path, doc["status"], body)
    if doc.get("partial"):  # the source kept only part of the answer: what is there must fit
        rule_problems = [p for p in rule_problems if "is a required property" not in p]
    assert rule_problems == []


@pytest.mark.parametrize("answer", sorted(CONTRADICTED))
def test_where_ibms_class_contradicts_a_recording_the_recording_wins(answer: str) -> None:
    """IBM's class rejects what a real cluster answered: the rule keeps no class for it, so
    this fails (and the rule may take the class back) once IBM's class accepts it."""
    cls, why = CONTRADICTED[answer]
    body = json.loads((CORPUS / f"{answer}.json").read_text())["body"]
    with pytest.raises(ValueError, match="Required property"):
        ibm_parser(cls)(body)
    assert all(rule.ibm != cls for rule in RULES), why


# -- mutations ---------------------------------------------------------------------------------


class Cluster:
    """One fake with a little of everything, shared by the mutation cases (fast: each case
    is one focused client call)."""

    def __init__(self, fake: FakeCpd, backend: Backend, exec_id: str, iid: str, run_id: str) -> None:
        self.fake, self.backend, self.exec_id, self.iid, self.run_id = fake, backend, exec_id, iid, run_id


@pytest.fixture(scope="module")
def cluster(cpd_certs: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("mutations")
    fake = FakeCpd(cpd_certs, version="4.8.5").start()
    with pytest.MonkeyPatch.context() as mp:
        for name in CPD_VARIABLES:
            mp.delenv(name, raising=False)
        for key, value in {**fake.env(), "MLOPS_CPD_RETRY_DELAY": "0.01", "MLOPS_CPD_RETRIES": "1"}.items():
            mp.setenv(key, value)
        try:
            backend = get_backend("cpd", Workspace(tmp / "ws"))
            backend.inference.deploy("seg", cpd_submission(tmp))
            seed_volume(fake, "Vol", "gt", {"a.png": b"xy"})
            (tmp / "notes.txt").write_text("n")
            backend.space.upload(tmp / "notes.txt")
            job = backend.training.submit(_trainer(tmp), TrainingSpec(framework="PyTorch", main="main.py"))
            _wait_job(backend, job.id)
            os_ = fake.openscale
            inst = os_._put("monitor_instances", "inst-1", {"monitor_definition_id": "m", "parameters": {}})
            run = os_._put(
                "runs", "run-1", {"monitor_instance_id": "inst-1", "status": {"state": "finished"}}
            )
            os_._put(
                "measurements",
                "meas-1",
                {
                    "monitor_instance_id": "inst-1",
                    "run_id": "run-1",
                    "timestamp": "2022-08-10T08:17:46Z",
                    "issue_count": 0,
                    "values": [],
                },
            )
            yield Cluster(fake, backend, job.id, inst["metadata"]["id"], run["metadata"]["id"])
        finally:
            fake.stop()


# (name, method, path pattern, field read by our client ("a.b", "[]" for each list item), call)
Call = Callable[[Cluster], Any]
READS: list[tuple[str, str, str, str, Call]] = []


def reads(method: str, path: str, fields: list[str], name: str) -> Callable[[Call], Call]:
    def register(call: Call) -> Call:
        READS.extend((name, method, path, f, call) for f in fields)
        return call

    return register


@reads("GET", r"/dlim/v1/model/seg$", ["name", "kernel_path", "create_time", "last_updated_time"], "edi-view")
@reads("GET", r"/dlim/v1/model/seg/instance$", ["state"], "edi-view")
@reads("GET", r"/dlim/v1/model/seg/appprofile$", ["policy", "kernel.envs"], "edi-view")
def _edi_view(c: Cluster) -> Any:
    return c.backend.inference.view("seg")


@reads(
    "GET",
    r"/zen-data/v3/service_instances$",
    ["service_instances", "service_instances[].display_name"],
    "vols",
)
def _volumes(c: Cluster) -> Any:
    return c.backend.volumes.list_volumes()


@reads(
    "GET",
    r"/directories/",
    [
        "responseObject",
        "responseObject.directoryContents",
        "responseObject.directoryContents[].path",
        "responseObject.directoryContents[].type",
        "responseObject.directoryContents[].content_length",
        "responseObject.directoryContents[].last_modified",
    ],
    "files",
)
def _files(c: Cluster) -> Any:
    return c.backend.volumes.list_files("Vol", "gt")


@reads("GET", r"/execs/[^/]+$", ["id", "state", "args", "createTime"], "exec")
def _exec(c: Cluster) -> Any:
    return c.backend.training.get(c.exec_id)


@reads("POST", r"/icp4d-api/v1/authorize$", ["token"], "sign-in")
def _sign_in(c: Cluster) -> Any:
    from mlops_widgets.backends.cpd.client import CpdSession

    return bool(CpdSession().http.tokens.renew())


@reads("GET", r"/ml/wml_services(/v2)?/version$", ["version"], "version")
def _version(c: Cluster) -> Any:
    from mlops_widgets.backends.cpd.client import CpdSession

    return CpdSession().version()


@reads(
    "POST",
    r"/v2/asset_types/data_asset/search$",
    [
        "results",
        "results[].metadata",
        "results[].metadata.asset_id",
        "results[].metadata.name",
        "results[].metadata.created_at",
    ],
    "assets",
)
def _assets(c: Cluster) -> Any:
    return c.backend.space.list_assets()


@reads(
    "GET",
    r"/v2/monitor_definitions$",
    ["monitor_definitions", "monitor_definitions[].metadata.id"],
    "definitions",
)
def _definitions(c: Cluster) -> Any:
    return [d["metadata"]["id"] for d in c.backend.monitoring.monitor_definitions.list()]


@reads("GET", r"/runs/run-1$", ["metadata.id", "entity.status.state"], "run")
def _run(c: Cluster) -> Any:
    return c.backend.monitoring.runs.get(c.iid, c.run_id)


@reads("GET", r"/inst-1/measurements$", ["measurements", "measurements[].entity.run_id"], "measurements")
def _measurements(c: Cluster) -> Any:
    return c.backend.monitoring.measurements.list(c.iid, run_id=c.run_id)


def _change(body: Any, parts: list[str], how: str) -> Any:
    """`body` with the field at `parts` dropped or renamed (in every item of a list)."""
    if isinstance(body, list):
        return [_change(item, parts, how) for item in body]
    if not isinstance(body, dict):
        return body
    head, rest = parts[0], parts[1:]
    each = head.endswith("[]")
    key = head.removesuffix("[]")
    if key not in body:
        return body
    if rest or each:
        body[key] = _change(body[key], rest, how) if not each else [_change(i, rest, how) for i in body[key]]
        return body
    value = body.pop(key)
    if how == "rename":
        body[key + "_renamed"] = value
    return body


def _outcome(c: Cluster, call: Call) -> str:
    try:
        return repr(call(c))
    except Exception as exc:  # a changed outcome, whatever the error
        return f"error: {type(exc).__name__}: {exc}"


@pytest.mark.parametrize("how", ["drop", "rename"])
@pytest.mark.parametrize(
    ("name", "method", "path", "field", "call"), READS, ids=[f"{r[0]}:{r[3]}" for r in READS]
)
def test_a_field_our_client_reads_renamed_or_dropped_in_the_fake_fails(
    cluster: Cluster, name: str, method: str, path: str, field: str, call: Call, how: str
) -> None:
    router = cluster.fake.router
    router.mutations.clear()
    router.responses.clear()
    router.capture = True
    try:
        baseline = _outcome(cluster, call)
        assert not baseline.startswith("error"), baseline
        assert check(router.responses) == []
        router.responses.clear()
        router.mutate(method, path, lambda body: _change(body, field.split("."), how))
        changed = _outcome(cluster, call)
        problems = check(router.responses)
    finally:
        router.mutations.clear()
        router.capture = False
    assert problems, f"the contract misses {field} of {method} {path}"
    assert changed != baseline, f"our client does not read {field}: drop it from READS or the schema"
