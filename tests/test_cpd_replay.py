"""Every recorded real answer (tests/data/cluster_answers, and transcripts `mlops doctor --record`
adds there) replayed through our client code: the fake serves the recorded answer verbatim
(status, content type, body) and the test checks what our client makes of it, and that the
request it answered was sent as the recording's source sent it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from fakecpd import FakeCpd
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)
from fakecpd.server import Response

from mlops_widgets.backends import edi_view as edi
from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.training_protocol import (
    JOB_FAILED,
    JOB_FINISHED,
    JOB_KILLED,
    JOB_RUNNING,
    JOB_SUBMITTED,
)

CORPUS = Path(__file__).parent / "data" / "cluster_answers"
DOCS = [json.loads(p.read_text()) for p in sorted(CORPUS.glob("*.json"))]
OS = "/openscale/00000000-0000-0000-0000-000000000000/v2"


def _response(doc: dict[str, Any]) -> Response:
    body = doc.get("body")
    ctype = (doc.get("headers") or {}).get("content-type", "application/json")
    if body is None:
        return Response(doc["status"], None)
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return Response(doc["status"], raw, {"Content-Type": ctype})


def _name(path: str, after: str) -> str:
    return unquote(path.split(after, 1)[1].split("/", 1)[0])


# what our client makes of an answer: (method, path pattern) -> call returning it
def _edi_list(b: Backend, doc: dict) -> Any:
    return [v.name for v in b.inference.list()]


def _edi_model(b: Backend, doc: dict) -> Any:
    return b.inference._model(_name(doc["path"], "/model/"))


def _edi_instance(b: Backend, doc: dict) -> Any:
    inst = b.inference._instance(_name(doc["path"], "/model/"))
    return {"phase": edi.phase(inst), "status": edi.status(inst)}


def _edi_profile(b: Backend, doc: dict) -> Any:
    return b.inference.get_profile(_name(doc["path"], "/model/"))


def _volume_list(b: Backend, doc: dict) -> Any:
    return b.volumes.list_volumes()


def _volume_files(b: Backend, doc: dict) -> Any:
    volume = _name(doc["path"], "/zen-volumes/")
    folder = unquote(doc["path"].split("/directories/", 1)[1]).strip("/")
    recursive = (doc.get("query") or {}).get("recursive") == "true"
    return [(f.path, f.size) for f in b.volumes.list_files(volume, folder, recursive=recursive)]


def _exec(b: Backend, doc: dict) -> Any:
    return b.training.get(doc["path"].rsplit("/", 1)[1]).state


def _exec_log(b: Backend, doc: dict) -> Any:
    return b.training._log(doc["path"].split("/execs/", 1)[1].split("/")[0])


def _exec_result(b: Backend, doc: dict) -> Any:
    return b.training._raw(
        doc["path"].split("/execs/", 1)[1].split("/")[0], "result", "application/octet-stream"
    )


def _version(b: Backend, doc: dict) -> Any:
    from mlops_widgets.backends.cpd.client import CpdSession

    return CpdSession().version()


def _definition(b: Backend, doc: dict) -> Any:
    return b.monitoring.monitor_definitions.get(doc["path"].rsplit("/", 1)[1])["entity"].get(
        "monitor_runtime"
    )


CALLS: list[tuple[str, str, Callable[[Backend, dict], Any]]] = [
    ("GET", r"^/dlim/v1/model$", _edi_list),
    ("GET", r"^/dlim/v1/model/[^/]+$", _edi_model),
    ("GET", r"^/dlim/v1/model/[^/]+/instance$", _edi_instance),
    ("GET", r"^/dlim/v1/model/[^/]+/appprofile$", _edi_profile),
    ("GET", r"^/zen-data/v3/service_instances$", _volume_list),
    ("GET", r"^/zen-volumes/[^/]+/v1/volumes/directories/", _volume_files),
    ("GET", r"^/platform/rest/deeplearning/v1/execs/[^/]+$", _exec),
    ("GET", r"^/platform/rest/deeplearning/v1/execs/[^/]+/log$", _exec_log),
    ("GET", r"^/platform/rest/deeplearning/v1/execs/[^/]+/result$", _exec_result),
    ("GET", r"^/ml/wml_services(/v2)?/version$", _version),
    ("GET", rf"^{OS}/monitor_definitions/[^/]+$", _definition),
]

# what our client must make of the recorded answers (a transcript without an entry here is
# replayed for "read without error")
EXPECT: dict[str, Any] = {
    "edi-model-view": lambda m: m["create_time"] == 1660119466 and m["kernel_path"] == "kernel.py",
    "edi-instance-not-available-after-start": {"phase": "starting", "status": "STARTING"},
    "edi-instance-enabled": {"phase": "started", "status": "IDLE"},
    "edi-instance-enabled-after-stop": {"phase": "started", "status": "IDLE"},
    "edi-instance-disabled": {"phase": "stopped", "status": "STOPPED"},
    "edi-appprofile": lambda p: p["policy"]["kernel_max"] == 100 and p["kernel"]["connection_timeout"] == 90,
    "volumes-directory-listing": [("Bladder_38000_38000_0_2.png", 1758813)],
    "volumes-recursive-listing": [("model_eval/test_output/Bladder_38000_38000_0_2_Lap2.png", 20131)],
    "volumes-service-instances": ["DeepLIIFData"],
    "wmla-exec-states": JOB_RUNNING,
    "wmla-exec-log": "epoch 1 loss 0.3\n",
    "openscale-monitor-definition-runtime": {"type": "custom_metrics_provider"},
}
# answers our client sends rather than reads: checked where the request is made
SENT = {
    "openscale-measurements-post": "test_cpd_replay.py::test_a_measurement_answered_202_is_read_back_once_visible",
    "openscale-run-patch": "test_cpd_monitoring.py (the provider marks its run)",
    "openscale-integrated-system-association": "test_cpd_contract.py::test_every_answer_of_the_fake_...",
    "wmla-exec-submit": "test_cpd_replay.py::test_exec_args_and_headers_are_sent_as_dlicmd_sends_them",
}


@pytest.fixture
def cpd_version() -> str:
    return "4.8.5"


def _call(doc: dict[str, Any]) -> Callable[[Backend, dict], Any]:
    path = re.sub(r"\{[a-z_]+\}", "x", doc["path"])
    for method, pattern, call in CALLS:
        if method == doc["method"] and re.search(pattern, path):
            return call
    raise AssertionError(f"no client call replays {doc['method']} {doc['path']}: add one to CALLS")


@pytest.mark.parametrize("doc", [d for d in DOCS if d["id"] not in SENT], ids=lambda d: d["id"])
def test_a_recorded_answer_replayed_through_our_client(
    cpd_backend: Backend, fake_cpd: FakeCpd, doc: dict[str, Any]
) -> None:
    path = re.sub(r"\{[a-z_]+\}", "x", doc["path"])
    fake_cpd.router.serve(doc["method"], "^" + re.escape(path) + "$", _response({**doc, "path": path}))
    got = _call(doc)(cpd_backend, {**doc, "path": path})
    expected = EXPECT.get(doc["id"])
    if callable(expected):
        assert expected(got), got
    elif expected is not None:
        assert got == expected
    for req in fake_cpd.router.answered:  # sent as the recording's source sent it
        for key, value in (doc.get("query") or {}).items():
            assert req.query.get(key) == value, (key, req.query)
        for key, value in (doc.get("request_headers") or {}).items():
            assert req.headers.get(key) == value, (key, req.headers)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("NEW", JOB_SUBMITTED),
        ("SUBMITTED", JOB_SUBMITTED),
        ("PENDING_CRD_SCHEDULER", JOB_SUBMITTED),
        ("LAUNCHING", JOB_SUBMITTED),
        ("RUNNING", JOB_RUNNING),
        ("RECOVERING", JOB_RUNNING),
        ("FINISHED", JOB_FINISHED),
        ("KILLED", JOB_KILLED),
        ("ERROR", JOB_FAILED),
    ],
)
def test_every_recorded_exec_state(
    cpd_backend: Backend, fake_cpd: FakeCpd, state: str, expected: str
) -> None:
    doc = json.loads((CORPUS / "wmla-exec-states.json").read_text())
    assert any(state == s or (s.endswith("*") and state.startswith(s[:-1])) for s in doc["states"])
    body = {**doc["body"], "id": "x", "state": state, "createTime": "2022-08-10T08:17:46Z"}
    fake_cpd.router.serve("GET", r"/execs/x$", Response(200, body))
    fake_cpd.router.serve("GET", r"/execs/x/log$", Response(200, b"log\n", {"Content-Type": "text/plain"}))
    assert cpd_backend.training.get("x").state == expected


def test_every_recorded_answer_is_replayed_or_checked_where_sent() -> None:
    for doc in DOCS:
        assert doc["id"] in SENT or _call(doc), doc["id"]
        assert doc.get("source"), f"{doc['id']} names no public source"


def test_a_measurement_answered_202_is_read_back_once_visible(
    cpd_backend: Backend, fake_cpd: FakeCpd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As recorded, OpenScale answers the POST 202 and stores the measurement later: the
    client waits for it (bounded by MLOPS_CPD_MEASUREMENT_WAIT) instead of failing the run."""
    os_ = fake_cpd.openscale
    os_._put("monitor_definitions", "m", {"name": "m", "metrics": [{"id": "k", "name": "k"}], "tags": []})
    os_._put(
        "monitor_instances",
        "i",
        {
            "monitor_definition_id": "m",
            "target": {"target_type": "subscription", "target_id": "s"},
            "thresholds": [],
        },
    )
    os_.measurement_lag = 0.5
    got = cpd_backend.monitoring.measurements.add("i", run_id="r1", metrics={"k": 1.0})
    assert got["entity"]["run_id"] == "r1"
    statuses = [s for m, p, s in fake_cpd.router.log if m == "POST" and p.endswith("/measurements")]
    assert statuses == [202]

    os_.measurement_lag = 3600
    monkeypatch.setenv("MLOPS_CPD_MEASUREMENT_WAIT", "0.3")
    from mlops_widgets.backends import get_backend

    fresh = get_backend("cpd", cpd_backend.workspace)
    with pytest.raises(
        Exception, match="accepted the measurement of run r2 but did not show it within 0.3 s"
    ):
        fresh.monitoring.measurements.add("i", run_id="r2", metrics={"k": 1.0})


def test_exec_args_and_headers_are_sent_as_dlicmd_sends_them(
    cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path
):
    """Args joined by spaces with no quoting; a value with whitespace cannot be sent."""
    from mlops_widgets.backends.training_protocol import TrainingSpec
    from mlops_widgets.errors import MlopsError

    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "main.py").write_text("print('ok')\n")
    spec = TrainingSpec(framework="distPyTorch", main="main.py", workers=2, env={"K": "v=1"})
    fake_cpd.router.serve("POST", r"/execs$", Response(200, {"id": "x", "state": "SUBMITTED"}))
    fake_cpd.router.serve(
        "GET", r"/execs/x$", Response(200, {"id": "x", "state": "SUBMITTED", "args": "", "createTime": "t"})
    )
    cpd_backend.training.submit(folder, spec)
    sent = next(r for r in fake_cpd.router.answered if r.method == "POST")
    assert sent.query["args"] == (
        "--exec-start distPyTorch --numWorker 2 --workerDeviceNum 0 --workerMemory 8g "
        "--model-dir mnist --model-main main.py --msd-env K=v=1"
    )
    assert b'filename="mnist.modelDir.tar"' in sent.body
    with pytest.raises(MlopsError, match="holds whitespace"):
        cpd_backend.training.submit(
            folder, TrainingSpec(framework="PyTorch", main="main.py", env={"K": "a b"})
        )


def _replay_all(backend: Backend, fake: FakeCpd, docs: list[dict[str, Any]]) -> int:
    """Replay each successful answer our client reads; every answer keeps the contract."""
    from fakecpd.contract import problems_of

    replayed = 0
    for doc in docs:
        problems = [p for p in problems_of(doc["method"], doc["path"], doc["status"], doc["body"])]
        assert [p for p in problems if "is a required property" not in p or not doc.get("partial")] == []
        call = next(
            (c for m, pat, c in CALLS if m == doc["method"] and re.search(pat, doc["path"])),
            None,
        )
        if call is None or doc["status"] >= 300:
            continue
        fake.router.canned.clear()
        fake.router.serve(doc["method"], "^" + re.escape(doc["path"]) + "$", _response(doc))
        call(backend, doc)
        replayed += 1
    return replayed


def test_doctor_records_a_redacted_transcript_that_the_tests_replay(
    cli: Any, cpd_env: dict[str, str], fake_cpd: FakeCpd, cpd_backend: Backend, tmp_path: Path
) -> None:
    """`mlops doctor --record FILE` against a cluster (here the fake, holding a deployment, a
    volume and an exec): the file has the corpus format, no token or API key, the user and
    the names hashed; replaying it through our client works."""
    from helpers import cpd_submission

    cpd_backend.inference.deploy("seg-private", cpd_submission(tmp_path, "seg-private"))
    fake_cpd.volumes.put("TeamVolume", "scans/a.png", b"xy")
    out = tmp_path / "transcript.json"
    res = cli("doctor", "--record", str(out))
    assert res.exit_code == 0, res.output
    text = out.read_text()
    docs = json.loads(text)
    assert {"method", "path", "status", "headers", "body", "source"} <= set(docs[0])
    paths = {d["path"] for d in docs}
    assert any(p.endswith("/instance") for p in paths) and any("/directories/" in p for p in paths)
    for secret in [
        *fake_cpd.router.issued,
        cpd_env["APIKEY"],
        cpd_env["USERNAME"],
        "seg-private",
        "TeamVolume",
    ]:
        assert secret not in text
    assert "scans" not in text and fake_cpd.space_id not in text
    assert _replay_all(cpd_backend, fake_cpd, docs) >= 4

    bad = cli("doctor", "--record", str(tmp_path / "missing" / "t.json"))
    assert bad.exit_code == 1 and "folder" in bad.output and "does not exist" in bad.output
    assert not (tmp_path / "missing").exists()


def test_users_transcripts_replay(cpd_backend: Backend, fake_cpd: FakeCpd) -> None:
    """Transcripts users add (docs: adding a transcript of your cluster) are replayed too."""
    for transcript in sorted((CORPUS / "transcripts").glob("*.json")):
        _replay_all(cpd_backend, fake_cpd, json.loads(transcript.read_text()))


def _doc(name: str) -> dict[str, Any]:
    return json.loads((CORPUS / f"{name}.json").read_text())


def test_the_fakes_edi_transitions_are_the_recorded_ones(
    cpd_backend: Backend, fake_cpd: FakeCpd, tmp_path
) -> None:
    """After a start: not-available with exactly the recorded keys (no instances), then enabled;
    after a stop: enabled for a while, then disabled. No other state."""
    import time

    from helpers import cpd_submission

    dlim = fake_cpd.dlim
    cpd_backend.inference.deploy("seg", cpd_submission(tmp_path))
    dlim.start_delay = dlim.stop_delay = 0.3
    cpd_backend.inference._edi("start", lambda c: c.start_model_inference("seg"))
    starting = dlim.instance_document("seg")
    assert set(starting) == set(_doc("edi-instance-not-available-after-start")["body"])
    assert starting["state"] == "not-available"
    time.sleep(0.35)
    enabled = dlim.instance_document("seg")
    recorded = _doc("edi-instance-enabled")["body"]
    assert enabled["state"] == "enabled" and set(enabled) == set(recorded)
    assert set(recorded["instances"][0]) <= set(enabled["instances"][0])
    cpd_backend.inference._edi("stop", lambda c: c.stop_model_inference("seg"))
    assert dlim.instance_document("seg")["state"] == "enabled"
    time.sleep(0.35)
    assert dlim.instance_document("seg")["state"] == "disabled"


def test_the_fakes_volume_entries_are_the_recorded_ones(fake_cpd: FakeCpd, cpd_backend: Backend) -> None:
    fake_cpd.volumes.put("Vol", "model_eval/test_output/a.png", b"xyz")
    recorded = _doc("volumes-recursive-listing")["body"]["responseObject"]["directoryContents"]
    cpd_backend.volumes.list_files("Vol", "model_eval", recursive=True)
    fake_cpd.router.capture = True
    cpd_backend.volumes.list_files("Vol", "model_eval", recursive=True)
    entries = fake_cpd.router.responses[-1][3]["responseObject"]["directoryContents"]
    assert [(e["path"], e["type"]) for e in entries] == [
        (e["path"].split("/")[0], "directory") for e in recorded[:1]
    ] + [("test_output/a.png", "file")]
    assert all(set(r) <= set(e) for r, e in zip(recorded, entries, strict=True)) and all(
        "size" not in e for e in entries
    )
