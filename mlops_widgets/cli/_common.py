"""What every command shares: the context object (workspace, backend) and JSON output."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import click

from mlops_widgets.backends import backend_name, get_backend
from mlops_widgets.backends.base import Backend
from mlops_widgets.workspace import Workspace


@dataclass
class CliContext:
    """Global options; the backend is built on first use so read-only commands stay cheap."""

    workspace: str | None
    backend_name: str
    _backend: Backend | None = field(default=None, repr=False)

    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = get_backend(backend_name(self.backend_name), Workspace(self.workspace))
        return self._backend

    def ws(self) -> Workspace:
        return Workspace(self.workspace)

    def load_config(self, path: str, *, with_key: bool) -> Any:
        """Load and validate a config file against the monitor definitions of this workspace."""
        from mlops_widgets.config import load_config
        from mlops_widgets.monitors import known_definitions

        loaded = load_config(path, with_key=with_key, definitions=known_definitions(self.ws()))
        show_warnings(loaded.warnings, path)
        return loaded


pass_obj = click.make_pass_decorator(CliContext)


def show_warnings(warnings: list[Any], source: str | None = None) -> None:
    """Config warnings (e.g. a monitor id unknown locally) go to stderr and do not fail."""
    for w in warnings:
        click.echo(w.format(source), err=True)


def echo_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Plain aligned columns, as the original's listings printed them."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def echo_json(obj: Any) -> None:
    """Print `obj` as indented JSON on stdout (the `--json` output of every command)."""
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))
