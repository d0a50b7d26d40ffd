"""The workspace is private to its owner: folders 0700, files 0600, on creation and on opening
a workspace that others could read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from helpers import in_tmpfs, needs_unshare

from mlops_widgets.workspace import Workspace


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_a_new_workspace_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which alone would give 0755 / 0644
    try:
        ws = Workspace(tmp_path / "new" / "ws")
        ws.connect().execute("CREATE TABLE t (x)").connection.close()
        runs = ws.dir("runs", "one")
        log = ws.path("inference", "service.log")
        log.write_text("started\n")
        log.chmod(0o644)  # as another part of the package creates it
    finally:
        os.umask(old)
    assert mode(ws.root) == 0o700
    assert mode(runs) == mode(runs.parent) == mode(log.parent) == 0o700
    assert mode(ws.db_path) == 0o600
    assert all(mode(p) == 0o600 for p in ws.root.glob("mlops.db*"))
    assert mode(tmp_path / "new") != 0o700  # folders above the workspace are left alone
    Workspace(ws.root).connect().close()  # the next opening closes the later file
    assert mode(log) == 0o600


def test_an_existing_open_workspace_is_closed_on_opening(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "runs" / "r1").mkdir(parents=True)
    (root / "inference" / "deployments" / "d" / "model").mkdir(parents=True)
    files = [
        root / "mlops.db",
        root / "runs" / "r1" / "run.json",
        root / "inference" / "service.log",
        root / "inference" / "deployments" / "d" / "model" / "kernel.py",
    ]
    for f in files:
        f.write_text("x")
        f.chmod(0o644)
    (root / "inference" / "deployments" / "d" / "model" / "run.sh").write_text("#!/bin/sh\n")
    (root / "inference" / "deployments" / "d" / "model" / "run.sh").chmod(0o755)
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    outside.chmod(0o644)
    (root / "link").symlink_to(outside)
    for d in (root, root / "runs", root / "runs" / "r1", root / "inference"):
        d.chmod(0o755)

    Workspace(root).open()

    assert all(mode(d) == 0o700 for d in [root, *(p for p in root.rglob("*") if p.is_dir())])
    assert all(mode(f) == 0o600 for f in files)
    assert mode(root / "inference" / "deployments" / "d" / "model" / "run.sh") == 0o700
    assert mode(outside) == 0o644  # a link is not followed out of the workspace


# --- a workspace that cannot be written: a read-only or a full file system ------------------------
# Both are real file systems: a small tmpfs mounted in a private mount namespace (`unshare`), so
# the test needs no privilege beyond user namespaces and leaves nothing mounted.


@needs_unshare
def test_a_read_only_workspace_is_said_so(tmp_path: Path) -> None:
    out = in_tmpfs(
        tmp_path,
        "4m",
        """
        export MLOPS_HOME=$M/ws
        eval "$MLOPS config list" >/dev/null || exit 98
        chmod 755 $M/ws  # as an older version left it: not private, and now not fixable
        mount -o remount,ro $M
        eval "$MLOPS config list"
        eval "$MLOPS monitor register --monitor segmentation_metrics_v2 --provider segmentation_metrics"
        MLOPS_HOME=$M/other eval "$MLOPS config list"
    """,
    )
    assert out.returncode not in (98, 99), out.stderr
    # the workspace that could not be made private is reported read-only, not as a failed chmod
    assert out.stderr.count(f"Error: the workspace {tmp_path}/mnt/ws is read-only") == 2, out.stderr
    errors = out.stderr.splitlines()
    assert f"Error: the workspace {tmp_path}/mnt/ws is read-only" in errors, out.stderr
    assert f"Error: the workspace {tmp_path}/mnt/other is read-only" in errors, out.stderr
    assert "sqlite" not in out.stderr.lower() and "unable to open" not in out.stderr


@needs_unshare
def test_a_full_workspace_is_said_so(tmp_path: Path) -> None:
    out = in_tmpfs(
        tmp_path,
        "2m",
        """
        export MLOPS_HOME=$M/ws
        eval "$MLOPS config list" >/dev/null || exit 98
        dd if=/dev/zero of=$M/filler bs=64k 2>/dev/null
        eval "$MLOPS monitor register --monitor segmentation_metrics_v2 --provider segmentation_metrics"
    """,
    )
    assert out.returncode not in (98, 99), out.stderr
    assert f"Error: no space left on {tmp_path}/mnt/ws" in out.stderr.splitlines(), out.stderr
    assert "disk I/O error" not in out.stderr


@pytest.mark.slow  # many processes or threads at once: out of the fast tier
def test_threads_opening_a_new_workspace_together_all_get_in(tmp_path):
    """The first connections to a new database race to switch it to WAL; SQLite answers one of
    them "locked" without waiting: none may fail for it (150 fresh workspaces, 8 threads each)."""
    import threading

    errors: list[BaseException] = []

    def open_and_write(ws: Workspace) -> None:
        try:
            conn = ws.connect()
            conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
            conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    for i in range(150):
        ws = Workspace(tmp_path / f"ws{i}")
        threads = [threading.Thread(target=open_and_write, args=(ws,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
