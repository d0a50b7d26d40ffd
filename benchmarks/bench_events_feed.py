"""What the change feed costs: an event record with its publication beside the same record with
publication switched off (the baseline, same run, same workspace kind), publishing alone, and a
follower's read of what is new in a feed at its bound (10,000 rows).

Run: .venv/bin/python benchmarks/bench_events_feed.py [--n 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mlops_widgets import events_feed
from mlops_widgets.runner import events, trail
from mlops_widgets.workspace import Workspace


def _ms(n: int, action: Callable[[int], object]) -> tuple[float, float]:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        action(i)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), statistics.quantiles(times, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    n = parser.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        with_feed, without = Workspace(Path(tmp) / "feed"), Workspace(Path(tmp) / "nofeed")
        params = {"deployment_name": "d"}
        real = events_feed.publish
        trail.events_feed.publish = lambda *a, **k: None  # type: ignore[assignment]
        try:
            base = _ms(n, lambda i: events.record(without, "deploy.start", params))
        finally:
            trail.events_feed.publish = real  # type: ignore[assignment]
        fed = _ms(n, lambda i: events.record(with_feed, "deploy.start", params))
        alone = _ms(n, lambda i: events_feed.publish(with_feed, "job", f"j{i}", state="running"))
        for i in range(events_feed.KEEP):
            events_feed.publish(with_feed, "job", f"fill{i}", state="running")
        last = events_feed.last_seq(with_feed)
        read = _ms(n, lambda i: events_feed.since(with_feed, last - 1))
        rows = len(events_feed.since(with_feed, 0, limit=10 * events_feed.KEEP))
    print(f"event record, feed off (baseline): median {base[0]:.2f} ms, p95 {base[1]:.2f} ms")
    print(f"event record, feed on:             median {fed[0]:.2f} ms, p95 {fed[1]:.2f} ms")
    print(f"publish alone:                     median {alone[0]:.2f} ms, p95 {alone[1]:.2f} ms")
    print(f"since(last - 1) on {rows} rows:     median {read[0]:.2f} ms, p95 {read[1]:.2f} ms")


if __name__ == "__main__":
    main()
