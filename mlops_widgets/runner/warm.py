"""A warm kernel: one kernel started ahead, so a template run does not wait for a kernel start.

Long-lived processes (the panel, the local service) call `keep_spare(True, workspace=...)`; the
one-shot CLI never does (it would start a kernel it does not use). While enabled, one spare
kernel is kept: started in the background with the base environment of a workspace and backend
(`prepare.kernel_environment`: no run's id, results file or secrets), with the package's modules
imported. The next template run with the same kernel spec, base environment and workspace takes
it; the run's own settings and secrets are then given to that kernel alone by a silent set-up
execution before the first cell (never part of the notebook, nor of the kernel's history), and
after the run the kernel is shut down like any other: a kernel is never reused across runs, so
nothing of one run (variables, environment, secrets) can reach the next. A new spare is started
in the background when the run ends.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from mlops_widgets.runner import kernel
from mlops_widgets.runner.prepare import kernel_environment
from mlops_widgets.workspace import Workspace

# What a template's first cells import: done in the spare while nobody waits.
WARMUP = (
    "import mlops_widgets.examples, mlops_widgets.ops, mlops_widgets.ops.space, mlops_widgets.ops.deploy, "
    "mlops_widgets.ops.monitor, mlops_widgets.runner, mlops_widgets.runner.record, mlops_widgets.backends.local"
)


def spare_key(kernel_name: str, env: Mapping[str, str]) -> str:
    """What a spare must match to serve a run: the kernel spec and the whole base environment
    (the workspace and backend are in it)."""
    data = json.dumps([kernel_name, sorted(env.items())]).encode()
    return hashlib.sha256(data).hexdigest()


@dataclass
class _Spare:
    key: str
    kernel_name: str
    env: dict[str, str]
    ready: threading.Event = field(default_factory=threading.Event)
    log: IO[bytes] = field(default_factory=tempfile.TemporaryFile)
    km: Any = None
    failed: bool = False

    def start(self) -> None:
        try:
            self.km = kernel.start(self.kernel_name, self.env, os.getcwd(), self.log, WARMUP)
        except Exception:  # no spare then: the next run starts its own kernel, and says why
            self.failed = True
        finally:
            self.ready.set()

    def discard(self) -> None:
        self.ready.wait()
        kernel.shutdown(self.km)
        self.log.close()


class _Keeper:
    """The one spare of this process, and whether one is kept."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.enabled = False
        self.spare: _Spare | None = None
        self.stopping: list[threading.Thread] = []

    def replace(self, spare: _Spare) -> None:
        """Keep `spare` (starting it) instead of the current one, unless that one is alike."""
        with self.lock:
            current = self.spare
            if current is not None and current.key == spare.key and not current.failed:
                return
            old, self.spare = current, spare
        threading.Thread(
            target=kernel.in_thread, args=(spare.start,), name="mlops-warm-kernel", daemon=True
        ).start()
        if old is not None:
            threading.Thread(
                target=kernel.in_thread, args=(old.discard,), name="mlops-warm-kernel-stop", daemon=True
            ).start()

    def take(self, key: str) -> _Spare | None:
        with self.lock:
            spare = self.spare
            if spare is None or spare.key != key:
                return None
            self.spare = None
        spare.ready.wait()  # a spare still starting is nearer to ready than a new kernel
        if spare.failed:
            spare.log.close()
            return None
        return spare

    def retire(self, km: Any) -> None:
        """Shut a used kernel down in the background (its run does not wait for it)."""
        thread = threading.Thread(
            target=kernel.in_thread, args=(kernel.shutdown, km), name="mlops-kernel-stop", daemon=True
        )
        with self.lock:
            self.stopping = [t for t in self.stopping if t.is_alive()] + [thread]
        thread.start()

    def stop_all(self) -> None:
        with self.lock:
            self.enabled = False
            old, self.spare = self.spare, None
            stopping, self.stopping = self.stopping, []
        if old is not None:
            old.discard()
        for thread in stopping:
            thread.join()


_keeper = _Keeper()
atexit.register(_keeper.stop_all)


def keep_spare(
    enabled: bool = True,
    *,
    workspace: Workspace | str | os.PathLike[str] | None = None,
    backend: str | None = None,
    kernel_name: str = "python3",
) -> None:
    """Keep a spare kernel for this process's template runs (or stop keeping one, shutting it
    down). With `workspace` (and `backend`) a spare for them is started now; otherwise the
    first run is cold and each run leaves a spare for runs like it."""
    if not enabled:
        _keeper.stop_all()
        return
    _keeper.enabled = True
    if workspace is not None:
        from mlops_widgets.backends import backend_name as resolve_backend_name

        ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
        replenish(kernel_name, kernel_environment(str(ws.root), resolve_backend_name(backend)))


def replenish(kernel_name: str, env: dict[str, str]) -> None:
    """After a run (or when enabled): start a spare for runs like it, when spares are kept."""
    if _keeper.enabled:
        _keeper.replace(_Spare(spare_key(kernel_name, env), kernel_name, dict(env)))


def take(kernel_name: str, env: Mapping[str, str]) -> tuple[Any, IO[bytes]] | None:
    """The spare's kernel manager and log for a run with this kernel and base environment, or
    None (none kept, none matching, or its start failed). The caller shuts the kernel down."""
    spare = _keeper.take(spare_key(kernel_name, env))
    return (spare.km, spare.log) if spare is not None else None


def spare_ready(timeout: float | None = None) -> bool:
    """Whether a spare kernel is started and answering (waiting up to `timeout` seconds for one
    that is starting)."""
    spare = _keeper.spare
    return spare is not None and spare.ready.wait(timeout) and not spare.failed


def retire(km: Any) -> None:
    """A warm kernel whose run is over: shut down in the background (and before this process
    exits)."""
    _keeper.retire(km)


def prelude(run_env: Mapping[str, str], cwd: str) -> str:
    """Code that gives a warm kernel its run's settings and secrets and working folder, run
    silently before the first cell; it leaves no name behind."""
    payload = json.dumps(dict(run_env))
    return (
        "import os as _mlops_os, json as _mlops_json\n"
        f"_mlops_os.environ.update(_mlops_json.loads({payload!r}))\n"
        f"_mlops_os.chdir({cwd!r})\n"
        "del _mlops_os, _mlops_json\n"
    )
