"""`mlops demo`: the whole workflow on the embedded backend, twice in a row on one workspace."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_widgets.backends.local.inference import service_info, stop_service
from mlops_widgets.runner import list_runs
from mlops_widgets.workspace import Workspace

DEMO_TEMPLATES = [
    "A_MLOps_Pipeline",
    "A2_WMLA_Model_Deploy",
    "A4_Batch_Scoring",
    "C1_OpenScale_Dummy_ML_Provider",
    "A3_OpenScale_Configuration",
]


def _check_demo_output(res, ws: Workspace) -> None:
    assert res.exit_code == 0, res.output
    out = res.stdout
    # the status shows the green path and the red path
    assert re.search(r"^\s+ok\s+Dice\s", out, re.M), out
    assert re.search(r"^\s+FAIL\s+num_images_recent_predicted\s", out, re.M), out
    # the audit trail lists this demo's runs, each with its executed notebook
    listed = re.findall(r"^(\w{8})\s+(\w+)\s+ok\s+(\S+\.ipynb)$", out, re.M)
    assert [t for _, t, _ in listed] == DEMO_TEMPLATES
    for _, _, notebook in listed:
        assert Path(notebook).is_file() and Path(notebook).is_relative_to(ws.root / "runs")
    assert "stopped" in out


@pytest.fixture
def demo_ws(tmp_path) -> Iterator[Workspace]:
    ws = Workspace(tmp_path / "demo")
    yield ws
    stop_service(ws)


def test_demo_runs_end_to_end_and_again(cli, demo_ws):
    ws = demo_ws
    first = cli("demo", "--workspace", ws.root)
    _check_demo_output(first, ws)
    second = cli("demo", "--workspace", ws.root)
    _check_demo_output(second, ws)
    assert "removed the previous demo deployment" in second.stderr
    records = list_runs(ws)
    runs = [r for r in records if r.kind == "template"]
    assert len(runs) == 2 * len(DEMO_TEMPLATES)
    assert {r.status for r in records} == {"ok"}
    # Its other steps went through the core as the commands' do: in the audit trail as events.
    events = [r.template for r in reversed(records) if r.kind == "event"]
    assert events == ["deploy.stop", "deploy.delete", "deploy.stop"]
    # The demo's monitors keep being evaluated on their schedules after it ends: its service
    # runs on, supervised, with every kernel of the stopped deployment gone.
    assert service_info(ws) is not None
    status = json.loads(cli("--workspace", ws.root, "service", "status", "--json").stdout)
    assert status["running"] and status["supervisor_pid"]
    assert {s["monitor_id"] for s in status["next_slots"]} == {"segmentation_metrics", "generic_metrics"}
