"""`mlops runtime ...`: the Python interpreters kernels of the local inference service run on."""

from __future__ import annotations

import click

from mlops_widgets.cli._common import CliContext, echo_result, pass_obj


@click.group()
def runtime() -> None:
    """Python interpreters that local kernels run on (model.json `runtime` picks one)."""


@runtime.command()
@click.argument("name")
@click.option(
    "--python",
    "python",
    required=True,
    type=click.Path(dir_okay=False),
    help="The interpreter, e.g. /opt/envs/torch/bin/python.",
)
@pass_obj
def add(obj: CliContext, name: str, python: str) -> None:
    """Add runtime NAME: kernels whose model.json names it run on that Python (dlipy3: bind EDI's
    default runtime name to your interpreter instead of the service's own)."""
    added = obj.app().runtime_add(name, python)
    click.echo(f"runtime {added['name']}: Python {added['version']} at {added['python']}")


@runtime.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_obj
def list_(obj: CliContext, as_json: bool) -> None:
    """Every runtime; dlipy3 is the service's own interpreter unless bound to another."""
    echo_result(
        obj.app().runtimes(),
        as_json=as_json,
        header=("NAME", "PYTHON", "VERSION"),
        row=lambda r: (r["name"], r["python"], r["version"]),
    )


@runtime.command()
@click.argument("name")
@pass_obj
def delete(obj: CliContext, name: str) -> None:
    """Delete runtime NAME (deployments naming it no longer start; dlipy3: back to the service's
    own interpreter)."""
    obj.app().runtime_delete(name)
    click.echo(
        f"runtime {name} is the service's own interpreter again"
        if name == "dlipy3"
        else f"runtime {name} deleted"
    )
