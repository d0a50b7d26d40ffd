"""`mlops demo` and `mlops lab`: the workflow end to end on the embedded backend."""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlops_widgets.cli._common import CliContext, echo_table, pass_obj
from mlops_widgets.errors import ConflictError, Hint, NotFoundError
from mlops_widgets.settings import BACKEND, DEEPLIIF_PYTHON, HOME, LAB_OPEN_PANEL
from mlops_widgets.workspace import Workspace

if TYPE_CHECKING:
    from mlops_widgets.app import MonitorStatus

DEMO_WORKSPACE = "mlops-demo"  # where `mlops demo` and `mlops lab` meet when no workspace is named
DEMO_DEPLOYMENT = "deepliif-demo"
DEMO_IMAGES = 12
DEMO_IMAGES_REAL = 3  # the DeepLIIF network takes seconds to minutes a tile on a CPU
DEMO_SCHEDULE = "1h"  # the demo's monitors evaluate on their own at this repeat while its service runs
STEPS = 8


def _step(n: int, what: str) -> None:
    click.secho(f"[{n}/{STEPS}] {what}", bold=True, err=True)


@click.command()
@click.option(
    "--workspace",
    "demo_workspace",
    type=click.Path(file_okay=False),
    help="Workspace for the demo (default: the global --workspace or $MLOPS_HOME, else ./mlops-demo).",
)
@click.option(
    "--train",
    "train_first",
    is_flag=True,
    help="Start by training the example model (A1_Submit_WMLA_Training) and stage the job's output.",
)
@click.option(
    "--real-model",
    is_flag=True,
    help="Serve the DeepLIIF network (random weights) on its runtime ($MLOPS_DEEPLIIF_PYTHON, else"
    " ./.venv-deepliif) instead of the example's colour rule; fewer tiles, as each takes seconds.",
)
@pass_obj
def demo(obj: CliContext, demo_workspace: str | None, train_first: bool, real_model: bool) -> None:
    """The whole workflow on the embedded backend, each state-changing step a template run:
    synthetic IHC tiles and their masks, stage (A_MLOps_Pipeline), deploy (A2), score every tile
    (A4), the headless provider (C1), both monitors with an evaluation (A3), the monitor status,
    the audit trail; then the deployment is stopped. Runs again on the same workspace. With
    --train it starts by training the example model (A1) and deploys the trained one; with
    --real-model it serves the DeepLIIF network on its runtime."""
    if train_first and real_model:
        raise click.UsageError("--train and --real-model exclude each other")
    obj = CliContext(workspace=demo_workspace or obj.workspace or DEMO_WORKSPACE, backend_name="local")
    ws = obj.ws()
    click.echo(f"workspace: {ws.root}", err=True)
    with _only_demo_on(ws):
        _run(obj, train_first, real_model)


@contextlib.contextmanager
def _only_demo_on(ws: Workspace) -> Iterator[None]:
    """One demo at a time per workspace: a second one (which would delete the first one's
    deployment under it) is refused while the first holds the lock."""
    with open(ws.path("demo", "demo.lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConflictError(
                f"another demo is running on the workspace {ws.root}",
                hint=Hint("demo.busy", "wait until it ends, or run this one on another workspace"),
            ) from None
        yield


def deepliif_runtime() -> Path:
    """The Python of the DeepLIIF runtime: $MLOPS_DEEPLIIF_PYTHON, else ./.venv-deepliif's."""
    python = Path(DEEPLIIF_PYTHON.from_env() or Path(".venv-deepliif") / "bin" / "python")
    if not python.exists():
        raise NotFoundError(
            f"no DeepLIIF runtime at {python}",
            hint=Hint(
                "demo.real_model",
                "make one with tools/make_deepliif_runtime.sh (see the docs' page on the real DeepLIIF"
                " network), or name its Python in MLOPS_DEEPLIIF_PYTHON",
            ),
        )
    return python.absolute()


def _run(obj: CliContext, train_first: bool = False, real_model: bool = False) -> None:
    """The demo's steps, while this demo holds the workspace (see `demo`)."""
    from mlops_widgets import examples
    from mlops_widgets.cli._run import run_step, with_progress
    from mlops_widgets.cli.train import train_example
    from mlops_widgets.examples.synthetic import write_tiles

    app = obj.app()  # each step through the core, validated and recorded as the commands' are
    ws = app.workspace
    loaded = obj.load_config(str(examples.CONFIG), with_key=False)
    (entry,) = loaded.entries.values()
    settings = entry["openscale_custom_metric_provider"]["segmentation_metrics"]
    for monitor_settings in entry["openscale_custom_metric_provider"].values():
        monitor_settings["schedule"] = {"every": DEMO_SCHEDULE}  # A3 puts it on the monitor instances
    volume = settings["volume_display_name"]
    runs_before = len(app.runs())
    dependency, count = examples.DEPLOYMENT, DEMO_IMAGES
    if real_model:  # the runtime the team's model.json names (dlipy3), bound to the DeepLIIF one
        model_json = json.loads((examples.DEEPLIIF / "model.json").read_text(encoding="utf-8"))
        with contextlib.suppress(ConflictError):
            app.runtime_delete(model_json["runtime"])
        app.runtime_add(model_json["runtime"], deepliif_runtime())
        dependency, count = examples.DEEPLIIF, DEMO_IMAGES_REAL
        real = obj.load_config(str(examples.DEEPLIIF / "deployment_metadata.yml"), with_key=False)
        (real_entry,) = real.entries.values()
        entry["wmla_deployment"]["resource_configs"] = real_entry["wmla_deployment"]["resource_configs"]

    _step(1, f"{count} synthetic IHC tiles, their ground truth into volume {volume}")
    images, ground_truth = ws.dir("demo", "images"), ws.dir("demo", "ground_truth")
    write_tiles(images, ground_truth, count)
    app.volume_upload(volume, ground_truth, settings["dir_gt"])
    previous = app.deployment_delete_plan(DEMO_DEPLOYMENT)
    if previous.deployed or previous.model_asset_id:  # its subscription and entry make way for this one
        app.deploy_delete(DEMO_DEPLOYMENT, remove_monitor=True, remove_config=True)
        click.echo(f"removed the previous demo deployment {DEMO_DEPLOYMENT}", err=True)

    _step(
        2,
        "stage the DeepLIIF kernel folder, which holds the network's code (A_MLOps_Pipeline)"
        if real_model
        else "stage the example model and deployment folder (A_MLOps_Pipeline)"
        + (", trained first (A1_Submit_WMLA_Training)" if train_first else ""),
    )
    if train_first:
        job_id = train_example(obj)
        staged = with_progress(
            lambda bar: app.stage_from_job(job_id, dependency, entry, on_clash="overwrite", progress=bar)
        )
    else:
        model = None if real_model else examples.MODEL
        staged = with_progress(
            lambda bar: app.stage(model, dependency, entry, on_clash="overwrite", progress=bar)
        )
    asset_id = staged.results["model_asset_id"]

    _step(3, f"deploy it as {DEMO_DEPLOYMENT} (A2_WMLA_Model_Deploy)")
    with_progress(lambda bar: app.deploy_create(DEMO_DEPLOYMENT, asset_id, progress=bar))

    _step(4, "send every tile through the inference endpoint (A4_Batch_Scoring)")
    run_step(obj, "A4_Batch_Scoring", {"deployment_name": DEMO_DEPLOYMENT, "images_dir": str(images)})

    _step(5, "create the headless service provider (C1_OpenScale_Dummy_ML_Provider)")
    run_step(obj, "C1_OpenScale_Dummy_ML_Provider", {})

    _step(
        6,
        f"attach both monitors, evaluated every {DEMO_SCHEDULE}, and evaluate them now (A3_OpenScale_Configuration)",
    )
    with_progress(lambda bar: app.monitor_create(DEMO_DEPLOYMENT, evaluate=True, progress=bar))

    _step(7, "monitor status and schedules")
    _print_status(app.monitor_status(DEMO_DEPLOYMENT))
    for row in app.schedules(DEMO_DEPLOYMENT):
        if (s := row.schedule) is not None:
            click.echo(f"{row.monitor_id}: every {s.every}, {s.status}, next at {s.next_at}")

    _step(8, "the audit trail of this demo, and the deployment stopped")
    all_runs = app.runs()
    runs = all_runs[: len(all_runs) - runs_before]
    echo_table(
        ("RUN", "TEMPLATE", "STATUS", "EXECUTED NOTEBOOK"),
        [(r.short_id, r.template, r.status, r.notebook or "-") for r in reversed(runs)],
    )
    app.deploy_stop(DEMO_DEPLOYMENT)
    click.echo(
        f"\nmodel asset id {asset_id}; deployment {DEMO_DEPLOYMENT} stopped "
        f"(`mlops --workspace {ws.root} deploy start --name {DEMO_DEPLOYMENT}` serves it again)."
    )
    click.echo(
        "The monitors' schedules keep running in the workspace's local service (its supervisor "
        f"starts it again if it dies): `mlops --workspace {ws.root} service status` shows it, "
        f"`mlops --workspace {ws.root} service stop` stops it and the schedules."
    )
    click.echo(f"Open the panel on this workspace: mlops lab --workspace {ws.root}")


def _print_status(status: MonitorStatus) -> None:
    """Every metric of each monitor's latest measurement, passing and violating, with its limit."""
    for m in status.monitors:
        ms = m.measurement
        click.echo(
            f"{m.monitor_id}: {m.state}, {ms.issue_count if ms else 0} issue(s), "
            f"measurement {ms.id if ms else None}"
        )
        for metric in m.metrics:
            ok = not metric.violated
            mark = click.style("ok  ", fg="green") if ok else click.style("FAIL", fg="red", bold=True)
            limit = "" if metric.limit is None else f"{metric.direction} limit {metric.limit:g}"
            click.echo(f"  {mark} {metric.metric:32s} {metric.value:10.4g}  {limit}")


@click.command()
@click.option(
    "--workspace",
    "lab_workspace",
    type=click.Path(file_okay=False),
    help="Workspace the panel opens (default: the global --workspace or $MLOPS_HOME, else the demo's ./mlops-demo).",
)
@click.option("--port", type=int, default=8888, show_default=True, help="Port on 127.0.0.1.")
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@pass_obj
def lab(obj: CliContext, lab_workspace: str | None, port: int, no_browser: bool) -> None:
    """Start JupyterLab (on 127.0.0.1) in the current folder with the MLOps panel open on the
    workspace; the launcher, the palette and the MLOps sidebar reach it again."""
    import importlib.util
    import os
    import subprocess
    import sys

    from mlops_widgets.workspace import Workspace

    if importlib.util.find_spec("jupyterlab") is None:
        raise click.ClickException("JupyterLab is not installed: pip install 'mlops-widgets[lab]'")
    ws = Workspace(lab_workspace or obj.workspace or DEMO_WORKSPACE)
    # The file browser shows the user's files (the folder this runs in), not the workspace's
    # internals; the server extension and every kernel act on the workspace through MLOPS_HOME.
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.root_dir={os.getcwd()}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers often run as root; Jupyter refuses it otherwise
    if no_browser:
        cmd.append("--no-browser")
    env = {**os.environ, HOME.env: str(ws.root), LAB_OPEN_PANEL.env: "1"}
    env[BACKEND.env] = obj.app().backend_name
    click.echo(f"JupyterLab on {os.getcwd()}, the MLOps panel on {ws.root} (Ctrl-C to stop)", err=True)
    raise SystemExit(subprocess.call(cmd, env=env))
