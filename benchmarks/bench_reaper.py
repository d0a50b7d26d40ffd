"""What running a command under the reaper costs (every deployment kernel, template-run kernel and
training worker runs under one), beside the same command started directly.

The figure is the wall time from start to exit of `python -c pass`, median of several.

Run: .venv/bin/python benchmarks/bench_reaper.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from mlops_widgets.backends.local import reaper


def _median(command: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(command, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    command = [sys.executable, "-c", "pass"]
    base = _median(command, args.repeat)
    ours = _median(reaper.wrap(command), args.repeat)
    print(
        f"start to exit: direct {base * 1000:.1f} ms, under the reaper {ours * 1000:.1f} ms, ratio {ours / base:.2f}"
    )


if __name__ == "__main__":
    main()
