"""Entry point of a kernel process of mlops-widgets' local inference service.

Runs the UNMODIFIED kernel file as `__main__`, with the deployment's custom args injected as
module-level names before its first line executes (as the original wrote them into the file),
and the kernel file's folder first on sys.path (as `python kernel.py` would). The custom args
arrive over the service's channel, so their values (secrets included) stay in memory.
"""

from __future__ import annotations

import os
import runpy
import socket
import sys
import traceback

import redhareapi


def main() -> None:
    sock = socket.socket(fileno=int(os.environ.pop("MLOPS_KERNEL_FD")))
    boot = redhareapi._attach(sock)
    kernel_file = boot["kernel_file"]
    sys.path[0:1] = [os.path.dirname(kernel_file), os.path.dirname(os.path.abspath(__file__))]
    sys.argv = [kernel_file]
    try:
        namespace = runpy.run_path(
            kernel_file, init_globals=boot.get("custom_args") or {}, run_name="__main__"
        )
    except SystemExit:
        raise
    except BaseException:
        if redhareapi._run_called:
            raise
        error = traceback.format_exc()
        sys.stderr.write(error)
        redhareapi._send(sock, {"op": "start_failed", "error": error})
        raise SystemExit(1) from None
    if redhareapi._run_called:
        return
    # A kernel file that only defines its class: run the one Kernel subclass it defines.
    kernels = [
        v
        for v in namespace.values()
        if isinstance(v, type) and issubclass(v, redhareapi.Kernel) and v is not redhareapi.Kernel
    ]
    if len(kernels) != 1:
        error = (
            f"{os.path.basename(kernel_file)} never called Kernel.run() and defines "
            f"{len(kernels)} Kernel subclasses: end it with `MyKernel().run()`"
        )
        sys.stderr.write(error + "\n")
        redhareapi._send(sock, {"op": "start_failed", "error": error})
        raise SystemExit(1)
    kernels[0]().run()


if __name__ == "__main__":
    main()
