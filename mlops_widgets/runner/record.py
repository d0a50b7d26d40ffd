"""`record(...)`: how a template cell puts what it produced (asset ids, deployment URL,
subscription id...) into its run record.

Runs inside the template's kernel. Under the runner, $MLOPS_RUN_RESULTS names a file in the run's
folder where each call appends one JSON line, masked of the run's secrets and the kernel's
credential variables (a run killed outright leaves it scrubbed); the runner reads it after the
run, scrubs it again and stores it in run.json. Run by hand (no runner), the values are kept in this process
(`recorded()`) and printed, so a cloned notebook still shows its results. The same file carries
the MlopsError that ended a cell (`record_raised`, called by runner/kernel_errors.py): its hint
becomes part of the run's recorded error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mlops_widgets.errors import MlopsError

RESULTS_ENV = "MLOPS_RUN_RESULTS"
RAISED_KEY = "__raised__"  # a results line of this key: the MlopsError that ended a cell
_recorded: dict[str, Any] = {}


def record(**values: Any) -> None:
    """Record results of this run (JSON-serializable values; a later call wins per name)."""
    try:
        line = json.dumps(values, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise MlopsError(f"record(): values must be plain data (JSON): {exc}") from None
    _recorded.update(values)
    _append(line)
    for name, value in values.items():
        print(f"recorded {name} = {value!r}")


def record_raised(error: MlopsError) -> None:
    """Keep the MlopsError that ends a cell (its type, message and hint: action, plain text,
    args) for the run's record, masked like any result, so the run's failure carries the hint
    a front end renders (the CLI as a flag, the panel as a control). Runner kernels only."""
    hint = error.hint
    raised = {
        "ename": type(error).__name__,
        "message": error.message,
        "hint": None if hint is None else {"action": hint.action, "text": hint.text, "args": dict(hint.args)},
    }
    _append(json.dumps({RAISED_KEY: raised}, default=str))


def _append(line: str) -> None:
    """One JSON line into the run's results file (under the runner), masked of the run's
    secrets and the kernel's credential variables."""
    path = os.environ.get(RESULTS_ENV)
    if path:
        from mlops_widgets.masking import Masker
        from mlops_widgets.runner.secrets import ambient_secrets, get_secrets

        masked = Masker([*get_secrets().values(), *ambient_secrets()]).mask(line)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "a", encoding="utf-8") as fh:
            fh.write(masked + "\n")


def recorded() -> dict[str, Any]:
    """What this process recorded so far (a notebook run by hand)."""
    return dict(_recorded)


def read_results(path: Path) -> dict[str, Any]:
    """The results a run recorded, merged in call order; {} when it recorded nothing."""
    results = _read(path)
    results.pop(RAISED_KEY, None)
    return results


def read_raised(path: Path) -> dict[str, Any] | None:
    """The last MlopsError that ended a cell of the run (`record_raised`), or None."""
    raised = _read(path).get(RAISED_KEY)
    return raised if isinstance(raised, dict) else None


def _read(path: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return merged
    for line in text.splitlines():
        if line.strip():
            try:
                value = json.loads(line)
            except ValueError:  # a line cut short by a killed kernel
                continue
            if isinstance(value, dict):
                merged.update(value)
    return merged
