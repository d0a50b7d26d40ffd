"""The JupyterLab extension without a browser: the committed build matches its sources, and the
server extension's REST endpoints answer under Jupyter's own authentication in a real
JupyterLab (list the trail, read a run, clone it, run the clone through the runner)."""

from __future__ import annotations

import contextlib
import json
import runpy
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from _jlab import lab_server

REPO = Path(__file__).resolve().parent.parent
BUILT = REPO / "mlops_widgets" / "labextension"


def test_the_committed_build_is_fresh():
    stamp = runpy.run_path(str(REPO / "labextension" / "stamp.py"))
    assert (BUILT / "sources.sha256").read_text().strip() == stamp["sources_hash"](), (
        "labextension/ changed since the last build: cd labextension && npm ci && "
        "PATH=../.venv/bin:$PATH npm run build"
    )
    built = json.loads((BUILT / "package.json").read_text())
    assert built["name"] == "mlops-widgets"
    assert (BUILT / built["jupyterlab"]["_build"]["load"]).is_file()


def test_the_wheel_enables_both_extensions():
    """What `pip install` puts in place: the labextension as shared data, the server extension's
    config; the Binder test checks the same in a fresh virtual environment."""
    import tomllib

    shared = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"][
        "wheel"
    ]["shared-data"]
    assert shared["mlops_widgets/labextension"] == "share/jupyter/labextensions/mlops-widgets"
    config = json.loads((REPO / "jupyter-config/server-config/mlops_widgets.json").read_text())
    assert config["ServerApp"]["jpserver_extensions"] == {"mlops_widgets.server": True}


def _get(lab, path, *, token=True, method="GET", body=None):
    headers = {"Authorization": f"token {lab['token']}"} if token else {}
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{lab['url']}/mlops/{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _started(lab, path, body):
    """Start a template run: 202 at once with its job and run ids (the run executes in a process
    of its own); then follow its progress route until it ends. Returns (202 view, ended view)."""
    status, started = _get(lab, path, method="POST", body=body)
    assert status == 202, started
    assert started["state"] in ("running", "ended") and started["run_id"]
    deadline = time.monotonic() + 240  # a failsafe, not a timing
    while True:
        status, view = _get(lab, f"jobs/{started['job_id']}")
        assert status == 200 and view["run_id"] == started["run_id"]
        if view["state"] == "ended" or time.monotonic() > deadline:
            return started, view
        time.sleep(0.2)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """JupyterLab on a user folder, the server's workspace beside it holding one run."""
    from mlops_widgets.runner import run_template

    base = tmp_path_factory.mktemp("api")
    ws = base / "ws"
    record = run_template(
        "C1_OpenScale_Dummy_ML_Provider",
        {"service_provider_name": "Test Provider"},
        workspace=ws,
        backend="local",
    )
    assert record.ok, record.error
    root = base / "files"
    root.mkdir()
    try:
        with lab_server(base, root, env={"MLOPS_HOME": str(ws)}) as lab:
            yield {**lab, "run": record}
    finally:
        from mlops_widgets.backends.local.inference import stop_service

        stop_service(ws)


def test_endpoints_need_jupyters_authentication(served):
    assert _get(served, "runs", token=False)[0] == 403
    # A change without the token (nor the XSRF cookie and header) is refused too.
    status, _ = _get(
        served, f"runs/{served['run'].run_id}/clone", token=False, method="POST", body={"dest": "x.ipynb"}
    )
    assert status == 403
    assert not (served["root"] / "x.ipynb").exists()


def test_the_trail_a_run_and_its_executed_notebook(served):
    run = served["run"]
    status, runs = _get(served, "runs")
    assert status == 200 and [r["run_id"] for r in runs] == [run.run_id]
    assert _get(served, "runs?status=failed")[1] == []
    status, record = _get(served, f"runs/{run.short_id}")
    assert status == 200
    assert record["parameters"] == {"service_provider_name": "Test Provider"}
    assert "service provider" in record["parameter_help"]["service_provider_name"]
    status, nb = _get(served, f"runs/{run.run_id}/notebook")
    assert status == 200 and nb["nbformat"] == 4 and any(c["cell_type"] == "code" for c in nb["cells"])
    assert _get(served, "runs/nosuchrun")[0] == 404


def test_the_sidebar_reads_the_servers_workspace_backend_and_deployments(served):
    status, info = _get(served, "info")
    assert status == 200 and info["workspace"] == served["run"].workspace and info["backend"] == "local"
    assert info["runs_shown"] is None  # the workspace lies outside the folder JupyterLab shows
    assert _get(served, "deployments") == (200, [])  # nothing deployed in it yet
    assert _get(served, "training") == (200, [])  # no training job either (the status bar counts them)


def test_clone_then_run_the_clone_in_the_audit_trail(served):
    run = served["run"]
    status, out = _get(served, f"runs/{run.run_id}/clone", method="POST", body={"dest": "../outside.ipynb"})
    assert status == 400 and "inside the folder JupyterLab shows" in out["message"]
    status, out = _get(served, f"runs/{run.run_id}/clone", method="POST", body={"dest": "mine/c1.ipynb"})
    assert status == 200 and out == {"path": "mine/c1.ipynb"}
    clone = served["root"] / "mine" / "c1.ipynb"
    nb = json.loads(clone.read_text())
    cell = next(c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    cell["source"] = 'service_provider_name = "Edited Provider"\n'  # the user edits the clone
    clone.write_text(json.dumps(nb))

    status, plan = _get(served, "notebooks/plan?path=mine/c1.ipynb")
    assert status == 200
    assert plan["origin"]["run_id"] == run.run_id
    assert plan["parameters"] == {"service_provider_name": "Edited Provider"}
    _, job = _started(served, "notebooks/run", {"path": "mine/c1.ipynb"})
    out = job["result"]
    assert out["status"] == "ok", job
    from mlops_widgets.runner import get_run

    new = get_run(out["run_id"], Path(run.workspace))
    assert new.rerun_of == run.run_id
    assert new.parameters["service_provider_name"] == "Edited Provider"
    assert _get(served, "runs")[1][0]["run_id"] == new.run_id  # newest first


def test_the_change_feed_brings_a_change_made_by_another_process(served):
    """A follower asks `events?since=SEQ` and is answered when a change after SEQ exists: here an
    event recorded by a separate process (as the CLI or the scheduler would); it resumes from `last`."""
    import subprocess
    import sys
    import threading

    status, start = _get(served, "events")
    assert status == 200 and start["events"] == [] and start["last"] >= 2  # the fixture's run
    assert _get(served, f"events?since={start['last']}&wait=0")[1] == {"events": [], "last": start["last"]}
    assert _get(served, "events?since=soon")[0] == 400
    assert _get(served, "events", token=False)[0] == 403
    answers = []
    follower = threading.Thread(target=lambda: answers.append(_get(served, f"events?since={start['last']}")))
    follower.start()
    ws = served["run"].workspace
    code = f"from mlops_widgets.runner.events import record; record({ws!r}, 'deploy.stop', {{'deployment_name': 'd1'}})"
    began = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True)
    follower.join(timeout=60)
    assert answers, "no answer from the change feed"
    print(f"change seen by the follower {time.monotonic() - began:.2f} s after the recording process started")
    status, got = answers[0]
    assert status == 200
    (change,) = got["events"]
    assert change["kind"] == "event" and change["template"] == "deploy.stop"
    assert change["deployment_name"] == "d1" and change["status"] == "ok"
    assert got["last"] == change["seq"] > start["last"]
    assert _get(served, f"events?since={start['last']}&wait=0")[1]["events"] == [change]  # a resume


def test_following_the_change_feed_is_not_activity_to_an_idle_culler(served):
    """A page left open follows the feed all day; Jupyter's idle culling (its own, or a hub's
    reading `last_activity` of /api/status) must still see the server idle, as it does for
    JupyterLab's own polls."""

    def last_activity() -> str:
        headers = {"Authorization": f"token {served['token']}"}
        req = urllib.request.Request(f"{served['url']}/api/status", headers=headers)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())["last_activity"]

    assert _get(served, "runs")[0] == 200
    before = last_activity()
    status, start = _get(served, "events")
    assert status == 200
    assert _get(served, f"events?since={start['last']}&wait=1")[0] == 200
    assert last_activity() == before
    assert _get(served, "runs")[0] == 200  # a listing the user asked for is activity
    assert last_activity() > before


def test_a_plain_notebook_runs_as_a_template_of_its_own(served):
    """Any notebook of the user's folder runs through the runner as a template: the plan says
    what its form asks, a value it does not take is refused before the job starts (400, nothing
    recorded), a good one answers 202 and the run is recorded with the typed values."""
    from helpers import make_template

    from mlops_widgets.runner import get_run, list_runs

    make_template(
        served["root"] / "work" / "Mine.ipynb",
        'count = 1  # how many\nmode = "a"  # a mode\n',
        ["from mlops_widgets.runner.record import record\nrecord(total=count * 2, mode=mode)"],
    )
    status, plan = _get(served, "notebooks/plan?path=work/Mine.ipynb")
    assert status == 200 and plan["action"] == "template" and plan["template"] == "Mine"
    assert [(f["name"], f["type"], f["default"], f["help"]) for f in plan["fields"]] == [
        ("count", "int", 1, "how many"),
        ("mode", "str", "a", "a mode"),
    ]
    ws = Path(served["run"].workspace)
    before = len(list_runs(ws))
    # The form asks as the user types: each field's problem, nothing run or recorded.
    status, out = _get(
        served,
        "notebooks/check",
        method="POST",
        body={"path": "work/Mine.ipynb", "params": {"count": "lots", "mode": "b"}},
    )
    assert status == 200 and list(out["problems"]) == ["count"], out
    assert "must be int" in out["problems"]["count"]
    body = {"path": "work/Mine.ipynb", "params": {"count": "3"}}
    assert _get(served, "notebooks/check", method="POST", body=body) == (200, {"problems": {}})
    status, out = _get(
        served, "notebooks/run", method="POST", body={"path": "work/Mine.ipynb", "params": {"count": "lots"}}
    )
    assert status == 400 and "count" in out["message"], out
    assert len(list_runs(ws)) == before
    _, job = _started(served, "notebooks/run", {"path": "work/Mine.ipynb", "params": {"count": "3"}})
    assert job["result"]["status"] == "ok", job
    record = get_run(job["result"]["run_id"], ws)
    assert record.parameters == {"count": 3} and record.results == {"total": 6, "mode": "a"}
    status, out = _get(served, "notebooks/plan?path=../ws/x.ipynb")
    assert status == 400 and "inside the folder JupyterLab shows" in out["message"]
    status, out = _post_raw(served, "notebooks/run", b'{"path": "work/Mine.ipynb", "params": {"count": 3}}')
    assert status == 400 and "the value of count must be a string" in out["message"]
    (served["root"] / "broken.ipynb").write_text("{not json")
    status, out = _get(served, "notebooks/plan?path=broken.ipynb")
    assert status == 400 and "cannot read the notebook" in out["message"]


def test_mlops_lab_serves_the_users_folder_with_the_workspace_behind_the_panel(tmp_path):
    """`mlops lab` (here as whatever user runs the tests, root on CI): the file browser shows the
    folder it runs in, the server extension and kernels act on the workspace."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    files = tmp_path / "files"
    files.mkdir()
    (files / "my_model.pt").write_text("weights")
    ws = tmp_path / "ws"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    log = tmp_path / "lab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("mlops")),
                "--workspace",
                str(ws),
                "lab",
                "--no-browser",
                f"--port={port}",
            ],
            cwd=files,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline, token = time.monotonic() + 60, ""
        while not token:  # the server writes its token into its runtime file once it serves
            assert proc.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.25)
            for info_file in (tmp_path / "runtime").glob("jpserver-*.json"):
                with contextlib.suppress(ValueError):
                    token = json.loads(info_file.read_text()).get("token", "")
        lab = {"url": f"http://127.0.0.1:{port}", "token": token}
        status, info = _get(lab, "info")
        assert status == 200 and info["workspace"] == str(ws) and info["open_panel"] is True
        req = urllib.request.Request(
            f"{lab['url']}/api/contents", headers={"Authorization": f"token {token}"}
        )
        names = {c["name"] for c in json.loads(urllib.request.urlopen(req, timeout=10).read())["content"]}
        assert names == {"my_model.pt"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_an_event_record_opens_without_a_notebook(served):
    from mlops_widgets.runner import events

    event = events.record(
        served["run"].workspace, "deploy.stop", {"deployment_name": "d1"}, deployment_name="d1"
    )
    status, record = _get(served, f"runs/{event.run_id}")
    assert status == 200 and record["kind"] == "event" and record["template"] == "deploy.stop"
    status, out = _get(served, f"runs/{event.run_id}/notebook")
    assert status == 404 and "an event record" in out["message"]
    assert any(r["run_id"] == event.run_id and r["kind"] == "event" for r in _get(served, "runs")[1])


def test_a_clone_of_a_template_runs_the_template(served):
    from mlops_widgets.runner import clone_template, get_run

    clone_template(
        "C1_OpenScale_Dummy_ML_Provider",
        served["root"] / "fresh.ipynb",
        {"service_provider_name": "From Template"},
        workspace=served["run"].workspace,
    )
    status, plan = _get(served, "notebooks/plan?path=fresh.ipynb")
    assert status == 200 and "run_id" not in plan["origin"]
    assert plan["origin"]["template"] == "C1_OpenScale_Dummy_ML_Provider"
    _, job = _started(served, "notebooks/run", {"path": "fresh.ipynb"})
    out = job["result"]
    assert out["status"] == "ok", job
    new = get_run(out["run_id"], Path(served["run"].workspace))
    assert new.rerun_of is None and new.parameters == {"service_provider_name": "From Template"}


def _post_raw(lab, path, raw: bytes):
    req = urllib.request.Request(
        f"{lab['url']}/mlops/{path}",
        data=raw,
        method="POST",
        headers={"Authorization": f"token {lab['token']}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.mark.parametrize(
    ("endpoint", "body", "said"),
    [
        ("rerun", b"[]", "must be a JSON object"),
        ("rerun", b"null", "must be a JSON object"),
        ("rerun", b"1e999999", "must be a JSON object"),
        ("rerun", b"{not json", "not JSON"),
        ("rerun", b'{"params": [1]}', "params must be a JSON object"),
        ("rerun", b'{"params": "x"}', "params must be a JSON object"),
        ("rerun", b'{"secrets": "x"}', "secrets must be a JSON object"),
        ("rerun", b'{"secrets": {"API_KEY": {"a": 1}}}', "the value of API_KEY must be a string"),
        ("rerun", b'{"workspace": "/elsewhere"}', "a run's workspace is the server's"),
        ("clone", b'{"dest": 5}', "dest must be a string"),
        ("clone", b"{}", "dest must be a string"),
        ("clone", b'{"dest": ["a.ipynb"]}', "dest must be a string"),
    ],
)
def test_a_malformed_body_gets_400_with_a_message(served, endpoint, body, said):
    """Issue 23: malformed bodies got 500 (REST re-run `params: [1]`, `secrets: "x"`)."""
    status, out = _post_raw(served, f"runs/{served['run'].run_id}/{endpoint}", body)
    assert status == 400 and said in out["message"], (status, out)


def test_a_malformed_notebook_run_gets_400(served):
    assert _post_raw(served, "notebooks/run", b'{"path": 5}')[0] == 400
    status, out = _post_raw(served, "notebooks/run", b'{"path": "x.ipynb", "secrets": {"K": 1}}')
    assert status == 400 and "the value of K must be a string" in out["message"]


def test_a_workspace_named_by_the_browser_must_be_one(served, tmp_path):
    """A panel's link names its workspace; a name that is no workspace is refused, and nothing
    is created there (nor a database in a folder of other files)."""
    run = served["run"].run_id
    missing = tmp_path / "nowhere" / "ws"
    status, out = _get(served, f"runs/{run}?workspace={missing}")
    assert status == 404 and "no mlops workspace" in out["message"]
    assert not (tmp_path / "nowhere").exists()
    status, _ = _get(
        served, f"runs/{run}/clone", method="POST", body={"dest": "w.ipynb", "workspace": str(missing)}
    )
    assert status == 404 and not (tmp_path / "nowhere").exists()
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "notes.txt").write_text("not mlops")
    status, _ = _get(served, f"runs/{run}/notebook?workspace={shared}")
    assert status == 404 and sorted(p.name for p in shared.iterdir()) == ["notes.txt"]
    # the run's own workspace, named explicitly, is one
    assert _get(served, f"runs/{run}?workspace={served['run'].workspace}")[0] == 200


def test_the_server_answers_while_a_long_run_executes_and_the_run_can_be_cancelled(served, tmp_path):
    """A re-run starts as a job in its own process: the server keeps answering meanwhile (before,
    the whole run ran inside a request), its progress names the run, and cancel stops it."""
    from helpers import make_template

    from mlops_widgets.runner import get_run, run_template

    ws = Path(served["run"].workspace)
    slow = make_template(
        tmp_path / "Slow.ipynb", "seconds = 0  # how long\n", ["import time; time.sleep(seconds)"]
    )
    first = run_template(slow, workspace=ws, backend="local")
    assert first.ok, first.error
    status, refused = _get(served, f"runs/{first.run_id}/rerun", method="POST", body={"params": {"nope": 1}})
    assert status == 400 and "nope" in refused["message"]  # validated before anything runs
    status, started = _get(
        served, f"runs/{first.run_id}/rerun", method="POST", body={"params": {"seconds": 600}}
    )
    assert status == 202 and started["state"] == "running", started
    with urllib.request.urlopen(f"{served['url']}/api/status?token={served['token']}", timeout=30) as r:
        assert r.status == 200  # generous bound: the point is that it answers at all
    running = get_run(started["run_id"], ws)
    assert running.status == "running" and running.process["pid"] != served["pid"]  # not the server's
    status, _ = _get(served, f"jobs/{started['job_id']}/cancel", method="POST", body={})
    assert status == 202
    deadline = time.monotonic() + 240  # a failsafe
    while (view := _get(served, f"jobs/{started['job_id']}")[1])["state"] != "ended":
        assert time.monotonic() < deadline, view
        time.sleep(0.2)
    assert view["result"]["status"] == "cancelled", view
    assert get_run(started["run_id"], ws).status == "cancelled"
    assert _get(served, "jobs/0123456789ab")[0] == 404
