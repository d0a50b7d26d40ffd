"""Event records: state changes that run no template are in the audit trail, never with a secret."""

from __future__ import annotations

import pytest
from helpers import byte_leaks

from mlops_widgets.errors import MlopsError
from mlops_widgets.masking import MASK
from mlops_widgets.runner import clone_run, events, get_run, list_runs, rerun
from mlops_widgets.workspace import Workspace

TOKEN = "ambient-T0KEN-for-events-1234"


def test_an_event_is_recorded_and_listed_with_its_kind(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, cli, tmp_path
) -> None:
    monkeypatch.setenv("USER_ACCESS_TOKEN", TOKEN)
    ok = events.record(
        workspace,
        "monitor.thresholds",
        {
            "deployment_name": "demo",
            "thresholds": {"dice": 0.8},
            "api_key": "k-123456789",
            "note": f"t={TOKEN}",
        },
        result={"updated": 2},
    )
    failed = events.record(
        workspace, "deploy.start", {"deployment_name": "demo"}, error=MlopsError(f"refused with {TOKEN}")
    )
    assert ok.kind == failed.kind == "event" and ok.status == "ok" and failed.status == "failed"
    stored = get_run(ok.run_id)
    assert stored.parameters == {
        "deployment_name": "demo",
        "thresholds": {"dice": 0.8},
        "api_key": MASK,
        "note": f"t={MASK}",
    }
    assert stored.results == {"updated": 2} and stored.deployment_name == "demo"
    assert get_run(failed.run_id).error["summary"] == f"MlopsError: refused with {MASK}"
    listed = list_runs(workspace, deployment_name="demo")
    assert [(r.kind, r.template, r.status) for r in listed] == [
        ("event", "deploy.start", "failed"),
        ("event", "monitor.thresholds", "ok"),
    ]
    out = cli("runs", "list").stdout
    assert "KIND" in out and "event" in out and "deploy.start" in out
    assert byte_leaks(workspace.root, TOKEN, "k-123456789") == []
    with pytest.raises(MlopsError, match="an event record"):
        rerun(ok.run_id)
    with pytest.raises(MlopsError, match="an event record"):
        clone_run(ok.run_id, tmp_path / "x.ipynb")
    with pytest.raises(MlopsError, match="dotted"):
        events.record(workspace, "Start!", {})


def test_deploy_commands_leave_an_event(cli, workspace: Workspace) -> None:
    res = cli("deploy", "stop", "--name", "nowhere")
    assert res.exit_code == 1
    (event,) = list_runs(workspace)
    assert (event.kind, event.template, event.status, event.deployment_name) == (
        "event",
        "deploy.stop",
        "failed",
        "nowhere",
    )
    assert event.error and "nowhere" in event.error
