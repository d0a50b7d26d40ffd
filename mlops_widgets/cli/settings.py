"""`mlops settings`: every setting with its value and where it came from; set the workspace's."""

from __future__ import annotations

from typing import Any

import click

from mlops_widgets import settings as model
from mlops_widgets.cli._common import CliContext, echo_result, pass_obj


def _shown(value: Any) -> str:
    return "-" if value is None else str(value)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
@click.pass_context
def settings(ctx: click.Context, as_json: bool) -> None:
    """List every setting: its value, where it came from (default, environment, workspace),
    its environment variable and what it does. Workspace settings are kept in the workspace
    and read from there by every process acting on it."""
    if ctx.invoked_subcommand is not None:
        return
    obj: CliContext = ctx.obj
    given = _given_on_the_command_line(ctx, obj)
    rows = [
        {
            "name": s.name,
            "value": value,
            "source": source,
            "scope": s.scope,
            "variable": s.env,
            "default": s.default,
            "help": s.help,
        }
        for s, value, source in model.listing(obj.ws())
    ]
    for row in rows:
        if row["name"] in given:
            row["value"], row["source"] = given[row["name"]], "command line"
    echo_result(
        rows,
        as_json=as_json,
        header=("NAME", "VALUE", "SOURCE", "VARIABLE", "HELP"),
        row=lambda r: (r["name"], _shown(r["value"]), r["source"], r["variable"], r["help"]),
    )


def _given_on_the_command_line(ctx: click.Context, obj: CliContext) -> dict[str, str]:
    """The settings `mlops --workspace/--backend` gave this command (they win over the variables)."""
    root = ctx.find_root()
    given = {}
    if root.get_parameter_source("workspace") == click.core.ParameterSource.COMMANDLINE:
        given["home"] = str(obj.ws().root)
    if root.get_parameter_source("backend") == click.core.ParameterSource.COMMANDLINE:
        given["backend"] = obj.backend_name
    return given


@settings.command("set")
@click.argument("name")
@click.argument("value")
@pass_obj
def set_(obj: CliContext, name: str, value: str) -> None:
    """Keep VALUE as the workspace's value of the workspace setting NAME (e.g. min_schedule_s)."""
    setting = model.by_name(name)
    model.store(obj.ws(), setting, value)
    click.echo(f"{setting.name} = {value} (workspace {obj.ws().root})")


@settings.command("unset")
@click.argument("name")
@pass_obj
def unset(obj: CliContext, name: str) -> None:
    """Forget the workspace's value of NAME: its default applies again."""
    setting = model.by_name(name)
    model.store(obj.ws(), setting, None)
    click.echo(f"{setting.name} = {_shown(setting.default)} (default)")
