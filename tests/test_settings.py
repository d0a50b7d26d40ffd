"""The settings model: every MLOPS_* variable the package reads is declared once, workspace
settings are the workspace's (every process reads the same value), `mlops settings` says where
each value came from, and docs/settings.md lists them all."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_widgets import settings
from mlops_widgets.monitors.schedule import min_interval_s
from mlops_widgets.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
# hand-offs from the runner to one run's kernel (and from a training job to its workers), not
# settings (see settings.py)
HAND_OFFS = {
    "MLOPS_METRICS_FILE",
    "MLOPS_RUN_ID",
    "MLOPS_RUN_RESULTS",
    "MLOPS_KERNEL_FD",
    "MLOPS_KERNEL_CREDENTIALS",
    "MLOPS_SECRET_",
}


def test_every_mlops_variable_in_the_package_is_declared() -> None:
    named = set()
    for path in (ROOT / "mlops_widgets").rglob("*.py"):
        named |= set(re.findall(r"\bMLOPS_[A-Z_]*[A-Z]\b|\bMLOPS_SECRET_", path.read_text(encoding="utf-8")))
    declared = {s.env for s in settings.SETTINGS.values()}
    assert named - HAND_OFFS - declared == set()
    assert declared <= named  # nothing declared that nothing reads


def test_a_workspace_setting_reaches_a_process_started_without_its_variable(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bug this fixes: a "2s" schedule set from a shell with MLOPS_MIN_SCHEDULE_S=1 ran every
    60 s, because the service had been started without the variable."""
    monkeypatch.setenv(settings.MIN_SCHEDULE_S.env, "1")
    assert min_interval_s(workspace) == 1  # what the shell's process accepts
    env = {k: v for k, v in os.environ.items() if k != settings.MIN_SCHEDULE_S.env}
    code = (
        "from mlops_widgets.monitors.schedule import min_interval_s\n"
        "from mlops_widgets.workspace import Workspace\n"
        f"print(min_interval_s(Workspace({str(workspace.root)!r})))"
    )
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert other.stdout.strip() == "1"


def test_mlops_settings_lists_every_setting_with_its_source(
    cli, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_CPD_RETRIES", "5")
    assert cli("settings", "set", "min_schedule_s", "30").exit_code == 0
    res = cli("settings", "--json")
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert set(rows) == set(settings.SETTINGS)
    assert (rows["cpd_retries"]["value"], rows["cpd_retries"]["source"]) == (5, "environment")
    assert (rows["min_schedule_s"]["value"], rows["min_schedule_s"]["source"]) == (30, "workspace")
    assert (rows["cpd_edi_timeout"]["value"], rows["cpd_edi_timeout"]["source"]) == (600.0, "default")
    assert min_interval_s(workspace) == 30
    flagged = {
        r["name"]: r for r in json.loads(cli("--workspace", workspace.root, "settings", "--json").stdout)
    }
    assert (flagged["home"]["value"], flagged["home"]["source"]) == (str(workspace.root), "command line")
    table = cli("settings").stdout
    assert "min_schedule_s" in table and "MLOPS_MIN_SCHEDULE_S" in table
    assert cli("settings", "unset", "min_schedule_s").exit_code == 0
    assert min_interval_s(workspace) == 60


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("min_schedule_s", "soon"), "setting min_schedule_s must be a positive whole number, got 'soon'"),
        (("cpd_retries", "4"), "setting cpd_retries belongs to each process (its environment variable"),
        (("no_such", "1"), "no setting named 'no_such'"),
    ],
)
def test_bad_settings_are_refused_and_nothing_is_stored(
    cli, workspace: Workspace, args: tuple[str, str], message: str
) -> None:
    res = cli("settings", "set", *args)
    assert res.exit_code == 1 and message in res.stderr
    assert min_interval_s(workspace) == 60


def test_a_bad_environment_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_CPD_EDI_TIMEOUT", "long")
    from mlops_widgets.errors import MlopsError

    with pytest.raises(MlopsError, match="MLOPS_CPD_EDI_TIMEOUT must be a positive number, got 'long'"):
        settings.CPD_EDI_TIMEOUT.from_env()


def settings_table() -> str:
    """The table of docs/settings.md, generated from the model."""
    lines = ["| setting | variable | scope | default | what it does |", "|---|---|---|---|---|"]
    for s in settings.SETTINGS.values():
        default = "-" if s.default is None else f"`{s.default}`"
        lines.append(f"| `{s.name}` | `{s.env}` | {s.scope} | {default} | {s.help} |")
    return "\n".join(lines) + "\n"


def test_docs_list_every_setting() -> None:
    """docs/settings.md carries the table generated from the model (`python tests/test_settings.py`
    rewrites it)."""
    assert settings_table() in (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")


if __name__ == "__main__":
    page = ROOT / "docs" / "settings.md"
    head, _, _ = page.read_text(encoding="utf-8").partition("| setting | variable |")
    page.write_text(head + settings_table(), encoding="utf-8")
