"""`mlops demo --train`: the demo starts by training the example model and deploys the trained
one, with the training job in the staged entry and in the audit trail."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_widgets.backends import get_backend
from mlops_widgets.backends.local.inference import stop_service
from mlops_widgets.ops import space, train
from mlops_widgets.workspace import Workspace


@pytest.fixture
def demo_ws(tmp_path) -> Iterator[Workspace]:
    ws = Workspace(tmp_path / "demo")
    yield ws
    stop_service(ws)


def test_demo_with_training_deploys_the_trained_model(cli, demo_ws):
    res = cli("demo", "--workspace", demo_ws.root, "--train")
    assert res.exit_code == 0, res.output
    listed = re.findall(r"^\w{8}\s+(\w+)\s+ok\s+\S+\.ipynb$", res.stdout, re.M)
    assert listed[:3] == ["A1_Submit_WMLA_Training", "A_MLOps_Pipeline", "A2_WMLA_Model_Deploy"]
    assert re.search(r"^\s+ok\s+Dice\s", res.stdout, re.M), res.stdout

    backend = get_backend("local", demo_ws)
    (job,) = train.jobs(backend)
    assert job.state == "finished"
    asset_id, entry = space.get_entry(backend, deployment_name="deepliif-demo")
    assert entry["training_job"]["job_id"] == job.id and entry["model_asset"] == f"{job.id}.zip"
    assert entry["wmla_deployment"]["deployment_name"] == "deepliif-demo"
    # the deployment's kernels loaded the job's output: the trained rule, not the bundled one
    trained = json.loads((Path(job.output) / "weights.json").read_text())
    (deployed,) = demo_ws.root.glob(f"inference/deployments/deepliif-demo/model/{job.id}/weights.json")
    assert json.loads(deployed.read_text()) == trained and trained["version"] == 2
    assert asset_id
