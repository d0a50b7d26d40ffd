"""The original-style DeepLIIF kernel (mlops_widgets/examples/original_kernel) through the fake
cluster: staged and deployed by the cpd backend with its helper modules, run by the fake's dlim
(the local kernel machinery, fakecpd/kernels.py), signing in with its custom args, downloading
the model asset from the space, reading its input from the storage volume and writing its mask
and log back there, all over the fake's REST APIs with TLS verified."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
from fakecpd import APIKEY, USER, FakeCpd
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)
from fakecpd.kernels import KernelExecutor
from PIL import Image

from mlops_widgets.examples.synthetic import write_tiles

EXAMPLES = Path(__file__).resolve().parent.parent / "mlops_widgets" / "examples"
NAME = "original"


def test_the_original_style_kernel_runs_on_the_fake_cluster(
    cli,
    cpd_env: dict,
    fake_cpd: FakeCpd,
    example_paths,
    tmp_path: Path,
    monkeypatch,  # noqa: ANN001
) -> None:
    write_tiles(tmp_path / "tiles", tmp_path / "gt", 2, size=32)
    tile = (tmp_path / "tiles" / "tile_001.png").read_bytes()
    fake_cpd.volumes.put("demo-volume", "inputs/tile_001.png", tile)
    fake_cpd.dlim.executor = KernelExecutor(ca_bundle=fake_cpd.certs.ca)
    monkeypatch.setenv("CPD_API_KEY", APIKEY)  # the secret custom arg, taken from the environment
    ws = str(tmp_path / "ws")

    def mlops(*args: str) -> str:
        res = cli("--backend", "cpd", "--workspace", ws, *args)
        assert res.exit_code == 0, f"mlops {' '.join(args)}\n{res.output}"
        return res.stdout

    staged = mlops(
        "prepare",
        "stage",
        "--path-model",
        str(example_paths.model),
        "--path-dependency",
        str(EXAMPLES / "original_kernel"),
        "--path-yml",
        str(example_paths.config),
    )
    asset_id = re.search(r"model asset id: (\S+)", staged)[1]  # type: ignore[index]
    mlops(
        "deploy",
        "create",
        "--name",
        NAME,
        "--model-asset-id",
        asset_id,
        "--custom-arg",
        f"CPD_USERNAME={USER}",
        "--custom-arg",
        "CPD_API_KEY",
        "--custom-arg",
        "VOLUME_DISPLAY_NAME=demo-volume",
    )
    package = fake_cpd.dlim.packages[NAME]
    assert {"storage_volume_utils.py", "cpd_utils.py", "wmla_edi_utils.py", "wml_sdk_utils.py"} <= set(
        package
    )
    assert APIKEY.encode() not in b"".join(package.values())  # the secret went to kernel.envs only

    # an image on the volume, by path: the mask is written back to the volume
    answer = json.loads(
        mlops(
            "deploy",
            "infer",
            "--name",
            NAME,
            "--data",
            json.dumps({"img_path_on_pvc": "inputs/tile_001.png", "request_id": "r1"}),
        )
    )
    assert answer["status"] == "finished", answer
    files = fake_cpd.volumes.volumes["demo-volume"]["files"]
    mask_path = f"edi_deployments/{NAME}/r1/output_dir/tile_001_Seg.png"
    assert mask_path in files, sorted(files)
    mask = np.asarray(Image.open(io.BytesIO(files[mask_path][0])))
    assert mask.shape == (32, 32, 3) and not mask[..., 1].any()  # red and blue classes only
    assert any(p.startswith(f"edi_deployments/{NAME}/edi_logs/") for p in files)  # its log, mirrored

    # an image in the request: the mask comes back in the answer
    local = json.loads(
        mlops(
            "deploy",
            "infer",
            "--name",
            NAME,
            "--data",
            json.dumps({"local_input_image": base64.b64encode(tile).decode()}),
        )
    )
    assert local["status"] == "finished", local
    returned = base64.b64decode(local["images"]["local_Seg.png"])
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(returned))), mask)

    # once deployed, the kernel signed in with its custom args and fetched the model asset from
    # the space itself (the package does not hold the model)
    log = [p for _, p, s in fake_cpd.router.log if s < 300]
    after = log[log.index("/dlim/v1/deployment/model") :]
    model_file = f"/v2/asset_files/{fake_cpd.wml.assets[asset_id].attachments[0].key}"
    assert "/icp4d-api/v1/authorize" in after and model_file in after
    assert fake_cpd.wml.assets[asset_id].name not in package
    mlops("deploy", "delete", "--name", NAME)
    assert NAME not in fake_cpd.dlim.models and NAME not in fake_cpd.dlim.executor.pools
