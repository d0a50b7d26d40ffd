"""Runner figures, each beside its baseline measured in the same run.

1. Listing 10,000 runs from the audit trail's index: `list_runs()` (all, and filtered) and
   `mlops runs list --limit 0` (in-process, the CLI's own cost), beside a bare SQLite
   `SELECT *` of the same rows (the floor). Target: under 0.5 s.
2. Template-run overhead: A_MLOps_Pipeline run by the runner (kernel start, papermill,
   scrubbing, audit trail) beside calling the same ops in this process, each on a fresh
   workspace with the bundled example: cold (a kernel started for the run, as the one-shot CLI
   does) and warm (a spare kernel ready, as the panel keeps one), beside papermill's own
   `execute_notebook` of the same parameterized template (the tool we wrap, cold).
   Targets: cold under 1.5 s per step; warm overhead at most 0.3 s.

Run: .venv/bin/python benchmarks/bench_runner.py [--runs 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

from mlops_widgets import examples
from mlops_widgets.runner import entry_from_parameters, get_template, list_runs, run_template
from mlops_widgets.runner.trail import _COLUMNS, connect
from mlops_widgets.workspace import Workspace, transaction


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _fill_index(ws: Workspace, n: int) -> None:
    """n index rows as runs would leave them (3 templates, 3 statuses, 50 deployments)."""
    templates = ["A_MLOps_Pipeline", "A2_WMLA_Model_Deploy", "A3_OpenScale_Configuration"]
    statuses = ["ok", "ok", "ok", "failed", "cancelled"]
    rows = []
    for i in range(n):
        t = templates[i % 3]
        ts = f"2025-{1 + i // 100000:02d}-{1 + (i // 3600) % 28:02d}T{(i // 60) % 24:02d}:{i % 60:02d}:00.{i:06d}Z"
        run_id = f"2025{i:010d}-{t}-{i:08x}"
        rows.append(
            (
                run_id,
                f"{i:08x}",
                t,
                statuses[i % 5],
                ts,
                ts,
                2.5,
                "local",
                f"dep-{i % 50}",
                "ValueError: x" if i % 5 == 3 else None,
                None,
                f"runs/{run_id}",
                f"{t}.ipynb",
                "template",
                "schedule" if i % 7 == 0 else None,
            )
        )
    conn = connect(ws)
    with transaction(conn):
        conn.executemany(f"INSERT INTO runs_runs ({_COLUMNS}) VALUES ({', '.join('?' * len(rows[0]))})", rows)
    conn.close()


def bench_listing(n: int, repeat: int) -> None:
    from click.testing import CliRunner

    from mlops_widgets.cli import cli

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        _fill_index(ws, n)

        def raw() -> None:
            conn = ws.connect()
            conn.execute(f"SELECT {_COLUMNS} FROM runs_runs ORDER BY started_at DESC").fetchall()
            conn.close()

        def cli_list() -> None:
            res = CliRunner().invoke(cli, ["--workspace", str(ws.root), "runs", "list", "--limit", "0"])
            assert res.exit_code == 0 and len(res.stdout.splitlines()) == n + 1

        assert len(list_runs(ws)) == n
        base = _median(raw, repeat)
        for label, fn in (
            ("list_runs() all", lambda: list_runs(ws)),
            (
                "list_runs(template, status)",
                lambda: list_runs(ws, template="A_MLOps_Pipeline", status="failed"),
            ),
            ("list_runs(name=dep-7)", lambda: list_runs(ws, deployment_name="dep-7")),
            ("mlops runs list --limit 0", cli_list),
        ):
            t = _median(fn, repeat)
            print(
                f"list {n} runs  {label:30s} {t * 1000:7.1f} ms | bare SELECT {base * 1000:6.1f} ms "
                f"| ratio {t / base:5.1f}x | target < 500 ms: {'ok' if t < 0.5 else 'MISSED'}"
            )


def bench_overhead(repeat: int) -> None:
    import papermill

    from mlops_widgets.ops import connect as connect_backend
    from mlops_widgets.ops import space
    from mlops_widgets.runner import warm

    steps = len([s for s in get_template("A_MLOps_Pipeline").steps if s[:1].isdigit()])
    template = get_template("A_MLOps_Pipeline").path

    def direct(root: Path) -> None:
        backend = connect_backend("local", root)
        entry, _ = entry_from_parameters(
            None, model_name="deepliif-demo", resource_configs=None, monitors=None
        )
        staged = space.stage(backend, examples.MODEL, examples.DEPLOYMENT, entry)
        space.get_entry(backend, model_asset_id=staged["model_asset_id"])

    def templated(root: Path) -> None:
        rec = run_template("A_MLOps_Pipeline", workspace=root, backend="local")
        assert rec.ok and rec.warm_kernel == warm.spare_ready(0), rec.error

    def pm(root: Path) -> None:
        env = {"MLOPS_HOME": str(root), "MLOPS_BACKEND": "local"}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            papermill.execute_notebook(str(template), None, progress_bar=False, cwd=str(root.parent))
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k)
                else:
                    os.environ[k] = v

    def warm_run(root: Path) -> None:
        rec = run_template("A_MLOps_Pipeline", workspace=root, backend="local")
        assert rec.ok and rec.warm_kernel, rec.error

    def measure(fn, before=None) -> float:
        times = []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp, redirect_stdout(io.StringIO()):
                root = Path(tmp) / "ws"
                if before is not None:
                    before(root)
                t0 = time.perf_counter()
                fn(root)
                times.append(time.perf_counter() - t0)
        return statistics.median(times)

    def spare_for(root: Path) -> None:
        warm.keep_spare(True, workspace=root, backend="local")
        assert warm.spare_ready(60), "the spare kernel did not start"

    d = measure(direct)
    cold = measure(templated)
    p = measure(pm)
    try:
        hot = measure(warm_run, before=spare_for)
    finally:
        warm.keep_spare(False)
    per_step = (cold - d) / steps
    print(
        f"A_MLOps_Pipeline ({steps} steps)  direct ops {d:6.2f} s | template run {cold:6.2f} s "
        f"| ratio {cold / d:5.1f}x | overhead {cold - d:5.2f} s = {per_step:4.2f} s/step "
        f"| target < 1.5 s/step: {'ok' if per_step < 1.5 else 'MISSED'}  (median of {repeat})"
    )
    print(
        f"A_MLOps_Pipeline overhead over direct ops: cold kernel {cold - d:5.2f} s "
        f"| warm kernel {hot - d:5.2f} s | papermill.execute_notebook {p - d:5.2f} s "
        f"| warm/cold {(hot - d) / (cold - d):4.2f}x | target warm <= 0.3 s: "
        f"{'ok' if hot - d <= 0.3 else 'MISSED'}  (median of {repeat})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench_listing(args.runs, args.repeat)
    bench_overhead(args.repeat)


if __name__ == "__main__":
    main()
