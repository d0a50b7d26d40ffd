"""`mlops train ...`: submit a training job (template A1_Submit_WMLA_Training) and follow it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from mlops_widgets.cli._common import CliContext, echo_log, echo_metrics, echo_result, pass_obj

if TYPE_CHECKING:
    from mlops_widgets.app import JobView

JOB = click.argument("job_id", metavar="JOB")


@click.group()
def train() -> None:
    """Submit training jobs and follow them (template A1_Submit_WMLA_Training)."""


@train.command()
@click.option(
    "-p",
    "--param",
    "pairs",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="A parameter of A1_Submit_WMLA_Training (repeatable); non-string values are YAML: "
    "-p workers 2 -p job_env '{EPOCHS: 3}'.",
)
@click.option(
    "-f",
    "--params-file",
    type=click.Path(exists=True, dir_okay=False),
    help="A YAML file mapping parameter names to values (-p wins over it).",
)
@click.option(
    "--runtime",
    metavar="NAME",
    help="Run the workers on this runtime's Python (`mlops runtime list`), as kernels do.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the job's id, state and output as JSON.")
@pass_obj
def submit(
    obj: CliContext,
    pairs: tuple[tuple[str, str], ...],
    params_file: str | None,
    runtime: str | None,
    as_json: bool,
) -> None:
    """Build the submission folder and submit it as a job (without parameters: the example
    training script). Secret job variables come from the environment ($MLOPS_SECRET_<name>)."""
    from mlops_widgets.app import TRAIN_TEMPLATE
    from mlops_widgets.cli._run import parse_params, with_progress

    params = parse_params(TRAIN_TEMPLATE, pairs, params_file)
    if runtime:
        params["runtime"] = runtime
    app = obj.app()  # credentials among the job's variables go to the run as secrets
    record = with_progress(lambda bar: app.train_submit(params, progress=bar))
    results = record.results
    echo_result(
        results,
        as_json=as_json,
        text=_print_submitted,
        to_json=lambda r: {k: r.get(k) for k in ("job_id", "state", "output")},
    )


def _print_submitted(results: dict[str, Any]) -> None:
    job_id = results["job_id"]
    click.echo(f"training job {job_id}: {results['state']}")
    click.echo(f"output: {results['output']}")
    if results["state"] in ("submitted", "running"):
        click.echo(
            f"follow it with `mlops train logs {job_id} --follow`; once it has finished, "
            f"`mlops prepare stage --from-job {job_id} ...` stages its output",
            err=True,
        )


@train.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_obj
def list_(obj: CliContext, as_json: bool) -> None:
    """Training jobs, newest first, with their state."""
    echo_result(
        obj.app().training_jobs(),
        as_json=as_json,
        header=("JOB", "STATE", "FRAMEWORK", "WORKERS", "MAIN", "CREATED"),
        row=lambda j: (j.id, j.state, j.framework, str(j.workers), j.main, j.created_at),
        empty="no training jobs",
        to_json=lambda js: [j.to_dict() for j in js],
    )


@train.command()
@JOB
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_obj
def status(obj: CliContext, job_id: str, as_json: bool) -> None:
    """One job: its state, resources, times, output and, when it failed, its error and log tail."""
    echo_result(
        obj.app().training_job(job_id), as_json=as_json, text=_print_job, to_json=lambda j: j.to_dict()
    )


def _print_job(job: JobView) -> None:
    click.echo(f"training job {job.id}: {job.state}")
    data = job.data
    for label, value in (
        ("framework", job.framework),
        ("main", job.main),
        ("workers", f"{job.workers} x {job.devices_per_worker} device(s), {job.memory}"),
        ("runtime", job.runtime or "-"),
        ("data", f"{data['volume']}:{data['path']}" if data else "-"),
        ("created", job.created_at),
        ("started", job.started_at or "-"),
        ("ended", job.ended_at or "-"),
        ("output", job.output),
    ):
        click.echo(f"{label}: {value}")
    echo_metrics(dict(job.metrics))
    if job.error:
        click.echo(f"error: {job.error}")
        if job.error_log:
            click.echo("log (end):\n" + job.error_log)


@train.command()
@JOB
@click.option("--worker", type=click.IntRange(min=0), metavar="N", help="Only worker N's log.")
@click.option(
    "--tail", type=click.IntRange(min=0), metavar="N", help="Only the last N lines (of each worker)."
)
@click.option(
    "--follow", is_flag=True, help="Keep printing what the workers write until the job ends (Ctrl-C stops)."
)
@pass_obj
def logs(obj: CliContext, job_id: str, worker: int | None, tail: int | None, follow: bool) -> None:
    """The workers' output, each line prefixed with its worker."""
    echo_log(
        obj.app().training_logs(job_id, worker=worker, tail=tail, follow=follow),
        tail=tail,
        empty=f"training job {job_id} has no log yet",
    )


@train.command()
@JOB
@pass_obj
def stop(obj: CliContext, job_id: str) -> None:
    """Stop a job: every process of every worker is killed."""
    job = obj.app().train_stop(job_id)
    click.echo(f"training job {job_id}: {job.state}")


def train_example(obj: CliContext) -> str:
    """`mlops demo --train`: train the example model through the core (A1, waiting for the
    job); its id, for `App.stage_from_job`."""
    from mlops_widgets.cli._run import with_progress

    app = obj.app()
    job_id = str(with_progress(lambda bar: app.train_submit({"wait": True}, progress=bar)).results["job_id"])
    click.echo(f"training job {job_id}: finished", err=True)
    return job_id
