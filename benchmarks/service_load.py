"""What the inference benchmarks share: a kernel function called in-process (the limit), load
through the local service on kept-alive connections (the real `LocalInference.infer` path), and
a deployment started and ready. Imported by `bench_inference.py` and `bench_payload.py`."""

from __future__ import annotations

import json
import runpy
import sys
import threading
import time
from pathlib import Path

from mlops_widgets.backends.local.inference import KERNEL_PATH, LocalInference

AT_LEAST = 3  # calls per measurement, however slow each is


def write_kernel_folder(folder: Path, kernel: str) -> Path:
    """A submission folder holding `kernel` as kernel.py."""
    folder.mkdir(parents=True)
    (folder / "kernel.py").write_text(kernel)
    (folder / "README.md").write_text("benchmark kernel\n")
    (folder / "model.json").write_text(json.dumps({"name": folder.name, "kernel_path": "kernel.py"}))
    return folder


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def in_process(folder: Path, kernel_class: str, body: bytes, seconds: float) -> tuple[float, list[float]]:
    """The limit: one kernel object called directly, no process or network in between; calls per
    second and each call's latency."""
    sys.path.insert(0, str(KERNEL_PATH))
    import redhareapi

    kernel = runpy.run_path(str(folder / "kernel.py"), run_name="bench")[kernel_class]()
    latencies: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(latencies) < AT_LEAST:
        t0 = time.perf_counter()
        kernel.on_task_invoke(redhareapi.TaskContext(body))
        latencies.append(time.perf_counter() - t0)
    return len(latencies) / (time.perf_counter() - start), latencies


def through_service(
    inference: LocalInference, name: str, body: bytes, clients: int, seconds: float, warm: int = AT_LEAST
) -> tuple[float, list[float]]:
    """`clients` threads sending `body` for `seconds` after `warm` calls; requests per second and
    each request's latency."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop = threading.Event()

    def client(mine: list[float]) -> None:
        while not stop.is_set() or len(mine) < AT_LEAST:
            t0 = time.perf_counter()
            inference.infer(name, body)
            mine.append(time.perf_counter() - t0)

    for _ in range(warm):  # warm the kept-alive connections and kernels
        inference.infer(name, body)
    threads = [threading.Thread(target=client, args=(lat,)) for lat in latencies]
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    flat = [x for lat in latencies for x in lat]
    return len(flat) / elapsed, flat


def started(inference: LocalInference, name: str, folder: Path, kernels: int, pipe: int = 1) -> None:
    """Deploy `folder` as `name` with exactly `kernels` kernels, each sent up to `pipe` tasks
    ahead (task_pipe_size), and wait until they serve."""
    inference.deploy(name, folder)
    policy = {"kernel_min": kernels, "kernel_max": kernels, "task_pipe_size": pipe}
    inference.update_profile(name, {"policy": policy})
    inference.start(name)
    for _ in range(2400):
        if inference.view(name).status == "IDLE":
            return
        time.sleep(0.025)
    raise SystemExit(f"deployment {name} did not become ready: {inference.view(name)}")
