"""Monitoring that runs by itself: schedules evaluated by the local service as template runs,
catch-up after downtime, alerts, notification channels (a real webhook served here), trends."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tornado.httpserver
import tornado.testing
import tornado.web
from helpers import ASSET

from mlops_widgets import events_feed
from mlops_widgets.backends.base import Backend
from mlops_widgets.config import json_schema, validate_entry
from mlops_widgets.config.fields import EVERY_PATTERN
from mlops_widgets.errors import MlopsError
from mlops_widgets.monitors import schedule as sched
from mlops_widgets.ops import alerts, monitor, monitor_views, notify, schedule, space
from mlops_widgets.runner import get_run, list_runs

SEG, GEN = "segmentation_metrics", "generic_metrics"
WAIT_S = 240.0  # a failsafe for a loaded machine, not a timing: every wait ends on an event


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def _evaluations(backend: Backend, *, finished: bool = True) -> list[Any]:
    runs = list_runs(backend.workspace, template="A5_Monitor_Evaluation")
    return [
        get_run(r.run_id, backend.workspace) for r in runs if not finished or r.status in ("ok", "failed")
    ]


# --- the schedule model ---------------------------------------------------------------------------


def test_schedules_have_openscale_shape_and_slots() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    s = sched.make_schedule("30m", min_s=60, start=start)
    assert s == {
        "repeat_interval": 30,
        "repeat_unit": "minute",
        "repeat_type": "minute",
        "status": "enabled",
        "start_time": {"type": "absolute", "timestamp": start.isoformat()},
    }
    assert sched.every_text(s) == "30m" and sched.is_enabled(s)
    assert sched.latest_slot(s, start + timedelta(minutes=29)) is None  # the first slot is start + 30m
    assert sched.latest_slot(s, start + timedelta(minutes=95)) == start + timedelta(minutes=90)
    assert sched.next_slot(s, start + timedelta(minutes=95)) == start + timedelta(minutes=120)
    assert not sched.is_enabled(sched.make_schedule("1h", min_s=60, paused=True))
    with pytest.raises(MlopsError, match="at least 60 s apart, got '30s'") as err:
        sched.make_schedule("30s", min_s=60)
    assert err.value.hint.action == "monitor.schedule.longer"
    assert sched.make_schedule("5s", min_s=5)["repeat_unit"] == "second"
    with pytest.raises(MlopsError, match="whole number and a unit"):
        sched.make_schedule("1w", min_s=60)


def test_entry_schedule_field_is_validated_and_in_the_schema() -> None:
    from mlops_widgets.config import new_entry

    entry = new_entry()
    entry["wmla_deployment"]["deployment_name"] = "demo"
    common = {"dir_gt": "g", "dir_pred": "p", "volume_display_name": "v", "most_recent": 7, "thresholds": {}}
    entry["openscale_custom_metric_provider"] = {
        SEG: {**common, "schedule": {"every": "1h", "paused": True}},
        GEN: {**common, "schedule": {"every": "1 hour", "pause": True}},
    }
    with pytest.raises(MlopsError) as err:
        validate_entry(entry)
    text = str(err.value)
    assert "openscale_custom_metric_provider.generic_metrics.schedule.every" in text
    assert "whole number and a unit s, m, h or d" in text and "'pause'" in text
    assert SEG + ".schedule" not in text
    seg = json_schema()["$defs"][f"monitor_{SEG}"]["properties"]["schedule"]
    assert seg["properties"]["every"]["pattern"] == f"^(?:{EVERY_PATTERN})$"
    assert set(seg["properties"]) == {"every", "cron", "tz", "paused"}  # a repeat, or calendar times


# --- the local service evaluates schedules ---------------------------------------------------------


def test_slots_are_due_once_and_claimed_once(ready: Backend) -> None:
    """The scheduler's bookkeeping at chosen instants: missed slots make one due evaluation (the
    latest), a claimed slot is never due or claimable again (two services could not both run it),
    a paused schedule is never due."""
    from mlops_widgets.runner.scheduler import claim, due

    ws = ready.workspace
    start = datetime.now(UTC).replace(microsecond=0)
    (row,) = schedule.set_schedule(ready, "demo", SEG, every="1h", start=start)  # first slot in an hour
    iid = row.monitor_instance_id
    base = start + timedelta(seconds=sched.offset_s(iid, 3600))  # the instance's own offset
    assert due(ws, base + timedelta(minutes=30)) == []
    (job,) = due(ws, base + timedelta(hours=3, seconds=1))
    assert (job["monitor_instance_id"], job["deployment_name"], job["monitor_id"]) == (iid, "demo", SEG)
    assert job["slot"] == base + timedelta(hours=3)  # three slots missed: only the latest is due
    assert claim(ws, iid, job["slot"]) and not claim(ws, iid, job["slot"])
    assert not claim(ws, iid, base + timedelta(hours=2))  # an older slot neither
    assert due(ws, base + timedelta(hours=3, minutes=59)) == []
    assert [j["slot"] for j in due(ws, base + timedelta(hours=4))] == [base + timedelta(hours=4)]
    schedule.set_schedule(ready, "demo", SEG, paused=True)
    assert due(ws, start + timedelta(hours=10)) == []


def test_a_schedule_evaluates_on_its_own_and_a_paused_one_does_not(ready: Backend, cli) -> None:
    paused = cli("monitor", "schedule", "--name", "demo", "--monitor", GEN, "--every", "1s", "--pause")
    assert paused.exit_code == 0, paused.output
    res = cli("monitor", "schedule", "--name", "demo", "--monitor", SEG, "--every", "2s")
    assert res.exit_code == 0, res.output  # the service starts: it runs the schedule
    runs = wait_for("two scheduled evaluations", lambda: (r := _evaluations(ready)) and len(r) >= 2 and r)
    cli("monitor", "schedule", "--name", "demo", "--pause")
    for r in runs:
        assert r.parameters["monitor_id"] == SEG and r.parameters["triggered_by"] == "schedule"
        assert r.status == "ok" and r.notebook.exists()  # in the audit trail, executed notebook kept
        assert [x["monitor_id"] for x in r.results["runs"]] == [SEG]
    assert len({r.parameters["slot"] for r in runs}) == len(runs)  # one evaluation per slot
    # The audit trail knows them scheduled: the panel's Runs table says so in its Trigger column.
    from mlops_widgets.widgets import MLOpsPanel

    listed = {r.run_id: r for r in list_runs(ready.workspace)}
    assert {listed[r.run_id].triggered_by for r in runs} == {"schedule"}
    panel = MLOpsPanel(workspace=ready.workspace, follow=False)
    panel.runs.refresh()
    assert {panel.runs.pick.row(r.run_id)["trigger"] for r in runs} == {"schedule"}
    mon = ready.monitoring
    (gen,) = mon.monitor_instances.list(monitor_definition_id=GEN)
    assert mon.runs.list(gen["metadata"]["id"]) == []  # paused: never evaluated
    (seg,) = mon.monitor_instances.list(monitor_definition_id=SEG)
    assert {r["entity"]["triggered_by"] for r in mon.runs.list(seg["metadata"]["id"])} == {"schedule"}
    # The entry keeps the schedules, so re-creating the monitors keeps them.
    settings = space.get_entry(ready, model_asset_id=ASSET)[1]["openscale_custom_metric_provider"]
    assert settings[SEG]["schedule"] == {"every": "2s", "paused": True}
    assert settings[GEN]["schedule"] == {"every": "1s", "paused": True}
    changes = list_runs(ready.workspace, template="monitor.schedule")
    assert len(changes) == 3 and {r.status for r in changes} == {"ok"}  # each change in the audit trail
    assert "  schedule: every 2s, paused" in cli("monitor", "status", "--name", "demo").stdout
    listed = json.loads(cli("monitor", "schedule", "--list", "--json").stdout)
    assert {(r["monitor_id"], r["every"], r["status"]) for r in listed} == {
        (SEG, "2s", "paused"),
        (GEN, "1s", "paused"),
    }


def test_missed_slots_are_caught_up_once(ready: Backend) -> None:
    """A schedule whose slots passed while no service ran: the service evaluates the latest
    missed slot once, not once per missed slot."""
    (inst,) = ready.monitoring.monitor_instances.list(monitor_definition_id=SEG)
    offset = timedelta(seconds=sched.offset_s(inst["metadata"]["id"], 300))  # the instance's own
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=16) - offset
    schedule.set_schedule(ready, "demo", SEG, every="5m", start=start)  # 3 slots missed, the next in 4 min
    start += offset
    first = wait_for("the catch-up evaluation", lambda: _evaluations(ready))
    schedule.set_schedule(ready, "demo", SEG, paused=True)
    slots = [datetime.fromisoformat(r.parameters["slot"]) for r in _evaluations(ready)]
    assert datetime.fromisoformat(first[-1].parameters["slot"]) == start + timedelta(minutes=15)
    assert start + timedelta(minutes=5) not in slots and start + timedelta(minutes=10) not in slots
    # Resuming skips what was missed while paused: the next slot is a whole repeat away.
    (resumed,) = schedule.set_schedule(ready, "demo", SEG, paused=False)
    assert resumed.schedule and resumed.schedule.next_at
    next_at = datetime.fromisoformat(resumed.schedule.next_at)
    assert next_at - datetime.now(UTC) > timedelta(minutes=4)
    schedule.set_schedule(ready, "demo", SEG, paused=True)


def test_a_failing_evaluation_is_recorded_and_retried_at_the_next_slot(ready: Backend) -> None:
    for png in (ready.workspace.root / "volumes" / "vol" / "eval" / "pred").glob("*.png"):
        png.unlink()
    schedule.set_schedule(ready, "demo", SEG, every="1s")
    runs = wait_for("two failed evaluations", lambda: (r := _evaluations(ready)) and len(r) >= 2 and r)
    schedule.set_schedule(ready, "demo", SEG, remove=True)
    assert {r.status for r in runs} == {"failed"}
    assert "Needs at least 3 newly created files" in runs[-1].error["summary"]
    st = {m.monitor_id: m for m in monitor_views.monitor_status(ready, "demo").monitors}
    assert st[SEG].state == "error" and st[SEG].schedule is None


# --- alerts and notification channels -----------------------------------------------------------


def _set_limit(backend: Backend, value: float) -> None:
    """The generic monitor's num_images_recent_predicted lower limit (4 images are measured)."""
    mon = backend.monitoring
    (gen,) = mon.monitor_instances.list(monitor_definition_id=GEN)
    mon.monitor_instances.update(
        gen["metadata"]["id"],
        thresholds=[{"metric_id": "num_images_recent_predicted", "type": "lower_limit", "value": value}],
    )


def test_a_violation_reaches_the_webhook_once_per_episode(
    ready: Backend,
    cli,
    webhook: tuple[str, list[dict[str, Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, received = webhook
    added = cli("monitor", "notify", "--webhook", url)
    assert added.exit_code == 0 and "hush-hush" not in added.output and "127.0.0.1" in added.output
    out = tmp_path / "alerts.jsonl"
    assert cli("monitor", "notify", "--command", f"cat >> {out}; echo >> {out}").exit_code == 0
    listed = cli("monitor", "notify", "--list")
    assert "hush-hush" not in listed.output and "webhook" in listed.output and "command" in listed.output

    monkeypatch.setenv("MLOPS_NOTIFY_RETRY_S", "0.01")
    run = cli("monitor", "run", "--name", "demo", "--monitor", GEN)  # 4 < 40 images: violated
    assert run.exit_code == 0, run.output
    monitor.monitor_run(ready, "demo", GEN)  # still violated: the same episode
    notify.dispatch(ready.workspace)
    _set_limit(ready, 1)
    monitor.monitor_run(ready, "demo", GEN)  # back within its limit: the episode ends
    _set_limit(ready, 40)
    monitor.monitor_run(ready, "demo", GEN)  # a new episode
    notify.dispatch(ready.workspace)

    assert len(received) == 2  # the first delivery was retried after a 503, not sent twice
    first = received[0]
    assert first["deployment_name"] == "demo" and first["monitor_id"] == GEN
    assert "num_images_recent_predicted" in first["new_violations"]
    assert received[1]["new_violations"] == ["num_images_recent_predicted"]  # the others stayed violated
    v = next(x for x in first["violations"] if x["metric"] == "num_images_recent_predicted")
    assert (v["value"], v["limit"], v["direction"]) == (4, 40, "lower")
    assert first["audit_run_id"]  # the template run of `monitor run`
    assert get_run(first["audit_run_id"], ready.workspace).template == "A5_Monitor_Evaluation"
    assert [json.loads(line) for line in out.read_text().splitlines() if line] == received

    listed = json.loads(cli("monitor", "alerts", "--name", "demo", "--json").stdout)
    assert [a["opens_episode"] for a in listed] == [True, False, False, True]  # newest first
    assert alerts.unacknowledged_count(ready.workspace) == 4
    assert cli("monitor", "alerts", "--ack", listed[0]["alert_id"][:8]).exit_code == 0
    assert alerts.unacknowledged_count(ready.workspace, "demo") == 3
    feed = [c for c in events_feed.since(ready.workspace, 0, limit=10_000) if c.kind == "alert"]
    assert [c.payload["state"] for c in feed] == ["raised"] * 4 + ["acknowledged"]  # the change feed
    assert {c.subject for c in feed[:4]} == {a["alert_id"] for a in listed}
    assert "no alerts" in cli("monitor", "alerts", "--since", "2999-01-01").stdout
    assert len(json.loads(cli("monitor", "alerts", "--since", "1h", "--json").stdout)) == 4  # an hour ago
    table = cli("monitor", "alerts").stdout
    assert "num_images_recent_predicted 4 (lower limit 40)" in table
    # The webhook's URL is a secret: in no run record, notebook or database.
    for path in [
        *ready.workspace.root.rglob("*.json"),
        *ready.workspace.root.rglob("*.ipynb"),
        *ready.workspace.root.glob("mlops.db*"),
    ]:
        if path.name != "channels.json":
            assert b"hush-hush" not in path.read_bytes(), path


def test_an_evaluate_from_the_panel_notifies_as_the_clis_does(
    ready: Backend, cli, hook: tuple[int, Hook]
) -> None:
    """The panel's Evaluate goes through the core's evaluate, as `monitor run` does: a new
    alert reaches the notification channels at once, in the same message."""
    from mlops_widgets.widgets import MLOpsPanel

    port, state = hook
    assert cli("monitor", "notify", "--webhook", f"http://127.0.0.1:{port}/hook").exit_code == 0
    panel = MLOpsPanel(workspace=ready.workspace, follow=False)
    m = panel.monitor
    m.refresh()
    assert m.deployment.value == "demo"
    m.which.value = GEN
    assert not m.run_now.disabled, m.run_now.reason.value
    m.run_now.button.click()  # 4 < 40 images: violated, a new episode
    assert panel.wait(WAIT_S)
    assert panel.ctx.tasks.last_error is None, panel.ctx.tasks.message.value
    assert "evaluated demo" in m.message.value
    (from_panel,) = state.received  # delivered by the Evaluate itself: nothing else dispatched
    evaluation = _evaluations(ready)[0]
    assert from_panel["audit_run_id"] == evaluation.run_id and evaluation.parameters["triggered_by"] == "user"
    assert from_panel["deployment_name"] == "demo" and from_panel["monitor_id"] == GEN
    assert "num_images_recent_predicted" in from_panel["new_violations"]

    _set_limit(ready, 1)
    monitor.monitor_run(ready, "demo", GEN)  # back within its limit: the episode ends
    _set_limit(ready, 40)
    assert cli("monitor", "run", "--name", "demo", "--monitor", GEN).exit_code == 0  # a new one
    assert len(state.received) == 2
    from_cli = state.received[1]
    assert from_cli["audit_run_id"] == _evaluations(ready)[0].run_id != from_panel["audit_run_id"]
    assert set(from_cli) == set(from_panel)  # one message, whichever front end evaluated
    assert [from_cli[k] for k in ("kind", "deployment_name", "monitor_id")] == [
        from_panel[k] for k in ("kind", "deployment_name", "monitor_id")
    ]
    assert from_cli["new_violations"] == ["num_images_recent_predicted"]  # the others stayed violated


def test_monitor_create_that_evaluates_notifies_at_once(ready: Backend, cli, hook: tuple[int, Hook]) -> None:
    """`monitor create --evaluate` (and the panel's Create monitors with "evaluate right after")
    sends the alerts its evaluation raised, as `monitor run` does."""
    port, state = hook
    assert cli("monitor", "notify", "--webhook", f"http://127.0.0.1:{port}/hook").exit_code == 0
    assert cli("monitor", "create", "--name", "demo", "--evaluate").exit_code == 0  # 4 < 40: violated
    (sent,) = [r for r in state.received if r["monitor_id"] == GEN]
    assert sent["deployment_name"] == "demo" and "num_images_recent_predicted" in sent["new_violations"]
    configured = list_runs(ready.workspace, template="A3_OpenScale_Configuration")[0]
    assert sent["audit_run_id"] == configured.run_id


def test_notify_rejects_bad_channels(cli, workspace) -> None:
    assert cli("monitor", "notify").exit_code == 1
    bad = cli("monitor", "notify", "--webhook", "ftp://host/x")
    assert bad.exit_code == 1 and "not an http(s) URL" in bad.stderr
    missing = cli("monitor", "notify", "--remove", "nope")
    assert missing.exit_code == 1 and "no notification channel 'nope'" in missing.stderr
    for url, why in [
        ("http://host/hook?token=s3cr3t-tok en", "spaces or control characters"),
        ("http://host:abc/hook?token=s3cr3t-tok", "port of the webhook URL"),
        ("http://host:0/hook?token=s3cr3t-tok", "port of the webhook URL"),
        ("http:///hook?token=s3cr3t-tok", "not an http(s) URL"),
    ]:
        refused = cli("monitor", "notify", "--webhook", url)
        assert refused.exit_code == 1 and why in refused.stderr, (url, refused.stderr)
        assert "s3cr3t" not in refused.output + refused.stderr
    kinds = cli("monitor", "notify", "--command", "true", "--on", "alert,sunsets")
    assert kinds.exit_code == 1 and "unknown notification kind 'sunsets'" in kinds.stderr
    assert cli("monitor", "notify", "--list").stdout.strip() == "no notification channels"


class Hook:
    """A webhook served here (tornado, 127.0.0.1) that can be taken down and brought back, and
    that records each request's body and Authorization header."""

    def __init__(self) -> None:
        self.down = False
        self.fail_next = 0  # requests refused before it accepts
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        self.auth: list[str | None] = []


@pytest.fixture
def hook() -> Iterator[tuple[int, Hook]]:
    state = Hook()

    class Handler(tornado.web.RequestHandler):
        def post(self) -> None:
            if state.down or state.fail_next:
                state.fail_next = max(0, state.fail_next - 1)
                state.refused += 1
                self.set_status(503)
                return
            state.auth.append(self.request.headers.get("Authorization"))
            state.received.append(json.loads(self.request.body))

    sock, port = tornado.testing.bind_unused_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/hook", Handler)]))
        server.add_sockets([sock])
        started.set()
        loop.run_forever()
        server.stop()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait()
    yield port, state
    loop.call_soon_threadsafe(loop.stop)
    thread.join()


@pytest.fixture
def webhook(hook: tuple[int, Hook]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook served here whose first request fails (503), and what it received."""
    port, state = hook
    state.fail_next = 1
    yield f"http://127.0.0.1:{port}/hook?token=hush-hush-0123", state.received


def _violate(ready: Backend) -> None:
    """One evaluation of the generic monitor that opens an episode (4 < 40 images)."""
    monitor.monitor_run(ready, "demo", GEN)
    alerts.sync(ready)


def test_an_alert_whose_webhook_was_down_is_delivered_once_when_it_is_back(
    ready: Backend, cli, hook: tuple[int, Hook], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compressed time: retries every 0.05 s doubling (not 30 s), the webhook down for several
    attempts; the attempts are kept in the workspace, so a second process (the service's
    NotificationSender, started anew as after a restart) finishes the delivery."""
    port, state = hook
    monkeypatch.setenv("MLOPS_NOTIFY_RETRY_S", "0.05")
    url = f"http://127.0.0.1:{port}/hook?token=down-for-a-while"
    assert cli("monitor", "notify", "--webhook", url).exit_code == 0
    state.down = True
    _violate(ready)
    ws = ready.workspace
    wait_for("three refused attempts", lambda: notify.dispatch(ws) is not None and state.refused >= 3)
    (pending,) = notify.deliveries(ws)
    assert pending["state"] == "pending" and pending["attempts"] >= 3 and "503" in pending["last_error"]
    assert "down-for-a-while" not in json.dumps(pending)
    table = cli("monitor", "alerts").stdout
    assert "Deliveries not done" in table and "pending" in table and "503" in table

    state.down = False
    sender = notify.NotificationSender()
    monkeypatch.setattr(notify, "POLL_S", 0.05)
    sender.start(ws)
    try:
        wait_for("the delivery", lambda: notify.deliveries(ws, state="delivered"))
        time.sleep(0.5)  # a few more polls: nothing is sent twice
    finally:
        sender.stop()
    assert len(state.received) == 1 and state.received[0]["kind"] == "alert"
    (done,) = notify.deliveries(ws)
    assert done["attempts"] == state.refused + 1 and done["delivered_at"]
    (alert,) = [a for a in alerts.list_alerts(ws) if a.opens_episode]
    assert alert.notified_at  # marked notified only once the channel accepted it
    listed = json.loads(cli("monitor", "alerts", "--json").stdout)
    assert listed[0]["deliveries"][0]["state"] == "delivered"


def test_deliveries_give_up_after_the_horizon_and_can_be_resent(
    ready: Backend, cli, hook: tuple[int, Hook], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, state = hook
    monkeypatch.setenv("MLOPS_NOTIFY_RETRY_S", "0.05")
    monkeypatch.setenv("MLOPS_NOTIFY_HORIZON_S", "0.3")
    assert cli("monitor", "notify", "--webhook", f"http://127.0.0.1:{port}/hook").exit_code == 0
    state.down = True
    _violate(ready)
    ws = ready.workspace
    wait_for(
        "the delivery to fail",
        lambda: notify.dispatch(ws) is not None and notify.deliveries(ws, state="failed"),
    )
    (failed,) = notify.deliveries(ws)
    assert "503" in failed["last_error"] and failed["next_attempt_at"] is None
    notify.dispatch(ws)
    assert state.received == [] and notify.deliveries(ws)[0]["state"] == "failed"  # no more attempts

    state.down = False
    resent = cli("monitor", "alerts", "--resend", failed["notification_id"][:8])
    assert resent.exit_code == 0 and "queued 1 failed delivery" in resent.stdout
    assert len(state.received) == 1 and notify.deliveries(ws)[0]["state"] == "delivered"
    assert cli("monitor", "alerts", "--resend", "nope").exit_code == 1


def test_one_failing_channel_never_holds_up_another(
    ready: Backend, cli, hook: tuple[int, Hook], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command that fails and a webhook that refuses its credentials' absence: the webhook
    with `user:password@` in its URL is sent as Basic authentication and gets its alert."""
    port, state = hook
    monkeypatch.setenv("MLOPS_NOTIFY_RETRY_S", "60")
    assert cli("monitor", "notify", "--command", "cat > /dev/null; exit 3").exit_code == 0
    url = f"http://alice:pa%3Ass-word@127.0.0.1:{port}/hook"
    added = cli("monitor", "notify", "--webhook", url)
    assert added.exit_code == 0 and "pa%3Ass" not in added.output and "alice" not in added.output
    _violate(ready)
    attempts = notify.dispatch(ready.workspace)
    assert sorted(a["ok"] for a in attempts) == [False, True]
    assert state.auth == ["Basic " + base64.b64encode(b"alice:pa:ss-word").decode()]
    failing = next(a for a in attempts if not a["ok"])
    assert "exited with status 3" in failing["error"]
    for path in [*ready.workspace.root.rglob("*.json"), *ready.workspace.root.glob("mlops.db*")]:
        if path.name != "channels.json":
            assert b"pa%3Ass" not in path.read_bytes() and b"pa:ss" not in path.read_bytes(), path


def test_channels_can_ask_for_episode_ends_and_failed_evaluations(
    ready: Backend, cli, hook: tuple[int, Hook]
) -> None:
    port, state = hook
    url = f"http://127.0.0.1:{port}/hook"
    assert cli("monitor", "notify", "--webhook", url, "--on", "episode_end,evaluation_failed").exit_code == 0
    _violate(ready)
    _set_limit(ready, 1)
    _violate(ready)  # back within its limit: the episode ends
    notify.notify_evaluation_failed(
        ready.workspace, deployment_name="demo", monitor_id=GEN, run_id="r-1", error="boom"
    )
    notify.dispatch(ready.workspace)
    kinds = sorted(r["kind"] for r in state.received)
    assert kinds == ["episode_end", "evaluation_failed"]  # no alert: not asked for
    end = next(r for r in state.received if r["kind"] == "episode_end")
    assert end["ended"] == ["num_images_recent_predicted"] and end["deployment_name"] == "demo"


def test_a_channel_added_with_test_must_accept_a_sample(cli, workspace, hook: tuple[int, Hook]) -> None:
    port, state = hook
    state.down = True
    refused = cli("monitor", "notify", "--webhook", f"http://127.0.0.1:{port}/hook", "--test")
    assert refused.exit_code == 1 and "was not accepted" in refused.stderr and "503" in refused.stderr
    assert "no notification channels" in cli("monitor", "notify", "--list").stdout
    state.down = False
    added = cli("monitor", "notify", "--webhook", f"http://127.0.0.1:{port}/hook", "--test")
    assert added.exit_code == 0 and state.received[0]["kind"] == "test"


# --- trends ----------------------------------------------------------------------------------------


def test_history_shows_each_metric_trend_and_when_it_crosses(ready: Backend, cli) -> None:
    mon = ready.monitoring
    (gen,) = mon.monitor_instances.list(monitor_definition_id=GEN)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i, n in enumerate([100, 90, 80, 70]):  # 10 images fewer each hour, lower limit 40
        mon.measurements.add(
            gen["metadata"]["id"],
            run_id=f"r{i}",
            timestamp=(t0 + timedelta(hours=i)).isoformat(),
            metrics={"num_images_recent_predicted": n},
        )
    trends = {t["metric"]: t for t in monitor_views.monitor_trends(ready, "demo", GEN)}
    t = trends["num_images_recent_predicted"]
    assert t["slope_per_hour"] == pytest.approx(-10) and t["toward_limit"] and not t["violated"]
    assert t["crosses_in_h"] == pytest.approx(3)
    assert t["crosses_at"] == (t0 + timedelta(hours=6)).isoformat()
    res = cli("monitor", "history", "--name", "demo", "--monitor", GEN)
    assert res.exit_code == 0, res.output
    assert "toward the limit: crosses in 3 h" in res.stdout and "-10" in res.stdout
    doc = json.loads(cli("monitor", "history", "--name", "demo", "--json").stdout)
    assert len(doc["measurements"]) == 4 and {x["monitor_id"] for x in doc["trends"]} == {GEN}
