"""Foundation figures, each beside its baseline measured in the same run.

1. `mlops --help` start-up beside `python -c pass` (the interpreter's own floor).
2. Each class of bad input: exit code and wall time of `mlops prepare stage` (target: exit 1,
   under 2 s, nothing written).
3. Staging a 1 GB model folder (`mlops prepare stage`) beside `zip -r` of the same folder,
   and the staging process's peak memory (target: under 200 MB).

Run: .venv/bin/python benchmarks/bench_foundation.py [--size-mb 1024]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
EXAMPLES = Path(__file__).resolve().parent.parent / "mlops_widgets" / "examples"


def _median_seconds(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _timed_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[0]} failed")
    return elapsed, usage.ru_maxrss / 1024


def bench_startup(repeat: int) -> None:
    base = _median_seconds([sys.executable, "-c", "pass"], repeat)
    help_ = _median_seconds([str(BIN / "mlops"), "--help"], repeat)
    print(
        f"start-up    python -c pass {base * 1000:7.0f} ms | mlops --help {help_ * 1000:7.0f} ms "
        f"| ratio {help_ / base:5.2f}x  (median of {repeat})"
    )


BAD_INPUTS = {
    "unknown key": "model_nme: x\n",
    "bad threshold": "openscale_custom_metric_provider:\n  generic_metrics:\n    dir_gt: a\n    dir_pred: b\n"
    "    volume_display_name: v\n    most_recent: 1\n    thresholds:\n"
    "      num_images_total_predicted: {threshold: [.nan, lower]}\n",
    "bad resources": "wmla_deployment:\n  resource_configs:\n    kernel_min: 3\n    kernel_max: 1\n",
    "bad deployment name": "wmla_deployment:\n  deployment_name: My_Model\n",
    "path escapes volume": "openscale_custom_metric_provider:\n  generic_metrics:\n    dir_gt: ../etc\n"
    "    dir_pred: b\n    volume_display_name: v\n    most_recent: 1\n    thresholds: {}\n",
    "object tag": "model_name: !!python/object/apply:os.system [echo hi]\n",
    "duplicate key": "model_name: a\nmodel_name: b\n",
    "alias bomb": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)},"
        f" *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    ),
    "empty file": "",
    "list at top level": "- a\n",
}


def bench_bad_inputs() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-bad-") as tmp:
        root = Path(tmp)
        env = dict(os.environ, MLOPS_HOME=str(root / "ws"))
        worst = 0.0
        for label, text in BAD_INPUTS.items():
            bad = root / "bad.yml"
            bad.write_text(text)
            t0 = time.perf_counter()
            res = subprocess.run(
                [
                    str(BIN / "mlops"),
                    "prepare",
                    "stage",
                    "--path-model",
                    str(EXAMPLES / "model"),
                    "--path-dependency",
                    str(EXAMPLES / "deployment"),
                    "--path-yml",
                    str(bad),
                ],
                capture_output=True,
                text=True,
                env=env,
            )
            elapsed = time.perf_counter() - t0
            worst = max(worst, elapsed)
            first = res.stderr.strip().splitlines()[0] if res.stderr.strip() else ""
            print(f"bad input   {label:20s} exit {res.returncode} {elapsed * 1000:6.0f} ms  {first[:70]}")
        written = sorted(p.name for p in (root / "ws").rglob("*")) if (root / "ws").exists() else []
        print(
            f"bad input   worst {worst * 1000:.0f} ms (target < 2000 ms); files written: {written or 'none'}"
        )


def bench_stage(size_mb: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-stage-") as tmp:
        root = Path(tmp)
        model = root / "big-model"
        model.mkdir()
        chunk = os.urandom(1 << 20)  # weights do not compress: random bytes are the honest case
        per_file = 64
        for i in range(0, size_mb, per_file):
            with open(model / f"shard-{i // per_file:03d}.bin", "wb") as fh:
                for _ in range(min(per_file, size_mb - i)):
                    fh.write(chunk)
        zip_s, zip_mb = _timed_child(["sh", "-c", f"cd {root} && exec zip -q -r baseline.zip big-model"])
        env = dict(os.environ, MLOPS_HOME=str(root / "ws"))
        stage_s, stage_mb = _timed_child(
            [
                str(BIN / "mlops"),
                "prepare",
                "stage",
                "--path-model",
                str(model),
                "--path-dependency",
                str(EXAMPLES / "deployment"),
                "--path-yml",
                str(EXAMPLES / "deployment_metadata.yml"),
            ],
            env=env,
        )
        print(
            f"stage {size_mb} MB  zip -r {zip_s:7.2f} s | mlops prepare stage {stage_s:7.2f} s "
            f"| ratio {stage_s / zip_s:5.2f}x"
        )
        verdict = "ok" if stage_mb < 200 else "OVER TARGET"
        print(
            f"peak memory zip -r {zip_mb:7.1f} MB | mlops prepare stage {stage_mb:7.1f} MB "
            f"| target < 200 MB: {verdict}"
        )
        shutil.rmtree(root / "ws", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    bench_startup(args.repeat)
    bench_bad_inputs()
    bench_stage(args.size_mb)


if __name__ == "__main__":
    main()
