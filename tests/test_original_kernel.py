"""A kernel written as the original team wrote theirs (the DeepLIIF kernel's style) deploys
unchanged on the local backend and on the (fake) cluster: it imports the four helper modules at
the top, reads WML_SPACE_MODEL, downloads the model from the space when it starts, reads its
input image from the storage volume by path, writes its outputs back there and logs with
`edi.log`."""

from __future__ import annotations

import base64
import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakecpd import FakeCpd
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)
from fakecpd.kernels import KernelExecutor
from PIL import Image

from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.local.inference import stop_service
from mlops_widgets.config import load_config
from mlops_widgets.examples import ORIGINAL_KERNEL, synthetic
from mlops_widgets.ops import deploy, space
from mlops_widgets.workspace import Workspace

VOLUME = "demo-volume"


@pytest.fixture(autouse=True)
def _stop_inference(workspace: Workspace) -> Iterator[None]:
    yield
    stop_service(workspace)


def volume_dir(backend: Backend) -> Path:
    return backend.workspace.root / "volumes" / VOLUME


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def stage(backend: Backend, example_paths: Any) -> str:
    (entry,) = load_config(example_paths.config).entries.values()
    entry = copy.deepcopy(entry)
    entry["wmla_deployment"]["resource_configs"].update(kernel_min=1, kernel_max=1)
    return space.stage(backend, example_paths.model, ORIGINAL_KERNEL, entry)["model_asset_id"]


def test_the_original_style_kernel_deploys_unchanged_and_answers(
    backend: Backend, example_paths: Any
) -> None:
    image, truth = synthetic.tile(3)
    inputs = volume_dir(backend) / "inputs"
    inputs.mkdir(parents=True)
    (inputs / "tile_003.png").write_bytes(png(image))
    asset_id = stage(backend, example_paths)
    result = deploy.deploy_create(
        backend,
        "original",
        asset_id,
        custom_args={"CPD_USERNAME": "admin", "VOLUME_DISPLAY_NAME": VOLUME},
        secret_args={"CPD_API_KEY": "unused-on-the-local-backend"},
    )
    assert result["status"] == "IDLE"
    model_dir = Path(backend.inference.view("original").model_path)
    assert (model_dir / "model.zip").is_file()  # downloaded from the space by wml_sdk_utils at start
    assert not any(
        (model_dir / "python_packages").iterdir()
    )  # requirements already satisfied: none installed
    assert (
        model_dir / f"requirements_{backend.inference.view('original').kernels[0].pod}.txt"
    ).read_text() == ""

    answer = json.loads(
        deploy.infer(
            backend, "original", json.dumps({"img_path_on_pvc": "inputs/tile_003.png", "request_id": "r1"})
        )
    )
    assert answer["status"] == "finished", answer
    written = "edi_deployments/original/r1/output_dir/tile_003_Seg.png"
    assert answer["outputs"] == [written]
    mask = np.asarray(Image.open(volume_dir(backend) / written))
    assert mask.shape == truth.shape
    for channel in (0, 2):  # the colour rule of the model asset finds most stained pixels
        found, real = mask[..., channel] > 0, truth[..., channel] > 0
        assert (found & real).sum() / real.sum() > 0.5

    logs = list((volume_dir(backend) / "edi_deployments" / "original" / "edi_logs").glob("*_inference.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    assert "started with model model.zip" in text and "r1: inference request received" in text
    assert "output files are in" in text

    inline = json.loads(
        deploy.infer(
            backend,
            "original",
            json.dumps({"local_input_image": base64.b64encode(png(image)).decode(), "request_id": "r2"}),
        )
    )
    assert inline["status"] == "finished" and list(inline["images"]) == ["local_Seg.png"]
    returned = np.asarray(Image.open(io.BytesIO(base64.b64decode(inline["images"]["local_Seg.png"]))))
    assert (returned == mask).all()
    refused = json.loads(deploy.infer(backend, "original", b"{}"))
    assert refused["status"] == "failed" and "no valid input image" in refused["msg"]


def test_the_same_kernel_runs_on_the_cluster(
    cpd_backend: Backend, cpd_env: dict[str, str], fake_cpd: FakeCpd, example_paths: Any
) -> None:
    """On cpd the helper modules call the cluster's REST services and IBM's WML client: sign-in
    with the custom args, the model downloaded from the WML space, the image read from and the
    mask written to the cluster's storage volume (the fake runs the uploaded kernel)."""
    fake_cpd.dlim.executor = KernelExecutor()
    image, truth = synthetic.tile(3)
    fake_cpd.volumes.put(VOLUME, "inputs/tile_003.png", png(image))
    try:
        deploy.deploy_create(
            cpd_backend,
            "original",
            stage(cpd_backend, example_paths),
            custom_args={"CPD_USERNAME": cpd_env["USERNAME"], "VOLUME_DISPLAY_NAME": VOLUME},
            secret_args={"CPD_API_KEY": cpd_env["APIKEY"]},
        )
        answer = json.loads(
            deploy.infer(
                cpd_backend,
                "original",
                json.dumps({"img_path_on_pvc": "inputs/tile_003.png", "request_id": "r1"}),
            )
        )
    finally:
        fake_cpd.dlim.executor.stop_all()
    assert answer["status"] == "finished", answer
    files = fake_cpd.volumes.volumes[VOLUME]["files"]
    mask = np.asarray(
        Image.open(io.BytesIO(files["edi_deployments/original/r1/output_dir/tile_003_Seg.png"][0]))
    )
    assert mask.shape == truth.shape and (mask[..., 0] > 0).any() and (mask[..., 2] > 0).any()
    (log,) = [p for p in files if p.startswith("edi_deployments/original/edi_logs/")]
    assert b"r1: inference request received" in files[log][0]
