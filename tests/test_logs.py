"""The package's log: a private, rotated file in the workspace; `mlops --verbose` shows it on stderr."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from mlops_widgets import logs


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _stage(cli, paths, *options: str):
    return cli(
        *options,
        "prepare",
        "stage",
        "--path-model",
        paths.model,
        "--path-dependency",
        paths.deployment,
        "--path-yml",
        paths.config,
    )


def test_a_command_logs_to_the_workspace_and_with_verbose_to_stderr(cli, example_paths, workspace):
    quiet = cli("config", "list")
    assert quiet.exit_code == 0, quiet.output
    assert not (workspace.root / "logs").exists()  # nothing logged, nothing written

    res = _stage(cli, example_paths)
    assert res.exit_code == 0, res.output
    assert "staged" not in res.stderr
    log = logs.log_path(workspace.root)
    text = log.read_text()
    assert "INFO mlops_widgets.runner.execute: run " in text  # the command's own records
    assert "INFO mlops_widgets.ops.space: staged" in text  # and those of the template's kernel
    assert _mode(log) == 0o600 and _mode(log.parent) == 0o700


def test_verbose_prints_the_records_on_stderr(cli, example_paths, workspace):
    res = _stage(cli, example_paths, "-v")
    assert res.exit_code == 0, res.output
    assert "INFO mlops_widgets.runner.execute: run " in res.stderr
    assert "started on the local backend" in logs.log_path(workspace.root).read_text()


def test_the_log_rotates_into_private_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(logs, "MAX_BYTES", 300)
    logs.setup(tmp_path)
    for i in range(20):
        logging.getLogger("mlops_widgets.test").info("record number %d of a long enough line", i)
    files = sorted((tmp_path / "logs").iterdir())
    assert [f.name for f in files] == ["mlops.log", "mlops.log.1", "mlops.log.2", "mlops.log.3"]
    assert all(_mode(f) == 0o600 for f in files)
    assert "record number 19" in files[0].read_text()
