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


def _rows(schema: dict[str, Any], prefix: str, defs: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for name, sub in schema.get("properties", {}).items():
        sub = defs.get(sub.get("$ref", "").rsplit("/", 1)[-1], sub) if "$ref" in sub else sub
        key = f"{prefix}{name}"
        kind = sub.get("type", "")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        desc = " ".join(str(sub.get("description", "")).split())
        rows.append((key, kind, desc))
        rows.extend(_rows(sub, f"{key}.", defs))
    for pattern, sub in schema.get("patternProperties", {}).items():
        sub = defs.get(sub.get("$ref", "").rsplit("/", 1)[-1], sub) if "$ref" in sub else sub
        key = f"{prefix}<{'monitor id' if 'metric' not in pattern else 'metric'}>"
        if any(r[0] == key for r in rows):
            continue
        rows.append((key, sub.get("type", ""), " ".join(str(sub.get("description", "")).split())))
        rows.extend(_rows(sub, f"{key}.", defs))
    add = schema.get("additionalProperties")
    if isinstance(add, dict) and add.get("properties"):
        key = f"{prefix}<name>"
        rows.append((key, add.get("type", ""), " ".join(str(add.get("description", "")).split())))
        rows.extend(_rows(add, f"{key}.", defs))
    return rows


def config_reference() -> str:
    from mlops_widgets.config import json_schema

    schema = json_schema()
    defs = schema.get("$defs", {})
    lines = ["| field | type | meaning |", "|---|---|---|"]
    seen = set()
    for key, kind, desc in _rows(schema, "", defs):
        if key in seen:
            continue
        seen.add(key)
        lines.append(f"| `{key}` | {kind} | {desc.replace('|', '/')} |")
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
