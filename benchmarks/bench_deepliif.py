"""The real workload: the DeepLIIF network (the `deepliif` package's nine generators) on 512x512
tiles, through the local service against the same network in fresh processes of the same Python.

Needs a runtime with CPU torch and the deepliif package (docs: "The real DeepLIIF network"):

    .venv/bin/python benchmarks/bench_deepliif.py --python /opt/envs/deepliif/bin/python [--rounds 3]

The flow is the team's: `dlipy3` bound to that interpreter (their model.json unchanged), the
kernel folder staged without a model (it holds its code; weights are random unless given), one
`deploy create` from the example entry (its start-up timeout and memory_allocation), then
base64 PNG tiles as requests. The baseline calls the kernel's `segment` in fresh processes
pinned to the same CPUs with the same torch threads (1 kernel: 2 CPUs; 2 kernels: 1 CPU each,
in parallel). The two alternate round by round (k tiles in-process, k through the service, ...)
while both are loaded, so a busy machine slows both alike; each side's rounds are timed whole.
Prints the throughput ratio (median round time in-process over through the service), each
side's p50 per tile, and each kernel's peak memory.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mlops_widgets import examples
from mlops_widgets.backends import get_backend
from mlops_widgets.backends.local.inference.procs import process_tree
from mlops_widgets.workspace import Workspace

KERNEL_DIR = Path(examples.__file__).parent / "deepliif_kernel"
WORKER = r"""
import os, sys, time, types
sys.path.insert(0, sys.argv[1])
for name in ("redhareapiversion", "wmla_edi_utils"):
    sys.modules[name] = types.ModuleType(name)
shim = types.ModuleType("redhareapi"); shim.Kernel = object; sys.modules["redhareapi"] = shim
cpus = {int(c) for c in sys.argv[2].split(",")}
threads, size = int(sys.argv[3]), int(sys.argv[4])
os.sched_setaffinity(0, cpus)
import numpy as np, torch
import kernel
torch.set_num_threads(threads)
nets = kernel.build_networks()
rgb = (np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8)
kernel.segment(nets, rgb)  # warm-up, as the service's warm call
print("ready", flush=True)
for _ in sys.stdin:  # one tile per line asked
    t0 = time.perf_counter(); kernel.segment(nets, rgb)
    print(f"time {time.perf_counter() - t0}", flush=True)
"""


def tile_body(size: int) -> bytes:
    rgb = (np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    return json.dumps({"local_input_image": base64.b64encode(buffer.getvalue()).decode()}).encode()


class InProcess:
    """`kernels` fresh processes of the runtime holding the network (each pinned as a kernel
    would be, on a GPU of its own with `gpu`); `round()` runs one tile in each, in parallel."""

    def __init__(self, python: str, kernels: int, size: int, gpu: bool) -> None:
        cpus = sorted(os.sched_getaffinity(0))
        per = max(1, len(cpus) // kernels)  # as the kernels get them: n_cpus = CPUs / kernels
        mine = [",".join(map(str, cpus[i * per : (i + 1) * per] or cpus[:per])) for i in range(kernels)]
        self.procs = [
            subprocess.Popen(
                [python, "-c", WORKER, str(KERNEL_DIR), mine[i], str(per), str(size)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "CUDA_VISIBLE_DEVICES": str(i) if gpu else ""},
            )
            for i in range(kernels)
        ]
        for proc in self.procs:
            self._answer(proc, "ready")

    @staticmethod
    def _answer(proc: subprocess.Popen[str], word: str) -> str:
        assert proc.stdout is not None
        for line in proc.stdout:  # deepliif prints as it builds each network
            if line.startswith(word):
                return line
        raise RuntimeError(f"the in-process worker ended (exit {proc.wait()})")

    def round(self) -> tuple[float, list[float]]:
        t0 = time.perf_counter()
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        times = [float(self._answer(p, "time").split()[1]) for p in self.procs]
        return time.perf_counter() - t0, times

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


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


@contextlib.contextmanager
def deployed(python: str, kernels: int, gpu: bool) -> Iterator[Any]:
    """The DeepLIIF folder deployed with `kernels` kernels in a fresh workspace, the team's way:
    dlipy3 bound to the runtime, staged without a model, one `deploy create` from its entry."""
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
        run("deploy", "create", "--model-asset-id", staged.strip().rsplit(" ", 1)[-1], "--name", "deepliif")
        try:
            yield get_backend("local", Workspace(Path(env["MLOPS_HOME"]))).inference
        finally:
            run("deploy", "stop", "--name", "deepliif")
            subprocess.run([*mlops, "service", "stop"], env=env, capture_output=True)


def service_round(inference: Any, kernels: int, body: bytes) -> tuple[float, list[float]]:
    """One tile through the service per kernel, in parallel: (the round's time, each tile's)."""
    times: list[float] = []

    def client() -> None:
        t0 = time.perf_counter()
        answer = json.loads(inference.infer("deepliif", body))
        assert answer["status"] == "finished", answer
        times.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    clients = [threading.Thread(target=client) for _ in range(kernels)]
    [t.start() for t in clients]
    [t.join() for t in clients]
    return time.perf_counter() - t0, times


def measure(python: str, kernels: int, rounds: int, size: int, gpu: bool) -> str:
    body = tile_body(size)
    with deployed(python, kernels, gpu) as inference:
        service_round(inference, kernels, body)  # warm: one call per kernel
        local = InProcess(python, kernels, size, gpu)
        try:
            ours: list[tuple[float, list[float]]] = []
            theirs: list[tuple[float, list[float]]] = []
            for _ in range(rounds):
                theirs.append(local.round())
                ours.append(service_round(inference, kernels, body))
        finally:
            local.close()
        pids = [k.pid for k in inference.view("deepliif").kernels if k.pid]
        peak = max(peak_rss_mb(pid) for pid in pids)
    ratio = statistics.median([t for t, _ in theirs]) / statistics.median([t for t, _ in ours])
    p50_ours = statistics.median([x for _, ts in ours for x in ts])
    p50_theirs = statistics.median([x for _, ts in theirs for x in ts])
    return (
        f"{kernels} kernel(s), {size}x{size}, {rounds} rounds: throughput ratio {ratio:.3f} of in-process"
        f" | p50 per tile {p50_ours:.2f} s through the service, {p50_theirs:.2f} s in-process"
        f" | kernel peak memory {peak:.0f} MB" + (" (GPU)" if gpu else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--python", default=os.environ.get("MLOPS_DEEPLIIF_PYTHON"), help="the runtime's Python"
    )
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (a tile per kernel each)")
    parser.add_argument("--size", type=int, default=512, help="tile side (a multiple of 512)")
    parser.add_argument("--gpu", action="store_true", help="kernels and baseline on GPUs, one each")
    parser.add_argument("--kernels", type=int, nargs="+", default=[1, 2], help="kernel counts to measure")
    args = parser.parse_args()
    if not args.python:
        sys.exit("give the DeepLIIF runtime's Python with --python (or $MLOPS_DEEPLIIF_PYTHON)")
    print(f"load average at start: {os.getloadavg()[0]:.1f}; {os.cpu_count()} CPUs")
    for kernels in args.kernels:
        print(measure(args.python, kernels, args.rounds, args.size, args.gpu), flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
