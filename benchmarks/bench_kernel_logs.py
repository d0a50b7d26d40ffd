"""Kernel logs: writing through `KernelLog` (per-line pod prefix, secret masking, rotation) beside
plain writes of the same bytes, and `deploy logs --tail N` (read from the end) beside reading the
whole log as `deploy logs` did before (time and peak memory).

Run: .venv/bin/python benchmarks/bench_kernel_logs.py [--mb 30] [--tail 50]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_widgets.backends.local.inference.kernel_logs import KernelLog, log_files, read_lines

LINE = b"2026-11-30 12:00:00.000 INFO tile 0042 scored in 0.12 s, mean intensity 0.4711 " + b"x" * 40 + b"\n"
CHUNK = LINE * 500  # what one read of a kernel's pipe brings


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(seconds, peak MB of Python allocations, result)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=30.0, help="kernel output to write, in MB")
    parser.add_argument("--tail", type=int, default=50)
    args = parser.parse_args()
    chunks = int(args.mb * 2**20 / len(CHUNK))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        def plain() -> None:
            fd = os.open(root / "plain.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            for _ in range(chunks):
                os.write(fd, CHUNK)
            os.close(fd)

        logs = root / "logs"
        env = {"MLOPS_KERNEL_LOG_MB": str(args.mb / 3), "MLOPS_KERNEL_LOG_FILES": "3"}

        def ours() -> None:
            log = KernelLog(logs, secrets=["s3cr3t-api-key-value"], environ=env)
            for _ in range(chunks):
                log.feed("dep-1-abcde", CHUNK)
            log.close()

        base_w, _, _ = _timed(plain)
        ours_w, _, _ = _timed(ours)
        mb = chunks * len(CHUNK) / 2**20
        print(
            f"write {mb:.0f} MB: plain {base_w:.3f} s, KernelLog (prefix, mask, rotate) {ours_w:.3f} s, "
            f"ratio {ours_w / base_w:.2f}; files {[p.name for p in log_files(logs)]}"
        )

        def whole() -> list[str]:
            text = "\n".join(p.read_text(errors="replace") for p in log_files(logs))
            return text.splitlines()[-args.tail :]

        def tail() -> list[str]:
            return list(read_lines(logs, tail=args.tail))

        base_t, base_m, expected = _timed(whole)
        ours_t, ours_m, got = _timed(tail)
        assert [line.split("] ", 1)[1] for line in got] == [line.split("] ", 1)[1] for line in expected]
        print(
            f"tail {args.tail} of {mb:.0f} MB: read-all {base_t * 1000:.1f} ms / {base_m:.1f} MB peak, "
            f"read_lines(tail) {ours_t * 1000:.2f} ms / {ours_m:.2f} MB peak, "
            f"ratio time {ours_t / base_t:.4f}, memory {ours_m / base_m:.4f}"
        )


if __name__ == "__main__":
    main()
