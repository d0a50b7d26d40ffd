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
import statistics
import tempfile
from pathlib import Path

from service_load import in_process, percentile, started, through_service, write_kernel_folder

from mlops_widgets.backends.local.inference import LocalInference, stop_service
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per row")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_kernel_folder(Path(tmp) / "bench", KERNEL)
        ws = Workspace(Path(tmp) / "ws")
        inference = LocalInference(ws)
        rows = []
        try:
            for k in (1, 2):
                name = f"bench-{k}"
                started(inference, name, folder, k)
                for task, body in TASKS.items():
                    base_rps, base_lat = in_process(folder, "BenchKernel", body, args.seconds)
                    rps, lat = through_service(inference, name, body, k, args.seconds, warm=20)
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
