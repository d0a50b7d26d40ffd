"""Shared fixtures: every test gets a fresh workspace, and CLI calls run in-process; each test
module has a tier (TIERS below; pytest -m unit runs the fast one)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_widgets.backends import get_backend
from mlops_widgets.backends.base import Backend
from mlops_widgets.workspace import Workspace

# module -> its tier marker (registered in pyproject.toml). A module not named here is
# "integration": a new test module runs in the full suite and stays out of the fast tier until
# it is listed as unit here (no kernel, service, server or browser; seconds, not minutes).
TIERS: dict[str, str] = {
    **dict.fromkeys(
        [
            "test_archives",
            "test_backends",
            "test_cli_hints",
            "test_config",
            "test_imports",
            "test_masking",
            "test_monitors",
            "test_package_shape",
            "test_project",
            "test_readme",
            "test_space",
            "test_volumes",
        ],
        "unit",
    ),
    **dict.fromkeys(["test_browser", "test_lab_browser", "test_lab_panel_live"], "browser"),
    **dict.fromkeys(["test_demo", "test_binder", "test_training_demo", "test_deepliif"], "slow"),
}


TIER_MARKERS = ("unit", "integration", "browser", "slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its module's tier, unless the test names its own (a slow test in a
    unit module)."""
    for item in items:
        if not any(item.get_closest_marker(m) for m in TIER_MARKERS):
            item.add_marker(getattr(pytest.mark, TIERS.get(item.path.stem, "integration")))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With `-m unit` alone, modules of other tiers are not even imported (a quicker start)."""
    if config.option.markexpr == "unit" and collection_path.suffix == ".py":
        stem = collection_path.stem
        return stem.startswith("test_") and TIERS.get(stem, "integration") != "unit"
    return None


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


def _start_burners() -> list[subprocess.Popen[bytes]]:
    """One process per core spinning, as on a loaded CI machine."""
    return [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range(os.cpu_count() or 2)
    ]


def _stop_burners(burners: list[subprocess.Popen[bytes]]) -> None:
    for proc in burners:
        proc.kill()
        proc.wait()


_SESSION_BURNERS = pytest.StashKey[list[subprocess.Popen[bytes]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cpu-burn",
        action="store_true",
        help="run the session with one CPU-burning process per core beside it (bash dev.sh test-under-load)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """--cpu-burn: the burners start once, in the controlling process (not in each xdist worker)."""
    if config.getoption("cpu_burn") and not hasattr(config, "workerinput"):
        config.stash[_SESSION_BURNERS] = _start_burners()


def pytest_unconfigure(config: pytest.Config) -> None:
    _stop_burners(config.stash.get(_SESSION_BURNERS, []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Under --cpu-burn, the load the run ended under (the figure a report of the run needs)."""
    if _SESSION_BURNERS in config.stash:
        burners = len(config.stash[_SESSION_BURNERS])
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        terminalreporter.write_line(f"--cpu-burn: {burners} burning processes; load average {load}")


@pytest.fixture
def cpu_burner() -> Iterator[list[subprocess.Popen[bytes]]]:
    """One process per core spinning beside the test, stopped after it: for tests whose waiting
    and signalling must not depend on an idle machine."""
    burners = _start_burners()
    try:
        yield burners
    finally:
        _stop_burners(burners)


@pytest.fixture
def workspace(_fresh_workspace: Path) -> Workspace:
    return Workspace(_fresh_workspace)


@pytest.fixture
def backend(workspace: Workspace) -> Backend:
    workspace.open()  # as a command's first step: the folder is a workspace, tests may write into it
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


@pytest.fixture
def ready(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """A deployment `demo` with both monitors attached; schedules may repeat every second."""
    from helpers import add_entry, write_masks

    from mlops_widgets.monitors import schedule as sched
    from mlops_widgets.ops import monitor

    monkeypatch.setenv(sched.MIN_ENV, "1")
    write_masks(backend.workspace.root / "volumes" / "vol" / "eval", 4, seed=0)
    monitor.provider_create(backend)
    add_entry(backend)
    monitor.monitor_create(backend, "demo")
    return backend


@pytest.fixture
def page(tmp_path: Path) -> Iterator[object]:
    """A browser page (tests/_jlab.py) whose uncaught errors fail the test, JupyterLab's own
    'Disposed' race aside (`page_error`)."""
    from _jlab import browser_page, page_error

    with browser_page(tmp_path / "chrome-profile") as page:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.extend(filter(None, [page_error(e)])))
        yield page
        assert not errors, errors
