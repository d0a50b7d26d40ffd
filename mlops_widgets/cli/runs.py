"""`mlops run`, `mlops templates ...`, `mlops runs ...`: run templates and read the audit trail."""

from __future__ import annotations

import json
from typing import Any

import click

from mlops_widgets.cli._common import CliContext, dicts, echo_result, pass_obj

_PARAM = click.option(
    "-p",
    "--param",
    "pairs",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="A parameter (repeatable); non-string values are YAML: -p n_cpus 2 -p monitors '{...}'.",
)
_PARAMS_FILE = click.option(
    "-f",
    "--params-file",
    type=click.Path(exists=True, dir_okay=False),
    help="A YAML file mapping parameter names to values (-p wins over it).",
)
_TIMEOUT = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stop the run after SECONDS.",
)


@click.command()
@click.argument("template")
@_PARAM
@_PARAMS_FILE
@_TIMEOUT
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON.")
@pass_obj
def run(
    obj: CliContext,
    template: str,
    pairs: tuple[tuple[str, str], ...],
    params_file: str | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Run TEMPLATE (a name from `mlops templates list`, or a notebook path) with parameters.

    Secret parameters are best left out of the command line: they are read from the environment
    ($MLOPS_SECRET_<name> or $<NAME>) and never written anywhere.
    """
    from mlops_widgets.cli._run import parse_params, run_step

    record = run_step(obj, template, parse_params(template, pairs, params_file), timeout=timeout)
    echo_result(record, as_json=as_json, text=_print_run, to_json=lambda r: r.to_dict())


def _print_run(record: Any) -> None:
    click.echo(f"run id: {record.run_id}")
    click.echo(f"notebook: {record.notebook}")
    for name, value in record.results.items():
        click.echo(f"{name}: {_value(value)}")


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@click.group()
def templates() -> None:
    """List template notebooks or clone one to edit."""


@templates.command("list")
@click.option("--json", "as_json", is_flag=True, help="Templates with their parameters as JSON.")
def templates_list(as_json: bool) -> None:
    """Each template with its steps and its parameters (type, default, help)."""
    from mlops_widgets.app import App

    found = App.templates()
    echo_result(found, as_json=as_json, empty="no templates found", text=_print_templates, to_json=dicts)


def _print_templates(found: list[Any]) -> None:
    for t in found:
        click.echo(f"{t.name}: {t.description}" if t.description else t.name)
        for p in t.parameters.values():
            secret = ", secret" if p.secret else ""
            choices = f", one of {', '.join(map(repr, p.choices))}" if p.choices else ""
            click.echo(f"  {p.name} ({p.type}{secret}{choices}) = {_short(p.default_source)}")
            if p.help:
                click.echo(f"      {p.help}")


def _short(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@templates.command("clone")
@click.argument("template")
@click.argument("dest", type=click.Path(dir_okay=False))
@_PARAM
@_PARAMS_FILE
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
@pass_obj
def templates_clone(
    obj: CliContext,
    template: str,
    dest: str,
    pairs: tuple[tuple[str, str], ...],
    params_file: str | None,
    force: bool,
) -> None:
    """Write TEMPLATE to DEST.ipynb with the parameters filled in, to edit and run by hand."""
    from mlops_widgets.cli._run import parse_params

    params = parse_params(template, pairs, params_file)
    path = obj.app().clone_template(template, dest, params, force=force)
    click.echo(f"wrote {path}")


@click.group()
def runs() -> None:
    """The audit trail: list, show, re-run or clone past runs."""


@runs.command("list")
@click.option("--template", help="Only runs of this template.")
@click.option(
    "--status",
    type=click.Choice(["running", "ok", "failed", "cancelled", "interrupted"]),
    help="Only runs in this state.",
)
@click.option("--name", "deployment_name", help="Only runs concerning this deployment.")
@click.option(
    "--monitor", "monitor_id", help="Only monitor evaluations of this monitor (e.g. generic_metrics)."
)
@click.option(
    "--trigger",
    type=click.Choice(["schedule", "manual"]),
    help="Only monitor evaluations run by a schedule, or asked for (CLI, panel).",
)
@click.option("--since", help="Only runs started at or after this UTC date/time (ISO).")
@click.option("--until", help="Only runs started before this UTC date/time (ISO).")
@click.option(
    "--limit", type=click.IntRange(min=0), default=50, show_default=True, help="At most this many (0: all)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@pass_obj
def runs_list(
    obj: CliContext,
    template: str | None,
    status: str | None,
    deployment_name: str | None,
    monitor_id: str | None,
    trigger: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Past runs and events (state changes that run no template), newest first."""
    found = obj.app().runs(
        template=template,
        status=status,
        deployment_name=deployment_name,
        monitor_id=monitor_id,
        trigger=trigger,
        since=since,
        until=until,
        limit=limit,
    )
    echo_result(
        found,
        as_json=as_json,
        to_json=dicts,
        empty="no runs",
        header=("RUN", "STARTED (UTC)", "KIND", "STATUS", "TIME", "TEMPLATE/ACTION", "DEPLOYMENT", "ERROR"),
        row=lambda r: (
            r.short_id,
            r.started_at[:19].replace("T", " "),
            r.kind,
            r.status,
            f"{r.duration_s:.1f}s" if r.duration_s is not None else "",
            r.template,
            r.deployment_name or "",
            _short(r.error or "", 60),
        ),
    )


@runs.command("show")
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON.")
@pass_obj
def runs_show(obj: CliContext, run: str, as_json: bool) -> None:
    """One run's record: RUN is its id, or a unique prefix of its id or short id."""
    echo_result(obj.app().run_record(run), as_json=as_json, text=_print_record, to_json=lambda r: r.to_dict())


def _print_record(record: Any) -> None:
    from mlops_widgets.app import hint_of
    from mlops_widgets.cli._hints import render

    err = record.error or {}
    hint = hint_of(record)
    lines = [
        ("run", record.run_id),
        ("template", f"{record.template} ({record.template_hash})"),
        ("status", record.status + (f": {err['summary']}" if err.get("summary") else "")),
        ("fix", render(hint) if hint is not None else ""),
        ("in step", err.get("heading")),
        ("started", record.started_at),
        ("kind", record.kind if record.kind != "template" else ""),
        ("ended", f"{record.ended_at} ({record.duration_s:.1f} s)" if record.ended_at else ""),
        ("backend", record.backend),
        ("workspace", record.workspace),
        ("by", f"{record.user}@{record.host}"),
        ("re-run of", record.rerun_of or ""),
        ("notebook", str(record.notebook) if record.notebook_name else ""),
    ]
    for key, value in lines:
        if value:
            click.echo(f"{key}: {value}")
    for title, values in (("parameters", record.parameters), ("results", record.results)):
        if values:
            click.echo(f"{title}:")
            for name, value in values.items():
                click.echo(f"  {name}: {_short(_value(value), 100)}")
    if record.secret_names:
        click.echo(f"secrets (values not stored): {', '.join(record.secret_names)}")


_REPLACE = click.option(
    "-p",
    "--param",
    "pairs",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="Replace a stored parameter (repeatable), e.g. one stored masked; typed as for `mlops run`.",
)


@runs.command("rerun")
@click.argument("run")
@_REPLACE
@_TIMEOUT
@pass_obj
def runs_rerun(obj: CliContext, run: str, pairs: tuple[tuple[str, str], ...], timeout: float | None) -> None:
    """Run RUN again: its template as it ran, its parameters; secrets from the environment."""
    from mlops_widgets.cli._run import rerun_step

    record = rerun_step(obj, run, pairs, timeout=timeout)
    click.echo(f"run id: {record.run_id}")
    click.echo(f"notebook: {record.notebook}")


@runs.command("clone")
@click.argument("run")
@click.argument("dest", type=click.Path(dir_okay=False))
@_REPLACE
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
@pass_obj
def runs_clone(obj: CliContext, run: str, dest: str, pairs: tuple[tuple[str, str], ...], force: bool) -> None:
    """Write RUN's template with its parameters filled in to DEST.ipynb, to edit and run by hand."""
    from mlops_widgets.cli._run import parse_params, run_template_copy

    params = parse_params(run_template_copy(obj, run), pairs) if pairs else None
    path = obj.app().clone_run(run, dest, params, force=force)
    click.echo(f"wrote {path}")
