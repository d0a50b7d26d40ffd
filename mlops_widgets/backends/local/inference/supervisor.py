"""The service's supervisor: one small process per workspace that starts the local service and
starts it again when it dies, so deployments and monitor schedules outlive a crash.

- It runs the service as its child and waits for it; a service that ends with status 0 was
  asked to stop (a shutdown request, SIGTERM), and the supervisor then ends too. Any other end
  (killed, crashed, out of file descriptors) is noted in service.log and in supervisor.json and
  the service is started again: at once (half a second) after a service that ran a while, with
  a back-off that doubles up to BACKOFF_MAX_S while it keeps dying within STABLE_S of its start.
- SIGTERM (what `stop_service` sends) stops the service politely (SIGTERM: it stops its
  kernels and companions) and then the supervisor; nothing is left behind.
- It holds `<workspace>/inference/supervisor.lock` while it runs: one supervisor per workspace.
  While another process holds the service's own lock (`mlops serve` in a terminal) it waits.

A process of our own rather than the Jupyter server extension or systemd: it works wherever the
service does (a terminal, a notebook, a container without an init system) and needs nothing
installed; it is started by whatever starts the service (`launcher.start_service`).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_widgets.workspace import Workspace, atomic_write

SERVICE_MODULE = "mlops_widgets.backends.local.inference.server"
SUPERVISOR_MODULE = "mlops_widgets.backends.local.inference.supervisor"
LOCK, STATE, LOG = "supervisor.lock", "supervisor.json", "service.log"
FIRST_DELAY_S = 0.5  # after a service that ran at least STABLE_S
STABLE_S = 30.0
BACKOFF_MAX_S = 60.0
POLL_S = 0.1


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def boot_command(module: str, workspace: Path, *extra: str) -> list[str]:
    """The command line that runs `module`'s main() on this interpreter with this package on its
    path (also from a source checkout that is not installed)."""
    root = str(Path(__file__).resolve().parents[4])
    boot = f"import sys; sys.path.insert(0, {root!r}); from {module} import main; main()"
    return [sys.executable, "-c", boot, "--workspace", str(workspace), *extra]


def read_state(workspace: Workspace) -> dict[str, Any]:
    """supervisor.json: pid, started_at, restarts, last_exit, next_start_in_s (while backing off)."""
    try:
        return json.loads((workspace.root / "inference" / STATE).read_text())
    except (OSError, ValueError):
        return {}


def held(path: Path) -> bool:
    """Whether a live process holds the flock on `path` (a dead one's file does not count)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def exit_text(rc: int) -> str:
    """How a service ended, in words: 'killed by SIGKILL', 'exit status 3'."""
    if rc < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-rc).name}"
    return f"exit status {rc}"


class Supervisor:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.inference = workspace.dir("inference")
        self.stopping = False
        self.child: subprocess.Popen[bytes] | None = None
        self.state: dict[str, Any] = {"pid": os.getpid(), "started_at": _now(), "restarts": 0}

    def note(self, message: str) -> None:
        """A line in service.log (opened each time: the service rotates it)."""
        fd = os.open(self.inference / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "a", encoding="utf-8") as out:
            out.write(f"{datetime.now():%Y-%m-%d %H:%M:%S},000 INFO supervisor: {message}\n")

    def save(self, **changes: Any) -> None:
        self.state.update(changes)
        atomic_write(self.inference / STATE, json.dumps(self.state, indent=2))

    def stop(self, *_: Any) -> None:
        """SIGTERM/SIGINT: stop the service politely, then end."""
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signal.SIGTERM)

    def run(self) -> None:
        lock_fd = os.open(self.inference / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            return  # another supervisor has this workspace
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            self.save()
            self.note(f"supervising the service of {self.workspace.root} (pid {os.getpid()})")
            self._loop()
        finally:
            self.save(pid=None, stopped_at=_now(), next_start_in_s=None)
            os.close(lock_fd)

    def _loop(self) -> None:
        delay = FIRST_DELAY_S
        while not self.stopping:
            if held(self.inference / "service.lock"):  # a service not ours (`mlops serve`)
                self._sleep(1.0)
                continue
            started = time.monotonic()
            rc = self._serve_once()
            if self.stopping or rc == 0:
                self.note(f"the service ended ({exit_text(rc)}); supervisor stops")
                return
            delay = FIRST_DELAY_S if time.monotonic() - started >= STABLE_S else min(delay * 2, BACKOFF_MAX_S)
            self.save(
                restarts=self.state["restarts"] + 1,
                last_exit={"at": _now(), "how": exit_text(rc)},
                next_start_in_s=delay,
            )
            self.note(f"the service died ({exit_text(rc)}); starting it again in {delay:g} s")
            self._sleep(delay)

    def _serve_once(self) -> int:
        """Run the service until it ends; its exit status (negative: the signal)."""
        fd = os.open(self.inference / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "ab") as out:
            self.child = subprocess.Popen(
                boot_command(SERVICE_MODULE, self.workspace.root),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=str(self.inference),
            )
        self.save(service_pid=self.child.pid, next_start_in_s=None)
        if self.stopping:  # SIGTERM came while it was being started
            self.stop()
        return self.child.wait()

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(POLL_S)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="mlops-widgets local service supervisor")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--daemon", action="store_true", help="detach (double fork)")
    args = parser.parse_args(argv)
    if args.daemon and os.fork() > 0:
        os._exit(0)  # re-parented: never a zombie of the command that started it
    Supervisor(Workspace(args.workspace)).run()


if __name__ == "__main__":
    main()
