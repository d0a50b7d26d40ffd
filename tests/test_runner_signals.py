"""Runs are recorded whatever ends them: real `mlops run` processes sent SIGTERM, SIGHUP and
SIGKILL; leftovers of crashed runs; an unwritable workspace refused before anything executes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from helpers import make_template

from mlops_widgets.runner import get_run, list_runs, run_template
from mlops_widgets.runner.trail import RESULTS_FILE, RUNS_DIR
from mlops_widgets.workspace import Workspace

SLOW = [
    "from mlops_widgets.runner.record import record\nrecord(first='done')\nprint('first step done')",
    "import time\nprint('sleeping', flush=True)\ntime.sleep(120)",
    "print('never reached')",
]


def _start_run(
    template: Path, workspace: Workspace, tmp_path: Path, hangup: object = signal.SIG_DFL
) -> subprocess.Popen[bytes]:
    """`mlops run TEMPLATE` in its own process (stderr to a file: the progress lines), with SIGHUP
    handled as `hangup` says (SIG_IGN: as under nohup), whatever the test runner inherited."""
    err = (tmp_path / "stderr.txt").open("wb")
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlops"),
            "--workspace",
            str(workspace.root),
            "run",
            str(template),
        ],
        stdout=subprocess.DEVNULL,
        stderr=err,
        cwd=tmp_path,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, hangup),
    )


def _wait_for_step(tmp_path: Path, heading: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Until the run's progress on stderr says `heading` started (the kernel runs its cell)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = (tmp_path / "stderr.txt").read_text(errors="replace")
        if heading in text:
            time.sleep(1.0)  # the cell is running now
            return
        assert proc.poll() is None, f"the run ended early: {text}"
        time.sleep(0.1)
    raise AssertionError(f"step {heading!r} never started")


def _descendants(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return psutil.Process(proc.pid).children(recursive=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_the_run_as_interrupted_with_the_notebook_so_far(
    signum: int, tmp_path: Path, workspace: Workspace, cpu_burner: list[subprocess.Popen[bytes]]
) -> None:
    path = make_template(tmp_path / "Slow.ipynb", "n = 1  # unused", SLOW)
    proc = _start_run(path, workspace, tmp_path)
    try:
        _wait_for_step(tmp_path, "Step 2", proc)
        (running,) = list_runs(workspace)
        assert running.status == "running" and Path(running.dir).is_dir()
        kernels = _descendants(proc)
        proc.send_signal(signum)
        assert proc.wait(60) == -signum  # recorded, then the signal took its usual course
    finally:
        proc.kill()
    (run,) = list_runs(workspace)
    assert run.status == "interrupted" and run.error == "interrupted"
    record = get_run(run.run_id)
    assert record.results == {"first": "done"} and record.error["heading"] == "Step 2"
    nb = nbformat.read(record.notebook, as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "first step done" in printed and "sleeping" in printed and "never reached" not in printed
    assert not (record.dir / RESULTS_FILE).exists()
    psutil.wait_procs(kernels, timeout=30)
    assert not any(k.is_running() and k.status() != psutil.STATUS_ZOMBIE for k in kernels), "kernel left"


def test_a_run_started_under_nohup_outlives_a_hangup(tmp_path: Path, workspace: Workspace) -> None:
    path = make_template(tmp_path / "Slow.ipynb", "n = 1  # unused", SLOW)
    proc = _start_run(path, workspace, tmp_path, hangup=signal.SIG_IGN)
    try:
        _wait_for_step(tmp_path, "Step 2", proc)
        proc.send_signal(signal.SIGHUP)  # ignored, as nohup asked
        proc.send_signal(signal.SIGTERM)  # this one ends the run
        assert proc.wait(60) == -signal.SIGTERM
    finally:
        proc.kill()
    (run,) = list_runs(workspace)
    assert run.status == "interrupted" and get_run(run.run_id).results == {"first": "done"}


def test_a_killed_run_is_shown_interrupted_by_the_next_reader(
    tmp_path: Path, workspace: Workspace, cli
) -> None:
    path = make_template(tmp_path / "Slow.ipynb", "n = 1  # unused", SLOW)
    proc = _start_run(path, workspace, tmp_path)
    kernels: list[psutil.Process] = []
    try:
        _wait_for_step(tmp_path, "Step 2", proc)
        kernels = _descendants(proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        _, alive = psutil.wait_procs(kernels, timeout=30)
        assert not alive, "the kernel of a killed run ends by itself (it polls its parent)"
    finally:
        proc.kill()
        for k in kernels:
            with contextlib.suppress(psutil.NoSuchProcess):
                k.kill()
    res = cli("runs", "list")
    assert res.exit_code == 0 and "interrupted" in res.stdout and "running" not in res.stdout
    (run,) = list_runs(workspace)
    record = get_run(run.run_id)
    assert record.status == "interrupted" and record.results == {"first": "done"}
    assert not (record.dir / RESULTS_FILE).exists() and record.process["pid"] == proc.pid


def test_a_running_run_of_a_live_process_stays_running(tmp_path: Path, workspace: Workspace) -> None:
    """A reader does not take a run of a live process (a pid reused or not) for a killed one."""
    path = make_template(tmp_path / "Slow.ipynb", "n = 1  # unused", SLOW)
    proc = _start_run(path, workspace, tmp_path)
    try:
        _wait_for_step(tmp_path, "Step 2", proc)
        assert [r.status for r in list_runs(workspace)] == ["running"]
    finally:
        for k in _descendants(proc):
            k.kill()
        proc.kill()
        proc.wait(30)


def test_an_unwritable_workspace_is_refused_before_anything_runs(
    tmp_path: Path, workspace: Workspace
) -> None:
    marker = tmp_path / "executed"
    path = make_template(tmp_path / "Marks.ipynb", "n = 1  # unused", [f"open({str(marker)!r}, 'w').close()"])
    workspace.open()  # an mlops workspace (marked), whose runs/ cannot be created:
    (workspace.root / RUNS_DIR).write_text("not a folder")
    with pytest.raises(Exception, match=f"the workspace {workspace.root} cannot be written to"):
        run_template(path)
    assert not marker.exists()


def test_leftover_run_folders_of_crashed_runs_are_cleaned(tmp_path: Path, workspace: Workspace) -> None:
    runs = workspace.dir(RUNS_DIR)
    dead = runs / ".20250101T000000Z-T-dead.999999999.tmp"  # no such pid
    mine = runs / f".20250101T000000Z-T-live.{os.getpid()}.tmp"  # a live process saving now
    fresh = runs / ".20250101T000000Z-T-new.999999998.tmp"  # too recent to be sure
    for folder in (dead, mine, fresh):
        folder.mkdir()
        (folder / "run.json").write_text("{}")
    old = time.time() - 3600
    for folder in (dead, mine):
        os.utime(folder, (old, old))
    step = "import os\nfrom mlops_widgets.runner.record import record\nrecord(at=os.environ['MLOPS_RUN_RESULTS'])"
    rec = run_template(make_template(tmp_path / "T.ipynb", "n = 1  # unused", [step]))
    assert rec.ok, rec.error
    assert not dead.exists() and mine.exists() and fresh.exists()
    assert Path(rec.results["at"]).parent == rec.dir and not Path(rec.results["at"]).exists()
