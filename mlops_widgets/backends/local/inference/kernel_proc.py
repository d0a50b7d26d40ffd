"""One kernel process: started on the kernel file, booted over its socket, ended (politely when
idle, killed otherwise). The pool (`pool.py`) decides when; this module knows how."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_widgets.backends.local.inference import wire
from mlops_widgets.backends.local.inference.procs import BOOT

log = logging.getLogger("mlops.inference")

SHUTDOWN_GRACE = 5.0  # seconds a kernel gets to run on_kernel_shutdown before it is killed


class KernelStartError(Exception):
    """A kernel that could not be started or did not become ready."""


@dataclass
class KernelProc:
    """A kernel process of a deployment and the service's end of its channel."""

    pod: str
    index: int
    log: Path
    gpu: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    sock: socket.socket | None = None
    reader: Any = None
    state: str = "starting"  # starting, idle, busy, stopping
    started_at: float = field(default_factory=time.time)
    ready_at: float | None = None
    tasks_done: int = 0
    exit_reason: str = "stop"

    def describe(self) -> dict[str, Any]:
        return {
            "pod": self.pod,
            "pid": self.proc.pid if self.proc else None,
            "state": self.state,
            "gpu": self.gpu,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
            "tasks_done": self.tasks_done,
            "log": str(self.log),
        }

    def boot(
        self,
        *,
        python: str,
        env: dict[str, str],
        cwd: Path,
        run_dir: Path,
        frame: dict[str, Any],
        connection_timeout: float,
    ) -> None:
        """Start the process in a session of its own, send it the boot frame (kernel file, custom
        args, ids) and wait for on_kernel_start to return."""
        parent, child = socket.socketpair()
        env = {**env, "MLOPS_KERNEL_FD": str(child.fileno())}
        self.log.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.log, "ab") as out:
                self.proc = subprocess.Popen(
                    [python, "-u", str(BOOT)],
                    env=env,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    pass_fds=(child.fileno(),),
                    start_new_session=True,
                )
        except OSError as exc:
            parent.close()
            raise KernelStartError(f"kernel {self.pod} could not be started: {exc}") from None
        finally:
            child.close()
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / f"{self.pod}.pid").write_text(str(self.proc.pid))
        self.sock, self.reader = parent, parent.makefile("rb")
        try:
            wire.send(parent, {"op": "boot", **frame})
            parent.settimeout(connection_timeout)
            msg = wire.recv(self.reader)
        except TimeoutError:
            raise KernelStartError(
                f"kernel {self.pod} was not ready within connection_timeout ({connection_timeout:g} s)"
            ) from None
        except OSError:
            msg = None
        if msg is None:
            raise KernelStartError(f"kernel {self.pod} exited (code {self.exit_code(2.0)}) before it was ready")
        if msg[0].get("op") == "start_failed":
            last = (msg[0].get("error") or "").strip().splitlines()[-1:] or ["unknown error"]
            raise KernelStartError(f"kernel {self.pod} failed to start (on_kernel_start): {last[0]}")
        if msg[0].get("op") != "ready":
            raise KernelStartError(f"kernel {self.pod} sent {msg[0].get('op')!r} instead of ready")

    def exited(self) -> bool:
        return self.proc is None or self.proc.poll() is not None

    def exit_code(self, wait: float) -> int | None:
        try:
            return self.proc.wait(wait) if self.proc else None
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def end(self, run_dir: Path) -> None:
        """End the process: politely (shutdown frame) when it stops or is released, else killed."""
        if self.proc is not None:
            if self.proc.poll() is None and self.exit_reason in ("stop", "released") and self.sock is not None:
                with contextlib.suppress(OSError):
                    self.state = "stopping"
                    self.sock.settimeout(1.0)
                    wire.send(self.sock, {"op": "shutdown"})
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(SHUTDOWN_GRACE)
            self.kill()
            code = self.proc.wait()
            with contextlib.suppress(OSError), open(self.log, "a") as out:
                out.write(f"[mlops] kernel {self.pod} ended ({self.exit_reason}, exit code {code})\n")
            log.info("kernel %s ended (%s, exit code %s)", self.pod, self.exit_reason, code)
        for closable in (self.reader, self.sock):
            with contextlib.suppress(OSError):
                if closable is not None:
                    closable.close()
        with contextlib.suppress(OSError):
            (run_dir / f"{self.pod}.pid").unlink()
