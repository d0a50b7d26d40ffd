"""Check, on a machine with NVIDIA GPUs, that a deployment with enable_gpus gives each kernel a
GPU of its own: CUDA_VISIBLE_DEVICES set per kernel, and CUDA inside the kernel sees exactly that
one device and can compute on it. Not a test (CI has no GPU); run it where GPUs are:

    PYTHONPATH=. python3 tools/gpu_check.py

It prints one line per kernel and exits 1 when a kernel saw no GPU, or two kernels shared one.
With `--deepliif PYTHON` (a runtime with CUDA torch and deepliif, see
tools/make_deepliif_runtime.sh) it then runs the real network's benchmark on the GPUs
(benchmarks/bench_deepliif.py --gpu: one GPU per kernel, through CUDA_VISIBLE_DEVICES) and
prints its ratio to the same network in-process on a GPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mlops_widgets.backends.local.inference import LocalInference, stop_service
from mlops_widgets.backends.local.inference.gpus import detect_gpus
from mlops_widgets.workspace import Workspace

KERNEL = """\
import redhareapiversion
from redhareapi import Kernel
import json, os, time

class GpuKernel(Kernel):
    def on_kernel_start(self, kernel_context):
        import torch
        self.torch = torch

    def on_task_invoke(self, task_context):
        while task_context is not None:
            torch = self.torch
            x = torch.ones(1024, 1024, device="cuda")
            total = float((x @ x).sum())
            time.sleep(0.5)
            task_context.set_output_data(json.dumps({
                "pod": os.environ.get("MSD_POD_NAME"),
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "device_count": torch.cuda.device_count(),
                "device": torch.cuda.get_device_name(0),
                "matmul_sum": total,
            }))
            task_context = task_context.next()

if __name__ == "__main__":
    GpuKernel().run()
"""


def main() -> int:
    gpus = detect_gpus()
    print(f"GPUs detected: {gpus}")
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        folder = Path(tmp) / "gpu"
        folder.mkdir()
        (folder / "kernel.py").write_text(KERNEL)
        (folder / "README.md").write_text("gpu check\n")
        (folder / "model.json").write_text(json.dumps({"name": "gpu-check", "kernel_path": "kernel.py"}))
        inference = LocalInference(ws)
        try:
            inference.deploy("gpu-check", folder)
            want = max(1, len(gpus))
            # torch with a CUDA context holds a few GB of host memory: more than the default 1024 MB.
            inference.update_profile(
                "gpu-check",
                {
                    "kernel": {"gpu": "exclusive"},
                    "policy": {"kernel_min": want, "kernel_max": want + 1},
                    "resource_allocation": {"kernel": {"resources": "mem_limit=16384"}},
                },
            )
            inference.start("gpu-check")
            deadline = time.monotonic() + 120
            while (
                inference.view("gpu-check").status not in ("IDLE", "FAILED") and time.monotonic() < deadline
            ):
                time.sleep(0.2)
            view = inference.view("gpu-check")
            print(f"status {view.status}, warnings {list(view.warnings)}")
            print("kernels:", [(k.pod, k.gpu) for k in view.kernels])
            answers: list[dict] = []
            threads = [
                threading.Thread(
                    target=lambda: answers.append(json.loads(inference.infer("gpu-check", b"{}")))
                )
                for _ in range(2 * want)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            by_pod = {a["pod"]: a for a in answers}
            for a in by_pod.values():
                print(json.dumps(a))
            kernels = inference.view("gpu-check").kernels
            devices = [k.gpu for k in kernels]
            ok = (
                bool(gpus)
                and all(a["device_count"] == 1 for a in answers)
                and len(set(devices)) == len(devices)
                and None not in devices
                and all(by_pod[k.pod]["cuda_visible_devices"] == k.gpu for k in kernels if k.pod in by_pod)
            )
            print("one GPU per kernel:", "OK" if ok else "FAILED")
            if not ok:
                print("\n".join(inference.logs("gpu-check", tail=60)))
            return 0 if ok else 1
        finally:
            inference.stop("gpu-check")
            stop_service(ws)


def deepliif(python: str, gpus: int) -> int:
    """The real network's benchmark on the GPUs: 1 kernel, and one per GPU when there are more."""
    kernels = sorted({1, gpus}) if gpus else [1]
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_deepliif.py"
    command = [sys.executable, str(bench), "--python", python, "--gpu", "--rounds", "8"]
    return subprocess.run([*command, "--kernels", *map(str, kernels)], check=False).returncode


if __name__ == "__main__":
    code = main()
    if code == 0 and "--deepliif" in sys.argv:
        code = deepliif(sys.argv[sys.argv.index("--deepliif") + 1], len(detect_gpus()))
    sys.exit(code)
