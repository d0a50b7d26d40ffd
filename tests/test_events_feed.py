"""The change feed (mlops_widgets.events_feed): every change to a workspace, numbered, whatever
process made it; a follower resumes from the last number it saw; the feed stays bounded; it
carries ids and states only (never a secret); a failure to publish never fails the change."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import make_template

from mlops_widgets import events_feed
from mlops_widgets.backends.local.training_jobs import read_job, update_job, write_job
from mlops_widgets.runner import list_runs, run_template
from mlops_widgets.runner.events import record
from mlops_widgets.workspace import Workspace

SECRET = "feed-secret-4242-value"
PIN = "5551234987"


def test_changes_come_in_order_and_a_follower_resumes_from_its_last_seq(workspace: Workspace) -> None:
    assert events_feed.since(workspace, 0) == [] and events_feed.last_seq(workspace) == 0
    first = events_feed.publish(workspace, "job", "train-1", state="submitted")
    second = events_feed.publish(workspace, "job", "train-1", state="running")
    assert first is not None and second is not None and second > first
    changes = events_feed.since(workspace, 0)
    assert [(c.kind, c.subject, c.payload["state"]) for c in changes] == [
        ("job", "train-1", "submitted"),
        ("job", "train-1", "running"),
    ]
    assert changes[0].to_dict()["seq"] == first and changes[0].to_dict()["state"] == "submitted"
    third = events_feed.publish(workspace, "job", "train-1", state="finished")
    assert [c.seq for c in events_feed.since(workspace, second)] == [third]  # resumes after `second`
    assert events_feed.since(workspace, third) == [] and events_feed.last_seq(workspace) == third
    assert [c.seq for c in events_feed.since(workspace, 0, limit=2)] == [first, second]


def test_reading_a_workspace_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "none")
    assert events_feed.since(ws, 0) == [] and events_feed.last_seq(ws) == 0
    assert not ws.root.exists()


def test_the_feed_is_bounded_and_its_numbers_never_go_back(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_feed, "KEEP", 10)
    monkeypatch.setattr(events_feed, "PRUNE_EVERY", 5)
    seqs = [events_feed.publish(workspace, "run", f"r{i}", status="ok") for i in range(40)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 40
    kept = events_feed.since(workspace, 0)
    assert 10 <= len(kept) < 15 and kept[-1].seq == seqs[-1]
    assert [c.subject for c in kept][-10:] == [f"r{i}" for i in range(30, 40)]


def test_runs_and_events_are_published_without_their_parameters_or_secrets(
    tmp_path: Path, workspace: Workspace
) -> None:
    path = make_template(tmp_path / "Feed.ipynb", 'api_key = ""  # the key', ["print(len(api_key))"])
    run = run_template(path, {"api_key": SECRET}, secrets={"pin": PIN})
    assert run.ok, run.error
    record(workspace, "entry.edit", {"password": SECRET, "note": PIN}, secrets=[PIN])
    event = list_runs(workspace)[0]
    changes = [c.to_dict() for c in events_feed.since(workspace, 0)]
    assert [(c["kind"], c["subject"], c["status"]) for c in changes] == [
        ("run", run.run_id, "running"),
        ("run", run.run_id, "ok"),
        ("event", event.run_id, "ok"),
    ]
    assert changes[0]["template"] == "Feed" and changes[2]["template"] == "entry.edit"
    text = json.dumps(changes)
    assert SECRET not in text and PIN not in text


def test_a_run_recorded_by_another_process_is_seen(workspace: Workspace) -> None:
    start = events_feed.last_seq(workspace)
    code = (
        "from mlops_widgets.runner.events import record; "
        f"record({str(workspace.root)!r}, 'deploy.stop', {{'deployment_name': 'demo'}})"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    (change,) = events_feed.since(workspace, start)
    assert (change.kind, change.payload["template"], change.payload["deployment_name"]) == (
        "event",
        "deploy.stop",
        "demo",
    )


def test_every_write_of_a_training_job_announces_its_state(workspace: Workspace) -> None:
    folder = workspace.dir("training", "train-x")
    write_job(folder, {"job_id": "train-x", "state": "submitted"})
    update_job(folder, lambda job: job.update(state="finished"))
    assert read_job(folder)["state"] == "finished"
    assert [(c.kind, c.subject, c.payload) for c in events_feed.since(workspace, 0)] == [
        ("job", "train-x", {"state": "submitted"}),
        ("job", "train-x", {"state": "finished"}),
    ]


def test_a_feed_that_cannot_be_written_never_fails_the_change(
    workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    with workspace.tables("CREATE VIEW IF NOT EXISTS events_feed AS SELECT 1 AS seq") as conn:
        conn.execute("SELECT 1")  # a view stands where the table should be: no insert can work
    with caplog.at_level(logging.WARNING, logger="mlops_widgets.events_feed"):
        saved = record(workspace, "deploy.start", {"deployment_name": "demo"})
    assert [r.run_id for r in list_runs(workspace)] == [saved.run_id]  # the change stands
    assert "change feed" in caplog.text and "not published" in caplog.text
