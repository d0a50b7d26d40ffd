"""`mlops deploy ...` and `mlops serve`, through the application core."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlops_widgets.cli._common import (
    CliContext,
    dicts,
    echo_log,
    echo_metrics,
    echo_result,
    echo_table,
    pass_obj,
)
from mlops_widgets.config.model import CONNECTION_TIMEOUT_MAX
from mlops_widgets.errors import MlopsError

if TYPE_CHECKING:
    from mlops_widgets.app import DeploymentDetail

NAME = click.option("--name", required=True, help="Deployment name.")


def _stderr_progress(done: int, total: int | None, what: str) -> None:
    """The Progress of waiting commands: each change of a deployment's status, on stderr."""
    click.echo(what, err=True)


@click.group()
def deploy() -> None:
    """Create, start, stop, inspect and delete deployments."""


@deploy.command()
@NAME
@click.option("--model-asset-id", required=True, help="Model asset id of the staged entry.")
@click.option(
    "--kernel-filename",
    default=None,
    help="Kernel file of the deployment folder [default: the kernel_path of its model.json, else kernel.py].",
)
@click.option(
    "--general-dependency",
    "general_dependencies",
    multiple=True,
    metavar="FILE",
    help="A file every deployment folder gets: the dependency's own, else the space's asset of that name, "
    "else the bundled helper module [default: wmla_edi_utils.py storage_volume_utils.py cpd_utils.py wml_sdk_utils.py].",
)
@click.option(
    "--custom-arg",
    "custom_args",
    multiple=True,
    metavar="K=V | K",
    help="A module-level name for the kernel file; K alone takes the value of $K. Names containing KEY, "
    "TOKEN, PASSWORD, SECRET or APIKEY are secrets: never written to the notebook, the record or disk.",
)
@click.option(
    "--timeout", default=300.0, show_default=True, help="Seconds to wait until the deployment is ready."
)
@click.option(
    "--connection-timeout",
    type=click.IntRange(1, CONNECTION_TIMEOUT_MAX),
    metavar="SECONDS",
    help="Seconds a kernel may take to start (on_kernel_start) before the start fails; kept in the "
    "entry's resource_configs, so later deploys use it too [default: the entry's, else 90].",
)
@click.option(
    "--save-notebook",
    is_flag=True,
    hidden=True,
    help="Accepted for the original's scripts: every run is saved.",
)
@pass_obj
def create(
    obj: CliContext,
    name: str,
    model_asset_id: str,
    kernel_filename: str | None,
    general_dependencies: tuple[str, ...],
    custom_args: tuple[str, ...],
    timeout: float,
    connection_timeout: int | None,
    save_notebook: bool,
) -> None:
    """Deploy a staged model (template A2_WMLA_Model_Deploy) and wait until it serves."""
    from mlops_widgets.cli._custom_args import split_custom_args
    from mlops_widgets.cli._run import with_progress

    # K=V or K (from $K); the core keeps those with a secret's name apart, as secrets
    given, _ = split_custom_args(list(custom_args), lambda _: False)
    app = obj.app()
    record = with_progress(
        lambda bar: app.deploy_create(
            name,
            model_asset_id,
            kernel_filename=kernel_filename,
            general_dependencies=list(general_dependencies),
            custom_args=given,
            wait_timeout=timeout,
            connection_timeout=connection_timeout,
            progress=bar,
        )
    )
    results = record.results
    click.echo(f"deployment {name}: {results.get('status', 'deployed')}")
    click.echo(f"deployment url: {results.get('deployment_url')}")


@deploy.command()
@NAME
@click.option("--no-wait", is_flag=True, help="Return at once instead of waiting until it serves.")
@click.option(
    "--timeout", default=300.0, show_default=True, help="Seconds to wait until the deployment is ready."
)
@pass_obj
def start(obj: CliContext, name: str, no_wait: bool, timeout: float) -> None:
    """Start a deployment (and the local inference service when it is not running)."""
    view = obj.app().deploy_start(name, wait=not no_wait, timeout=timeout, progress=_stderr_progress)
    click.echo(f"deployment {name}: {view.status}")


@deploy.command()
@NAME
@pass_obj
def stop(obj: CliContext, name: str) -> None:
    """Stop a deployment's kernels (on_kernel_shutdown first)."""
    view = obj.app().deploy_stop(name)
    click.echo(f"deployment {name}: {view.status}")


@deploy.command()
@NAME
@click.option("--remove-monitor", is_flag=True, help="Also drop the deployment's monitor subscription.")
@click.option("--remove-config", is_flag=True, help="Also drop the entry from the deployment metadata.")
@pass_obj
def delete(obj: CliContext, name: str, remove_monitor: bool, remove_config: bool) -> None:
    """Undeploy (stopping it first) and clear, or drop, the entry's deployment fields. Monitors
    kept lose their schedules: none may outlive the deployment."""
    result = obj.app().deploy_delete(name, remove_monitor=remove_monitor, remove_config=remove_config)
    done = ["undeployed" if result.undeployed else "was not deployed"]
    if result.entry:
        done.append(f"entry of {result.model_asset_id} {result.entry}")
    if result.deleted_subscription_ids:
        done.append(f"subscription {', '.join(result.deleted_subscription_ids)} deleted")
    if result.unscheduled:
        done.append(f"schedules of {', '.join(result.unscheduled)} removed")
    click.echo(f"deployment {name}: " + "; ".join(done))


@deploy.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_obj
def list_(obj: CliContext, as_json: bool) -> None:
    """Deployments with their state, status, kernels and URL."""
    rows = obj.app().deployments()
    echo_result(
        rows,
        as_json=as_json,
        empty="no deployments",
        header=("NAME", "STATE", "STATUS", "KERNELS", "MODEL ASSET ID", "URL"),
        row=lambda r: (r.name, r.state, r.status, str(r.kernels), r.model_asset_id or "-", r.url or "-"),
        to_json=dicts,
    )
    if as_json:
        return
    down = [r.name for r in rows if r.status == "SERVICE_DOWN"]
    if down:
        click.echo(
            "The local inference service is not running (it stopped or died): "
            f"`mlops deploy start --name {down[0]}` starts it again with the deployments that were started.",
            err=True,
        )
    for r in rows:
        if r.error and r.status != "SERVICE_DOWN":
            click.echo(f"{r.name}: {r.error}", err=True)


@deploy.command()
@NAME
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_obj
def view(obj: CliContext, name: str, as_json: bool) -> None:
    """One deployment: state, status, kernels, profile, errors."""
    echo_result(obj.app().deployment(name), as_json=as_json, text=_print_view, to_json=lambda d: d.to_dict())


def _print_view(d: DeploymentDetail) -> None:
    v = d.view
    for key, value in (
        ("name", v.name),
        ("state", v.state),
        ("status", v.status),
        ("url", v.url),
        ("model_asset_id", d.model_asset_id),
        ("model_path", v.model_path),
        ("kernel_file", v.kernel_file),
        ("deployed_at", v.deployed_at),
    ):
        click.echo(f"{key}: {value if value is not None else '-'}")
    policy = (v.profile or {}).get("policy") or {}
    click.echo("policy: " + ", ".join(f"{k}={val}" for k, val in policy.items()))
    click.echo(f"gpu: {((v.profile or {}).get('kernel') or {}).get('gpu', '-')}")
    if v.custom_args or v.secret_args:
        click.echo(
            f"custom args: {', '.join(v.custom_args) or '-'}; secret: {', '.join(v.secret_args) or '-'}"
        )
    if v.requests:
        click.echo(f"requests: {v.requests['total']} ({v.requests['failed']} failed)")
    job = d.training_job
    if job:
        click.echo(
            f"trained by: job {job['job_id']} ({job['framework']}, {job['main']}, ended {job.get('ended_at') or '-'})"
        )
        if job.get("params"):
            click.echo("  params: " + ", ".join(f"{k}={val}" for k, val in sorted(job["params"].items())))
        echo_metrics(job.get("metrics") or {})
    if v.kernels:
        click.echo("kernels:")
        echo_table(
            ("  POD", "PID", "STATE", "GPU", "TASKS", "STARTED"),
            [
                (f"  {k.pod}", str(k.pid), k.state, k.gpu or "-", str(k.tasks_done), str(k.started_at))
                for k in v.kernels
            ],
        )
    for w in v.warnings:
        click.echo(f"Warning: {w}", err=True)
    if v.error:
        click.echo(f"error: {v.error}")
        if v.error_log:
            click.echo("kernel log (end):\n" + v.error_log)


@deploy.command()
@NAME
@click.option("--tail", type=click.IntRange(min=0), metavar="N", help="Print only the last N lines.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing what kernels write (Ctrl-C stops).")
@pass_obj
def logs(obj: CliContext, name: str, tail: int | None, follow: bool) -> None:
    """The kernels' stdout and stderr, each line prefixed with its kernel."""
    echo_log(
        obj.app().deployment_logs(name, tail=tail, follow=follow),
        tail=tail,
        empty=f"deployment {name} has no kernel log yet",
    )


@deploy.command()
@NAME
@click.option("--data", required=True, help="The request body: JSON text, or @FILE to read it from a file.")
@click.option(
    "--output", type=click.Path(dir_okay=False), help="Write the response to this file instead of stdout."
)
@pass_obj
def infer(obj: CliContext, name: str, data: str, output: str | None) -> None:
    """Send one request to a deployment; the kernel's answer is printed verbatim."""
    if data.startswith("@"):
        try:
            body = Path(data[1:]).read_bytes()
        except OSError as exc:
            raise MlopsError(f"--data {data}: cannot read the file: {exc.strerror}") from None
    else:
        body = data.encode()
    answer = obj.app().infer(name, body)
    if output:
        Path(output).write_bytes(answer)
        click.echo(f"{len(answer)} bytes written to {output}", err=True)
    else:
        click.echo(answer, nl=not answer.endswith(b"\n"))  # bytes: written verbatim


@click.command()
@click.option("--port", type=int, help="Port on 127.0.0.1 (default: the last one used, else a free one).")
@pass_obj
def serve(obj: CliContext, port: int | None) -> None:
    """Run the workspace's local inference service in the foreground (Ctrl-C stops it)."""
    import logging

    app = obj.app()  # no backend built: on another, the refusal comes first
    if app.backend_name == "local":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app.serve(port)
