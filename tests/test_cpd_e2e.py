"""The whole scenario on both backends with the same commands and the same output: stage,
deploy create, score the tiles into the storage volume with template A4, provider create,
publish the monitors, monitor create, monitor run, monitor status, deploy delete.

On cpd everything goes to the fake Cloud Pak for Data through the real SDKs: the submission
folder is built here and uploaded to dlim as a gzip tar, where the fake runs its kernel with the
local backend's kernel machinery (fakecpd/kernels.py); A4 writes each mask to the volume through
the volumes API; OpenScale runs the providers that `monitor publish` deployed as WML functions,
which read the images back from the volume.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from fakecpd import FakeCpd
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)
from fakecpd.kernels import KernelExecutor
from fakecpd.tls_state import process_tls_state

from mlops_widgets.backends.local.inference import stop_service
from mlops_widgets.examples.synthetic import write_tiles
from mlops_widgets.workspace import Workspace

NAME = "demo-seg"
MONITORS = ("segmentation_metrics", "generic_metrics")
_MASKS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<id>"),
    (re.compile(r"https?://127\.0\.0\.1:\d+"), "<host>"),
    (re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"\d{8}T\d{6}Z-[\w-]+"), "<run>"),
    (re.compile(r"\(\d+(\.\d+)? s\)"), "(<s>)"),
    (re.compile(r"/\S*/runs/"), "<runs>/"),
]


def _mask(text: str) -> str:
    for pattern, repl in _MASKS:
        text = pattern.sub(repl, text)
    return text


def _shape(value: Any) -> Any:
    """The structure of a JSON value: keys and types, lists by their items' shapes."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    return type(value).__name__ if not isinstance(value, int) else "number"


def _scenario(cli, backend: str, workspace: Path, example_paths, images: Path) -> list[tuple[str, Any]]:  # noqa: ANN001
    outputs: list[tuple[str, Any]] = []

    def run(*args: str, as_json: bool = False, compare: bool = True) -> str:
        res = cli("--backend", backend, "--workspace", str(workspace), *args)
        assert res.exit_code == 0, f"{backend}: mlops {' '.join(args)}\n{res.output}"
        if compare:
            outputs.append((" ".join(args[:2]), json.loads(res.stdout) if as_json else _mask(res.stdout)))
        return res.stdout

    staged = run(
        "prepare",
        "stage",
        "--path-model",
        str(example_paths.model),
        "--path-dependency",
        str(example_paths.deployment),
        "--path-yml",
        str(example_paths.config),
    )
    asset_id = re.search(r"model asset id: (\S+)", staged)[1]  # type: ignore[index]
    run("deploy", "create", "--name", NAME, "--model-asset-id", asset_id)
    # where A4 writes differs in words (a local folder, a folder on a cluster volume): not compared
    record = json.loads(
        run(
            "run",
            "A4_Batch_Scoring",
            "-p",
            "deployment_name",
            NAME,
            "-p",
            "images_dir",
            str(images),
            "--json",
            compare=False,
        )
    )
    assert record["status"] == "ok", record
    run("provider", "create")
    for monitor in MONITORS:
        run("monitor", "publish", "--monitor", monitor)
    run("monitor", "create", "--name", NAME)
    runs = json.loads(run("monitor", "run", "--name", NAME, "--json", as_json=True))
    assert [r["state"] for r in runs] == ["finished", "finished"], runs
    status = json.loads(run("monitor", "status", "--name", NAME, "--json", as_json=True))
    assert {m["state"] for m in status["monitors"]} <= {"ok", "issues"}, status
    run("deploy", "delete", "--name", NAME, "--remove-monitor")
    return outputs


def test_the_scenario_has_the_same_output_on_both_backends(
    cli,
    cpd_env: dict,
    fake_cpd: FakeCpd,
    example_paths,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    images, masks = tmp_path / "tiles", tmp_path / "masks"
    write_tiles(images, masks, 6, size=48)
    local_ws, cpd_ws = tmp_path / "local-ws", tmp_path / "cpd-ws"
    gt = Workspace(local_ws).dir("volumes", "demo-volume", "model_eval", "gt_images")
    for m in sorted(masks.iterdir()):  # the ground truth is on the volume; predictions come from A4
        (gt / m.name).write_bytes(m.read_bytes())
        fake_cpd.volumes.put("demo-volume", f"model_eval/gt_images/{m.name}", m.read_bytes())
    fake_cpd.dlim.executor = KernelExecutor()  # the fake cluster runs the uploaded kernel

    try:
        local = _scenario(cli, "local", local_ws, example_paths, images)
    finally:
        stop_service(local_ws)
    state, environ = process_tls_state(), dict(os.environ)
    remote = _scenario(cli, "cpd", cpd_ws, example_paths, images)
    assert process_tls_state() == state  # no warning filter, TLS variable or verify switch changed
    assert dict(os.environ) == environ

    # A4 wrote the same six masks into the volume's dir_pred on both backends
    predicted = local_ws / "volumes" / "demo-volume" / "model_eval" / "model_images"
    local_masks = {p.name: p.read_bytes() for p in predicted.iterdir()}
    remote_masks = {
        path.rsplit("/", 1)[1]: data
        for path, (data, _) in fake_cpd.volumes.volumes["demo-volume"]["files"].items()
        if path.startswith("model_eval/model_images/")
    }
    assert len(local_masks) == 6 and remote_masks == local_masks

    assert [c for c, _ in local] == [c for c, _ in remote]
    for (command, out_local), (_, out_remote) in zip(local, remote, strict=True):
        if isinstance(out_local, str):
            assert out_local == out_remote, command
        else:
            assert _shape(out_local) == _shape(out_remote), command
    # the same images and thresholds give the same measurements
    issues = {c: [m.get("issue_count") for m in o["monitors"]] for c, o in local if c == "monitor status"}
    assert issues == {
        c: [m.get("issue_count") for m in o["monitors"]] for c, o in remote if c == "monitor status"
    }

    # ... and the same metric values: the published providers computed what the embedded ones did
    def values(outputs: list[tuple[str, Any]]) -> dict[str, dict[str, float]]:
        status = next(o for c, o in outputs if c == "monitor status")
        return {m["monitor_id"]: {x["metric"]: x["value"] for x in m["metrics"]} for m in status["monitors"]}

    expected = values(local)
    for monitor, metrics in values(remote).items():
        assert metrics == pytest.approx(expected[monitor], rel=1e-12), monitor

    assert any(p == "/dlim/v1/deployment/model" for _, p, _ in fake_cpd.router.log)
    assert NAME not in fake_cpd.dlim.models  # deleted at the end
    # credentials never reached the workspace (runs, executed notebooks, database)
    secrets = [cpd_env["APIKEY"].encode(), b"Bearer ", *(t.encode() for t in fake_cpd.router.issued)]
    assert len(secrets) > 2  # the run did sign in
    for path in cpd_ws.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [s for s in secrets if s in data], path


@pytest.fixture
def cpd_version() -> str:
    return "5.1.0"
