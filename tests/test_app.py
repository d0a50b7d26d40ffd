"""The application core (mlops_widgets.app): an action leaves the same record whichever front end
asks (the core, the CLI, the panel), and the workflow's invariants hold in one place: deleting a
deployment leaves no schedule behind and says what it touches; editing an entry keeps its
monitors' schedules."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from helpers import ASSET, add_entry, write_masks

from mlops_widgets.app import App
from mlops_widgets.backends.base import Backend
from mlops_widgets.ops import monitor, schedule, space
from mlops_widgets.runner import get_run, list_runs
from mlops_widgets.runner.scheduler import scheduled

SEG, GEN = "segmentation_metrics", "generic_metrics"
WAIT_S = 240.0  # a failsafe for a loaded machine, not a timing


@pytest.fixture
def monitored(backend: Backend) -> Backend:
    """An entry naming deployment `demo` whose two monitors are attached, generic_metrics
    scheduled every hour (the workspace's service runs it; conftest stops it)."""
    write_masks(backend.workspace.root / "volumes" / "vol" / "eval", 4, seed=0)
    monitor.provider_create(backend)
    add_entry(backend)
    monitor.monitor_create(backend, "demo")
    App(backend.workspace, backend).schedule_set("demo", GEN, every="1h")
    return backend


def _record(backend: Backend, action: str) -> tuple[str, dict[str, Any], str, list[str]]:
    (found,) = [r for r in list_runs(backend.workspace) if r.template == action]
    rec = get_run(found.run_id, backend.workspace)
    return rec.kind, rec.parameters, rec.status, sorted(rec.results)


def _delete_through_the_core(backend: Backend, cli: Any) -> None:
    App(backend.workspace, backend).deploy_delete("demo")


def _delete_through_the_cli(backend: Backend, cli: Any) -> None:
    res = cli("deploy", "delete", "--name", "demo")
    assert res.exit_code == 0, res.output
    assert f"schedules of {GEN} removed" in res.stdout


def _delete_through_the_panel(backend: Backend, cli: Any) -> None:
    from mlops_widgets.widgets import MLOpsPanel

    panel = MLOpsPanel(workspace=backend.workspace)
    d = panel.deploy
    d.refresh()
    d.target.value = "demo"
    d.delete.button.click()  # asks first, naming the monitors and the schedule that stops
    question = d.confirm.question
    assert f"Its monitors ({GEN}, {SEG}) stay" in question
    assert f"Their schedules stop ({GEN} every 1h, enabled)" in question
    assert f"Its entry {ASSET} is kept, cleared" in question
    d.confirm.answer(True)
    assert panel.wait(WAIT_S) and panel.ctx.tasks.last_error is None, panel.ctx.tasks.message.value


@pytest.mark.parametrize(
    "delete",
    [_delete_through_the_core, _delete_through_the_cli, _delete_through_the_panel],
    ids=lambda f: f.__name__,
)
def test_deleting_a_deployment_leaves_no_schedule_and_the_same_record(
    monitored: Backend, cli: Any, delete: Callable[[Backend, Any], None]
) -> None:
    """Before: the kept monitors' schedule stayed enabled and every later slot failed with "no
    entry has deployment name demo"."""
    delete(monitored, cli)
    assert scheduled(monitored.workspace) == []  # nothing left for the scheduler to run
    mon = monitored.monitoring
    assert {i["entity"]["monitor_definition_id"] for i in mon.monitor_instances.list()} == {SEG, GEN}  # kept
    entry = space.get_entry(monitored, model_asset_id=ASSET)[1]
    assert entry["wmla_deployment"]["deployment_name"] is None
    assert entry["openscale_custom_metric_provider"][GEN]["schedule"] == {"every": "1h", "paused": False}
    assert _record(monitored, "deploy.delete") == (
        "event",
        {"deployment_name": "demo", "remove_monitor": False, "remove_config": False},
        "ok",
        sorted(
            [
                "deployment_name",
                "undeployed",
                "model_asset_id",
                "entry",
                "deleted_subscription_ids",
                "unscheduled",
            ]
        ),
    )


def test_the_delete_plan_names_what_goes_with_it(monitored: Backend) -> None:
    app = App(monitored.workspace, monitored)
    plan = app.deployment_delete_plan("demo")
    assert (plan.deployed, plan.model_asset_id, sorted(plan.monitors)) == (False, ASSET, [GEN, SEG])
    assert plan.schedules == [f"{GEN} every 1h, enabled"]
    gone = "; ".join(plan.effects(remove_monitor=True, remove_config=True))
    assert "are deleted" in gone and f"its entry {ASSET} is removed" in gone and "schedules stop" not in gone
    result = app.deploy_delete("demo", remove_monitor=True, remove_config=True)
    assert result.unscheduled == [] and len(result.deleted_subscription_ids) == 1
    assert monitored.monitoring.monitor_instances.list() == [] and scheduled(monitored.workspace) == []


def test_editing_an_entry_keeps_its_monitors_schedules(monitored: Backend) -> None:
    """The panel's form carries no schedule: before, Update entry re-created the monitors and
    silently dropped generic_metrics' schedule."""
    app = App(monitored.workspace, monitored)
    edited = copy.deepcopy(space.get_entry(monitored, model_asset_id=ASSET)[1])
    for settings in edited["openscale_custom_metric_provider"].values():
        settings.pop("schedule", None)  # what the form sends
    edited["openscale_custom_metric_provider"][GEN]["thresholds"]["num_images_recent_predicted"] = {
        "threshold": [2.0, "lower"]
    }
    result = app.entry_edit(ASSET, edited)
    assert result.monitors_recreated and result.run is not None and result.run.ok
    entry = space.get_entry(monitored, model_asset_id=ASSET)[1]
    assert entry["openscale_custom_metric_provider"][GEN]["schedule"] == {"every": "1h", "paused": False}
    assert [s.monitor_id for s in schedule.list_schedules(monitored, "demo")] == [GEN]
    assert [j["monitor_id"] for j in scheduled(monitored.workspace)] == [GEN]
    assert _record(monitored, "entry.update")[:3] == (
        "event",
        {"model_asset_id": ASSET, "monitors": [GEN, SEG], "deployment_name": "demo"},
        "ok",
    )


def test_cli_config_and_monitor_changes_are_recorded_like_the_panels(
    cli: Any, backend: Backend, example_paths: Any, tmp_path: Any
) -> None:
    """config add/delete, monitor register: events in the audit trail, as the panel's changes."""
    from mlops_widgets.config import dump_yaml

    add_entry(backend, key="first")
    path = tmp_path / "entries.yml"
    path.write_text(dump_yaml({"second": space.get_entry(backend, model_asset_id="first")[1]}))
    assert cli("config", "add", "--path-yml", path).exit_code == 0
    assert cli("config", "delete", "--model-asset-id", "second").exit_code == 0
    assert cli("monitor", "register", "--monitor", "seg_v2", "--provider", SEG).exit_code == 0
    assert _record(backend, "config.add")[:3] == (
        "event",
        {"model_asset_ids": ["second"], "force": False},
        "ok",
    )
    assert _record(backend, "config.delete")[:3] == (
        "event",
        {"deployment_name": None, "model_asset_id": "second"},
        "ok",
    )
    assert _record(backend, "monitor.register")[:3] == (
        "event",
        {"monitor_id": "seg_v2", "provider": SEG},
        "ok",
    )
    res = cli("config", "delete", "--model-asset-id", "second")  # a failure is recorded too
    assert res.exit_code == 1
    failed = [
        r for r in list_runs(backend.workspace) if r.template == "config.delete" and r.status == "failed"
    ]
    assert len(failed) == 1 and "second" in str(failed[0].error)


def test_channels_and_acknowledgements_are_events_without_their_targets(cli: Any, backend: Backend) -> None:
    """A channel's URL or command may carry a credential: the record names its kind, never it."""
    res = cli("monitor", "notify", "--command", "cat > /dev/null # token-in-command")
    assert res.exit_code == 0, res.output
    channel_id = res.stdout.split()[3].rstrip(":")
    assert cli("monitor", "notify", "--remove", channel_id).exit_code == 0
    assert cli("monitor", "alerts", "--ack-all").exit_code == 0
    assert _record(backend, "channel.add") == (
        "event",
        {"kind": "command", "on": None, "test": False},
        "ok",
        ["channel_id", "on"],
    )
    assert _record(backend, "channel.remove")[:3] == ("event", {"channel_id": channel_id}, "ok")
    assert _record(backend, "alert.acknowledge") == (
        "event",
        {"alert_ids": [], "deployment_name": None},
        "ok",
        ["acknowledged"],
    )
    trail = b"".join(p.read_bytes() for p in backend.workspace.root.rglob("run.json"))
    assert b'"channel.add"' in trail and b"token-in-command" not in trail


def test_replacing_an_entry_from_a_file_keeps_its_monitors_schedules(
    cli: Any, monitored: Backend, tmp_path: Any
) -> None:
    """`config add --force` of an entry written without schedules, then `monitor create`: the
    schedule stays (before, both dropped it)."""
    from mlops_widgets.config import dump_yaml

    entry = copy.deepcopy(space.get_entry(monitored, model_asset_id=ASSET)[1])
    for settings in entry["openscale_custom_metric_provider"].values():
        settings.pop("schedule", None)
    path = tmp_path / "entry.yml"
    path.write_text(dump_yaml({ASSET: entry}))
    res = cli("config", "add", "--path-yml", path, "--force")
    assert res.exit_code == 0, res.output
    kept = space.get_entry(monitored, model_asset_id=ASSET)[1]["openscale_custom_metric_provider"]
    assert kept[GEN]["schedule"] == {"every": "1h", "paused": False} and "schedule" not in kept[SEG]
    monitor.monitor_create(monitored, "demo")
    assert [j["monitor_id"] for j in scheduled(monitored.workspace)] == [GEN]


def test_a_notebook_offers_one_action_open_its_run_run_a_clone_or_run_as_a_template(tmp_path) -> None:
    """What JupyterLab's notebook button and file browser menu do (app/notebooks.py): an executed
    run's notebook opens its run and never runs again; a clone runs its parameters cell; any other
    notebook runs as a template of its own, the form's texts read as the command line reads them
    and refused, before anything is recorded, when the template does not take them."""
    import json

    from helpers import make_template

    from mlops_widgets.errors import MlopsError
    from mlops_widgets.runner import clone_run

    app = App(tmp_path / "ws", "local")
    mine = make_template(
        tmp_path / "files" / "Mine.ipynb",
        'count = 1  # how many\nlabel = "x"  # a label\n',
        ["from mlops_widgets.runner.record import record\nrecord(total=count * 2, label=label)"],
    )
    plan = app.notebook_plan(mine)
    assert plan.action == "template" and list(plan.template.parameters) == ["count", "label"]
    with pytest.raises(MlopsError, match="count"):
        app.run_notebook(mine, {"count": "many"})
    assert list_runs(app.workspace) == []  # refused before anything ran
    first = app.run_notebook(mine, {"count": "3"})
    assert first.ok, first.error
    assert (first.template, first.parameters, first.results) == (
        "Mine",
        {"count": 3},
        {"total": 6, "label": "x"},
    )
    assert first.cwd == str(mine.parent)  # run where the notebook is, as Jupyter runs it

    opened = app.notebook_plan(first.notebook)
    assert opened.action == "open" and opened.run.run_id == first.run_id
    with pytest.raises(MlopsError, match=f"executed notebook of run {first.short_id}"):
        app.run_notebook(first.notebook)
    assert app.notebook_plan(first.dir / "template.ipynb").action == "template"  # not the executed one

    clone = clone_run(first.run_id, tmp_path / "files" / "again.ipynb", app.workspace)
    nb = json.loads(clone.read_text())
    cell = next(c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    cell["source"] = "".join(cell["source"]).replace("count = 3", "count = 4")
    clone.write_text(json.dumps(nb))
    assert app.notebook_plan(clone).action == "clone"
    again = app.run_notebook(clone, {"count": "99"})  # a clone's values are its cell's
    assert again.ok and again.rerun_of == first.run_id and again.results["total"] == 8


def test_reads_answer_what_the_cli_prints_and_record_nothing(cli: Any, backend: Backend) -> None:
    """The front ends read entries, deployments, jobs and runtimes through the core: the same
    answer as the command's JSON, and no record in the audit trail (a read changes nothing)."""
    import json
    import sys

    from mlops_widgets.errors import MlopsError

    add_entry(backend)  # names deployment demo, never created: listed as "absent"
    app = App(backend.workspace, backend)
    assert json.loads(cli("config", "list", "--json").stdout) == app.entries() != {}
    (row,) = app.deployments()
    assert (row.name, row.state, row.model_asset_id) == ("demo", "absent", ASSET)
    (listed,) = json.loads(cli("deploy", "list", "--json").stdout)
    assert listed == row.to_dict()
    assert list(listed) == ["name", "state", "status", "kernels", "model_asset_id", "url", "error"]
    assert json.loads(cli("train", "list", "--json").stdout) == app.training_jobs() == []
    app.runtime_add("mine", sys.executable)
    assert json.loads(cli("runtime", "list", "--json").stdout) == app.runtimes()
    assert "mine" in [r["name"] for r in app.runtimes()]
    assert list_runs(backend.workspace) == []
    # another backend's runtimes are WMLA's: refused before any connection is made
    with pytest.raises(MlopsError, match="on the cpd backend WMLA keeps its own"):
        App(backend.workspace, "cpd").runtimes()


def test_schedule_changes_answer_the_rows_the_listing_shows(monitored: Backend, cli: Any) -> None:
    """Pause, resume and set answer the rows `schedules()` lists (the CLI prints one table and
    one JSON shape for both); removing answers each monitor's row without a schedule."""
    import json

    app = App(monitored.workspace, monitored)
    (paused,) = app.schedule_pause("demo", GEN)
    assert paused.schedule and paused.schedule.status == "paused"
    assert [paused] == app.schedules("demo")
    res = cli("monitor", "schedule", "--name", "demo", "--monitor", GEN, "--resume", "--json")
    assert res.exit_code == 0, res.output
    (resumed,) = app.schedules("demo")
    assert json.loads(res.stdout) == [{**resumed.to_dict(), "evaluation": None}]
    assert resumed.schedule and resumed.schedule.status == "enabled"
    off = cli("monitor", "schedule", "--name", "demo", "--off")
    assert off.exit_code == 0, off.output
    lines = off.stdout.splitlines()[1:]  # under the listing's header
    assert sorted(line.split()[:2] + line.split()[3:4] for line in lines) == [
        ["demo", GEN, "removed"],
        ["demo", SEG, "removed"],
    ]
    assert app.schedules("demo") == []
    (removed,) = app.schedule_off("demo", GEN)
    assert removed.schedule is None
    assert list(removed.to_dict()) == ["deployment_name", "monitor_id", "monitor_instance_id", "latest_run"]


def test_monitoring_reads_answer_what_the_cli_prints_and_record_nothing(monitored: Backend, cli: Any) -> None:
    """The front ends read monitors, schedules, alerts and channels through the core: the same
    answer as the command's JSON, and no record in the audit trail (a read changes nothing)."""
    import json

    app = App(monitored.workspace, monitored)
    recorded = [r.run_id for r in list_runs(monitored.workspace)]
    status = app.monitor_status("demo")
    assert json.loads(cli("monitor", "status", "--name", "demo", "--json").stdout) == status.to_dict()
    assert {m.monitor_id for m in status.monitors} == {GEN, SEG}
    (row,) = app.schedules("demo")
    assert (row.monitor_id, row.schedule.every, row.schedule.status) == (GEN, "1h", "enabled")
    (listed,) = json.loads(cli("monitor", "schedule", "--list", "--json").stdout)
    assert (listed["monitor_instance_id"], listed["every"]) == (row.monitor_instance_id, "1h")
    assert (
        list(listed)
        == [*row.to_dict(), "evaluation"]
        == [
            *("deployment_name", "monitor_id", "monitor_instance_id"),
            *("every", "in_words", "status", "next_at", "next_times", "latest_run", "evaluation"),
        ]
    )
    assert (
        json.loads(cli("monitor", "list", "--json").stdout)
        == [r.to_dict() for r in app.subscriptions()]
        != []
    )
    assert json.loads(cli("monitor", "definitions", "--json").stdout) == app.monitor_definitions()
    assert (app.alert_count("demo"), app.alerts("demo", since="1d"), app.channels()) == (0, [], [])
    assert [r.run_id for r in list_runs(monitored.workspace)] == recorded
