"""What a training script reports about itself, kept with its job.

The convention (documented for users): each worker gets `$MLOPS_METRICS_FILE`; a script appends
one JSON object a line, numbers by name and optionally a `step`, e.g.
`{"step": 3, "loss": 0.21, "accuracy": 0.93}`. Where MLflow is installed in the worker's
runtime, its tracking goes to the job's folder (`$MLFLOW_TRACKING_URI`, a file store), and the
metrics and parameters a script logs with `mlflow.log_metric` / `log_param` are read from there.
A job keeps the last value of each metric and the number of values logged.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
MLRUNS = "mlruns"


def worker_variables(folder: Path) -> dict[str, str]:
    """The variables that tell a worker's script where to report."""
    return {
        "MLOPS_METRICS_FILE": str(folder / METRICS_FILE),
        "MLFLOW_TRACKING_URI": (folder / MLRUNS).as_uri(),
    }


def _keep(metrics: dict[str, dict[str, Any]], name: str, value: Any, step: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return
    seen = metrics.setdefault(str(name), {"count": 0})
    seen.update(last=value, count=seen["count"] + 1, step=step)


def collect(folder: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(metrics: name -> {last, count, step}, parameters logged to MLflow) of a job's folder;
    lines that are not JSON objects of numbers are skipped."""
    metrics: dict[str, dict[str, Any]] = {}
    path = folder / METRICS_FILE
    if path.is_file():
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                for name, value in record.items():
                    if name != "step":
                        _keep(metrics, name, value, record.get("step"))
    params: dict[str, str] = {}
    for run in sorted((folder / MLRUNS).glob("*/*/")):
        for metric in sorted((run / "metrics").glob("*")):
            for line in metric.read_text(errors="replace").splitlines():
                parts = line.split()  # "<timestamp> <value> <step>"
                if len(parts) >= 2:
                    try:
                        _keep(
                            metrics, metric.name, float(parts[1]), int(parts[2]) if len(parts) > 2 else None
                        )
                    except ValueError:
                        continue
        for param in sorted((run / "params").glob("*")):
            params[param.name] = param.read_text(errors="replace").strip()[:1000]
    return metrics, params
