"""Shared fixtures: every test gets a fresh workspace, and CLI calls run in-process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_widgets.backends import get_backend
from mlops_widgets.backends.base import Backend
from mlops_widgets.workspace import Workspace

EXAMPLES = Path(__file__).resolve().parent.parent / "mlops_widgets" / "examples"
REFERENCE = Path(__file__).resolve().parent / "data" / "original"


@pytest.fixture(autouse=True)
def _fresh_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point MLOPS_HOME at a new folder and drop variables that would leak the caller's setup;
    afterwards stop the inference service a test may have started there (it outlives commands)
    and the spare kernel a panel keeps (runner.warm)."""
    root = tmp_path / "ws"
    monkeypatch.setenv("MLOPS_HOME", str(root))
    monkeypatch.delenv("MLOPS_BACKEND", raising=False)
    yield root
    from mlops_widgets.backends.local.inference import stop_service
    from mlops_widgets.runner import warm

    warm.keep_spare(False)
    stop_service(root)


@pytest.fixture
def workspace(_fresh_workspace: Path) -> Workspace:
    return Workspace(_fresh_workspace)


@pytest.fixture
def backend(workspace: Workspace) -> Backend:
    return get_backend("local", workspace)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Cli:
    """Runs `mlops ARGS` in-process (same exit codes and streams as the console script)."""

    def __call__(self, *args: str, input: str | None = None) -> CliResult:
        from mlops_widgets.cli import cli

        runner = CliRunner()
        res = runner.invoke(cli, [str(a) for a in args], input=input, prog_name="mlops")
        exc = res.exception if not isinstance(res.exception, SystemExit) else None
        return CliResult(res.exit_code, res.stdout, res.stderr, exc)


@pytest.fixture
def cli() -> Cli:
    return Cli()


@dataclass(frozen=True)
class ExamplePaths:
    model: Path
    deployment: Path
    config: Path


@pytest.fixture
def example_paths() -> ExamplePaths:
    return ExamplePaths(
        model=EXAMPLES / "model",
        deployment=EXAMPLES / "deployment",
        config=EXAMPLES / "deployment_metadata.yml",
    )


@pytest.fixture
def reference_dir() -> Path:
    """The original's example configs (copied from ../shared/reference), which must keep validating."""
    return REFERENCE
