"""The panel's Train tab: submit the example (A1 through the runner), see the job with its state
and log, stage its output as the model (its entry naming the job), stop a running job."""

from __future__ import annotations

import html
import json
import re
import time

import pytest

from mlops_widgets.backends.training_protocol import JOB_ENDED
from mlops_widgets.ops import space, train
from mlops_widgets.widgets import MLOpsPanel

WAIT_S = 180  # bounds a hang only


def txt(widget) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", widget.value))


@pytest.fixture
def panel(workspace):
    p = MLOpsPanel(workspace=workspace)
    yield p
    assert p.wait(WAIT_S)
    for job in train.jobs(p.ctx.backend):
        if job.state not in JOB_ENDED:
            train.stop(p.ctx.backend, job.id)


def _until_ended(tab) -> dict:
    deadline = time.monotonic() + WAIT_S
    while True:
        tab.refresh()
        job = tab._job()
        if job and job.state in JOB_ENDED:
            return job
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.1)


def test_submit_follow_and_stage_the_example_from_the_train_tab(panel):
    tab = panel.train
    panel.show("Train")
    assert not tab.submit.disabled and tab.stage.disabled  # no job picked yet
    tab.workers.value = "2"
    assert tab.submit.disabled and "distributed" in tab.form_error.value
    tab.framework.value = "distPyTorch"
    assert not tab.submit.disabled
    tab.submit.button.click()
    assert panel.wait(WAIT_S) and panel.ctx.tasks.last_error is None, panel.ctx.tasks.message.value
    assert "submitted" in txt(tab.message)

    job = _until_ended(tab)
    assert job.state == "finished" and "finished" in txt(tab.details)
    assert "[worker-1] worker 1 of 2" in txt(tab.log)
    assert not tab.stage.disabled and tab.stop.disabled
    tab.stage.button.click()
    assert panel.wait(WAIT_S) and panel.ctx.tasks.last_error is None, panel.ctx.tasks.message.value
    first = tab.last_model_asset_id
    _, entry = space.get_entry(panel.ctx.backend, model_asset_id=first)
    assert entry["training_job"]["job_id"] == job.id
    tab.stage.button.click()  # again: the deployment folder's asset exists now, a new one goes beside it
    assert panel.wait(WAIT_S) and panel.ctx.tasks.last_error is None, panel.ctx.tasks.message.value
    assert tab.last_model_asset_id != first


def test_stop_a_running_job_from_the_train_tab(panel, tmp_path):
    script = tmp_path / "slow.py"
    script.write_text("import time\nprint('started', flush=True)\ntime.sleep(600)\n")
    tab = panel.train
    tab.files.value, tab.main.value = str(script), "slow.py"
    tab.submit.button.click()
    assert panel.wait(WAIT_S) and panel.ctx.tasks.last_error is None, panel.ctx.tasks.message.value
    tab.refresh()
    assert tab._job().state in ("submitted", "running") and not tab.stop.disabled
    tab.stop.button.click()
    assert panel.wait(WAIT_S)
    tab.refresh()
    assert tab._job().state == "killed"
    assert json.dumps(train.status(panel.ctx.backend, tab.pick.value).state) == '"killed"'
    # recorded in the audit trail as `mlops train stop` records it (the application core)
    from mlops_widgets.runner import get_run, list_runs

    (found,) = [r for r in list_runs(panel.ctx.workspace) if r.template == "train.stop"]
    event = get_run(found.run_id, panel.ctx.workspace)
    assert (event.kind, event.parameters, event.results, event.status) == (
        "event",
        {"job_id": tab.pick.value},
        {"state": "killed"},
        "ok",
    )


def test_a_credential_typed_among_the_train_tabs_variables_stays_a_secret(panel, workspace):
    """As from the CLI: the run's notebook, record and the job keep no credential in clear."""
    tab = panel.train
    tab.env.value = "EPOCHS=2\nDB_PASSWD=hunter2-in-the-form"
    tab.submit.button.click()
    assert panel.wait(WAIT_S) and panel.ctx.tasks.last_error is None, panel.ctx.tasks.message.value
    job = _until_ended(tab)
    assert job.state == "finished" and job.params["env"] == {"EPOCHS": "2"}
    leaks = [p for p in workspace.root.rglob("*") if p.is_file() and b"hunter2-in-the-form" in p.read_bytes()]
    assert leaks == []
