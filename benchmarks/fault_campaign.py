"""A small fault campaign: `kill -9` at random points of stage, deploy and run, and after each
kill a check that the workspace is consistent and the next command works.

Each round starts one command in its own process group (`mlops prepare stage --force`,
`mlops deploy create`, `mlops run C1_OpenScale_Dummy_ML_Provider`), kills the whole group with
SIGKILL after a random delay within that command's own duration (measured first, unkilled: the
baseline), then checks:
  - the database passes SQLite's integrity check;
  - the next command (`mlops config list`, `mlops runs list`, `mlops deploy list`) exits 0 in time
    (no stuck lock, no unreadable state);
  - every entry names a model asset and a dependency the space holds; every asset row has its
    file and every asset file its row; no temporary upload is left once the space has opened;
  - no run is left `running` (a killed run reads as interrupted) and every run's folder exists.
Assets no entry refers to are counted as leftovers (a killed stage cannot take back what it
uploaded), not as inconsistencies.

Run: .venv/bin/python benchmarks/fault_campaign.py [--rounds 12] [--seed 1] [--ops stage,deploy,run] [--keep]
Exit status 1 when any round left an inconsistent workspace.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "mlops_widgets" / "examples"
MLOPS = [sys.executable, "-c", "from mlops_widgets.cli import main; main()"]
DEPLOYMENT = "fault-campaign"
NEXT_COMMAND_TIMEOUT_S = 120


def mlops(ws: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLOPS_HOME": str(ws), "MLOPS_BACKEND": "local"}
    return subprocess.run([*MLOPS, *args], capture_output=True, text=True, env=env, timeout=timeout)


def operations(ws: Path, asset_id: str) -> dict[str, list[str]]:
    stage = [
        "prepare",
        "stage",
        "--path-model",
        str(EXAMPLES / "model"),
        "--path-dependency",
        str(EXAMPLES / "deployment"),
        "--path-yml",
        str(EXAMPLES / "deployment_metadata.yml"),
        "--force",
    ]
    return {
        "stage": stage,
        "deploy": [
            "deploy",
            "create",
            "--name",
            DEPLOYMENT,
            "--model-asset-id",
            asset_id,
            "--timeout",
            "120",
        ],
        "run": ["run", "C1_OpenScale_Dummy_ML_Provider"],
    }


def before(ws: Path, op: str) -> None:
    """What each operation needs to be able to start again (a previous round may have left a
    deployment, or killed the staging of the entry deploy uses)."""
    if op in ("deploy", "stage"):  # stage --force refuses to replace a deployed model
        mlops(ws, "deploy", "delete", "--name", DEPLOYMENT)


def latest_asset_id(ws: Path) -> str:
    entries = json.loads(mlops(ws, "config", "list", "--json").stdout or "{}")
    return next(reversed(entries)) if entries else ""


def timed(ws: Path, args: list[str]) -> float:
    t0 = time.perf_counter()
    out = mlops(ws, *args)
    if out.returncode != 0:
        raise SystemExit(f"baseline `mlops {' '.join(args)}` failed:\n{out.stderr}")
    return time.perf_counter() - t0


def kill_after(ws: Path, args: list[str], delay: float) -> int | None:
    """Start `mlops ARGS`, SIGKILL its process group after `delay` s; the exit code if it ended first."""
    env = {**os.environ, "MLOPS_HOME": str(ws), "MLOPS_BACKEND": "local"}
    proc = subprocess.Popen(
        [*MLOPS, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
    )
    try:
        return proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


def check(ws: Path) -> tuple[list[str], dict[str, int]]:
    """(inconsistencies, leftovers) of the workspace after a kill."""
    problems: list[str] = []
    for args in (
        ["config", "list", "--json"],
        ["runs", "list", "--json", "--limit", "0"],
        ["deploy", "list", "--json"],
    ):
        try:
            out = mlops(ws, *args, timeout=NEXT_COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            problems.append(f"`mlops {' '.join(args)}` did not finish in {NEXT_COMMAND_TIMEOUT_S} s")
            continue
        if out.returncode != 0:
            problems.append(f"`mlops {' '.join(args)}` failed: {out.stderr.strip()[:300]}")
    conn = sqlite3.connect(ws / "mlops.db", timeout=60)
    conn.row_factory = sqlite3.Row
    try:
        verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict != "ok":
            problems.append(f"database integrity: {verdict}")
        assets = {r["asset_id"]: r["name"] for r in conn.execute("SELECT asset_id, name FROM space_assets")}
        doc = conn.execute(
            "SELECT content FROM space_documents WHERE name = 'deployment_metadata.yml'"
        ).fetchone()
        runs = conn.execute("SELECT run_id, status, dir FROM runs_runs").fetchall()
    finally:
        conn.close()
    import yaml

    entries = (yaml.safe_load(doc["content"]) or {}) if doc else {}
    for key, entry in entries.items():
        if key not in assets:
            problems.append(f"entry {key} names a model asset the space does not hold")
        dependency = (entry.get("wmla_deployment") or {}).get("dependency_filename")
        if dependency and dependency not in assets.values():
            problems.append(f"entry {key} names a dependency {dependency} the space does not hold")
    files = {p.name for p in (ws / "assets").glob("*") if not p.name.startswith(".")}
    problems += [f"asset {a} has no file" for a in sorted(set(assets) - files)]
    problems += [f"asset file {f} has no row" for f in sorted(files - set(assets))]
    problems += [f"temporary upload {p.name} left" for p in (ws / "assets").glob(".upload-*.tmp")]
    for run in runs:
        if run["status"] == "running":
            problems.append(f"run {run['run_id']} still reads as running")
        folder = Path(run["dir"]) if Path(run["dir"]).is_absolute() else ws / run["dir"]
        if not folder.is_dir():
            problems.append(f"run {run['run_id']} has no folder {run['dir']}")
    leftovers = {"stray processes": len(stray_processes(ws))}
    referenced = set(entries) | {
        (e.get("wmla_deployment") or {}).get("dependency_filename") for e in entries.values()
    }
    orphans = [a for a, name in assets.items() if a not in referenced and name not in referenced]
    return problems, {"orphan assets": len(orphans), **leftovers}


def stray_processes(ws: Path) -> list[int]:
    """Processes still working for this workspace besides its inference service and the kernels
    it supervises (e.g. a killed command's template kernel)."""
    service = ws / "inference"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        ours = f"MLOPS_HOME={ws}".encode() in environ.split(b"\0")
        supervised = b"--daemon" in cmdline.split(b"\0") or str(service).encode() in environ
        if ours and not supervised:
            found.append(int(proc.name))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--ops", default="stage,deploy,run", help="Which operations to kill (comma-separated)."
    )
    parser.add_argument("--keep", action="store_true", help="Keep the workspace folder for inspection.")
    opts = parser.parse_args()
    rng = random.Random(opts.seed)
    ws = Path(tempfile.mkdtemp(prefix="mlops-fault-")) / "ws"
    print(f"workspace: {ws}")
    failures = 0
    try:
        # Baseline: each operation once, unkilled; its duration bounds the kill delays.
        base = operations(ws, "")
        durations = {"stage": timed(ws, base["stage"])}
        ops = operations(ws, latest_asset_id(ws))
        durations["deploy"] = timed(ws, ops["deploy"])
        durations["run"] = timed(ws, ops["run"])
        print("baseline (unkilled): " + ", ".join(f"{op} {s:.1f} s" for op, s in durations.items()))
        for n in range(1, opts.rounds + 1):
            op = rng.choice(sorted(set(opts.ops.split(",")) & set(durations)))
            before(ws, op)
            asset_id = latest_asset_id(ws)
            if op == "deploy" and not asset_id:
                if mlops(ws, *base["stage"]).returncode != 0:
                    raise SystemExit("could not stage again for the next deploy")
                asset_id = latest_asset_id(ws)
            delay = rng.uniform(0.2, durations[op])
            ended = kill_after(ws, operations(ws, asset_id)[op], delay)
            problems, leftovers = check(ws)
            how = f"ended first ({ended})" if ended is not None else f"killed at {delay:.1f} s"
            verdict = "consistent" if not problems else "INCONSISTENT"
            extra = ", ".join(f"{k}: {v}" for k, v in leftovers.items())
            print(f"[{n:2d}/{opts.rounds}] {op:6s} {how:22s} {verdict} ({extra})")
            for p in problems:
                print(f"      - {p}")
            failures += bool(problems)
    finally:
        from mlops_widgets.backends.local.inference import stop_service

        stop_service(ws)
        if not opts.keep:
            import shutil

            shutil.rmtree(ws.parent, ignore_errors=True)
    print(f"{opts.rounds - failures} of {opts.rounds} rounds left a consistent workspace")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
