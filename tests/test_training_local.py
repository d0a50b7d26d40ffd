"""Local training jobs (template A1, `mlops train`, `mlops prepare stage --from-job`): the
example script trained end to end and staged with its lineage, a failing script, stop, secrets,
and jobs that outlive the command that submitted them."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from helpers import ESCAPE, byte_leaks, shm_path, submit_args

from mlops_widgets import events_feed
from mlops_widgets.backends.local.inference.procs import alive
from mlops_widgets.backends.training_protocol import JOB_ENDED
from mlops_widgets.errors import MlopsError
from mlops_widgets.ops import space, train
from mlops_widgets.runner import get_run, list_runs

DEADLINE_S = 120.0


@pytest.fixture(autouse=True)
def _no_job_left_running(backend):
    """A test that fails half-way leaves no job (and no process) behind."""
    yield
    for job in train.jobs(backend):
        if job.state not in JOB_ENDED:
            train.stop(backend, job.id)


def _until(what, check):
    """Poll `check()` until it is truthy (a deadline only guards against a hang)."""
    deadline = time.monotonic() + DEADLINE_S
    while not (value := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.1)
    return value


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path


def _stage_from_job(cli, job_id: str, example_paths) -> str:
    """`prepare stage --from-job` with the example deployment folder and entry: the asset id."""
    staged = cli(
        "prepare",
        "stage",
        "--from-job",
        job_id,
        "--path-dependency",
        example_paths.deployment,
        "--path-yml",
        example_paths.config,
    )
    assert staged.exit_code == 0, staged.output
    return staged.stdout.split()[-1]


def _job_id(cli_result) -> str:
    assert cli_result.exit_code == 0, cli_result.output
    return cli_result.stdout.split()[2].rstrip(":")


def test_the_example_trains_on_two_workers_and_its_output_is_staged_with_the_job(cli, backend, example_paths):
    submitted = cli(
        "train",
        "submit",
        "-p",
        "framework",
        "distPyTorch",
        "-p",
        "workers",
        "2",
        "-p",
        "main_args",
        "[--tiles, 3]",
        "-p",
        "wait",
        "true",
    )
    job_id = _job_id(submitted)
    assert "finished" in submitted.stdout

    status = cli("train", "status", job_id, "--json")
    job = json.loads(status.stdout)
    assert job["state"] == "finished" and job["exit_codes"] == {"0": 0, "1": 0}
    assert cli("train", "list").stdout.count(job_id) == 1
    worker1 = cli("train", "logs", job_id, "--worker", "1").stdout
    assert "[worker-1] worker 1 of 2" in worker1 and "[worker-0]" not in worker1
    tails = cli("train", "logs", job_id, "--tail", "1").stdout.splitlines()
    assert [line.split()[0] for line in tails] == ["[worker-0]", "[worker-1]"]
    weights = json.loads((Path(job["output"]) / "weights.json").read_text())
    assert weights["training"]["dice_positive"] > 0.5  # what the example kernel reads:
    assert {"min_red_minus_blue"} <= set(weights["positive"]) and "max_brightness" in weights

    asset_id = _stage_from_job(cli, job_id, example_paths)
    _, entry = space.get_entry(backend, model_asset_id=asset_id)
    assert entry["model_asset"] == f"{job_id}.zip"
    assert entry["training_job"]["job_id"] == job_id and entry["training_job"]["backend"] == "local"
    listed = cli("config", "list", "--detail").stdout
    assert yaml.safe_load(listed)[asset_id]["training_job"]["framework"] == "distPyTorch"


def test_a_failing_script_ends_failed_with_its_log_tail_in_the_run_record(cli, tmp_path, workspace):
    script = _script(
        tmp_path,
        "broken.py",
        """
        print("loading the tiles")
        raise ValueError("no tiles in the data folder")
    """,
    )
    result = cli(
        *submit_args(script),
        "-p",
        "wait",
        "true",
    )
    assert result.exit_code == 1
    (run,) = list_runs(workspace, template="A1_Submit_WMLA_Training")
    results = get_run(run.run_id, workspace).results
    assert results["state"] == "failed" and results["error"] == "worker 0 exited with code 1"
    assert "ValueError: no tiles in the data folder" in results["error_log"]
    assert "loading the tiles" in results["error_log"]
    assert "ValueError: no tiles in the data folder" in result.output


def test_stop_kills_every_process_of_the_job_children_included(cli, backend, tmp_path):
    script = _script(
        tmp_path,
        "forks.py",
        """
        import os, subprocess, sys, time
        kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]),
                subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)]
        with open(os.path.join(os.environ["RESULT_DIR"], "pids.tmp"), "w") as fh:
            fh.write(" ".join(str(p) for p in [os.getpid(), *(k.pid for k in kids)]))
        os.rename(os.path.join(os.environ["RESULT_DIR"], "pids.tmp"), os.path.join(os.environ["RESULT_DIR"], "pids"))
        time.sleep(600)
    """,
    )
    folder = train.build_submission_folder([str(script)], [], main="forks.py", framework="PyTorch")
    job = train.submit(backend, folder, train.make_spec(framework="PyTorch", main="forks.py"))
    pids_file = Path(job.output) / "pids"
    pids = [
        int(p)
        for p in _until("the script's pids", lambda: pids_file.is_file() and pids_file.read_text()).split()
    ]
    assert all(alive(p) for p in pids)

    stopped = cli("train", "stop", job.id)
    assert stopped.exit_code == 0, stopped.output
    assert f"training job {job.id}: killed" in stopped.stdout
    assert not any(alive(p) for p in pids)
    assert train.status(backend, job.id).state == "killed"
    assert cli("train", "stop", job.id).stdout.strip().endswith("killed")  # stopping again: as it is
    from mlops_widgets.runner import get_run, list_runs

    events = [
        get_run(r.run_id, backend.workspace) for r in list_runs(backend.workspace, template="train.stop")
    ]
    # each stop recorded as the panel's Stop records it (test_training_panel)
    assert [(e.kind, e.parameters, e.results, e.status) for e in events] == 2 * [
        ("event", {"job_id": job.id}, {"state": "killed"}, "ok")
    ]


def test_a_job_outlives_the_command_and_keeps_secret_variables_out_of_its_files(
    cli, backend, tmp_path, monkeypatch
):
    gate = tmp_path / "go"
    script = _script(
        tmp_path,
        "gated.py",
        f"""
        import os, pathlib, time
        print("rank", os.environ.get("RANK"), "devices", repr(os.environ["CUDA_VISIBLE_DEVICES"]))
        print("token", os.environ["SERVICE_TOKEN"], "epochs", os.environ["EPOCHS"])
        while not pathlib.Path({str(gate)!r}).exists():
            time.sleep(0.05)
        pathlib.Path(os.environ["RESULT_DIR"], "model.txt").write_text("trained")
    """,
    )
    monkeypatch.setenv("SERVICE_TOKEN", "tok-0123456789-secret")
    job_id = _job_id(
        cli(
            *submit_args(script),
            "-p",
            "job_env",
            "{EPOCHS: 2, SERVICE_TOKEN: null}",
        )
    )
    assert train.status(backend, job_id).state not in JOB_ENDED  # the command returned, the job runs
    gate.write_text("")
    _until("the job's end", lambda: train.status(backend, job_id).state in JOB_ENDED)
    assert train.status(backend, job_id).state == "finished"

    def states() -> list[str]:  # the feed's job changes, written by the job's supervisor
        feed = events_feed.since(backend.workspace, 0, limit=10_000)
        return [c.payload["state"] for c in feed if c.kind == "job" and c.subject == job_id]

    # The change is published once the state is written: it may come a moment after (under load).
    _until("the job's end in the change feed", lambda: states()[-1] == "finished")
    assert states()[0] == "submitted" and "running" in states(), states()
    log = "\n".join(train.logs(backend, job_id))
    assert "rank None devices ''" in log and "epochs 2" in log  # one worker, no GPU asked for
    assert "token" in log and "tok-0123456789-secret" not in log
    for path in backend.workspace.root.rglob("*"):
        if path.is_file():
            assert b"tok-0123456789-secret" not in path.read_bytes(), path


@pytest.mark.parametrize("declared", [False, True])
def test_credential_job_variables_follow_the_rules_of_template_runs(
    cli, backend, tmp_path, monkeypatch, declared
):
    # DB_PASSWD is outside the word list; null reads it from the environment. Declared in
    # $MLOPS_KERNEL_CREDENTIALS or not, it is a secret of the job: in no file, masked in its logs.
    script = _script(
        tmp_path,
        "env.py",
        """
        import base64, json, os, urllib.parse
        for name in ("DB_PASSWD", "DATABASE_URL"):
            value = os.environ[name]
            print(name, value, json.dumps(value), urllib.parse.quote(value), base64.b64encode(value.encode()).decode())
    """,
    )
    password, url = "db-Pässwd-0042", "postgres://app:url-pw-0043@db/prod"
    monkeypatch.setenv("DB_PASSWD", password)
    if declared:
        monkeypatch.setenv("MLOPS_KERNEL_CREDENTIALS", "DB_PASSWD")
    job_env = json.dumps({"DB_PASSWD": None, "DATABASE_URL": url, "EPOCHS": 2})
    submitted = cli(
        *submit_args(script),
        "-p",
        "job_env",
        job_env,
    )
    job_id = _job_id(submitted)
    _until("the job's end", lambda: train.status(backend, job_id).state in JOB_ENDED)
    assert train.status(backend, job_id).state == "finished"
    log = "\n".join(train.logs(backend, job_id))
    assert "DB_PASSWD ********" in log and "DATABASE_URL ********" in log
    job = json.loads((backend.workspace.root / "training" / job_id / "job.json").read_text())
    assert job["spec"]["env"] == {"EPOCHS": "2"} and job["secret_env_names"] == ["DATABASE_URL", "DB_PASSWD"]
    assert byte_leaks(backend.workspace.root, password, url, "url-pw-0043") == []


@pytest.mark.parametrize("ending", ["finished", "stopped"])
def test_what_a_job_started_ends_with_it_even_outside_its_session(backend, tmp_path, ending):
    shm = shm_path("job")
    script = _script(
        tmp_path,
        "escapes.py",
        ESCAPE
        + f"""
import os, pathlib, time
pid = escape(shm={str(shm)!r})
pathlib.Path(os.environ["RESULT_DIR"], "escaped.tmp").write_text(str(pid))
os.rename(os.path.join(os.environ["RESULT_DIR"], "escaped.tmp"), os.path.join(os.environ["RESULT_DIR"], "escaped"))
time.sleep(0 if {ending == "finished"!r} else 600)
""",
    )
    folder = train.build_submission_folder([str(script)], [], main="escapes.py", framework="PyTorch")
    job = train.submit(backend, folder, train.make_spec(framework="PyTorch", main="escapes.py"))
    marker = Path(job.output) / "escaped"
    pid = int(_until("the escaped grandchild", lambda: marker.is_file() and marker.read_text()))
    if ending == "stopped":
        train.stop(backend, job.id)
    _until("the job's end", lambda: train.status(backend, job.id).state in JOB_ENDED)
    _until("the grandchild to be killed", lambda: not alive(pid))
    _until("its /dev/shm file to be removed", lambda: not shm.exists())


def test_logs_follow_until_the_job_ends(backend, tmp_path):
    script = _script(
        tmp_path,
        "count.py",
        """
        import time
        for i in range(5):
            print("line", i, flush=True)
            time.sleep(0.05)
    """,
    )
    folder = train.build_submission_folder([str(script)], [], main="count.py", framework="PyTorch")
    job = train.submit(backend, folder, train.make_spec(framework="PyTorch", main="count.py"))
    lines = list(train.logs(backend, job.id, follow=True))
    assert [line for line in lines if "line" in line] == [f"[worker-0] line {i}" for i in range(5)]


def test_bad_submissions_are_refused_before_anything_runs(backend, tmp_path):
    script = _script(tmp_path, "t.py", "print('hi')\n")
    with pytest.raises(MlopsError, match="not among the files"):
        train.build_submission_folder([str(script)], [], main="main.py", framework="PyTorch")
    with pytest.raises(MlopsError, match="does not exist"):
        train.build_submission_folder([str(tmp_path / "nothing-*.py")], [], main="t.py", framework="PyTorch")
    folder = train.build_submission_folder([str(script)], [], main="t.py", framework="PyTorch")
    with pytest.raises(MlopsError, match="runs one worker") as info:
        train.submit(backend, folder, train.make_spec(framework="PyTorch", main="t.py", workers=2))
    assert info.value.hint is not None and info.value.hint.action == "train.distributed"
    folder = train.build_submission_folder([str(script)], [], main="t.py", framework="PyTorch")
    with pytest.raises(MlopsError, match="GPU"):
        train.submit(
            backend, folder, train.make_spec(framework="PyTorch", main="t.py", devices_per_worker=64)
        )
    assert train.jobs(backend) == []


def test_the_process_group_snippet_starts_the_training_file(tmp_path):
    script = _script(tmp_path, "t.py", "from __future__ import annotations\nprint('train')\n")
    folder = train.build_submission_folder(
        [str(script)], [], main="t.py", framework="distPyTorch", process_group_file="t.py"
    )
    text = (folder / "t.py").read_text()
    assert text.startswith("from __future__ import annotations\n" + train.SNIPPET_BEGIN)
    assert "init_process_group" in text and text.endswith("print('train')\n")


def test_a_job_whose_supervisor_was_killed_reads_failed_and_leaves_nothing_running(backend, tmp_path):
    import os
    import signal

    from mlops_widgets.backends.local.training_jobs import LOST, job_dir, read_job

    script = _script(
        tmp_path,
        "sleepy.py",
        """
        import os, time
        open(os.path.join(os.environ["RESULT_DIR"], "pid"), "w").write(str(os.getpid()))
        time.sleep(600)
    """,
    )
    folder = train.build_submission_folder([str(script)], [], main="sleepy.py", framework="PyTorch")
    job = train.submit(backend, folder, train.make_spec(framework="PyTorch", main="sleepy.py"))
    pid_file = Path(job.output) / "pid"
    worker = int(_until("the worker's pid", lambda: pid_file.is_file() and pid_file.read_text()))
    supervisor = read_job(job_dir(backend.workspace, job.id))["supervisor_pid"]
    os.kill(supervisor, signal.SIGKILL)
    _until("the supervisor's end", lambda: not alive(supervisor))

    view = train.status(backend, job.id)
    assert view.state == "failed" and view.error == LOST
    assert not alive(worker)


def test_a_job_runs_on_a_runtime_and_keeps_the_metrics_it_reports(cli, backend, tmp_path, example_paths):
    """`--runtime` runs the workers on that runtime's Python (nothing of ours on it), each
    distributed worker gets OMP_NUM_THREADS=1 as from torchrun, and what the script reports to
    $MLOPS_METRICS_FILE is kept with the job, its lineage and the deployment's view."""
    import subprocess
    import sys

    venv = tmp_path / "runtime"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    assert cli("runtime", "add", "trainer", "--python", venv / "bin" / "python").exit_code == 0
    script = _script(
        tmp_path,
        "fit.py",
        """
        import json, os, sys
        rank = os.environ["RANK"]
        with open(os.path.join(os.environ["RESULT_DIR"], f"seen-{rank}.json"), "w") as fh:
            json.dump({"python": sys.executable, "omp": os.environ.get("OMP_NUM_THREADS")}, fh)
        if rank == "0":
            with open(os.environ["MLOPS_METRICS_FILE"], "a") as fh:
                for step, loss in enumerate([0.9, 0.5, 0.25]):
                    fh.write(json.dumps({"step": step, "loss": loss, "note": "not a number"}) + "\\n")
                fh.write("not json\\n")
        """,
    )
    submitted = cli(
        "train",
        "submit",
        "--runtime",
        "trainer",
        "-p",
        "files",
        json.dumps([str(script)]),
        "-p",
        "main_file",
        "fit.py",
        "-p",
        "framework",
        "distPyTorch",
        "-p",
        "workers",
        "2",
        "-p",
        "job_env",
        "{EPOCHS: '3'}",
        "-p",
        "wait",
        "true",
    )
    job_id = _job_id(submitted)
    job = json.loads(cli("train", "status", job_id, "--json").stdout)
    assert job["state"] == "finished" and job["runtime"] == "trainer"
    for rank in ("0", "1"):
        seen = json.loads((Path(job["output"]) / f"seen-{rank}.json").read_text())
        assert seen == {"python": str(venv / "bin" / "python"), "omp": "1"}
    assert job["metrics"] == {"loss": {"last": 0.25, "count": 3, "step": 2}}
    assert job["params"]["env"] == {"EPOCHS": "3"} and job["params"]["runtime"] == "trainer"
    assert "metrics: loss=0.25 (3)" in cli("train", "status", job_id).stdout

    asset_id = _stage_from_job(cli, job_id, example_paths)
    assert cli("deploy", "create", "--model-asset-id", asset_id, "--name", "trained").exit_code == 0
    try:
        view = cli("deploy", "view", "--name", "trained").stdout
        assert f"trained by: job {job_id}" in view and "metrics: loss=0.25 (3)" in view
    finally:
        cli("deploy", "stop", "--name", "trained")
    unknown = cli("train", "submit", "--runtime", "nope")
    assert unknown.exit_code == 1 and "runtime 'nope'" in unknown.output


def test_a_worker_over_its_memory_fails_the_job(cli, tmp_path):
    script = _script(
        tmp_path,
        "hog.py",
        """
        import time
        hog = bytearray(300 * 2**20)
        for i in range(0, len(hog), 4096):
            hog[i] = 1
        time.sleep(60)
        """,
    )
    result = cli(
        *submit_args(script),
        "-p",
        "worker_memory",
        "100m",
        "-p",
        "wait",
        "true",
    )
    assert result.exit_code == 1
    assert "worker 0 exceeded its worker memory (100m)" in result.output
