"""What every command shares: the context object (workspace, backend) and JSON output."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from mlops_widgets.workspace import Workspace

if TYPE_CHECKING:
    from mlops_widgets.app import App


@dataclass
class CliContext:
    """Global options; the backend is built on first use so read-only commands stay cheap."""

    workspace: str | None
    backend_name: str
    _app: App | None = field(default=None, repr=False)

    def ws(self) -> Workspace:
        return Workspace(self.workspace)

    def app(self) -> App:
        """The application core on this workspace and backend: every command reads and acts
        through it (its backend is built when first needed)."""
        if self._app is None:
            from mlops_widgets.app import App

            self._app = App(self.ws(), self.backend_name)
        return self._app

    def definitions(self) -> dict[str, Any]:
        """The monitor definitions of this workspace (built-ins, plug-ins, registrations): what
        every config call of the CLI validates against."""
        return self.app().definitions()

    def load_config(self, path: str, *, with_key: bool) -> Any:
        """Load and validate a config file against the monitor definitions of this workspace."""
        from mlops_widgets.config import load_config

        loaded = load_config(path, with_key=with_key, definitions=self.definitions())
        show_warnings(loaded.warnings, path)
        return loaded


pass_obj = click.make_pass_decorator(CliContext)


def show_warnings(warnings: list[Any], source: str | None = None) -> None:
    """Config warnings (e.g. a monitor id unknown locally) go to stderr and do not fail."""
    for w in warnings:
        click.echo(w.format(source), err=True)


def echo_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Plain aligned columns, as the original's listings printed them."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def echo_json(obj: Any) -> None:
    """Print `obj` as indented JSON on stdout (the `--json` output of every command)."""
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))


def dicts(items: list[Any]) -> list[dict[str, Any]]:
    """Records (runs, templates) as the dicts `--json` prints."""
    return [item.to_dict() for item in items]


def echo_result(
    data: Any,
    *,
    as_json: bool,
    header: tuple[str, ...] = (),
    row: Callable[[Any], tuple[str, ...]] | None = None,
    empty: str | None = None,
    text: Callable[[Any], None] | None = None,
    to_json: Callable[[Any], Any] | None = None,
) -> None:
    """What a listing or a view prints: `data` as JSON with --json (through `to_json` when its
    items are objects); else the `empty` line when there is nothing; else `text(data)` when
    given; else a table of `row(r)` for r in `data` under `header`."""
    if as_json:
        echo_json(to_json(data) if to_json else data)
    elif empty is not None and not data:
        click.echo(empty)
    elif text is not None:
        text(data)
    else:
        assert row is not None, "echo_result needs a row function or a text printer"
        echo_table(header, [row(r) for r in data])


def echo_log(lines: Iterable[str], *, tail: int | None, empty: str) -> None:
    """Print a log line by line as it comes (Ctrl-C ends a follow quietly); `empty` goes to
    stderr when nothing came, unless no line was asked for (`--tail 0`)."""
    printed = False
    try:
        for line in lines:
            click.echo(line)
            printed = True
    except KeyboardInterrupt:
        return
    if not printed and tail != 0:
        click.echo(empty, err=True)


def echo_metrics(metrics: dict[str, dict[str, Any]]) -> None:
    """A job's reported metrics, last values, on one line."""
    if metrics:
        click.echo(
            "metrics: " + ", ".join(f"{k}={m['last']:.6g} ({m['count']})" for k, m in sorted(metrics.items()))
        )
