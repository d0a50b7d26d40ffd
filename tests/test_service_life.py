"""The local service over a long life: scheduled evaluations leave nothing behind (threads, file
descriptors), and the service comes back when it dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers import ASSET

from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.local.inference import service_info
from mlops_widgets.backends.local.inference.supervisor import SUPERVISOR_MODULE, boot_command, read_state
from mlops_widgets.errors import MlopsError
from mlops_widgets.monitors import schedule as sched
from mlops_widgets.monitors.schedule import read_queue
from mlops_widgets.ops import schedule, space
from mlops_widgets.runner import list_runs
from mlops_widgets.workspace import Workspace

SEG, GEN = "segmentation_metrics", "generic_metrics"
WAIT_S = 300.0  # a failsafe for a loaded machine, not a timing: every wait ends on an event


def wait_for(what: str, check: Callable[[], Any], wait_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def _finished(backend: Backend) -> int:
    runs = list_runs(backend.workspace, template="A5_Monitor_Evaluation")
    return sum(r.status in ("ok", "failed") for r in runs)


def _idle_usage(backend: Backend, pid: int) -> tuple[int, int]:
    """The service's threads and open file descriptors once no evaluation runs and they stayed
    the same for 3 s (kernels of finished runs are shut down in the background)."""
    wait_for(
        "the evaluations to finish",
        lambda: (
            not [
                r
                for r in list_runs(backend.workspace, template="A5_Monitor_Evaluation")
                if r.status == "running"
            ]
        ),
    )
    seen: list[tuple[int, int]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (len(seen) < 15 or len(set(seen[-15:])) > 1):
        seen.append((len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))))
        time.sleep(0.2)
    return seen[-1]


def test_scheduled_evaluations_leave_no_threads_or_file_descriptors(ready: Backend) -> None:
    """Each evaluation once left its kernel client's ZMQ context (2 threads), its heartbeat
    thread and about 15 descriptors in the service, then its thread's event loop (an epoll and
    a socket pair): 40 evaluations would leave over 100 threads or 100 descriptors more."""
    schedule.set_schedule(ready, "demo", every="1s")
    pid = service_info(ready.workspace)["pid"]
    wait_for("10 scheduled evaluations", lambda: _finished(ready) >= 10)
    schedule.set_schedule(ready, "demo", paused=True)
    threads_before, fds_before = _idle_usage(ready, pid)
    done_before = _finished(ready)
    schedule.set_schedule(ready, "demo", paused=False)
    wait_for("40 more scheduled evaluations", lambda: _finished(ready) >= done_before + 40)
    schedule.set_schedule(ready, "demo", paused=True)
    threads_after, fds_after = _idle_usage(ready, pid)
    assert service_info(ready.workspace)["pid"] == pid  # the same service all along
    assert threads_after <= threads_before + 2, (threads_before, threads_after)
    assert fds_after <= fds_before + 4, (fds_before, fds_after)


# --- supervision --------------------------------------------------------------------------------


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_killed_service_is_back_and_runs_the_next_slot(ready: Backend, cli) -> None:
    schedule.set_schedule(ready, "demo", SEG, every="2s")
    wait_for("a scheduled evaluation", lambda: _finished(ready) >= 1)
    old = service_info(ready.workspace)["pid"]
    os.kill(old, signal.SIGKILL)
    killed_at = datetime.now(UTC)
    info = wait_for(
        "a new service", lambda: (i := service_info(ready.workspace)) and i["pid"] != old and i, wait_s=60
    )
    wait_for(
        "an evaluation by the new service",
        lambda: [
            r
            for r in list_runs(ready.workspace, template="A5_Monitor_Evaluation")
            if r.status == "ok" and datetime.fromisoformat(r.started_at) > killed_at
        ],
    )
    st = json.loads(cli("service", "status", "--json").stdout)
    assert st["running"] and st["pid"] == info["pid"] and st["threads"] > 0 and st["fds"] > 0
    assert st["restarts"] == 1 and st["last_exit"]["how"] == "killed by SIGKILL"
    assert st["next_slots"] and st["evaluations"]["bound"] >= 1
    text = cli("service", "status").stdout
    assert f"pid {info['pid']}" in text and "1 restart(s)" in text and "next slots" in text
    supervisor = st["supervisor_pid"]
    stopped = cli("service", "stop")
    assert stopped.exit_code == 0 and "service stopped" in stopped.stdout
    assert _gone(supervisor) and _gone(info["pid"])  # nothing left behind, nothing restarted
    assert service_info(ready.workspace) is None
    assert "service: not running" in cli("service", "status").stdout


def test_a_stale_service_json_is_reported_and_replaced(workspace: Workspace, cli) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    inference = workspace.dir("inference")
    (inference / "service.json").write_text(json.dumps({"pid": dead.pid, "port": 1, "host": "127.0.0.1"}))
    st = json.loads(cli("service", "status", "--json").stdout)
    assert not st["running"] and st["stale_pid"] == dead.pid
    assert f"named pid {dead.pid}, which is gone" in cli("service", "status").stdout
    started = cli("service", "start")
    assert started.exit_code == 0, started.output
    assert json.loads((inference / "service.json").read_text())["pid"] == service_info(workspace)["pid"]
    logs = cli("service", "logs", "--tail", "20")
    assert "supervisor: supervising the service" in logs.stdout and "serving http://127.0.0.1:" in logs.stdout


def test_a_crash_loop_backs_off_and_a_stop_leaves_nothing(workspace: Workspace) -> None:
    """A service that dies at once (here: a setting it cannot read) is started again with a
    growing pause; SIGTERM ends the supervisor and nothing stays behind."""
    env = {**os.environ, "MLOPS_SERVICE_LOG_MB": "lots"}
    sup = subprocess.Popen(boot_command(SUPERVISOR_MODULE, workspace.root), env=env)
    delays: list[float] = []

    def three_restarts() -> bool:
        state = read_state(workspace)
        if state.get("next_start_in_s") and state["next_start_in_s"] not in delays:
            delays.append(state["next_start_in_s"])
        return state.get("restarts", 0) >= 3

    try:
        wait_for("three restarts", three_restarts, wait_s=120)
    finally:
        sup.send_signal(signal.SIGTERM)
        sup.wait(60)
    assert delays == sorted(delays) and len(set(delays)) >= 2, delays  # backing off
    assert read_state(workspace)["last_exit"]["how"] == "exit status 3"
    assert read_state(workspace)["pid"] is None and sup.returncode == 0
    assert service_info(workspace) is None


# --- a bounded queue, offsets, calendar schedules ----------------------------------------------------


def test_evaluations_beyond_the_bound_wait_in_a_visible_queue(
    ready: Backend, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With max_evaluations 1 and both monitors due every second, one evaluation runs at a time
    (their runs never overlap) and the other waits in the queue the listings show."""
    monkeypatch.setenv("MLOPS_MAX_EVALUATIONS", "1")
    seen: dict[str, int] = {"running": 0, "queued": 0}

    def queued_seen() -> bool:
        state = read_queue(ready.workspace)
        assert len(state.get("running") or []) <= 1, state
        seen["running"] = max(seen["running"], len(state.get("running") or []))
        seen["queued"] = max(seen["queued"], len(state.get("queued") or []))
        if state.get("queued"):
            listed = cli("monitor", "schedule", "--list", "--json").stdout
            return any((r["evaluation"] or "").startswith("queued") for r in json.loads(listed))
        return False

    schedule.set_schedule(ready, "demo", every="1s")
    wait_for("an evaluation waiting in the queue", queued_seen)
    wait_for("6 scheduled evaluations", lambda: _finished(ready) >= 6)
    schedule.set_schedule(ready, "demo", paused=True)
    assert json.loads(cli("service", "status", "--json").stdout)["evaluations"]["bound"] == 1
    runs = sorted(
        (r.started_at, r.ended_at)
        for r in list_runs(ready.workspace, template="A5_Monitor_Evaluation")
        if r.ended_at
    )
    for (_, ended), (started, _) in zip(runs, runs[1:], strict=False):
        assert started >= ended  # one after another, never together


def test_a_queue_left_by_a_stopped_service_is_not_shown(backend: Backend) -> None:
    """The listings show evaluations running or queued only while the service runs: the queue
    a killed service left behind says nothing (it would show 'running' for ever)."""
    from mlops_widgets.app import App

    running = {"bound": 1, "running": [{"monitor_instance_id": "mi-1"}], "queued": []}
    sched.write_queue(backend.workspace, running)
    assert read_queue(backend.workspace)["running"] and service_info(backend.workspace) is None
    assert App(backend.workspace, backend).schedule_queue() == {"bound": None, "running": [], "queued": []}


def test_schedules_set_together_fire_at_their_own_stable_offsets() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    s = sched.make_schedule("1h", min_s=60, start=start)
    a, b = sched.next_slots(s, start, 3, key="instance-a"), sched.next_slots(s, start, 3, key="instance-b")
    assert a != b  # same schedule, same second: different times
    assert a == sched.next_slots(s, start, 3, key="instance-a")  # stable
    assert all(t - start >= timedelta(hours=1) for t in a)  # never before the first whole repeat
    assert [y - x for x, y in zip(a, a[1:], strict=False)] == [timedelta(hours=1)] * 2
    offset = timedelta(seconds=sched.offset_s("instance-a", 3600))
    assert timedelta(0) <= offset < timedelta(seconds=sched.SPREAD_S)
    assert sched.latest_slot(s, a[1], key="instance-a") == a[1]
    assert sched.latest_slot(s, a[1] - timedelta(seconds=1), key="instance-a") == a[0]


def test_calendar_schedules_in_a_time_zone() -> None:
    start = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)  # a Friday; Paris moves to summer time on Sunday
    s = sched.make_cron_schedule("0 8 * * 1-5", tz="Europe/Paris", min_s=60, start=start)
    assert s["cron"] == "0 8 * * 1-5" and s["timezone"] == "Europe/Paris" and s["status"] == "enabled"
    times = sched.next_slots(s, start, 3)
    assert [t.astimezone(UTC).isoformat() for t in times] == [
        "2026-03-30T06:00:00+00:00",  # Monday 08:00 in Paris, summer time
        "2026-03-31T06:00:00+00:00",
        "2026-04-01T06:00:00+00:00",
    ]
    assert sched.describe(s) == "At 08:00 AM, Monday through Friday (Europe/Paris)"
    assert sched.latest_slot(s, times[0]) == times[0]
    assert sched.latest_slot(s, times[0] - timedelta(seconds=1)) is None  # nothing since the start
    assert sched.describe(sched.make_schedule("30m", min_s=60)) == "every 30 minutes"
    with pytest.raises(MlopsError, match="at least 60 s apart, got"):
        sched.make_cron_schedule("* * * * * */10", tz="UTC", min_s=60)
    with pytest.raises(MlopsError, match="not a cron expression: 'every day'"):
        sched.make_cron_schedule("every day", tz="UTC", min_s=60)
    with pytest.raises(MlopsError, match="unknown time zone 'Mars/Olympus'"):
        sched.make_cron_schedule("0 8 * * *", tz="Mars/Olympus", min_s=60)


def test_a_cron_schedule_runs_and_runs_list_filters_by_monitor_and_trigger(ready: Backend, cli) -> None:
    res = cli(
        "monitor", "schedule", "--name", "demo", "--monitor", SEG, "--cron", "* * * * * */2", "--tz", "UTC"
    )
    assert res.exit_code == 0, res.output
    assert "Every 2 seconds (UTC)" in res.stdout
    wait_for("a scheduled evaluation", lambda: _finished(ready) >= 1)
    paused = cli("monitor", "schedule", "--name", "demo", "--monitor", SEG, "--pause")
    assert paused.exit_code == 0, paused.output
    (row,) = json.loads(cli("monitor", "schedule", "--list", "--json").stdout)
    assert row["every"] == "* * * * * */2" and row["status"] == "paused" and row["in_words"]
    entry = space.get_entry(ready, model_asset_id=ASSET)[1]["openscale_custom_metric_provider"]
    assert entry[SEG]["schedule"] == {"cron": "* * * * * */2", "tz": "UTC", "paused": True}
    manual = cli("monitor", "run", "--name", "demo", "--monitor", GEN)
    assert manual.exit_code == 0, manual.output

    def listed(*args: str) -> list[dict[str, Any]]:
        return json.loads(cli("runs", "list", "--json", *args).stdout)

    scheduled_runs = listed("--trigger", "schedule")
    assert scheduled_runs and {r["template"] for r in scheduled_runs} == {"A5_Monitor_Evaluation"}
    by_hand = listed("--trigger", "manual")
    assert len(by_hand) == 1 and by_hand[0]["run_id"] not in {r["run_id"] for r in scheduled_runs}
    assert [r["run_id"] for r in listed("--monitor", GEN)] == [by_hand[0]["run_id"]]
    assert {r["run_id"] for r in listed("--monitor", SEG)} == {r["run_id"] for r in scheduled_runs}
    assert listed("--monitor", GEN, "--trigger", "schedule") == []
    # The start time and a local zone: the next times are shown in local time.
    later = cli(
        "monitor",
        "schedule",
        "--name",
        "demo",
        "--monitor",
        GEN,
        "--every",
        "1h",
        "--start",
        "2099-01-01T08:00",
    )
    assert later.exit_code == 0, later.output
    (gen,) = [
        r for r in json.loads(cli("monitor", "schedule", "--list", "--json").stdout) if r["monitor_id"] == GEN
    ]
    assert gen["next_times"][0].startswith("2099-01-01T09:0") and len(gen["next_times"]) == 3
    cli("monitor", "schedule", "--name", "demo", "--off")
