"""The real workload: the DeepLIIF network (the `deepliif` package's nine generators) on 512x512
tiles, through the local service against the same network in fresh processes of the same Python.

Needs a runtime with CPU torch and the deepliif package (docs: "The real DeepLIIF network"):

    .venv/bin/python benchmarks/bench_deepliif.py --python /opt/envs/deepliif/bin/python [--tiles 2]

The flow is the team's: `dlipy3` bound to that interpreter (their model.json unchanged), the
kernel folder staged without a model (it holds its code; weights are random unless given), one
`deploy create` from the example entry (its start-up timeout and memory_allocation), then
base64 PNG tiles as requests. The baseline calls the kernel's `segment` in fresh processes
pinned to the same CPUs with the same torch threads (1 kernel: 2 CPUs; 2 kernels: 1 CPU each,
in parallel). Prints throughput, p50 and each kernel's peak memory beside the baseline.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mlops_widgets import examples
from mlops_widgets.backends import get_backend
from mlops_widgets.backends.local.inference.procs import process_tree
from mlops_widgets.workspace import Workspace

KERNEL_DIR = Path(examples.__file__).parent / "deepliif_kernel"
BASELINE = r"""
import os, sys, time, types, json
sys.path.insert(0, sys.argv[1])
for name in ("redhareapiversion", "wmla_edi_utils"):
    sys.modules[name] = types.ModuleType(name)
shim = types.ModuleType("redhareapi"); shim.Kernel = object; sys.modules["redhareapi"] = shim
cpus, threads, tiles, size = (int(a) for a in sys.argv[2:6])
os.sched_setaffinity(0, {cpus})
import numpy as np, torch
import kernel
torch.set_num_threads(threads)
nets = kernel.build_networks()
rgb = (np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8)
kernel.segment(nets, rgb)  # warm-up, as the service's warm call
times = []
for _ in range(tiles):
    t0 = time.perf_counter(); kernel.segment(nets, rgb); times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


def tile_body(size: int) -> bytes:
    rgb = (np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    return json.dumps({"local_input_image": base64.b64encode(buffer.getvalue()).decode()}).encode()


def baseline(python: str, kernels: int, tiles: int, size: int, gpu: bool) -> tuple[float, float]:
    """Tiles per second and median seconds per tile of the network in `kernels` fresh processes
    (with `gpu`, each on a GPU of its own, as the service gives its kernels)."""
    cpus = sorted(os.sched_getaffinity(0))
    per = max(1, len(cpus) // kernels)
    procs = [
        subprocess.Popen(
            [
                python,
                "-c",
                BASELINE,
                str(KERNEL_DIR),
                str(cpus[i % len(cpus)]),
                str(per),
                str(tiles),
                str(size),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "CUDA_VISIBLE_DEVICES": str(i) if gpu else ""},
        )
        for i in range(kernels)
    ]
    # the last line: deepliif prints "initialize network with normal" as it builds each one
    times = [t for p in procs for t in json.loads(p.communicate()[0].strip().splitlines()[-1])]
    elapsed_work = sum(times) / kernels  # the measured tiles only, without building the networks
    return len(times) / elapsed_work, sorted(times)[len(times) // 2]


def peak_rss_mb(pid: int) -> float:
    """The largest peak resident memory (VmHWM) in MB among a kernel's processes (the kernel
    runs under its reaper, whose pid the view shows)."""
    peaks = [0.0]
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def through_service(
    python: str, kernels: int, tiles: int, size: int, gpu: bool
) -> tuple[float, float, float]:
    """Tiles per second, median seconds per tile and the kernels' peak memory (MB), through
    the local service of a fresh workspace."""
    with tempfile.TemporaryDirectory(prefix="bench-deepliif-") as tmp:
        env = {**os.environ, "MLOPS_HOME": str(Path(tmp) / "ws")}
        mlops = [str(Path(sys.executable).parent / "mlops")]

        def run(*args: str) -> str:
            return subprocess.run([*mlops, *args], env=env, check=True, capture_output=True, text=True).stdout

        run("runtime", "add", "dlipy3", "--python", python)
        entry = Path(tmp) / "entry.yml"
        text = (KERNEL_DIR / "deployment_metadata.yml").read_text()
        text = text.replace("n_cpus: 2", f"n_cpus: {max(1, 2 // kernels)}")
        if gpu:  # a GPU per kernel (CUDA_VISIBLE_DEVICES), as WMLA gives them
            text = text.replace("enable_gpus: 'False'", "enable_gpus: 'True'")
        text = text.replace("kernel_min: 1", f"kernel_min: {kernels}").replace(
            "kernel_max: 1", f"kernel_max: {kernels}"
        )
        entry.write_text(text)
        folder = Path(tmp) / "deepliif_deployment"
        subprocess.run(["cp", "-r", str(KERNEL_DIR), str(folder)], check=True)
        staged = run("prepare", "stage", "--path-dependency", str(folder), "--path-yml", str(entry))
        asset_id = staged.strip().rsplit(" ", 1)[-1]
        run("deploy", "create", "--model-asset-id", asset_id, "--name", "deepliif")
        inference = get_backend("local", Workspace(Path(env["MLOPS_HOME"]))).inference
        body = tile_body(size)
        try:
            warm = [threading.Thread(target=inference.infer, args=("deepliif", body)) for _ in range(kernels)]
            [t.start() for t in warm]  # one call per kernel, in parallel, as the baseline's warm-up
            [t.join() for t in warm]
            latencies: list[float] = []

            def client() -> None:
                for _ in range(tiles):
                    t0 = time.perf_counter()
                    answer = json.loads(inference.infer("deepliif", body))
                    assert answer["status"] == "finished", answer
                    latencies.append(time.perf_counter() - t0)

            start = time.perf_counter()
            clients = [threading.Thread(target=client) for _ in range(kernels)]
            [t.start() for t in clients]
            [t.join() for t in clients]
            elapsed = time.perf_counter() - start
            pids = [k["pid"] for k in inference.view("deepliif")["kernels"] if k.get("pid")]
            peak = max(peak_rss_mb(pid) for pid in pids)
        finally:
            run("deploy", "stop", "--name", "deepliif")
            subprocess.run([*mlops, "service", "stop"], env=env, capture_output=True)
        return len(latencies) / elapsed, sorted(latencies)[len(latencies) // 2], float(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--python", default=os.environ.get("MLOPS_DEEPLIIF_PYTHON"), help="the runtime's Python"
    )
    parser.add_argument("--tiles", type=int, default=2, help="measured tiles per kernel")
    parser.add_argument("--size", type=int, default=512, help="tile side (a multiple of 512)")
    parser.add_argument("--gpu", action="store_true", help="kernels and baseline on GPUs, one each")
    parser.add_argument("--kernels", type=int, nargs="+", default=[1, 2], help="kernel counts to measure")
    args = parser.parse_args()
    if not args.python:
        sys.exit("give the DeepLIIF runtime's Python with --python (or $MLOPS_DEEPLIIF_PYTHON)")
    print(f"load average at start: {os.getloadavg()[0]:.1f}; {os.cpu_count()} CPUs")
    for kernels in args.kernels:
        base_rate, base_p50 = baseline(args.python, kernels, args.tiles, args.size, args.gpu)
        rate, p50, peak = through_service(args.python, kernels, args.tiles, args.size, args.gpu)
        print(
            f"{kernels} kernel(s), {args.size}x{args.size}: service {rate:.4f} tiles/s, p50 {p50:.2f} s"
            f" | in-process {base_rate:.4f} tiles/s, p50 {base_p50:.2f} s | ratio {rate / base_rate:.3f}"
            f" | kernel peak memory {peak:.0f} MB"
        )
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
