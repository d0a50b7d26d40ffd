"""The local service over many scheduled evaluations: what it holds after 100 and after N
(default 2,000) evaluations, and what one evaluation costs beyond computing its metrics.

A fresh workspace with D deployments (default 4), each with both monitors scheduled every
second (the minimum interval lowered to 1 s), run by the workspace's service as template runs
A5_Monitor_Evaluation. At 100 and at N finished evaluations the schedules are paused, the
service left to settle (no evaluation running, its numbers unchanged for 3 s), and its threads,
open file descriptors and resident memory read from /proc. Targets: threads and fds within 5%,
RSS within +20 MB from 100 to N.

CPU per evaluation: the service's CPU time and its reaped children's (the kernels) between the
two marks, divided by the evaluations in between, beside the baseline measured in the same run:
the same monitors' metrics computed in this process (`ops.monitor.monitor_run`, warm imports),
CPU time per evaluation of one monitor. Target: the difference (an evaluation's overhead: kernel,
papermill, audit trail, scheduling) under 0.5 CPU-second.

Run: .venv/bin/python benchmarks/bench_soak.py [--evaluations 2000] [--deployments 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

os.environ["MLOPS_MIN_SCHEDULE_S"] = "1"

from mlops_widgets.backends import get_backend  # noqa: E402
from mlops_widgets.backends.local.inference import service_info, stop_service  # noqa: E402
from mlops_widgets.config import new_entry, validate_entry  # noqa: E402
from mlops_widgets.monitors.definitions import GENERIC, SEGMENTATION  # noqa: E402
from mlops_widgets.ops import monitor, schedule, space  # noqa: E402
from mlops_widgets.runner import list_runs  # noqa: E402
from mlops_widgets.workspace import Workspace  # noqa: E402

TEMPLATE = "A5_Monitor_Evaluation"
TICK = os.sysconf("SC_CLK_TCK")


def write_masks(folder: Path, n: int, size: int = 64) -> None:
    rng = np.random.default_rng(0)
    for sub in ("gt", "pred"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        gt = np.zeros((size, size, 3), np.uint8)
        gt[..., 0] = (rng.random((size, size)) < 0.4) * 255
        gt[..., 2] = (rng.random((size, size)) < 0.3) * 255
        pred = np.where(rng.random((size, size, 3)) > 0.8, 255 - gt, gt).astype(np.uint8)
        Image.fromarray(gt).save(folder / "gt" / f"img{i}_Seg.png")
        Image.fromarray(pred).save(folder / "pred" / f"img{i}_Seg.png")


def setup(ws: Workspace, deployments: int) -> list[str]:
    ws.open()  # a workspace first: mlops refuses a folder holding files it did not make
    backend = get_backend("local", ws)
    write_masks(ws.root / "volumes" / "vol" / "eval", 8)
    monitor.provider_create(backend)
    common = {"dir_gt": "eval/gt", "dir_pred": "eval/pred", "volume_display_name": "vol", "most_recent": 7}
    names = []
    for d in range(deployments):
        name = f"soak{d}"
        entry = new_entry()
        entry["wmla_deployment"]["deployment_name"] = name
        entry["wmla_deployment"]["deployment_url"] = f"http://127.0.0.1:1/dlim/v1/inference/{name}"
        entry["openscale_custom_metric_provider"] = {
            "segmentation_metrics": {**common, "thresholds": SEGMENTATION.default_thresholds()},
            "generic_metrics": {**common, "thresholds": GENERIC.default_thresholds()},
        }
        entry, _ = validate_entry(entry)
        space.add_entries(backend, {f"asset-{d}": entry})
        monitor.monitor_create(backend, name)
        names.append(name)
    return names


def finished(ws: Workspace) -> int:
    return sum(r.status in ("ok", "failed") for r in list_runs(ws, template=TEMPLATE))


def usage(pid: int) -> dict[str, float]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return {
        "threads": int(status["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        # utime, stime, cutime, cstime: fields 14-17 of stat (12-15 after the command)
        "cpu_s": sum(int(x) for x in stat[11:15]) / TICK,
    }


def settled(ws: Workspace, names: list[str], pid: int) -> dict[str, float]:
    """Pause every schedule, wait until no evaluation runs and the numbers stay put for 3 s."""
    backend = get_backend("local", ws)
    for name in names:
        schedule.set_schedule(backend, name, paused=True)
    while any(r.status == "running" for r in list_runs(ws, template=TEMPLATE)):
        time.sleep(0.5)
    seen: list[tuple[float, float]] = []
    while len(seen) < 15 or len(set(seen[-15:])) > 1:
        u = usage(pid)
        seen.append((u["threads"], u["fds"]))
        time.sleep(0.2)
        if len(seen) > 300:
            break
    return usage(pid)


def run_until(ws: Workspace, names: list[str], count: int) -> float:
    backend = get_backend("local", ws)
    for name in names:
        schedule.set_schedule(backend, name, paused=False)
    t0 = time.monotonic()
    last = -1
    while (n := finished(ws)) < count:
        if n // 100 != last // 100:
            print(f"  {n} evaluations ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
        last = n
        time.sleep(1.0)
    return time.monotonic() - t0


def baseline_cpu(ws: Workspace, name: str, repeat: int) -> float:
    """CPU seconds of computing one monitor's metrics in this process (median)."""
    backend = get_backend("local", ws)
    monitor.monitor_run(backend, name, "segmentation_metrics")  # imports, caches
    times = []
    for _ in range(repeat):
        for mid in ("segmentation_metrics", "generic_metrics"):
            t0 = time.process_time()
            monitor.monitor_run(backend, name, mid)
            times.append(time.process_time() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=2000)
    parser.add_argument("--deployments", type=int, default=4)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-soak-")) / "ws"
    os.environ["MLOPS_HOME"] = str(root)
    ws = Workspace(root)
    names = setup(ws, args.deployments)
    try:
        base = baseline_cpu(ws, names[0], 5)
        backend = get_backend("local", ws)
        for name in names:
            schedule.set_schedule(backend, name, every="1s")  # starts the service
        pid = service_info(ws)["pid"]
        run_until(ws, names, 100)
        at100 = settled(ws, names, pid)
        done100 = finished(ws)
        wall = run_until(ws, names, args.evaluations)
        at_n = settled(ws, names, pid)
        done_n = finished(ws)
        assert service_info(ws)["pid"] == pid, "the service was restarted during the soak"
    finally:
        stop_service(ws)
    per_eval = (at_n["cpu_s"] - at100["cpu_s"]) / max(1, done_n - done100)
    print(f"service after {done100} and after {done_n} scheduled evaluations ({wall:.0f} s between)")
    print(f"{'':24}{'after ' + str(done100):>14}{'after ' + str(done_n):>14}{'change':>10}  target")
    for key, label, target in (
        ("threads", "threads", "within 5%"),
        ("fds", "open file descriptors", "within 5%"),
        ("rss_mb", "resident memory (MB)", "+20 MB"),
    ):
        a, b = at100[key], at_n[key]
        change = f"{(b - a) / a * 100:+.1f}%" if key != "rss_mb" else f"{b - a:+.1f} MB"
        print(f"{label:24}{a:>14.1f}{b:>14.1f}{change:>10}  {target}")
    print(
        f"CPU per evaluation (service + its kernels): {per_eval:.2f} s; baseline, one monitor's "
        f"metrics computed in-process: {base:.2f} s; overhead {per_eval - base:.2f} s (target < 0.5 s)"
    )


if __name__ == "__main__":
    main()
