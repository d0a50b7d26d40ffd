"""The runner with real kernels (each run starts one, ~1-2 s): secrets leave no trace, failed and
cancelled runs are recorded, progress, timeout, re-run and the CLI end to end."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import nbformat
import pytest
from helpers import make_template

from mlops_widgets.masking import MASK
from mlops_widgets.runner import ProgressEvent, get_run, list_runs, run_template
from mlops_widgets.runner import control as control_module
from mlops_widgets.workspace import Workspace

SECRET = "s3cr3t-V4LUE-9f8e7d"
EXTRA = "xtra-CUSTOM-arg-5a4b"
AMBIENT = "ambient-T0KEN-77c1"

LEAKY_STEPS = [
    # prints, records and returns the secrets the kernel got
    "import os\n"
    "from mlops_widgets.runner.record import record\n"
    "from mlops_widgets.runner.secrets import get_secrets\n"
    "print('key is', api_key, 'and the token', os.environ['CPD_TEST_TOKEN'])\n"
    "print(get_secrets())\n"
    "record(token_seen=api_key, deployment_name=name, home=os.environ['MLOPS_HOME'])",
    "from IPython.display import HTML, display\ndisplay(HTML(f'<b>{api_key}</b>'))\n{'key': api_key}",
    "import sys\nprint(api_key, file=sys.stderr)\nassert not fail, f'failing with {api_key}'",
]


def leaks(root: Path, *values: str) -> list[str]:
    """Every file under `root` (database and its WAL included) holding any form of `values`
    (plain, URL-encoded, base64, escaped)."""
    from helpers import byte_leaks

    return byte_leaks(root, *values)


def test_secrets_leave_no_trace_and_rerun_asks_for_them_again(
    tmp_path: Path, workspace: Workspace, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_template(
        tmp_path / "Leaky.ipynb",
        'api_key = ""  # the key\nname = "demo"  # a deployment name\nfail = False  # fail at the end',
        LEAKY_STEPS,
    )
    monkeypatch.setenv("CPD_TEST_TOKEN", AMBIENT)  # a credential the kernel inherits
    events: list[ProgressEvent] = []
    rec = run_template(
        path,
        {"api_key": SECRET, "name": "dep-a", "fail": True},
        secrets={"CPD_APIKEY": EXTRA},
        progress=events.append,
    )

    assert rec.status == "failed"
    assert rec.error["summary"] == f"AssertionError: failing with {MASK}"
    assert rec.error["heading"] == "Step 3"
    assert rec.results == {"token_seen": MASK, "deployment_name": "dep-a", "home": str(workspace.root)}
    assert rec.parameters == {"name": "dep-a", "fail": True}
    assert rec.secret_names == ["CPD_APIKEY", "api_key"]
    assert leaks(workspace.root, SECRET, EXTRA, AMBIENT) == []

    nb = nbformat.read(rec.notebook, as_version=4)
    text = rec.notebook.read_text()
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "api_key = secret('api_key')" in injected.source
    assert (
        f"key is {MASK} and the token {MASK}" in text
        and f"<b>{MASK}</b>" in text
        and "'CPD_APIKEY': '" + MASK in text
    )
    assert nb.metadata.papermill.parameters == {"name": "dep-a", "fail": True}
    assert "papermill-error-cell" in nb.cells[0].source, "papermill's banner points at the failure"
    assert rec.template_copy.read_bytes() == path.read_bytes()

    statuses = [e.status for e in events]
    assert statuses[0] == "starting" and statuses[-1] == "failed" and set(statuses[1:-1]) == {"running"}
    assert [e.done for e in events] == sorted(e.done for e in events)
    assert events[-1].done == events[-1].total == 5  # parameters, injected parameters, 3 steps
    assert [s.run_id for s in list_runs(workspace, deployment_name="dep-a", status="failed")] == [rec.run_id]

    # a re-run needs the secrets again: none is in this environment
    res = cli("runs", "rerun", rec.short_id)
    assert res.exit_code == 1
    assert (
        "CPD_APIKEY ($MLOPS_SECRET_CPD_APIKEY" in res.stderr
        and "api_key ($MLOPS_SECRET_api_key" in res.stderr
    )
    assert len(list_runs(workspace)) == 1

    monkeypatch.setenv("MLOPS_SECRET_api_key", SECRET)
    monkeypatch.setenv("CPD_APIKEY", EXTRA)
    res = cli("runs", "rerun", rec.short_id)
    assert res.exit_code == 1  # it fails again: same template, same parameters
    assert "failed in step 'Step 3': AssertionError: failing with" in res.stderr
    assert "executed notebook: " in res.stderr
    again = list_runs(workspace)[0]
    assert again.rerun_of == rec.run_id and again.run_id != rec.run_id
    assert get_run(again.run_id).results["token_seen"] == MASK
    assert leaks(workspace.root, SECRET, EXTRA, AMBIENT) == []


PIN = "9876543210"

SCRUB_STEPS = [
    # a secret printed a character at a time: one stream output per character
    "import time\nfor ch in api_key:\n    print(ch, end='', flush=True)\n    time.sleep(0.002)\nprint()",
    # a secret in a number cannot be masked: that output is replaced, the others are kept
    "from IPython.display import display\n"
    "display({'application/json': {'n': int(get_secrets()['pin'] + '0')}}, raw=True)\nprint('after')",
    "print('path is', path)",
]


def test_scrubbing_keeps_the_notebook_valid_and_the_users_parameters(
    tmp_path: Path, workspace: Workspace, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_template(
        tmp_path / "Scrub.ipynb",
        'api_key = ""  # the key\npath = ""  # a path\nfrom mlops_widgets.runner.secrets import get_secrets',
        SCRUB_STEPS,
    )
    monkeypatch.setenv("CPD_TEST_TOKEN", AMBIENT)
    given = f"/data/{AMBIENT}/model"  # a folder named like the ambient credential's value
    rec = run_template(path, {"api_key": SECRET, "path": given}, secrets={"pin": PIN})
    assert rec.status == "ok", rec.error
    assert leaks(workspace.root, SECRET, PIN) == []

    nb = nbformat.read(rec.notebook, as_version=4)
    nbformat.validate(nb)
    steps = [c for c in nb.cells if c.cell_type == "code"][-3:]
    assert [o.get("text") for o in steps[0].outputs] == [MASK + "\n"]
    note, after = steps[1].outputs
    assert "still held a secret value" in note.text and after.text == "after\n"
    # the user's own parameter is plain data of the run: kept, so the run can be run again
    assert rec.parameters["path"] == given and steps[2].outputs[0].text == f"path is {given}\n"
    assert [c.execution_count for c in steps] == [3, 4, 5]

    monkeypatch.setenv("MLOPS_SECRET_api_key", SECRET)
    monkeypatch.setenv("MLOPS_SECRET_pin", PIN)
    res = cli("runs", "rerun", rec.short_id)
    assert res.exit_code == 0, res.output
    assert get_run(list_runs(workspace)[0].run_id).parameters["path"] == given


def test_run_pipeline_template_from_the_cli(cli, workspace: Workspace, tmp_path: Path) -> None:
    params = tmp_path / "params.yml"
    params.write_text("model_name: from-file\non_clash: new\nresource_configs: {n_cpus: 2}\n")
    res = cli("run", "A_MLOps_Pipeline", "-f", params, "-p", "model_name", "from-flag")
    assert res.exit_code == 0, res.output
    (run,) = list_runs(workspace)
    assert run.status == "ok" and run.template == "A_MLOps_Pipeline"
    rec = get_run(run.run_id)
    assert f"model_asset_id: {rec.results['model_asset_id']}" in res.stdout
    assert f"notebook: {rec.notebook}" in res.stdout
    assert re.search(r"\[\d+/8\] 4\. Record the model asset id\n", res.stderr)  # progress, step by step
    assert f"run {rec.run_id}: ok" in res.stderr and str(rec.dir) in res.stderr
    assert rec.parameters["model_name"] == "from-flag"
    entries = json.loads(cli("config", "list", "--json").stdout)
    entry = entries[rec.results["model_asset_id"]]
    assert entry["model_name"] == "from-flag"
    assert entry["wmla_deployment"]["resource_configs"]["n_cpus"] == 2
    assert entry["model_asset"] == rec.results["model_asset"] == "model.zip"


SLEEPY = [
    "import time\nprint('sleeping')\ntime.sleep(60)",
    "print('never reached')",
]


def test_cancel_interrupts_the_kernel_and_records_the_run(tmp_path: Path, workspace: Workspace) -> None:
    path = make_template(tmp_path / "Sleepy.ipynb", "n = 1  # unused", SLEEPY)
    cancel, started = threading.Event(), threading.Event()

    def progress(event: ProgressEvent) -> None:
        if event.heading == "Step 1" and event.cell_index is not None and not started.is_set():
            started.set()  # the sleeping cell is starting: cancel once it sleeps
            threading.Timer(0.3, cancel.set).start()

    rec = run_template(path, progress=progress, cancel=cancel)
    assert rec.status == "cancelled"
    assert rec.error["summary"] == "cancelled" and rec.error["heading"] == "Step 1"
    assert rec.duration_s < 20
    text = rec.notebook.read_text()
    assert "KeyboardInterrupt" in text and "never reached" in text  # the source, not an output
    nb = nbformat.read(rec.notebook, as_version=4)
    assert nb.cells[-1].outputs == []
    assert list_runs(workspace, status="cancelled")[0].run_id == rec.run_id


def test_an_older_index_learns_which_runs_a_schedule_started(tmp_path: Path, workspace: Workspace) -> None:
    """The index keeps what started each run (the Runs table's Trigger column, the listing's
    `--trigger`); one written before it did gets that from the runs' records, once."""
    path = make_template(tmp_path / "Asked.ipynb", 'triggered_by = "user"  # who asked', ["print(1)"])
    scheduled = run_template(path, {"triggered_by": "schedule"})
    asked = run_template(path)
    assert {r.run_id: r.triggered_by for r in list_runs(workspace)} == {
        scheduled.run_id: "schedule",
        asked.run_id: None,  # the default: nothing recorded
    }
    conn = workspace.connect()
    conn.execute("ALTER TABLE runs_runs DROP COLUMN triggered_by")  # as an older version left it
    conn.close()
    assert {r.run_id: r.triggered_by for r in list_runs(workspace)} == {
        scheduled.run_id: "schedule",
        asked.run_id: None,
    }


def test_timeout_kills_a_kernel_that_ignores_the_interrupt(
    tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control_module, "INTERRUPT_GRACE_S", 0.5)
    path = make_template(
        tmp_path / "Stubborn.ipynb",
        "n = 1  # unused",
        ["import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)"],
    )
    rec = run_template(path, timeout=1.5)
    assert rec.status == "failed"
    assert rec.error["summary"] == "timed out after 1.5 s" and rec.error["heading"] == "Step 1"
    assert rec.duration_s < 20
    assert rec.notebook.is_file()


def test_a_kernel_that_cannot_start_is_a_failed_run(tmp_path: Path, workspace: Workspace) -> None:
    path = make_template(tmp_path / "NoKernel.ipynb", "n = 1  # unused", ["print(n)"])
    nb = nbformat.read(path, as_version=4)
    nb.metadata.kernelspec.name = "no-such-kernel"
    nbformat.write(nb, path)
    rec = run_template(path)
    assert rec.status == "failed" and "no-such-kernel" in rec.error["summary"]
    assert rec.error["ename"] == "NoSuchKernel"


@pytest.mark.parametrize("ending", ["ok", "timeout"])
def test_what_a_run_started_ends_with_it_even_outside_its_session(
    tmp_path: Path, workspace: Workspace, ending: str
) -> None:
    from helpers import ESCAPE, gone, shm_path, wait_for

    shm = shm_path("run")
    steps = [
        ESCAPE
        + f"pid = escape(shm={str(shm)!r})\nfrom mlops_widgets.runner.record import record\nrecord(pid=pid)",
        "import time\ntime.sleep(0 if stay == 0 else 600)",
    ]
    path = make_template(tmp_path / "Escapes.ipynb", "stay = 0  # seconds", steps)
    rec = run_template(path, {"stay": 0 if ending == "ok" else 1}, timeout=None if ending == "ok" else 5)
    assert rec.status == ("ok" if ending == "ok" else "failed"), rec.error
    wait_for(lambda: gone(rec.results["pid"]), what="the escaped grandchild to be killed")
    wait_for(lambda: not shm.exists(), what="its /dev/shm file to be removed")
