"""`mlops config ...`: the deployment metadata entries, as the original's `config` commands."""

from __future__ import annotations

from typing import Any

import click

from mlops_widgets.cli._common import CliContext, echo_json, echo_result, echo_table, pass_obj


@click.group()
def config() -> None:
    """Validate, add, list and delete deployment metadata entries."""


@config.command()
@click.option("--path-yml", required=True, type=click.Path(dir_okay=False), help="The YAML file to check.")
@click.option("--with-key", is_flag=True, help="The file maps model asset ids to entries.")
@pass_obj
def validate(obj: CliContext, path_yml: str, with_key: bool) -> None:
    """Check a deployment metadata YAML file and report every problem at once."""
    loaded = obj.load_config(path_yml, with_key=with_key)
    n = len(loaded.entries)
    click.echo(f"{path_yml}: valid ({n} {'entry' if n == 1 else 'entries'})")


@config.command()
@click.option(
    "--path-yml", required=True, type=click.Path(dir_okay=False), help="Entries keyed by model asset id."
)
@click.option("-f", "--force", is_flag=True, help="Replace entries whose model asset id is already there.")
@pass_obj
def add(obj: CliContext, path_yml: str, force: bool) -> None:
    """Add the entries of a YAML file keyed by model asset id."""
    loaded = obj.load_config(path_yml, with_key=True)
    keys = obj.app().entry_add({str(k): v for k, v in loaded.entries.items()}, force=force)
    for key in keys:
        click.echo(f"added {key}")


@config.command("list")
@click.option("--detail", is_flag=True, help="Print each entry in full.")
@click.option("--json", "as_json", is_flag=True, help="Print the mapping model asset id -> entry as JSON.")
@pass_obj
def list_(obj: CliContext, detail: bool, as_json: bool) -> None:
    """List the entries of the deployment metadata."""
    entries = obj.app().entries()
    echo_result(
        entries,
        as_json=as_json,
        empty="no entries: stage a model with `mlops prepare stage`",
        text=_print_detail if detail else _print_entries,
    )


def _print_detail(entries: dict[str, dict[str, Any]]) -> None:
    from mlops_widgets.config import dump_yaml

    click.echo(dump_yaml(entries), nl=False)


def _print_entries(entries: dict[str, dict[str, Any]]) -> None:
    rows = [
        (
            key,
            str(e.get("model_name") or "-"),
            str(e.get("model_asset") or "-"),
            str((e.get("wmla_deployment") or {}).get("deployment_name") or "-"),
            ",".join(e.get("openscale_custom_metric_provider") or {}) or "-",
        )
        for key, e in entries.items()
    ]
    echo_table(("MODEL ASSET ID", "MODEL NAME", "MODEL ASSET", "DEPLOYMENT", "MONITORS"), rows)


@config.command()
@click.option("--name", help="Deployment name of the entry.")
@click.option("--model-asset-id", help="Model asset id of the entry.")
@pass_obj
def delete(obj: CliContext, name: str | None, model_asset_id: str | None) -> None:
    """Delete one entry, found by deployment name or model asset id."""
    if bool(name) == bool(model_asset_id):
        raise click.UsageError("give exactly one of --name and --model-asset-id")
    key = obj.app().entry_delete(name=name, model_asset_id=model_asset_id)
    click.echo(f"deleted entry {key}")


@config.command()
@pass_obj
def schema(obj: CliContext) -> None:
    """Print the JSON Schema of an entry, for editors that check YAML (with the workspace's
    registered monitors)."""
    from mlops_widgets.config import json_schema

    echo_json(json_schema(definitions=obj.definitions()))
