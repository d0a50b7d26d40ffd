"""The warm kernel: a spare started ahead serves the next run like it, and nothing of one run
(variables, environment, secrets, working folder) reaches the next. Not timed (benchmarks/)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import byte_leaks, make_template

from mlops_widgets.masking import MASK
from mlops_widgets.runner import run_template, warm
from mlops_widgets.workspace import Workspace

FIRST = "s3cr3t-of-RUN-one-1a2b"
SECOND = "s3cr3t-of-RUN-two-3c4d"

LEAVE_TRACES = [
    # run 1 leaves a variable, an environment variable, a module attribute and a folder change
    "import os, mlops_widgets\n"
    "from mlops_widgets.runner.secrets import get_secrets\n"
    "left_behind = api_key\n"
    "os.environ['LEFT_BEHIND'] = api_key\n"
    "mlops_widgets.LEFT_BEHIND = api_key\n"
    "os.chdir('/')",
]

LOOK_FOR_TRACES = [
    "import os, mlops_widgets\n"
    "from mlops_widgets.runner.record import record\n"
    "from mlops_widgets.runner.secrets import get_secrets\n"
    "record(\n"
    "    variable='left_behind' in globals(),\n"
    "    env=os.environ.get('LEFT_BEHIND'),\n"
    "    module=getattr(mlops_widgets, 'LEFT_BEHIND', None),\n"
    "    secrets=sorted(get_secrets()),\n"
    "    secret_here=api_key == os.environ['MLOPS_SECRET_api_key'],\n"
    "    run_id=os.environ['MLOPS_RUN_ID'],\n"
    "    cwd=os.getcwd(),\n"
    "    pid=os.getpid(),\n"
    ")",
]


@pytest.fixture
def spare(workspace: Workspace) -> Iterator[Callable[[], None]]:
    """Spares kept for the workspace, started in the test itself (pytest changes the process's
    environment between set-up and test, and a spare serves only runs of its environment)."""

    def start() -> None:
        warm.keep_spare(True, workspace=workspace, backend="local")
        assert warm.spare_ready(120), "the spare kernel did not start"

    try:
        yield start
    finally:
        warm.keep_spare(False)


def test_a_warm_kernel_carries_nothing_of_the_previous_run(
    spare: Callable[[], None], tmp_path: Path, workspace: Workspace
) -> None:
    spare()
    params = 'api_key = ""  # the key'
    first = run_template(
        make_template(tmp_path / "Leave.ipynb", params, LEAVE_TRACES),
        {"api_key": FIRST},
        secrets={"EXTRA_ONE": "extra-secret-one-99"},
        backend="local",
        cwd=tmp_path,
    )
    assert first.ok and first.warm_kernel, first.error
    assert warm.spare_ready(120), "a new spare is started after the run"

    (tmp_path / "second").mkdir()
    second = run_template(
        make_template(tmp_path / "Look.ipynb", params, LOOK_FOR_TRACES),
        {"api_key": SECOND},
        backend="local",
        cwd=tmp_path / "second",
    )
    assert second.ok and second.warm_kernel, second.error
    seen = second.results
    assert seen["variable"] is False and seen["env"] is None and seen["module"] is None
    assert seen["secrets"] == ["api_key"] and seen["secret_here"] is True  # only its own secret
    assert seen["run_id"] == second.run_id and seen["cwd"] == str(tmp_path / "second")
    assert byte_leaks(workspace.root, FIRST, SECOND, "extra-secret-one-99") == []
    assert MASK not in str(seen)


def test_a_spare_serves_only_runs_like_it(
    spare: Callable[[], None], tmp_path: Path, workspace: Workspace
) -> None:
    spare()
    path = make_template(tmp_path / "Look.ipynb", 'api_key = ""  # the key', LOOK_FOR_TRACES)
    other = run_template(path, {"api_key": SECOND}, workspace=tmp_path / "other-ws", backend="local")
    assert other.ok and not other.warm_kernel  # another workspace: a kernel of its own
    assert warm.spare_ready(120)  # the spare follows the last run: now one for the other workspace
    again = run_template(path, {"api_key": SECOND}, workspace=tmp_path / "other-ws", backend="local")
    assert again.ok and again.warm_kernel and again.results["pid"] != other.results["pid"]


def test_the_one_shot_cli_keeps_no_spare(cli, tmp_path: Path, workspace: Workspace) -> None:
    path = make_template(tmp_path / "T.ipynb", "n = 1  # unused", ["n"])
    res = cli("run", str(path), "--json")
    assert res.exit_code == 0, res.output
    assert '"warm_kernel": false' in res.stdout and not warm.spare_ready(0)
