"""`record(...)`: how a template cell puts what it produced (asset ids, deployment URL,
subscription id...) into its run record.

Runs inside the template's kernel. Under the runner, $MLOPS_RUN_RESULTS names a file in the run's
folder where each call appends one JSON line, masked of the run's secrets and the kernel's
credential variables (a run killed outright leaves it scrubbed); the runner reads it after the
run, scrubs it again and stores it in run.json. Run by hand (no runner), the values are kept in this process
(`recorded()`) and printed, so a cloned notebook still shows its results.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mlops_widgets.errors import MlopsError

RESULTS_ENV = "MLOPS_RUN_RESULTS"
_recorded: dict[str, Any] = {}


def record(**values: Any) -> None:
    """Record results of this run (JSON-serializable values; a later call wins per name)."""
    try:
        line = json.dumps(values, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise MlopsError(f"record(): values must be plain data (JSON): {exc}") from None
    _recorded.update(values)
    path = os.environ.get(RESULTS_ENV)
    if path:
        from mlops_widgets.masking import Masker
        from mlops_widgets.runner.secrets import ambient_secrets, get_secrets

        masked = Masker([*get_secrets().values(), *ambient_secrets()]).mask(line)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "a", encoding="utf-8") as fh:
            fh.write(masked + "\n")
    for name, value in values.items():
        print(f"recorded {name} = {value!r}")


def recorded() -> dict[str, Any]:
    """What this process recorded so far (a notebook run by hand)."""
    return dict(_recorded)


def read_results(path: Path) -> dict[str, Any]:
    """The results a run recorded, merged in call order; {} when it recorded nothing."""
    results: dict[str, Any] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return results
    for line in text.splitlines():
        if line.strip():
            try:
                results.update(json.loads(line))
            except ValueError:  # a line cut short by a killed kernel
                continue
    return results
