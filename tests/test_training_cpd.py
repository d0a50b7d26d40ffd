"""Training on WMLA's deep-learning execs against the fake: the example trained through IBM's
client, its responses read with the ibm_wmla model classes, the output staged with its job."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from fakecpd import FakeCpd
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)

from mlops_widgets import examples
from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.cpd.training import MASK
from mlops_widgets.backends.training_protocol import JOB_ENDED
from mlops_widgets.errors import ConflictError, MlopsError
from mlops_widgets.ops import space, train

DEADLINE_S = 120.0


def _ended(backend: Backend, job_id: str) -> dict:
    deadline = time.monotonic() + DEADLINE_S
    while (job := train.status(backend, job_id)).state not in JOB_ENDED:
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} did not end")
        time.sleep(0.1)
    return job


def test_the_example_trains_on_wmla_and_its_output_is_staged(cpd_backend, fake_cpd: FakeCpd, tmp_path):
    from ibm_wmla.wmla_api_v1 import Batch

    fake_cpd.router.capture = True
    folder = train.build_submission_folder(
        [str(examples.TRAINING / "train.py"), str(examples.SYNTHETIC)],
        [],
        main="train.py",
        framework="distPyTorch",
    )
    spec = train.make_spec(
        framework="distPyTorch",
        main="train.py",
        workers=2,
        devices_per_worker=1,
        memory="4g",
        env={"EPOCHS": "2"},
        args=["--tiles", "3"],
    )
    job = train.submit(cpd_backend, folder, spec, secret_env={"SERVICE_TOKEN": "tok-0123456789-secret"})
    assert job.backend == "cpd" and job.framework == "distPyTorch" and job.workers == 2
    assert job.devices_per_worker == 1 and job.memory == "4g" and job.main == "train.py"
    assert f"SERVICE_TOKEN={MASK}" in job.args and "tok-0123456789-secret" not in json.dumps(job.to_dict())

    # what WMLA received, as dlicmd sends it: a tar of the folder named *.modelDir.tar, the options as args
    batch = fake_cpd.execs.execs[job.id]
    assert "--exec-start distPyTorch --numWorker 2 --workerDeviceNum 1 --workerMemory 4g" in batch["args"]
    assert "--model-main train.py" in batch["args"] and "--msd-env EPOCHS=2" in batch["args"]

    job = _ended(cpd_backend, job.id)
    assert job.state == "finished"
    log = list(train.logs(cpd_backend, job.id))
    assert any("worker 1 of 2" in line for line in log) and any("worker 0 of 2" in line for line in log)
    assert [j.id for j in train.jobs(cpd_backend)] == [job.id]

    # every exec document the client read is IBM's Batch, field for field
    docs = [
        body
        for method, path, status, body in fake_cpd.router.responses
        if "/deeplearning/v1/execs" in path and status == 200 and isinstance(body, (dict, list))
    ]
    assert docs
    for body in docs:
        for doc in body if isinstance(body, list) else [body]:
            parsed = Batch.from_dict(doc).to_dict()
            assert (
                parsed["id"] == doc["id"]
                and parsed["state"] == doc["state"]
                and parsed["args"] == doc["args"]
            )

    model, lineage = train.fetch_output(cpd_backend, job.id, tmp_path / "out")
    weights = json.loads((model / "weights.json").read_text())
    assert weights["training"]["dice_positive"] > 0.5 and lineage["backend"] == "cpd"
    entry = {**yaml.safe_load(examples.CONFIG.read_text()), "training_job": lineage}
    staged = space.stage(cpd_backend, model, examples.DEPLOYMENT, entry)
    _, written = space.get_entry(cpd_backend, model_asset_id=staged["model_asset_id"])
    assert written["training_job"]["job_id"] == job.id and written["model_asset"] == f"{job.id}.zip"


def test_a_failing_job_and_a_stopped_one(cpd_backend, tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "broken.py").write_text("raise SystemExit('no data')\n")
    (src / "slow.py").write_text("import time\nprint('started', flush=True)\ntime.sleep(600)\n")
    failing = train.submit(
        cpd_backend,
        train.build_submission_folder([str(src / "broken.py")], [], main="broken.py", framework="PyTorch"),
        train.make_spec(framework="PyTorch", main="broken.py"),
    )
    failed = _ended(cpd_backend, failing.id)
    assert failed.state == "failed" and failed.error and "no data" in failed.error_log
    with pytest.raises(ConflictError, match="failed"):
        train.fetch_output(cpd_backend, failed.id, tmp_path / "none")

    running = train.submit(
        cpd_backend,
        train.build_submission_folder([str(src / "slow.py")], [], main="slow.py", framework="PyTorch"),
        train.make_spec(framework="PyTorch", main="slow.py"),
    )
    assert train.stop(cpd_backend, running.id).state == "killed"
    with pytest.raises(MlopsError, match="per worker"):
        list(train.logs(cpd_backend, running.id, worker=0))
