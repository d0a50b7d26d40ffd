"""The machine's GPUs, handed to exclusive kernels one each (service-wide)."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

from mlops_widgets.settings import GPUS


def detect_gpus() -> list[str]:
    """GPU indices this machine offers: $MLOPS_GPUS (a comma list restricting what the service
    hands out), else `nvidia-smi -L`, else /proc/driver/nvidia/gpus."""
    chosen = os.environ.get(GPUS.env)  # set but empty: no GPU
    if chosen is not None:
        return [g.strip() for g in chosen.split(",") if g.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]
    except (OSError, subprocess.SubprocessError):
        pass
    proc = Path("/proc/driver/nvidia/gpus")
    return [str(i) for i in range(len(list(proc.iterdir())))] if proc.is_dir() else []


class Gpus:
    """The machine's GPUs, each held by at most one exclusive kernel at a time (service-wide)."""

    def __init__(self) -> None:
        self.ids = detect_gpus()
        self._free = list(self.ids)
        self._lock = threading.Lock()

    def take(self) -> str | None:
        with self._lock:
            return self._free.pop(0) if self._free else None

    def give(self, gpu: str) -> None:
        with self._lock:
            if gpu not in self._free:
                self._free.append(gpu)
                self._free.sort(key=self.ids.index)
