"""A small fault campaign on template runs: `mlops run A_MLOps_Pipeline` killed with SIGKILL at
random points after it is recorded (kernel start, a step, saving), then the workspace checked as the next command
sees it: no run left `running`, each listed run is ok or interrupted with its folder and record,
no results file left, the database intact, and a later run works (it cleans what a kill left).

Run: .venv/bin/python benchmarks/fault_runs.py [--kills 10] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from mlops_widgets.runner import get_run, list_runs, run_template
from mlops_widgets.runner.trail import RESULTS_FILE, RUN_JSON, RUNS_DIR
from mlops_widgets.workspace import Workspace

MLOPS = str(Path(sys.executable).parent / "mlops")


def _kill_one(ws: Workspace, delay: float) -> None:
    """Start a run, wait until it is recorded (its folder is there), then kill it `delay` s later."""
    before = set((ws.root / RUNS_DIR).glob("*")) if (ws.root / RUNS_DIR).is_dir() else set()
    proc = subprocess.Popen(
        [MLOPS, "--workspace", str(ws.root), "run", "A_MLOps_Pipeline", "-p", "on_clash", "new"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if (ws.root / RUNS_DIR).is_dir() and set((ws.root / RUNS_DIR).glob("*")) - before:
            break
        time.sleep(0.01)
    time.sleep(delay)
    kernels = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    psutil.wait_procs(kernels, timeout=30)  # a kernel ends by itself once its parent is gone


def _problems(ws: Workspace) -> list[str]:
    found = []
    for run in list_runs(ws, limit=None):
        if run.status not in ("ok", "interrupted"):
            found.append(f"{run.run_id}: {run.status}")
        record = get_run(run.run_id, ws)
        if record.status != run.status:
            found.append(f"{run.run_id}: index says {run.status}, run.json {record.status}")
        if (record.dir / RESULTS_FILE).exists():
            found.append(f"{run.run_id}: results file left")
        if record.status == "ok" and not record.notebook.is_file():
            found.append(f"{run.run_id}: no notebook")
    indexed = {r.run_id for r in list_runs(ws, limit=None)}
    for folder in (ws.root / RUNS_DIR).iterdir():
        if not folder.name.startswith(".") and (folder / RUN_JSON).is_file() and folder.name not in indexed:
            found.append(f"{folder.name}: a run folder the index does not list")
    conn = ws.connect()
    if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
        found.append("database integrity check failed")
    conn.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        delays = sorted(rng.uniform(0.0, 3.0) for _ in range(args.kills))
        for delay in delays:
            _kill_one(ws, delay)
        problems = _problems(ws)
        after = run_template("A_MLOps_Pipeline", {"on_clash": "new"}, workspace=ws, backend="local")
        problems += [] if after.ok else [f"the run after the kills failed: {after.error}"]
        statuses = [r.status for r in list_runs(ws, limit=None)]
        print(
            f"{args.kills} runs killed {', '.join(f'{d:.1f}' for d in delays)} s after they were recorded: "
            f"{statuses.count('interrupted')} interrupted, {statuses.count('ok') - 1} finished first, "
            f"{args.kills + 1 - len(statuses)} not listed | "
            f"problems: {len(problems)}"
        )
        for p in problems:
            print("  " + p)
        sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
