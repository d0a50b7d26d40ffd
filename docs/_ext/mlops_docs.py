"""The generated parts of the documentation, so they cannot drift from the code:

- the config reference, from the entry's JSON Schema (`mlops config schema`):

      ```{mlops-config-reference}
      ```

- the CLI reference (sphinx-click reads a group's `commands`; the `mlops` group imports its
  sub-commands on first use, so they are loaded here first).
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


def _desc(schema: dict[str, Any]) -> str:
    return " ".join(str(schema.get("description", "")).split()).replace("|", "/")


def _kind(schema: dict[str, Any]) -> str:
    if "anyOf" in schema or "oneOf" in schema:
        return " or ".join(dict.fromkeys(_kind(s) for s in schema.get("anyOf", schema.get("oneOf"))))
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        return " or ".join(repr(v) for v in schema["enum"])
    kind = schema.get("type", "")
    return " or ".join(kind) if isinstance(kind, list) else kind


def _rows(schema: dict[str, Any], prefix: str) -> list[str]:
    rows = []
    for name, sub in schema.get("properties", {}).items():
        key = f"{prefix}{name}"
        rows.append(f"| `{key}` | {_kind(sub)} | {_desc(sub)} |")
        rows.extend(_rows(sub, f"{key}."))
    return rows


def config_reference() -> str:
    """The entry's fields as a Markdown table, then the built-in monitor definitions."""
    from mlops_widgets.config import json_schema
    from mlops_widgets.monitors import BUILTIN

    schema = json_schema()
    monitors = schema["properties"]["openscale_custom_metric_provider"]
    settings = monitors["additionalProperties"]
    threshold = settings["properties"]["thresholds"]["additionalProperties"]
    lines = ["| field | type | meaning |", "|---|---|---|"]
    for name, sub in schema["properties"].items():
        lines.append(f"| `{name}` | {_kind(sub)} | {_desc(sub)} |")
        if sub is monitors:
            prefix = f"{name}.<monitor id>."
            lines.extend(
                f"| `{prefix}{k}` | {_kind(v)} | {_desc(v)} |" for k, v in settings["properties"].items()
            )
            lines.append(
                f"| `{prefix}thresholds.<metric>.threshold` | {_kind(threshold['properties']['threshold'])} "
                f"| {_desc(threshold['properties']['threshold'])} |"
            )
        else:
            lines.extend(_rows(sub, f"{name}."))
    lines += [
        "",
        "Built-in monitor definitions, their metrics and default thresholds "
        "(`mlops monitor thresholds --monitor ID`):",
        "",
    ]
    for definition in BUILTIN.values():
        metrics = ", ".join(f"`{m}` {t.value:g} {t.direction}" for m, t in definition.thresholds.items())
        lines.append(f"- `{definition.id}`: {definition.description} {metrics}.")
    return "\n".join(lines) + "\n"


class ConfigReference(SphinxDirective):
    """Renders `config_reference()` (Markdown, parsed by MyST in the including page)."""

    def run(self) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(config_reference().splitlines()), self.content_offset, container)
        return container.children


def load_commands() -> None:
    """Put every lazily imported sub-command of `mlops` into the group, for sphinx-click."""
    import click

    from mlops_widgets.cli import COMMANDS, cli

    ctx = click.Context(cli, info_name="mlops")
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        if command is not None:
            cli.add_command(command, name)


def setup(app: Sphinx) -> dict[str, Any]:
    load_commands()
    app.add_directive("mlops-config-reference", ConfigReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
