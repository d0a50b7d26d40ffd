"""The real workload: the DeepLIIF network (the `deepliif` package's generators, CPU torch) in the
team's flow: `dlipy3` bound to a runtime that has it, the kernel folder staged without a model
(it holds its code), one `deploy create` from its entry (a longer start-up timeout, room in
memory_allocation), and a 512x512 tile answered with its segmentation. Too little memory is
refused by name.

Needs the runtime `bash tools/make_deepliif_runtime.sh` makes (`bash dev.sh test` makes it at
.venv-deepliif); $MLOPS_DEEPLIIF_PYTHON names another."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mlops_widgets import examples
from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.local.inference import stop_service
from mlops_widgets.backends.local.inference.procs import process_tree
from mlops_widgets.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
KERNEL_DIR = Path(examples.__file__).parent / "deepliif_kernel"
PYTHON = os.environ.get("MLOPS_DEEPLIIF_PYTHON") or str(ROOT / ".venv-deepliif" / "bin" / "python")

pytestmark = pytest.mark.skipif(
    not Path(PYTHON).exists(),
    reason=f"no DeepLIIF runtime at {PYTHON} (bash tools/make_deepliif_runtime.sh makes one)",
)


@pytest.fixture(autouse=True)
def _stop_inference(workspace: Workspace) -> Iterator[None]:
    yield
    stop_service(workspace)


def _peak_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM), MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmHWM:")).split()[1]) / 1024


def staged(cli: Any, tmp_path: Path, **resources: int) -> str:
    """The example DeepLIIF folder staged without a model, from its entry (with `resources`)."""
    assert cli("runtime", "add", "dlipy3", "--python", PYTHON).exit_code == 0
    entry = (KERNEL_DIR / "deployment_metadata.yml").read_text()
    for key, value in resources.items():
        entry = "\n".join(
            f"    {key}: {value}" if line.strip().startswith(f"{key}:") else line
            for line in entry.splitlines()
        )
    (tmp_path / "entry.yml").write_text(entry)
    res = cli("prepare", "stage", "--path-dependency", KERNEL_DIR, "--path-yml", tmp_path / "entry.yml")
    assert res.exit_code == 0, res.output
    return res.stdout.strip().rsplit(" ", 1)[-1]


def test_the_deepliif_network_deploys_in_one_command_and_segments_a_tile(
    backend: Backend, cli: Any, tmp_path: Path
) -> None:
    asset_id = staged(cli, tmp_path)
    res = cli("deploy", "create", "--model-asset-id", asset_id, "--name", "deepliif")
    assert res.exit_code == 0, res.output
    profile = backend.inference.get_profile("deepliif")
    assert profile["kernel"]["connection_timeout"] == 600  # the entry's start-up timeout, kept

    rgb = (np.random.default_rng(0).random((512, 512, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    body = json.dumps({"request_id": "t1", "local_input_image": base64.b64encode(buffer.getvalue()).decode()})
    answer = json.loads(backend.inference.infer("deepliif", body.encode()))
    assert answer["status"] == "finished" and answer["request_id"] == "t1"
    (png,) = answer["images"].values()
    mask = Image.open(io.BytesIO(base64.b64decode(png)))
    assert mask.size == (512, 512) and mask.mode == "RGB"
    (kernel,) = backend.inference.view("deepliif").kernels
    peak_mb = max(_peak_mb(pid) for pid in process_tree(kernel.pid))  # the kernel, under its reaper
    assert 1000 < peak_mb < 3072  # the generators are real, and the entry's memory_allocation holds them


def test_too_little_memory_for_the_network_is_named(backend: Backend, cli: Any, tmp_path: Path) -> None:
    asset_id = staged(cli, tmp_path, memory_allocation=512)
    res = cli("deploy", "create", "--model-asset-id", asset_id, "--name", "small")
    assert res.exit_code == 1
    assert "memory_allocation" in res.output and "512" in res.output
