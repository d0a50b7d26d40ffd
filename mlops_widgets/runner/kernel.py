"""The kernel of one run: created for it, started through jupyter_client's public API (the
environment, folder and log are arguments of `start_kernel`), shut down when its run ends.
A kernel is never used by two runs. It runs under a reaper (`backends/local/reaper.py`: its
kernel spec's command wrapped), so what it starts, even a process that left its session and
environment, ends with it, and the /dev/shm files they made are removed."""

from __future__ import annotations

import contextlib
import sys
from typing import IO, Any

KERNEL_START_TIMEOUT_S = 60
PYTHON_NAMES = (
    "python",
    f"python{sys.version_info[0]}",
    f"python{sys.version_info[0]}.{sys.version_info[1]}",
)
# The kernel's command history stays in memory: a run's code is kept only in its scrubbed notebook;
# an MlopsError ending a cell leaves its hint for the run's record (runner/kernel_errors.py).
EXTRA_ARGUMENTS = [
    "--HistoryManager.hist_file=:memory:",
    "--InteractiveShellApp.extensions=mlops_widgets.runner.kernel_errors",
]


def new_manager(kernel_name: str) -> Any:
    """An unstarted kernel manager; CurveZMQ on its sockets where pyzmq supports it."""
    import zmq
    from jupyter_client.manager import AsyncKernelManager

    from mlops_widgets.backends.local import reaper

    km = AsyncKernelManager(
        kernel_name=kernel_name, transport_encryption="auto" if zmq.has("curve") else "disabled"
    )
    spec = km.kernel_spec
    assert spec is not None  # jupyter_client raises NoSuchKernel for a missing one
    argv = list(spec.argv)
    if argv and argv[0] in PYTHON_NAMES:  # as jupyter_client reads a spec's "python"
        argv[0] = sys.executable
    spec.argv = reaper.wrap(argv)
    return km


def start(kernel_name: str, env: dict[str, str], cwd: str, log: IO[bytes], warmup: str | None = None) -> Any:
    """A started kernel manager whose kernel answers, with `warmup` (code: imports) run in it
    silently; raises what failed (the kernel is then shut down)."""
    from jupyter_core.utils import run_sync

    km = new_manager(kernel_name)
    try:
        run_sync(_start)(km, env, cwd, log, warmup)
    except BaseException:
        shutdown(km)
        raise
    return km


async def _start(km: Any, env: dict[str, str], cwd: str, log: IO[bytes], warmup: str | None) -> None:
    await km.start_kernel(env=env, cwd=cwd, stdout=log, stderr=log, extra_arguments=EXTRA_ARGUMENTS)
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=KERNEL_START_TIMEOUT_S)
        if warmup:
            reply = await kc.execute_interactive(
                warmup, silent=True, store_history=False, timeout=KERNEL_START_TIMEOUT_S, output_hook=_quiet
            )
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"warm-up failed: {reply['content'].get('evalue', '')}")
    finally:
        kc.stop_channels()


def _quiet(_msg: Any) -> None:
    """Output of a silent execution: none is kept."""


def shutdown(km: Any) -> None:
    """Stop a run's kernel at once (its run is over) and free its files and sockets."""
    if km is None or not km.has_kernel:
        return
    from jupyter_core.utils import run_sync

    stop_tree(km)
    run_sync(km.shutdown_kernel)(now=True)


def kernel_process(km: Any) -> Any:
    """The kernel's process (its reaper), a Popen; None before it starts or after it ended."""
    return getattr(getattr(km, "provisioner", None), "process", None)


def stop_tree(km: Any) -> None:
    """End the kernel and everything it started through its reaper (jupyter_client's own kill
    signals the kernel's process group only: what left it would survive)."""
    from mlops_widgets.backends.local import reaper

    proc = kernel_process(km)
    if proc is not None and proc.poll() is None:
        reaper.stop(proc.pid)


def in_thread(body: Any, *args: Any) -> None:
    """`body(*args)` as a thread's whole work, closing the event loop that jupyter_client's
    blocking calls leave set for the thread (else it is collected, noisily, at exit)."""
    import asyncio

    try:
        body(*args)
    finally:
        policy = asyncio.get_event_loop_policy()
        with contextlib.suppress(RuntimeError):
            loop = policy.get_event_loop()
            if not loop.is_running():
                loop.close()
            policy.set_event_loop(None)
