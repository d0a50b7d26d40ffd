"""The MLOps panel's widget state: live validation with the config model, YAML in and out, and
steps run in the background through the runner against the embedded backend.

No browser and no kernel: ipywidgets work without a frontend, so the tests set values, click
buttons and read what the widgets show; background steps are awaited with `panel.wait()`."""

from __future__ import annotations

import datetime
import html
import json
import re
from pathlib import Path

import ipywidgets
import pytest

from mlops_widgets.app import HistoryRow, MetricReading, MonitorState, MonitorStatus
from mlops_widgets.backends.views import MeasurementView, RunView
from mlops_widgets.config import load_config
from mlops_widgets.ops import space
from mlops_widgets.runner import get_run, list_runs
from mlops_widgets.widgets import MLOpsPanel
from mlops_widgets.widgets._lab import LabServer, find_server, lab_url, open_link
from mlops_widgets.widgets._svg import history_svg
from mlops_widgets.widgets._table import Table
from mlops_widgets.widgets.prepare import RESOURCES
from mlops_widgets.widgets.status import status_html


def txt(widget) -> str:
    """What an HTML widget reads as, without its markup."""
    return html.unescape(re.sub(r"<[^>]+>", "", widget.value))


WAIT_S = 180  # a template run takes a few seconds; this only bounds a hang


@pytest.fixture
def panel(workspace, tmp_path):
    p = MLOpsPanel(workspace=workspace)
    p.ctx.base = tmp_path  # "the notebook's folder": relative paths resolve here
    for field in (p.prepare.path_model, p.prepare.path_dependency, p.prepare.yaml_path):
        field.base = tmp_path
    yield p
    assert p.wait(WAIT_S), "a background step did not end"


def fill_with_example(panel, example_paths):
    pr = panel.prepare
    pr.yaml_path.value = str(example_paths.config)
    pr.load.button.click()
    pr.path_model.value = str(example_paths.model)
    pr.path_dependency.value = str(example_paths.deployment)
    return pr


def stage(panel):
    panel.prepare.stage.button.click()
    assert panel.wait(WAIT_S)
    assert panel.ctx.tasks.last_error is None, panel.ctx.tasks.message.value
    return panel.prepare.last_model_asset_id


def test_panel_builds_every_tab_without_touching_the_workspace(workspace):
    panel = MLOpsPanel(workspace=workspace)
    assert [panel.tabs.get_title(i) for i in range(5)] == ["Prepare", "Deploy", "Monitor", "Status", "Runs"]
    assert not workspace.root.exists()  # nothing read or created until a tab needs it
    assert panel.prepare.stage.disabled
    # An untouched form shows no error; the button's reason says what is missing, once.
    assert (
        txt(panel.prepare.stage.reason) == "Model file/folder: choose the model file or folder (and 1 more)"
    )
    assert not any(lbl.value for lbl in panel.prepare.errors._fields.values())
    assert not panel.deploy.errors.label("wmla_deployment.deployment_name").value


def test_live_validation_shows_the_config_models_errors_beside_their_fields(panel, example_paths):
    pr = fill_with_example(panel, example_paths)
    assert pr.valid and not pr.stage.disabled and pr.stage.reason.value == ""

    pr.resources["n_cpus"].value = "-1"
    label = pr.errors.label("wmla_deployment.resource_configs.n_cpus")
    assert "must be a number > 0" in txt(label)
    # One place for each error: beside its field; the button points there.
    assert pr.stage.disabled and txt(pr.stage.reason) == "fix the problem marked above"
    pr.resources["n_cpus"].value = "2"
    assert label.value == "" and not pr.stage.disabled

    pr.resources["kernel_min"].value = "5"
    pr.resources["kernel_max"].value = "2"
    # In the panel's words: the fields' names, never the config keys (those are tooltips).
    assert "Inference workers min (5) is greater than Inference workers max (2)" in txt(
        pr.errors.label("wmla_deployment.resource_configs.kernel_min")
    )
    pr.resources["kernel_min"].value = "1"

    seg = pr.monitors["segmentation_metrics"]
    seg.dir_gt.value = "../outside"
    assert pr.errors.label(f"{seg.path}.dir_gt").value  # stays inside the volume
    # the folded monitor opened to show it; its header is a button (keyboard-operable)
    assert seg.open and seg.header.icon == "caret-down"
    assert isinstance(seg.header, ipywidgets.ToggleButton)
    seg.dir_gt.value = "gt"
    seg.volume.value = ""
    assert "must not be empty" in txt(pr.errors.label(f"{seg.path}.volume_display_name"))
    seg.volume.value = "vol"

    pr.path_model.value = "no/such/model"
    assert "no/such/model does not exist" in txt(pr.errors.label("path_model"))
    assert pr.stage.disabled
    pr.path_model.value = str(example_paths.model)
    assert pr.valid and not pr.stage.disabled


def test_monitors_are_added_from_known_definitions_with_default_thresholds(panel):
    pr = panel.prepare
    assert {"segmentation_metrics", "generic_metrics"} <= set(pr.monitor_pick.options)
    pr.monitor_pick.value = "generic_metrics"
    pr.add_monitor_button.click()
    form = pr.monitors["generic_metrics"]
    defaults = panel.ctx.definitions["generic_metrics"].thresholds
    assert {m: (r.number(), r.direction.value) for m, r in form.rows.items()} == {
        m: (t.value, t.direction) for m, t in defaults.items()
    }
    assert txt(pr.errors.label(f"{form.path}.dir_gt")) == ""  # not touched yet
    form.dir_gt.value = "x"
    form.dir_gt.value = ""
    assert "must not be empty" in txt(pr.errors.label(f"{form.path}.dir_gt"))

    form.remove_row("num_images_total_predicted")  # left out: the default applies
    assert "num_images_total_predicted" in form.new_metric.options
    form.new_metric.value = "no_such_metric"
    form.add_metric.click()
    assert "no_such_metric" in txt(pr.errors.label(f"{form.path}.thresholds.no_such_metric"))
    form.remove_row("no_such_metric")

    pr.monitor_pick.value = "generic_metrics"
    pr.add_monitor_button.click()
    assert "already in the entry" in txt(pr.monitor_message)
    pr.monitor_pick.value = "segmentation_metrics_v22"  # a server-side copy: known by its base
    pr.add_monitor_button.click()
    assert len(pr.monitors["segmentation_metrics_v22"].rows) == 18
    assert "segmentation_metrics_v22" in txt(pr.general)  # a warning: it may exist on the server

    form.remove.click()  # asks first; Cancel keeps it
    assert pr.confirm.asking and "Remove monitor generic_metrics?" in pr.confirm.question
    pr.confirm.answer(False)
    assert not pr.confirm.asking and "generic_metrics" in pr.monitors
    form.remove.click()
    pr.confirm.answer(True)
    assert list(pr.monitors) == ["segmentation_metrics_v22"]
    assert len(pr.monitor_box.children) == 1


def test_yaml_round_trip_keeps_the_original_format(panel, example_paths, tmp_path):
    pr = fill_with_example(panel, example_paths)
    assert "loaded" in txt(pr.yaml_message)
    pr.model_name.value = "renamed"
    pr.monitors["segmentation_metrics"].rows["Dice"].value.value = "33.5"
    pr.monitors["generic_metrics"].rows["num_images_recent_predicted"].direction.value = "upper"
    pr.yaml_path.value = "saved.yml"  # relative to the notebook's folder
    pr.save.button.click()
    assert "saved saved.yml" in txt(pr.yaml_message)

    saved = load_config(tmp_path / "saved.yml").entries[None]
    original = load_config(example_paths.config).entries[None]
    assert saved["model_name"] == "renamed"
    assert saved["openscale_custom_metric_provider"]["segmentation_metrics"]["thresholds"]["Dice"] == {
        "threshold": [33.5, "lower"]
    }
    assert saved["openscale_custom_metric_provider"]["generic_metrics"]["thresholds"][
        "num_images_recent_predicted"
    ] == {"threshold": [40.0, "upper"]}
    assert (
        saved["wmla_deployment"]["resource_configs"]["kernel_max"]
        == original["wmla_deployment"]["resource_configs"]["kernel_max"]
    )
    assert "model_name: renamed" in (tmp_path / "saved.yml").read_text()

    pr.model_name.value = ""
    pr.load.button.click()
    assert pr.model_name.value == "renamed"


def test_an_invalid_yaml_is_reported_with_lines_and_leaves_the_form(panel, tmp_path, reference_dir):
    pr = panel.prepare
    pr.model_name.value = "kept"
    (tmp_path / "bad.yml").write_text(
        "model_name: x\nopenscale_custom_metric_provider: {}\nwmla_deployment:\n"
        "  resource_configs: {n_cpus: 0, kernel_mn: 1}\n"
    )
    pr.yaml_path.value = "bad.yml"
    pr.load.button.click()
    message = pr.yaml_message.value
    assert "not a valid deployment metadata file" in message
    assert "line 4" in message and "n_cpus" in message and "kernel_mn" in message
    assert pr.model_name.value == "kept"

    # A keyed file (model asset id -> entry) offers its entries to pick from.
    pr.yaml_path.value = str(reference_dir / "deployment_metadata_cli_example2.yml")
    pr.load.button.click()
    loaded = load_config(pr.yaml_path.value, with_key=True).entries
    if len(loaded) > 1:
        assert pr.entry_pick.layout.display == ""
        key = list(loaded)[-1]
        pr.entry_pick.value = key
    else:
        key = next(iter(loaded))
    assert pr.model_name.value == (loaded[key].get("model_name") or "")
    assert set(pr.monitors) == set(loaded[key]["openscale_custom_metric_provider"])


def test_path_field_browses_folders_relative_to_the_notebook(panel, tmp_path):
    (tmp_path / "models" / "m1").mkdir(parents=True)
    (tmp_path / "models" / "weights.bin").write_bytes(b"x")
    field = panel.prepare.path_model
    field.browse.value = True
    assert "models/" in field.listing.options
    field.listing.value = "models/"
    assert set(field.listing.options) == {"../", "m1/", "weights.bin"}
    field.listing.value = "weights.bin"
    assert field.value == "models/weights.bin" and field.browse.value is False
    field.browse.value = True  # reopens in the file's folder
    field.listing.value = "m1/"
    field.use_folder.click()
    assert field.value == "models/m1"
    assert field.resolved() == tmp_path / "models" / "m1"


def test_stage_runs_the_template_in_the_background_and_refreshes_runs(panel, example_paths, backend):
    pr = fill_with_example(panel, example_paths)
    pr.on_clash.value = "new"  # so that the re-run below may stage the same files again
    pr.stage.button.click()
    assert panel.ctx.tasks.busy or panel.ctx.tasks.last_result is not None
    assert pr.stage.disabled  # one step at a time
    assert panel.wait(WAIT_S)
    bar = panel.ctx.tasks
    assert bar.last_error is None, bar.message.value
    assert bar.progress.value == bar.progress.max > 1  # fed per cell by the runner
    asset_id = pr.last_model_asset_id
    assert asset_id and asset_id in pr.result.value

    entries = space.list_entries(backend)
    assert entries[asset_id]["model_name"] == "deepliif-demo"
    assert entries[asset_id]["wmla_deployment"]["dependency_filename"] == "deployment.zip"

    runs = panel.runs  # refreshed when the step ended, though never shown
    assert runs.loaded and len(runs.runs) == 1
    (run,) = runs.runs
    assert run.template == "A_MLOps_Pipeline" and run.status == "ok"
    assert runs.pick.options == (run.run_id,) and runs.pick.value == run.run_id  # one table of runs
    row = runs.pick.row(run.run_id)
    assert (row["template"], row["status"], row["trigger"], row["run"]) == (
        "A_MLOps_Pipeline",
        "ok",
        "run",
        run.short_id,
    )
    assert asset_id in runs.details.value
    # The run's id is shown short and links to its executed notebook (the extension opens it).
    assert f"data-run='{run.run_id}'" in runs.details.value and f">{run.short_id}</a>" in runs.details.value
    assert panel.deploy.asset.value == asset_id  # the staged model is offered for deployment

    # Clone the run into an editable notebook beside "this notebook".
    runs.clone_dest.value = "again.ipynb"
    runs.clone.button.click()
    clone = json.loads((panel.ctx.base / "again.ipynb").read_text())
    assert "cloned to" in txt(runs.message)
    assert clone["metadata"]["mlops"]["cloned_from"]["run_id"] == run.run_id

    # Re-run: a new run linked to the first, picked in the list once it ended.
    runs.rerun.button.click()
    assert runs.confirm.asking and "Re-run A_MLOps_Pipeline?" in runs.confirm.question
    runs.confirm.answer(True)
    assert panel.wait(WAIT_S)
    assert panel.ctx.tasks.last_error is None, panel.ctx.tasks.message.value
    assert len(runs.runs) == 2
    newest = get_run(runs.pick.value, panel.ctx.workspace)
    assert newest.rerun_of == run.run_id and newest.ok
    assert runs.pick.row(newest.run_id)["trigger"] == "re-run"

    runs.status.value = "failed"
    assert runs.runs == [] and "no runs match" in txt(runs.note)
    runs.status.value = "(all)"
    runs.template.value = "A_MLOps_Pipeline"
    assert len(runs.runs) == 2
    runs.since.value = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
    assert runs.runs == []


def test_a_refused_stage_says_why_in_the_panels_words(panel, example_paths):
    pr = fill_with_example(panel, example_paths)
    assert stage(panel)
    pr.stage.button.click()  # the same names again, "refuse" chosen: the core refuses the step
    assert panel.wait(WAIT_S)
    bar = panel.ctx.tasks
    assert "already has assets named" in bar.last_error
    assert "already has assets named" in txt(bar.message)  # in one place: the task bar
    assert "already has assets named" not in txt(pr.result)
    # Refused before any upload, as the CLI's stage is (one core): nothing half-written, no run.
    assert [r.status for r in panel.runs.runs] == ["ok"]
    # The fix names the panel's control, not a CLI flag.
    assert "Same names" in txt(bar.message) and "--" not in txt(bar.message)

    pr.on_clash.value = "new"
    assert stage(panel) != panel.runs.runs[-1].run_id


def test_cancel_stops_the_run_and_records_it_cancelled(panel, example_paths, workspace):
    fill_with_example(panel, example_paths)
    bar = panel.ctx.tasks
    panel.prepare.stage.button.click()
    assert not bar.cancel.disabled
    # The step's progress shows right under the button that started it, not at the panel's foot;
    # what it blocks says which step to wait for.
    rows = list(panel.prepare.widget.children)
    assert bar.widget in rows and rows.index(bar.widget) == rows.index(panel.prepare.stage.widget) + 1
    assert bar.widget not in panel.children
    assert "wait for \u201cStage\u201d to end, or press Cancel beside it" in txt(panel.runs.rerun.reason)
    bar.cancel.click()
    assert panel.wait(WAIT_S)
    assert "cancelled" in (bar.last_error or "")
    assert [r.status for r in list_runs(workspace)] == ["cancelled"]
    # The run by its short id, linked to its executed notebook.
    (cancelled,) = list_runs(workspace)
    assert f"data-run='{cancelled.run_id}'" in bar.message.value and f"run {cancelled.short_id}" in txt(
        bar.message
    )
    # What the user asked for, not a failure: no error colour, no "failed".
    assert "Stage: cancelled" in txt(bar.message) and "failed" not in txt(bar.message)
    assert "mlops-error" not in bar.message.value and bar.progress.bar_style == "warning"


def test_deploy_form_checks_names_like_the_cli_and_keeps_secrets_out_of_parameters(
    panel, example_paths, backend
):
    fill_with_example(panel, example_paths)
    asset_id = stage(panel)
    d = panel.deploy
    d.refresh()
    assert d.asset.value == asset_id
    assert d.deploy.disabled and "give the deployment a name" in txt(d.deploy.reason)
    d.name.value = "Bad_Name"
    assert "lower-case letters" in txt(d.errors.label("wmla_deployment.deployment_name"))
    d.name.value = "demo-1"
    assert not d.deploy.disabled, d.deploy.reason.value

    row = d.add_arg("VOLUME", "demo-volume")
    assert not row.secret.value
    secret = d.add_arg("CPD_API_KEY", "s3cr3t")  # a secret-looking key turns masked
    assert secret.secret.value and secret.widget.children[1] is secret.masked
    assert secret.masked.value == "s3cr3t"
    row.secret.value = True  # toggling carries the typed value across
    assert row.masked.value == "demo-volume" and row.plain.value == ""
    row.secret.value = False
    bad = d.add_arg("1x", "v")
    assert "not a Python name" in txt(bad.error) and d.deploy.disabled
    d.remove_arg(bad)
    assert not d.deploy.disabled

    params, secrets = d.deploy_params()
    assert secrets == {"CPD_API_KEY": "s3cr3t"}
    assert "s3cr3t" not in json.dumps(params)
    assert params["deployment_name"] == "demo-1" and params["model_asset_id"] == asset_id

    # The CLI's own check: another entry already uses the name.
    def rename(entry):
        entry["wmla_deployment"]["deployment_name"] = "taken"

    other = space.add_entries(backend, {"other-asset": {**space.list_entries(backend)[asset_id]}})[0]
    space.update_entry(backend, other, rename)
    d.refresh()
    d.asset.value = asset_id
    d.name.value = "taken"
    # A conflict with what exists is why Deploy waits, said beside it, not a red error.
    assert d.deploy.disabled and "already used by the entry of model asset other-asset" in txt(
        d.deploy.reason
    )
    assert txt(d.general) == ""


def _reading(metric: str, value: float, limit: float | None = None, violated: bool = False) -> MetricReading:
    return MetricReading(metric, metric, value, limit, "lower" if limit is not None else None, violated)


def _measurement(run_id: str, at: str, issue_count: int) -> MeasurementView:
    return MeasurementView(
        id=f"m-{run_id}",
        monitor_instance_id="inst",
        monitor_id="generic_metrics",
        run_id=run_id,
        timestamp=at,
        created_at=at,
        issue_count=issue_count,
    )


def test_status_shows_violations_and_history_charts():
    latest = _measurement("r2", "2026-01-02T00:00:00Z", 1)
    monitor = MonitorState(
        "generic_metrics",
        "issues",
        "inst",
        latest_run=RunView(id="r2", monitor_instance_id="inst", state="finished"),
        measurement=latest,
        metrics=(
            _reading("num_images_recent_predicted", 3.0, 40.0, violated=True),
            _reading("num_images_total_predicted", 50.0, 5.0),
        ),
    )
    status = MonitorStatus("demo", "asset", "sub", (monitor,))
    history = [
        HistoryRow(
            "generic_metrics",
            latest,
            (_reading("num_images_recent_predicted", 3.0), _reading("num_images_total_predicted", 50.0)),
        ),
        HistoryRow(
            "generic_metrics",
            _measurement("r1", "2026-01-01T00:00:00Z", 0),
            (_reading("num_images_recent_predicted", 45.0), _reading("num_images_total_predicted", 45.0)),
        ),
    ]
    page = status_html(status, history)
    # The summary comes first: the monitor's verdict and its violated metric, linked to its chart.
    summary = page[: page.index("</ul>")]
    assert "1 of 2 metrics violated" in summary
    assert "href='#mlops-chart-demo-generic_metrics-num_images_recent_predicted'" in summary
    assert 'id="mlops-chart-demo-generic_metrics-num_images_recent_predicted"' in page[len(summary) :]
    assert page.count("class='mlops-violation'") == 1
    assert page.count("<svg") == 2 and page.count('class="mlops-limit"') == 2
    # The violated metric's chart is shown; the others are folded below it.
    assert page.index("num_images_recent_predicted history") < page.index("<details>")
    # A metric moving toward its threshold is named in the summary, with when it may cross it.
    trends = [
        {
            "monitor_id": "generic_metrics",
            "metric": "num_images_total_predicted",
            "toward_limit": True,
            "crosses_in_h": 5.04,
        }
    ]
    summary = status_html(status, history, trends).split("</ul>")[0]
    assert "heading for its threshold" in summary and "in about 5.0 h" in summary
    assert "href='#mlops-chart-demo-generic_metrics-num_images_total_predicted'" in summary
    assert "heading for" not in page

    svg = history_svg(
        "Dice", [("2026-01-01T00:00:00Z", 25.0), ("2026-01-03T00:00:00Z", 10.0)], (20.0, "lower")
    )
    assert svg.count("mlops-point mlops-bad") == 1  # the point below the lower limit is marked
    assert "threshold: lower 20" in svg  # labelled above the plot, not over the data
    assert "01-01 00:00" in svg and "01-03 00:00" in svg  # a time axis
    assert "2026-01-03 00:00:00 UTC: Dice = 10" in svg  # the value on hover
    assert 'fill="#' not in svg and 'stroke="#' not in svg  # colours come from the theme
    assert "no measurements yet" in history_svg("Dice", [], None)


def test_links_open_executed_notebooks_in_jupyterlab(tmp_path, monkeypatch):
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    root = tmp_path / "root"
    (root / "nb").mkdir(parents=True)
    (runtime / "jpserver-1.json").write_text(json.dumps({"root_dir": str(root), "base_url": "/lab-base/"}))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    server = find_server(root / "nb")
    assert server == LabServer(root.resolve(), "/lab-base/")
    target = root / "ws" / "runs" / "r 1" / "A.ipynb"
    assert lab_url(target, server) == "/lab-base/lab/tree/ws/runs/r%201/A.ipynb"
    assert lab_url(root / ".mlops" / "A.ipynb", server) is None  # hidden: Jupyter refuses it
    assert lab_url(Path("/elsewhere/A.ipynb"), server) is None
    assert "Clone" in open_link(Path("/elsewhere/A.ipynb"), "open", server)
    assert find_server(tmp_path / "outside") is None


@pytest.fixture
def served(workspace):
    """Stops the workspace's inference service (and its kernels) after the test."""
    yield workspace
    from mlops_widgets.backends.local.inference import stop_service

    stop_service(workspace)


def test_deploy_monitor_status_flow_through_the_panel(panel, example_paths, served, backend):
    import shutil

    from mlops_widgets.examples.synthetic import write_tiles

    fill_with_example(panel, example_paths)
    asset_id = stage(panel)

    d = panel.deploy
    assert d.asset.value == asset_id  # refreshed after Stage, though never shown
    d.name.value = "demo-1"
    d.add_arg("CPD_API_KEY", "s3cr3t-value")
    d.add_arg("REGION", "r3gion-value", secret=True)  # marked secret though its name is not one
    d.deploy.button.click()
    assert panel.wait(WAIT_S)
    assert panel.ctx.tasks.last_error is None, panel.ctx.tasks.message.value
    assert "deployed demo-1" in txt(d.result)
    # Success is not followed by an error about the state it made ("already deployed"): the
    # form is fresh for the next deployment.
    assert txt(d.general) == "" and d.name.value == ""
    assert not txt(d.errors.label("wmla_deployment.deployment_name"))
    assert "already deployed" not in txt(d.deploy.reason)
    assert d.target.value == "demo-1" and d.target.row("demo-1")["status"] == "IDLE"
    assert panel.ctx.deployment == "demo-1"  # the one just made, for every tab
    assert space.list_entries(backend)[asset_id]["wmla_deployment"]["deployment_name"] == "demo-1"
    run = get_run(panel.runs.runs[0].run_id, served)
    assert run.template == "A2_WMLA_Model_Deploy" and run.secret_names == ["CPD_API_KEY", "REGION"]
    assert b"r3gion-value" not in Path(run.notebook).read_bytes()  # a secret: never written
    panel.runs.pick.value = run.run_id  # re-running it asks for the secrets again, masked
    assert list(panel.runs.secrets) == ["CPD_API_KEY", "REGION"]
    assert type(panel.runs.secrets["CPD_API_KEY"]).__name__ == "Password"

    # A test request with the bundled tile: the answer's mask is previewed as an image.
    from mlops_widgets import examples

    tools = d.tools
    assert tools.send.disabled and "choose a test image" in txt(tools.send.reason)
    tools.image.value = str(examples.TILES / "tile_000.png")
    tools.send.button.click()
    assert panel.wait(WAIT_S) and panel.ctx.tasks.last_error is None, panel.ctx.tasks.message.value
    assert "<img src='data:image/png;base64," in tools.response.value
    assert "positive_pixels" in txt(tools.response)
    tools.show_logs.click()
    assert tools.log_message.value == "" or "no kernel log yet" in txt(tools.log_message)

    # Re-running the deploy run while its deployment runs: asked first, then refused with
    # what to do, in the panel's words.
    panel.runs.secrets["CPD_API_KEY"].value = "s3cr3t-value"
    panel.runs.secrets["REGION"].value = "r3gion-value"
    panel.runs.ask_rerun()
    assert panel.runs.confirm.asking
    panel.runs.confirm.answer(True)
    assert panel.wait(WAIT_S)
    shown = panel.ctx.tasks.last_error
    assert "already deployed as 'demo-1' and running" in shown, shown
    assert "pick demo-1 under Deployments (Deploy tab) and press Delete" in shown

    # Start/Stop follow the deployment's state.
    assert d.start.disabled and "it is running" in txt(d.start.reason) and not d.stop.disabled
    d.stop.button.click()
    assert panel.wait(WAIT_S) and "demo-1 stopped" in txt(d.message)
    assert (d.target.row("demo-1")["state"], d.target.row("demo-1")["status"]) == ("stopped", "STOPPED")
    assert d.stop.disabled and "it is not running" in txt(d.stop.reason) and not d.start.disabled
    # A stopped deployment answers nothing: Send says to start it.
    assert tools.send.disabled and "demo-1 is stopped: press Start above first" in txt(tools.send.reason)
    # The stop left its trace in the audit trail, listed with the runs.
    (stopped,) = [r for r in panel.runs.runs if r.template == "deploy.stop"]
    assert stopped.kind == "event" and stopped.status == "ok" and stopped.deployment_name == "demo-1"

    # Images on the storage volume: perfect predictions, but too few of them for generic_metrics.
    volume = served.root / "volumes" / "demo-volume" / "model_eval"
    write_tiles(volume / "images", volume / "gt_images", 3, size=48)
    shutil.copytree(volume / "gt_images", volume / "model_images")

    m = panel.monitor
    m.refresh()
    assert m.deployment.value == "demo-1"
    assert m.create.disabled and "create the service provider first" in txt(m.create.reason)
    m.create_provider.button.click()
    assert panel.wait(WAIT_S) and "created" in txt(m.message)
    assert not m.create.disabled, m.create.reason.value
    m.create.button.click()  # with "evaluate right after"
    assert panel.wait(WAIT_S)
    assert panel.ctx.tasks.last_error is None, panel.ctx.tasks.message.value
    assert "monitors of demo-1 configured" in txt(m.message)
    assert list(m.which.options) == ["every monitor", "segmentation_metrics", "generic_metrics"]
    m.which.value = "generic_metrics"
    m.run_now.button.click()
    assert panel.wait(WAIT_S) and "evaluated demo-1" in txt(m.message)
    assert "generic_metrics" in txt(m.message) and "segmentation_metrics" not in txt(m.message)
    sc = m.schedules
    # Nothing scheduled: nothing to pause or resume; a repeat that cannot be is refused before
    # anything is recorded.
    assert sc.pause.disabled and "nothing is scheduled" in txt(sc.pause.reason) and sc.resume.disabled
    events_before = len(list_runs(served))
    for typed, why in (
        ("abc", "Every: 'abc' is not a repeat"),
        ("", "type a repeat under Every"),
        ("30s", "Every: evaluations must be at least 60 s apart, got 30s"),
    ):
        sc.every.value = typed
        assert sc.set.disabled and why in txt(sc.set.reason), txt(sc.set.reason)
        sc.set.button.click()
    assert len(list_runs(served)) == events_before
    sc.every.value = "1d"  # schedule controls: generic_metrics every day, then paused
    sc.set.button.click()
    assert panel.wait(WAIT_S) and "generic_metrics</code> every 1d, enabled" in sc.listing.value
    assert not sc.pause.disabled and sc.resume.disabled and "it is not paused" in txt(sc.resume.reason)
    sc.pause.button.click()
    assert panel.wait(WAIT_S) and "every 1d, paused" in sc.listing.value
    assert sc.pause.disabled and not sc.resume.disabled
    sc.every.value = "2h"  # typed, not set: showing the deployment again shows its repeat
    m.which.value = "every monitor"
    m.which.value = "generic_metrics"
    assert sc.every.value == "1d"

    s = panel.status
    s.refresh()
    page = s.body.value
    assert "segmentation_metrics" in page and "generic_metrics" in page
    assert "num_images_recent_predicted" in page and "class='mlops-violation'" in page
    assert page.count("<svg") == 22  # one chart per metric of both monitors
    assert page.count("<circle") == 18 * 1 + 4 * 2  # one evaluation of both, then generic_metrics
    # the violation raised alerts: a badge on the Status tab and beside the panel's title
    assert "unacknowledged alert" in txt(s.alerts) and not s.acknowledge.disabled
    assert "alert" in txt(panel.alerts)
    s.acknowledge.click()
    assert "no unacknowledged alert" in txt(s.alerts) and s.acknowledge.disabled
    assert txt(panel.alerts) == ""

    assert_panel_words(panel)
    d.remove_monitor.value = True
    d.delete.button.click()  # asks first, saying what goes with it
    question = d.confirm.question  # what the delete touches, by name
    assert "Delete deployment demo-1" in question and "are deleted" in question
    assert "Its monitors (generic_metrics, segmentation_metrics)" in question
    assert f"Its entry {asset_id} is kept, cleared" in question
    assert not panel.ctx.tasks.busy and "demo-1" in [x.name for x in d.deployments]
    d.confirm.answer(True)
    assert panel.wait(WAIT_S) and "demo-1 deleted" in txt(d.message)
    assert d.target.rows == [] and d.target.value is None
    entry = space.list_entries(backend)[asset_id]
    assert entry["wmla_deployment"]["deployment_name"] is None
    assert entry["openscale_subscription_id"] is None
    leaked = [p for p in served.root.rglob("*") if p.is_file() and b"s3cr3t-value" in p.read_bytes()]
    assert leaked == []


def test_failures_show_inline_without_tracebacks():
    from mlops_widgets.widgets._forms import Action
    from mlops_widgets.widgets._task import TaskBar

    bar = TaskBar()

    def boom(progress, cancel):
        progress(1, 3, "## a heading")
        raise ValueError("bad value")

    bar.start("Step", boom)
    assert bar.wait(10)
    assert bar.last_error == "ValueError: bad value"
    assert "Step failed: ValueError: bad value" in txt(bar.message)
    assert "Traceback" not in bar.message.value
    assert (bar.progress.value, bar.progress.max, bar.count.value) == (1, 3, "1/3")

    action = Action("Go")
    action.on_click(lambda: 1 / 0)
    action.button.click()
    assert "ZeroDivisionError" in txt(action.reason)


def test_hints_name_the_panels_controls_never_a_cli_flag():
    from mlops_widgets.cli._hints import RENDERINGS as CLI
    from mlops_widgets.errors import Hint, MlopsError
    from mlops_widgets.widgets._hints import RENDERINGS, render
    from mlops_widgets.widgets._task import error_text

    error = MlopsError(
        "the space already has assets named model.zip",
        hint=Hint("stage.replace", "replace them, or add new ones beside them"),
    )
    shown = error_text(error)
    assert shown.startswith("the space already has assets named model.zip: choose")
    assert "Same names" in shown and "--" not in shown
    assert list(RENDERINGS) == sorted(RENDERINGS)
    # Every action the CLI knows reads without a flag or a command in the panel.
    for action in CLI:
        words = render(
            Hint(
                action,
                "plain words",
                {"deployment": "d1", "env": "KEY", "params": "p", "name": "n", "monitor": "m"},
            )
        )
        assert "--" not in words and "`mlops" not in words and "mlops " not in words, (action, words)
    assert set(RENDERINGS) <= set(CLI)  # no rendering for an action nothing raises


def test_load_example_fills_a_stageable_form(panel):
    pr = panel.prepare
    assert not pr.example.disabled
    pr.example.button.click()
    assert "loaded" in txt(pr.yaml_message)
    assert pr.model_name.value == "deepliif-demo"
    assert pr.valid and not pr.stage.disabled, pr.stage.reason.value


def test_edit_the_thresholds_of_a_staged_entry(panel, example_paths, backend, workspace):
    from mlops_widgets.runner import list_runs

    fill_with_example(panel, example_paths)
    asset_id = stage(panel)
    pr = panel.prepare
    ed = pr.editor
    assert ed.update.disabled and "press Edit" in txt(ed.update.reason)
    assert ed.pick.value == asset_id  # refreshed when Stage ended
    pr.example.button.click()  # the form now shows something else...
    pr.model_name.value = "other"
    ed.edit.button.click()  # ...until the staged entry is loaded for editing
    assert pr.model_name.value == "deepliif-demo"
    pr.monitors["generic_metrics"].rows["num_images_recent_predicted"].value.value = "2"
    assert not ed.update.disabled, ed.update.reason.value
    ed.update.button.click()
    assert panel.wait(WAIT_S) and panel.ctx.tasks.last_error is None, panel.ctx.tasks.message.value
    assert f"entry {asset_id} updated" in txt(ed.message)
    entry = space.list_entries(backend)[asset_id]
    limit = entry["openscale_custom_metric_provider"]["generic_metrics"]["thresholds"][
        "num_images_recent_predicted"
    ]
    assert limit["threshold"][0] == 2.0
    assert entry["model_asset"] and entry["wmla_deployment"]["dependency_filename"] == "deployment.zip"
    (event,) = [r for r in list_runs(workspace) if r.template == "entry.update"]
    assert event.kind == "event" and event.status == "ok"


# -- forms that refuse nonsense, in the panel's words (issue 25) ---------------------------------


# Config keys as the YAML writes them (those with an underscore: plain words such as `every`
# are English too): the panel shows them only in tooltips.
def _config_keys() -> set[str]:
    from mlops_widgets.config import model, monitor_settings

    records = (
        model.RESOURCE_CONFIGS,
        model.WMLA_DEPLOYMENT,
        model.ENTRY,
        model.TRAINING_JOB,
        monitor_settings.MONITOR_SETTINGS,
        monitor_settings.SCHEDULE,
    )
    return {key for record in records for key in record.by_key if "_" in key}


def shown_texts(widget, skip=()) -> list[str]:
    """Every text a person reads in `widget` (labels, messages, placeholders, options, button
    captions), never tooltips; widgets in `skip` (a run record's raw parameters) left out."""
    import ipywidgets as w

    if widget in skip:
        return []
    out = []
    if isinstance(widget, w.HTML | w.Label | w.HTMLMath):
        if "<style>" not in widget.value:
            out.append(html.unescape(re.sub(r"<[^>]+>", " ", widget.value)))
    for attr in ("description", "placeholder"):
        value = getattr(widget, attr, None)
        if isinstance(value, str):
            out.append(value)
    if isinstance(widget, w.Dropdown | w.Select | w.Combobox):
        out += [str(o[0] if isinstance(o, tuple) else o) for o in widget.options]
    if isinstance(widget, w.Accordion | w.Tab):
        out += [str(t) for t in widget.titles]
    if isinstance(widget, Table):  # its headers and words; its rows are the user's data
        out += [str(c["label"]) for c in widget.columns] + [widget.label, widget.empty]
    for child in getattr(widget, "children", ()):
        out += shown_texts(child, skip)
    return out


def assert_panel_words(panel) -> None:
    """No message the panel shows names a config key, a CLI flag or an `mlops` command."""
    keys = _config_keys()
    asked = [tab.confirm.question for tab in (panel.prepare, panel.deploy, panel.runs)]  # open dialogs
    for text in shown_texts(panel, skip=(panel.runs.details,)) + asked:
        found = [k for k in keys if re.search(rf"(?<![\w/.-]){k}(?![\w/-])", text)]
        assert not found, (found, text)
        assert not re.search(r"(^|\s)--[a-z]", text) and "mlops " not in text, text


def test_number_fields_keep_the_typed_text_and_thresholds_keep_to_their_metrics_range(panel, example_paths):
    pr = fill_with_example(panel, example_paths)
    idle = pr.resources["kernel_delay_release_time"]
    idle.value = "1.5"  # an integer field: kept as typed, refused beside it
    assert idle.value == "1.5"
    shown = txt(pr.errors.label(f"{RESOURCES}.kernel_delay_release_time"))
    assert "must be an integer" in shown and "got 1.5" in shown, shown
    idle.value = ""  # a cleared field stays cleared and says so
    assert idle.value == "" and "give a number" in txt(
        pr.errors.label(f"{RESOURCES}.kernel_delay_release_time")
    )
    assert pr.stage.disabled
    idle.value = "60"
    assert not pr.stage.disabled, pr.stage.reason.value

    seg = pr.monitors["segmentation_metrics"]
    assert seg.rows["precision"].label.value == "precision (0 to 100)"  # the range, shown
    assert seg.rows["precision_positive"].label.value == "precision_positive (0 to 1)"
    for metric, typed in (("precision", "1e9"), ("precision_positive", "5"), ("precision_positive", "-3")):
        seg.rows[metric].value.value = typed
        shown = txt(pr.errors.label(f"{seg.path}.thresholds.{metric}"))
        assert "must be within 0 to" in shown and shown.endswith(typed if typed != "1e9" else "1e+09"), shown
        assert pr.stage.disabled
        seg.rows[metric].value.value = "60" if metric == "precision" else "0.6"
    seg.rows["Dice"].value.value = "abc"
    assert "'abc' is not a number" in txt(pr.errors.label(f"{seg.path}.thresholds.Dice"))
    seg.rows["Dice"].value.value = "20"
    assert pr.valid and not pr.stage.disabled

    # The config model says the same to the CLI: the range comes with the definition.
    from mlops_widgets.config import ConfigError, validate_entry

    entry = pr.entry()
    entry["openscale_custom_metric_provider"]["segmentation_metrics"]["thresholds"]["precision"] = {
        "threshold": [1e9, "lower"]
    }
    with pytest.raises(ConfigError, match="must be within 0 to 100"):
        validate_entry(entry, definitions=panel.ctx.definitions)

    # Messages name the panel's fields, never the config keys (those are tooltips).
    seg.dir_gt.value = "x"
    seg.dir_gt.value = ""
    pr.resources["kernel_min"].value = "5"
    pr.resources["kernel_max"].value = "2"
    assert "Ground-truth folder" in txt(pr.stage.reason) or "marked above" in txt(pr.stage.reason)
    assert_panel_words(panel)


def test_add_monitor_and_the_train_form_refuse_what_cannot_work(panel, tmp_path):
    pr = panel.prepare
    assert pr.add_monitor_button.disabled and "type or pick a monitor id" in txt(pr.add_monitor_action.reason)
    pr.monitor_pick.value = "generic_metrics"
    assert not pr.add_monitor_button.disabled
    pr.add_monitor_button.click()
    pr.monitor_pick.value = "generic_metrics"
    assert pr.add_monitor_button.disabled and "already in the entry" in txt(pr.add_monitor_action.reason)

    tab = panel.train
    panel.show("Train")
    assert not tab.submit.disabled, tab.form_error.value
    tab.workers.value = "-1"  # kept as typed, refused
    assert tab.workers.value == "-1" and tab.submit.disabled
    assert "Training workers: give a number from 1 to 64, not -1" in txt(tab.form_error)
    tab.workers.value = "1"
    tab.memory.value = "lots"
    assert "Memory: 'lots' is not a size such as 512m or 8g" in txt(tab.form_error)
    tab.memory.value = "8g"
    tab.main.value = "nowhere.py"
    assert "Main file: nowhere.py is not among the files and folders" in txt(tab.form_error)
    tab.main.value = "train.py"
    tab.folders.value = str(tmp_path / "no-such-folder")
    assert "Folders:" in txt(tab.form_error) and "does not exist" in txt(tab.form_error)
    tab.folders.value = ""
    tab.volume.value = "no-such-volume"
    assert "Data volume: there is no storage volume 'no-such-volume'" in txt(tab.form_error)
    assert tab.submit.disabled and "fix the" in txt(tab.submit.reason)
    tab.volume.value = ""
    assert not tab.submit.disabled and tab.form_error.value == ""
    assert_panel_words(panel)


def test_status_shows_undelivered_notifications_and_resends_the_failed(panel, backend, monkeypatch):
    """A notification that could not be delivered shows on the Status tab, with Resend for the
    failed ones: queued again through the core (recorded as an event) and attempted at once."""
    from helpers import add_entry, write_masks

    from mlops_widgets.ops import alerts, monitor, notify

    monkeypatch.setenv("MLOPS_NOTIFY_HORIZON_S", "0.001")  # a refused delivery fails at once
    write_masks(backend.workspace.root / "volumes" / "vol" / "eval", 4, seed=0)
    monitor.provider_create(backend)
    add_entry(backend)
    monitor.monitor_create(backend, "demo")
    panel.ctx.app.channel_add(command="cat > /dev/null; exit 3")
    monitor.monitor_run(backend, "demo", "generic_metrics")  # 4 < 40 images: an alert
    alerts.sync(backend)
    notify.dispatch(backend.workspace)
    s = panel.status
    s.refresh()
    s.deployment.value = "demo"
    assert "0 pending, 1 failed" in txt(s.deliveries) and "exited with status 3" in txt(s.deliveries)
    assert not s.resend.disabled
    s.resend.click()
    (event,) = [r for r in list_runs(backend.workspace) if r.template == "notification.resend"]
    assert get_run(event.run_id, backend.workspace).results == {"queued": 1, "delivered": 0}
    (delivery,) = notify.deliveries(backend.workspace)
    assert delivery["attempts"] == 2 and delivery["state"] == "failed"  # tried again, refused again
