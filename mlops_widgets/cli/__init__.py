"""The `mlops` command: a thin front end whose commands mirror the original `cli_mlops.py`.

Sub-commands live in their own modules and are imported only when invoked, so `mlops --help`
and `mlops config list` start without papermill, nbformat or the IBM SDKs.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from mlops_widgets import __version__, logs
from mlops_widgets.cli._common import CliContext
from mlops_widgets.errors import MlopsError
from mlops_widgets.settings import BACKEND, HOME
from mlops_widgets.workspace import resolve_root

# name -> (module:attribute, one-line help shown by `mlops --help` without importing the module)
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("mlops_widgets.cli.prepare:prepare", "Stage model and deployment files into the space."),
    "config": (
        "mlops_widgets.cli.config:config",
        "Validate, add, list and delete deployment metadata entries.",
    ),
    "deploy": ("mlops_widgets.cli.deploy:deploy", "Create, start, stop, inspect and delete deployments."),
    "serve": ("mlops_widgets.cli.deploy:serve", "Run the local inference service in the foreground."),
    "service": (
        "mlops_widgets.cli.service:service",
        "Status, start, stop and logs of the workspace's local service (supervised).",
    ),
    "runtime": (
        "mlops_widgets.cli.runtime:runtime",
        "Add, list and delete the Python interpreters local kernels run on.",
    ),
    "provider": ("mlops_widgets.cli.monitor:provider", "Create and list OpenScale service providers."),
    "monitor": ("mlops_widgets.cli.monitor:monitor", "Attach monitors, evaluate them and show their status."),
    "train": ("mlops_widgets.cli.train:train", "Submit training jobs and follow them (template A1)."),
    "run": ("mlops_widgets.cli.runs:run", "Run a template notebook with parameters."),
    "templates": ("mlops_widgets.cli.runs:templates", "List template notebooks or clone one to edit."),
    "runs": ("mlops_widgets.cli.runs:runs", "The audit trail: list, show, re-run or clone past runs."),
    "settings": (
        "mlops_widgets.cli.settings:settings",
        "List every setting, its value and where it came from.",
    ),
    "doctor": ("mlops_widgets.cli.doctor:doctor", "Check that each Cloud Pak for Data service is reachable."),
    "demo": ("mlops_widgets.cli.demo:demo", "Run the whole workflow end to end on the embedded backend."),
    "lab": ("mlops_widgets.cli.demo:lab", "Open JupyterLab here with the MLOps panel on the workspace."),
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use; help text comes from COMMANDS."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module, attr = COMMANDS[cmd_name][0].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # `mlops --help` describes the commands from COMMANDS without importing their modules.
        rows = []
        for name in self.list_commands(ctx):
            if name in COMMANDS:
                rows.append((name, COMMANDS[name][1]))
            elif (cmd := super().get_command(ctx, name)) is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(formatter.width - 6 - len(name))))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        # A user error is one line on stderr and exit 1 (click's ClickException), never a traceback.
        try:
            return super().invoke(ctx)
        except MlopsError as exc:
            from mlops_widgets.cli._hints import error_text

            raise click.ClickException(error_text(exc)) from None
        except BrokenPipeError:  # `mlops ... | head`: the reader left; end quietly, as git does
            _silence_stdout()
            raise SystemExit(141) from None
        except OSError as exc:  # an unusable workspace or path: say which, without a traceback
            plain = _workspace_storage_error(ctx, exc)
            if plain is not None:
                raise click.ClickException(plain.message) from None
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None


def _workspace_storage_error(ctx: click.Context, exc: OSError) -> MlopsError | None:
    """A write into the workspace refused for lack of space or a read-only disk, said plainly."""
    from mlops_widgets.workspace import storage_error

    if not isinstance(ctx.obj, CliContext) or not isinstance(exc.filename, str | os.PathLike):
        return None
    root = ctx.obj.ws().root
    return storage_error(root, exc) if Path(exc.filename).is_relative_to(root) else None


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--workspace",
    type=click.Path(file_okay=False),
    envvar=HOME.env,
    help="Workspace folder (default: $MLOPS_HOME, else ./.mlops).",
)
@click.option(
    "--backend",
    envvar=BACKEND.env,
    default="local",
    show_default=True,
    help="Where the space, deployments and monitors live: local or cpd ($MLOPS_BACKEND).",
)
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Also print the log (kept in the workspace's logs/mlops.log) on stderr, with debug detail.",
)
@click.pass_context
def cli(ctx: click.Context, workspace: str | None, backend: str, verbose: bool) -> None:
    """Deploy and monitor image models: stage, deploy, monitor, and an audit trail of every run."""
    logs.setup(resolve_root(workspace), verbose=verbose)
    ctx.obj = CliContext(workspace=workspace, backend_name=backend)


@cli.command()
def version() -> None:
    """Print the mlops-widgets version."""
    click.echo(__version__)


def main() -> None:
    """Console-script entry point (`mlops`): exit 0 ok, 1 user error, 2 usage error."""
    cli(prog_name="mlops")
