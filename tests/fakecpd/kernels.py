"""Kernels for the fake WMLA: a started deployment's uploaded package run by the local backend's
EDI kernel machinery (`KernelPool`: one process per kernel running the unmodified kernel file
through the redhareapi protocol, the profile's policy, kernel.envs and mk_environments).

The fake cluster thus executes what the cpd backend uploaded, byte for byte, instead of
echoing: the same machinery the embedded backend trusts, reused here because writing a second
EDI runtime for a test double would test nothing more. What differs from WMLA (process
isolation, scheduling, GPUs) is the local backend's, documented there.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from mlops_widgets.backends.local.inference.gpus import Gpus
from mlops_widgets.backends.local.inference.pool import KernelPool
from mlops_widgets.backends.local.inference.tasks import ServiceError


class KernelExecutor:
    """`executor(name, files, profile, body) -> (status, body)` for `Dlim.executor`."""

    def __init__(self, ca_bundle: Path | None = None) -> None:
        """`ca_bundle`: the cluster's CA, which a kernel's system trust store has on a real
        cluster (given to kernels as REQUESTS_CA_BUNDLE: a public certificate, no secret)."""
        self.ca_bundle = ca_bundle
        self.root = Path(tempfile.mkdtemp(prefix="fakecpd-kernels-"))
        self.pools: dict[str, KernelPool] = {}
        self.lock = threading.Lock()
        self.gpus = Gpus()

    def _pool(self, name: str, files: dict[str, bytes], profile: dict[str, Any]) -> KernelPool:
        with self.lock:
            pool = self.pools.get(name)
            if pool is not None:
                return pool
            base = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))
            model_dir = base / "model"
            for rel, data in files.items():
                target = model_dir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            if self.ca_bundle is not None:
                profile = copy.deepcopy(profile)
                kernel = profile.setdefault("kernel", {})
                kernel["envs"] = [
                    *(kernel.get("envs") or []),
                    {"name": "REQUESTS_CA_BUNDLE", "value": str(self.ca_bundle)},
                ]
            pool = KernelPool(
                name,
                {"model": json.loads(files["model.json"]), "profile": profile},
                model_dir=model_dir,
                logs_dir=base / "logs",
                run_dir=base / "run",
                custom_args={},
                secret_args={},  # the cpd backend injected them into the kernel file
                python=sys.executable,
                gpus=self.gpus,
            )
            (base / "logs").mkdir()
            (base / "run").mkdir()
            pool.start()
            self.pools[name] = pool
            return pool

    def __call__(
        self, name: str, files: dict[str, bytes], profile: dict[str, Any], body: bytes
    ) -> tuple[int, bytes]:
        pool = self._pool(name, files, profile)
        answered = threading.Event()
        try:
            task = pool.submit(body, lambda _task: answered.set())
        except ServiceError as exc:
            return exc.status, json.dumps({"error": str(exc)}).encode()
        if not answered.wait(pool.wait_limit()):
            return 504, json.dumps({"error": str(pool.give_up(task))}).encode()
        return task.status, task.output

    def stop(self, name: str) -> None:
        with self.lock:
            pool = self.pools.pop(name, None)
        if pool is not None:
            pool.stop()

    def stop_all(self) -> None:
        for name in list(self.pools):
            self.stop(name)
