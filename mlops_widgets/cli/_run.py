"""How every state-changing command runs its template: a progress bar on stderr, the run folder
printed, and a failed run turned into one clear error naming the step and the executed notebook.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from mlops_widgets.cli._common import CliContext
from mlops_widgets.errors import MlopsError

if TYPE_CHECKING:
    from mlops_widgets.app import ProgressEvent, RunRecord, Template


class TerminalProgress:
    """Cells done/total and the current step: one redrawn line on a terminal, one line per step
    otherwise (logs and CI stay readable)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last: str | None = None
        self.drawn = False

    def __call__(self, event: ProgressEvent) -> None:
        heading = event.heading or ""
        if event.status in ("ok", "failed", "cancelled", "interrupted"):
            self.close()
            return
        if self.tty:
            width = 24
            filled = width * event.done // max(event.total, 1)
            line = f"[{'#' * filled}{'.' * (width - filled)}] {event.done}/{event.total} {heading}"
            cols = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r\033[K" + line[: cols - 1])
            self.stream.flush()
            self.drawn = True
        elif heading != self.last:
            self.stream.write(f"[{event.done}/{event.total}] {heading}\n")
            self.stream.flush()
        self.last = heading

    def close(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.drawn = False


def with_progress(start: Callable[[TerminalProgress], RunRecord], *, check: bool = True) -> RunRecord:
    """Call a core action that makes a template run with a progress bar on stderr; print the run
    folder; return its record, raising RunFailed (an MlopsError: the failing step, its error and
    the executed notebook's path) when it failed or was cancelled (Ctrl-C), unless not `check`."""
    bar = TerminalProgress()
    try:
        record = start(bar)
    finally:
        bar.close()
    click.echo(f"run {record.run_id}: {record.status} ({record.duration_s:.1f} s) {record.dir}", err=True)
    return record.raise_for_status() if check else record


def run_step(
    ctx_obj: CliContext,
    template: str,
    params: Mapping[str, Any],
    secrets: Mapping[str, str] | None = None,
    *,
    timeout: float | None = None,
) -> RunRecord:
    """Run `template` on the command's workspace and backend with a progress bar; print the run
    folder; return the run's record, or raise RunFailed (an MlopsError: the failing step, its
    error and the executed notebook's path) when it failed or was cancelled (Ctrl-C)."""
    app = ctx_obj.app()
    return with_progress(
        lambda bar: app.run(template, params, secrets=secrets, progress=bar, timeout=timeout)
    )


def rerun_step(
    ctx_obj: CliContext,
    run: str,
    pairs: Iterable[tuple[str, str]] = (),
    *,
    timeout: float | None = None,
) -> RunRecord:
    """`run_step` for a re-run of a past run (secrets from the environment); `-p NAME VALUE`
    pairs replace stored parameters, typed by the run's own template copy."""
    params = parse_params(run_template_copy(ctx_obj, run), pairs) if pairs else None
    app = ctx_obj.app()
    return with_progress(lambda bar: app.rerun(run, params, progress=bar, timeout=timeout))


def run_template_copy(ctx_obj: CliContext, run: str) -> Template:
    """The template a past run ran (its stored copy), to type `-p` values for it."""
    return ctx_obj.app().run_template_copy(run)


def parse_params(
    template: str | Path | Template, pairs: Iterable[tuple[str, str]], params_file: str | None = None
) -> dict[str, Any]:
    """`-f params.yml` (a YAML mapping) then `-p NAME VALUE` pairs (later wins), each value typed
    by the template's parameters cell (YAML for non-string parameters)."""
    from mlops_widgets.app import App

    declared = App.template(template).parameters
    values: dict[str, Any] = {}
    if params_file:
        import yaml

        try:
            loaded = yaml.safe_load(Path(params_file).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise MlopsError(f"-f {params_file}: cannot be read as YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise MlopsError(f"-f {params_file}: must be a mapping of parameter names to values")
        values.update(loaded or {})
    for name, text in pairs:
        values[name] = declared[name].coerce(text) if name in declared else text
    return values
