"""Inference through the local service against the limit: the kernel's on_task_invoke in-process.

For an empty task and a 20 ms sleeping task, with 1 and 2 kernels, prints requests per second
and p50/p99 latency through the service (k client threads on kept-alive connections, the real
`LocalInference.infer` path), beside the in-process rate times k and its latency.
Targets (issue 4): service rps >= 80% of k x in-process rps on the 20 ms task; added p50 < 3 ms
on the empty task.

    .venv/bin/python benchmarks/bench_inference.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import runpy
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from mlops_widgets.backends.local.inference import KERNEL_PATH, LocalInference, stop_service
from mlops_widgets.workspace import Workspace

KERNEL = """\
import redhareapiversion
from redhareapi import Kernel
import json, time

class BenchKernel(Kernel):
    def on_task_invoke(self, task_context):
        while task_context is not None:
            delay = json.loads(task_context.get_input_data()).get("sleep", 0)
            if delay:
                time.sleep(delay)
            task_context.set_output_data('{"ok": true}')
            task_context = task_context.next()

if __name__ == '__main__':
    BenchKernel().run()
"""

TASKS = {"empty": b"{}", "sleep 20 ms": json.dumps({"sleep": 0.020}).encode()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def in_process(folder: Path, body: bytes, seconds: float) -> tuple[float, list[float]]:
    """The limit: one kernel object called directly, no process or network in between."""
    sys.path.insert(0, str(KERNEL_PATH))
    import redhareapi

    kernel = runpy.run_path(str(folder / "kernel.py"), run_name="bench")["BenchKernel"]()
    latencies: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        kernel.on_task_invoke(redhareapi.TaskContext(body))
        latencies.append(time.perf_counter() - t0)
    return len(latencies) / (time.perf_counter() - start), latencies


def through_service(
    inference: LocalInference, name: str, body: bytes, clients: int, seconds: float
) -> tuple[float, list[float]]:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop = threading.Event()

    def client(mine: list[float]) -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            inference.infer(name, body)
            mine.append(time.perf_counter() - t0)

    for _ in range(20):  # warm every kept-alive connection and kernel
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


def wait_idle(inference: LocalInference, name: str) -> None:
    for _ in range(400):
        if inference.view(name)["status"] == "IDLE":
            return
        time.sleep(0.025)
    raise SystemExit(f"deployment {name} did not become ready: {inference.view(name)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per row")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bench"
        folder.mkdir()
        (folder / "kernel.py").write_text(KERNEL)
        (folder / "README.md").write_text("benchmark kernel\n")
        (folder / "model.json").write_text(json.dumps({"name": "bench", "kernel_path": "kernel.py"}))
        ws = Workspace(Path(tmp) / "ws")
        inference = LocalInference(ws)
        rows = []
        try:
            for k in (1, 2):
                name = f"bench-{k}"
                inference.deploy(name, folder)
                inference.update_profile(name, {"policy": {"kernel_min": k, "kernel_max": k}})
                inference.start(name)
                wait_idle(inference, name)
                for task, body in TASKS.items():
                    base_rps, base_lat = in_process(folder, body, args.seconds)
                    rps, lat = through_service(inference, name, body, k, args.seconds)
                    rows.append((task, k, base_rps, base_lat, rps, lat))
                inference.stop(name)
        finally:
            stop_service(ws)

    print(
        f"{'task':<12} {'k':>2} | {'in-process':>10} {'k x limit':>10} | {'service':>9} {'ratio':>6} | "
        f"{'p50 in-proc':>11} {'p50 service':>11} {'added':>8} | {'p99 service':>11}"
    )
    print("-" * 112)
    for task, k, base_rps, base_lat, rps, lat in rows:
        p50_base, p50 = statistics.median(base_lat) * 1e3, statistics.median(lat) * 1e3
        print(
            f"{task:<12} {k:>2} | {base_rps:>8.0f}/s {k * base_rps:>8.0f}/s | {rps:>7.0f}/s "
            f"{rps / (k * base_rps):>6.1%} | {p50_base:>8.3f} ms {p50:>8.3f} ms {p50 - p50_base:>5.2f} ms | "
            f"{percentile(lat, 0.99) * 1e3:>8.3f} ms"
        )
    print("\ntargets: ratio >= 80% on 'sleep 20 ms'; added p50 < 3 ms on 'empty'")


if __name__ == "__main__":
    main()
