"""`mlops prepare stage`: validate the config, upload model and dependency, write the entry."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlops_widgets.cli._common import CliContext, pass_obj
from mlops_widgets.cli._run import with_progress


@click.group()
def prepare() -> None:
    """Stage model and deployment files into the space."""


if TYPE_CHECKING:
    from mlops_widgets.app import OnClash


def _on_clash(
    obj: CliContext, path_model: str | None, path_dependency: str, force: bool, new: bool
) -> OnClash:
    """What to do with assets of the same names: the flags, else ask on a TTY as the original did."""
    if force and new:
        raise click.UsageError("--force and --new exclude each other")
    if force:
        return "overwrite"
    if new:
        return "new"
    old = obj.app().stage_clashes(*(p for p in (path_model, path_dependency) if p))
    if not old or not sys.stdin.isatty():
        return "error"  # none, or the core refuses naming them (nobody to ask)
    names = ", ".join(old)
    answer = (
        click.prompt(
            f"The space already has assets named {names}. Overwrite them (y), add new assets of the "
            "same name (n), or abort (empty)?",
            default="",
            show_default=False,
        )
        .strip()
        .lower()
    )
    if answer in ("y", "yes"):
        return "overwrite"
    if answer in ("n", "no"):
        return "new"
    raise click.Abort()


@prepare.command()
@click.option(
    "--path-model",
    type=click.Path(),
    help="Model file or folder (leave out when the deployment folder holds the weights).",
)
@click.option(
    "--from-job",
    metavar="JOB",
    help="Stage the output folder of this finished training job as the model "
    "(instead of --path-model); the entry records the job.",
)
@click.option(
    "--path-dependency",
    required=True,
    type=click.Path(),
    help="Deployment folder (kernel file, README.md, ...).",
)
@click.option(
    "--path-yml", required=True, type=click.Path(dir_okay=False), help="Deployment metadata YAML (one entry)."
)
@click.option("-f", "--force", is_flag=True, help="Replace assets of the same names.")
@click.option("--new", is_flag=True, help="Add new assets even when some of the same names exist.")
@pass_obj
def stage(
    obj: CliContext,
    path_model: str | None,
    from_job: str | None,
    path_dependency: str,
    path_yml: str,
    force: bool,
    new: bool,
) -> None:
    """Validate the config, upload model and dependency (folders zipped), write the entry and print
    the model asset id."""
    if path_model and from_job:
        raise click.UsageError("give one of --path-model and --from-job, not both")
    loaded = obj.load_config(path_yml, with_key=False)
    (entry,) = loaded.entries.values()
    for option, path in (("--path-model", path_model), ("--path-dependency", path_dependency)):
        if path and not Path(path).exists():
            raise click.ClickException(f"{option}: {path} does not exist")
    on_clash = _on_clash(obj, path_model, path_dependency, force, new)
    app = obj.app()
    # Staging runs as template A_MLOps_Pipeline, so it leaves an executed notebook and a run record.
    if from_job:
        record = with_progress(
            lambda bar: app.stage_from_job(from_job, path_dependency, entry, on_clash=on_clash, progress=bar)
        )
    else:
        record = with_progress(
            lambda bar: app.stage(path_model, path_dependency, entry, on_clash=on_clash, progress=bar)
        )
    click.echo(f"model asset id: {record.results['model_asset_id']}")
