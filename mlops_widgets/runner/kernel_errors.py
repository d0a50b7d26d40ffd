"""An IPython extension every template kernel loads at start (`kernel.EXTRA_ARGUMENTS`): the
package's log records of the run's steps go to the workspace's log (`logs.setup`), and an
MlopsError that ends a cell leaves its type, message and hint in the run's results file
(`record.record_raised`), so the run's recorded error and its RunFailed keep the hint as data and
each front end renders it its own way; the traceback shows as it always does. Outside the runner
(no results file) it records nothing."""

from __future__ import annotations

from typing import Any


def load_ipython_extension(shell: Any) -> None:
    from mlops_widgets import logs
    from mlops_widgets.errors import MlopsError
    from mlops_widgets.workspace import resolve_root

    logs.setup(resolve_root())

    shell.set_custom_exc((MlopsError,), _on_error)


def _on_error(shell: Any, etype: type, value: Any, tb: Any, tb_offset: int | None = None) -> None:
    from mlops_widgets.runner.record import record_raised

    try:
        record_raised(value)
    finally:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
