"""The Jupyter server while a template run executes: GET /api/status latency during a re-run
started through the server extension (a job in its own process, the kernel busy on the CPU),
beside the same server's latency with nothing running; and how long starting the run takes to
answer (202 once the run is recorded).

    .venv/bin/python benchmarks/bench_server_jobs.py [--requests 50] [--seconds 20]

Before jobs, a re-run ran inside the request (asyncio.to_thread in the server's process): the
POST answered only when the run ended.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat

TOKEN = "bench-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict, float]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Authorization": f"token {TOKEN}"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        out = json.loads(r.read() or b"null")
        return r.status, out, time.perf_counter() - t0


def _latencies(url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        out.append(_call(f"{url}/api/status")[2] * 1000)
        time.sleep(0.05)
    return out


def _show(label: str, ms: list[float]) -> None:
    ms = sorted(ms)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    print(f"{label:<34} p50 {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms   max {ms[-1]:7.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=20, help="how long the run keeps its kernel busy")
    args = ap.parse_args()
    from mlops_widgets.runner import run_template

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ws, root = base / "ws", base / "files"
        root.mkdir()
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        params = nbformat.v4.new_code_cell("seconds = 0  # how long to keep the CPU busy")
        params.metadata["tags"] = ["parameters"]
        busy = "import time\nt = time.time()\nwhile time.time() - t < seconds:\n    sum(range(10000))"
        nb.cells = [
            nbformat.v4.new_markdown_cell("# Busy: a CPU-bound step"),
            params,
            nbformat.v4.new_code_cell(busy),
        ]
        template = base / "Busy.ipynb"
        nbformat.write(nb, template)
        first = run_template(template, workspace=ws, backend="local")
        assert first.ok, first.error
        port = _free_port()
        env = dict(
            os.environ,
            MLOPS_HOME=str(ws),
            JUPYTER_CONFIG_DIR=str(base / "cfg"),
            JUPYTER_RUNTIME_DIR=str(base / "rt"),
        )
        lab = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={port}", f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    _call(f"{url}/api/status")
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.25)
            _show("/api/status, nothing running", _latencies(url, args.requests))
            status, job, took = _call(
                f"{url}/mlops/runs/{first.run_id}/rerun", "POST", {"params": {"seconds": args.seconds}}
            )
            print(
                f"POST rerun answered {status} in {took * 1000:.0f} ms (run {job['short_id']} recorded, running)"
            )
            _show("/api/status, a run executing", _latencies(url, args.requests))
            _call(f"{url}/mlops/jobs/{job['job_id']}/cancel", "POST", {})
            while _call(f"{url}/mlops/jobs/{job['job_id']}")[1]["state"] != "ended":
                time.sleep(0.2)
        finally:
            lab.terminate()
            lab.wait(timeout=30)
            from mlops_widgets.backends.local.inference import stop_service

            stop_service(ws)


if __name__ == "__main__":
    main()
