"""The embedded inference backend: a local service speaking WMLA EDI's `/dlim/v1`, running
unmodified EDI kernel files in their own processes (see `service.py`, `server.py`, `pool.py`).

Public API:
    LocalInference(workspace)       the `Inference` protocol (backends/inference_protocol.py) for the workspace
    stop_service(workspace) -> bool stop the workspace's service and all its kernels (tests' teardown)
    start_service(workspace)        start it in the background unless it runs; its info
    service_info(workspace)         address/pid of the running service, or None
    InferenceError                  an inference request answered with an error (`.status`)
    KERNEL_PATH                     the folder holding `redhareapi` for kernel processes
"""

from mlops_widgets.backends.inference_protocol import InferenceError
from mlops_widgets.backends.local.inference.client import LocalInference
from mlops_widgets.backends.local.inference.launcher import service_info, start_service, stop_service
from mlops_widgets.backends.local.inference.procs import KERNEL_PATH

__all__ = [
    "KERNEL_PATH",
    "InferenceError",
    "LocalInference",
    "service_info",
    "start_service",
    "stop_service",
]
