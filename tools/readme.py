"""Regenerate the README's reference sections from their sources of truth.

- CLI reference: the `mlops` command's own help, command by command.
- Config reference: the entry's JSON Schema (`mlops config schema`).

Run `python tools/readme.py` after changing a command or a config field; `tests/test_readme.py`
fails while the README is out of date.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import click

README = Path(__file__).resolve().parent.parent / "README.md"


def _walk(cmd: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    found = [(path, cmd)]
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd, info_name=path[-1])
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                found.extend(_walk(sub, [*path, name]))
    return found


def cli_reference() -> str:
    from mlops_widgets.cli import cli

    parts = []
    for path, cmd in _walk(cli, ["mlops"]):
        if isinstance(cmd, click.Group) and len(path) > 1:
            continue  # a group's help only lists its commands, which follow one by one
        parent = None
        for name in path[:-1]:
            parent = click.Context(click.Group(name), info_name=name, parent=parent)
        ctx = click.Context(cmd, info_name=path[-1], parent=parent, terminal_width=100, max_content_width=100)
        text = cmd.get_help(ctx)
        parts.append(f"#### `{' '.join(path)}`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


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


SECTIONS = {"cli-reference": cli_reference, "config-reference": config_reference}


def render(text: str) -> str:
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"README has no {name} markers")
        body = make()
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


def main() -> None:
    new = render(README.read_text())
    if "--check" in sys.argv:
        sys.exit(0 if new == README.read_text() else 1)
    README.write_text(new)


if __name__ == "__main__":
    main()
