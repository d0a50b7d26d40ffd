"""The workspace is private to its owner: folders 0700, files 0600, on creation and on opening
a workspace that others could read."""

from __future__ import annotations

import os
import shlex
import stat
import sys
from pathlib import Path

import pytest
from helpers import in_tmpfs, make_template, needs_unshare

from mlops_widgets.errors import MlopsError
from mlops_widgets.workspace import MARKER, Workspace


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


READS = ("config list", "runs list", "deploy list", "monitor list", "monitor alerts", "train list")


_OLDER_INDEX = (
    shlex.join(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("
            "'ALTER TABLE runs_runs DROP COLUMN triggered_by')",
        ]
    )
    + " $M/ws/mlops.db"
)


def _listings(script_before: str, template: Path) -> str:
    """A workspace with a run in it; `script_before` makes it unwritable; then every read
    command, each followed by its exit status, then one write."""
    reads = "\n".join(f'eval "$MLOPS {c}"; echo "exit {c}=$?"' for c in READS)
    return f"""
        export MLOPS_HOME=$M/ws
        eval "$MLOPS run {template}" >/dev/null 2>&1 || exit 98
        chmod 755 $M/ws  # as an older version left it: not private, and now not fixable
        {_OLDER_INDEX}  # and its index without the runs' triggers, now not addable
        {script_before}
        {reads}
        eval "$MLOPS monitor register --monitor segmentation_metrics_v2 --provider segmentation_metrics"
    """


@needs_unshare
@pytest.mark.parametrize("how", ["read-only", "full"])
def test_an_unwritable_workspace_lists_everything_and_refuses_changes_plainly(
    tmp_path: Path, how: str
) -> None:
    """Issue 23: listings failed on a read-only or full workspace though listing writes nothing."""
    template = make_template(tmp_path / "T_Listed.ipynb", "n = 1  # unused", ["print(n)"])
    unwritable = (
        "mount -o remount,ro $M" if how == "read-only" else "dd if=/dev/zero of=$M/filler bs=64k 2>/dev/null"
    )
    out = in_tmpfs(tmp_path, "8m", _listings(unwritable, template))
    assert out.returncode not in (98, 99), out.stderr
    for command in READS:
        assert f"exit {command}=0" in out.stdout, (command, out.stdout, out.stderr)
    assert "T_Listed" in out.stdout  # the run is listed
    said = "is read-only" if how == "read-only" else "no space left on"
    errors = [line for line in out.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and said in errors[0] and f"{tmp_path}/mnt/ws" in errors[0], out.stderr
    assert "sqlite" not in out.stderr.lower() and "Traceback" not in out.stderr


@needs_unshare
def test_a_new_workspace_on_a_read_only_disk_is_said_so(tmp_path: Path) -> None:
    out = in_tmpfs(
        tmp_path, "1m", 'mount -o remount,ro $M; export MLOPS_HOME=$M/other; eval "$MLOPS config list"'
    )
    assert out.returncode not in (98, 99), out.stderr
    assert f"Error: the workspace {tmp_path}/mnt/other is read-only" in out.stderr.splitlines(), out.stderr


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


def _tree(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path under `root` with its mode and (for files) content."""
    return {
        str(p.relative_to(root)): (p.lstat().st_mode, p.read_bytes() if p.is_file() else None)
        for p in [root, *root.rglob("*")]
    }


def test_a_shared_folder_is_refused_untouched_even_by_a_read_command(tmp_path: Path, cli) -> None:
    """Issue 23: `deploy list` on a shared folder re-permissioned it (644 -> 600, 755 -> 700)
    and created mlops.db and inference/ in it."""
    shared = tmp_path / "shared"
    (shared / "scripts").mkdir(parents=True)
    (shared / "notes.txt").write_text("team notes")
    (shared / "scripts" / "run.sh").write_text("#!/bin/sh\n")
    (shared / "scripts" / "run.sh").chmod(0o755)
    (shared / "notes.txt").chmod(0o644)
    shared.chmod(0o755)
    before = _tree(shared)

    result = cli("--workspace", str(shared), "deploy", "list")
    assert result.exit_code == 1 and f"{shared} is not an mlops workspace" in result.stderr, result.output
    assert _tree(shared) == before  # no chmod, no file created
    for command in (
        ["runs", "list"],
        ["config", "list"],
        ["monitor", "alerts"],
        ["monitor", "register", "--monitor", "m_v2", "--provider", "segmentation_metrics"],
    ):
        result = cli("--workspace", str(shared), *command)
        # refused, or nothing to list (a listing that finds no database reads nothing)
        assert result.exit_code == 0 or "not an mlops workspace" in result.stderr, result.output
        assert _tree(shared) == before, command

    with pytest.raises(MlopsError, match="not an mlops workspace"):
        Workspace(shared).connect()
    assert _tree(shared) == before


def test_new_empty_and_earlier_workspaces_are_ours_and_marked(tmp_path: Path) -> None:
    new = Workspace(tmp_path / "new")
    new.connect().close()
    empty = tmp_path / "empty"
    empty.mkdir()
    Workspace(empty).connect().close()
    earlier = tmp_path / "earlier"  # made by an earlier version: its database, no marker
    Workspace(earlier).connect().close()
    (earlier / MARKER).unlink()
    (earlier / "runs").mkdir()

    for root in (new.root, empty, earlier):
        ws = Workspace(root)
        ws.connect().close()
        assert (root / MARKER).is_file() and mode(root / MARKER) == 0o600
    # once marked, the workspace holds what it likes
    (empty / "notes.txt").write_text("mine")
    Workspace(empty).connect().close()


def test_volumes_and_demo_files_are_private(workspace: Workspace, backend, tmp_path: Path) -> None:
    """Issue 23: volumes/, unpacked folders and demo images were 0755/0644."""
    from mlops_widgets.examples.synthetic import write_tiles

    old = os.umask(0o022)
    try:
        write_tiles(workspace.dir("demo", "images"), workspace.dir("demo", "gt"), 2, size=16)
        source = tmp_path / "upload"
        (source / "sub").mkdir(parents=True)
        (source / "sub" / "a.png").write_bytes(b"png")
        (source / "sub" / "a.png").chmod(0o644)
        backend.volumes.upload_folder("vol", source, "eval/gt")
        backend.volumes.write("vol", "eval/pred/b.png", b"png")
        backend.volumes.download_folder("vol", "eval/gt/sub", workspace.root / "tmp" / "down")
    finally:
        os.umask(old)
    open_to_others = [
        f"{p.relative_to(workspace.root)} {stat.filemode(p.lstat().st_mode)}"
        for p in [workspace.root, *workspace.root.rglob("*")]
        if not p.is_symlink() and p.lstat().st_mode & 0o077
    ]
    assert open_to_others == [], "\n".join(open_to_others)


@needs_unshare
def test_a_run_whose_final_save_hit_a_full_disk_says_it_was_not_saved(tmp_path: Path) -> None:
    """Issue 23: such a run was listed "interrupted: its process ended before the run did"."""
    filler = tmp_path / "mnt" / "filler"
    fill = f"""
try:
    with open({str(filler)!r}, "wb") as fh:
        while True:
            fh.write(b"0" * 65536)
except OSError:
    pass
"""
    template = make_template(tmp_path / "T_Fills.ipynb", "n = 1  # unused", [fill])
    out = in_tmpfs(
        tmp_path,
        "8m",
        f"""
        export MLOPS_HOME=$M/ws
        eval "$MLOPS config list" >/dev/null || exit 98
        eval "$MLOPS run {template}"; echo "exit=$?"
        rm $M/filler
        eval "$MLOPS runs list"
        """,
    )
    assert out.returncode not in (98, 99), out.stderr
    assert "exit=1" in out.stdout and "no space left on the workspace" in out.stderr, out.stderr
    assert "not saved: the workspace could not be written" in out.stdout, out.stdout
    assert "its process ended before the run did" not in out.stdout
