"""One kernel process: started on the kernel file, booted over its socket, watched, ended
(politely when idle, killed with every process it started otherwise). The pool (`pool.py`)
decides when; this module knows how.

A kernel runs under a reaper (`backends/local/reaper.py`, whose pid is the kernel's pid here):
every process the kernel starts stays below it, even one that calls setsid and clears its
environment, so its memory counts against the kernel's limit and it ends with the kernel, as
do the /dev/shm files they made. Each kernel has a watcher thread in the service: it copies
the kernel's output (a pipe) into the deployment's log, notices the death of the kernel's
process itself (a kernel that forks and exits leaves its socket open in its children, so the
socket alone would not tell) and, when the profile sets a memory limit, kills a kernel whose
processes together hold more.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_widgets.backends.local import reaper
from mlops_widgets.backends.local.inference.kernel_logs import KernelLog
from mlops_widgets.backends.local.inference.kernel_path import _mlops_wire as wire
from mlops_widgets.backends.local.inference.procs import BOOT, exited, kill_kernel, process_tree, resident_mb

log = logging.getLogger("mlops.inference")

SHUTDOWN_GRACE = 5.0  # seconds a kernel gets to run on_kernel_shutdown before it is killed
WATCH_INTERVAL = 0.25  # seconds between the watcher's looks at the process and its memory
READ_SIZE = 65536
PUMP_READS = 16  # reads of one pump (1 MB), the watcher pumps again at once while there is more


class KernelStartError(Exception):
    """A kernel that could not be started or did not become ready."""


@dataclass(frozen=True)
class Limits:
    """What the profile's `resource_allocation.kernel.resources` grants one kernel."""

    cpus: int | None = None  # CPUs (ncpus_limit, else ncpus); None: no affinity
    memory_mb: float | None = None  # MB (mem_limit, else mem); None: unlimited

    @classmethod
    def from_profile(cls, profile: dict[str, Any]) -> Limits:
        text = ((profile.get("resource_allocation") or {}).get("kernel") or {}).get("resources") or ""
        values: dict[str, float] = {}
        for part in str(text).split(","):
            key, _, value = part.partition("=")
            with contextlib.suppress(ValueError):
                values[key.strip()] = float(value)
        cpus = values.get("ncpus_limit", values.get("ncpus"))
        memory = values.get("mem_limit", values.get("mem"))
        return cls(
            cpus=math.ceil(cpus) if cpus and cpus > 0 else None,
            memory_mb=memory if memory and memory > 0 else None,
        )


class CpuShares:
    """How many live kernels of this service are pinned to each of its CPUs: a kernel asking for
    n CPUs gets the n least used, so kernels spread over the machine whatever came and went."""

    def __init__(self) -> None:
        self._load: Counter[int] = Counter()
        self._lock = threading.Lock()

    def take(self, n: int | None) -> set[int] | None:
        """n CPUs for a kernel; None when it may use them all (no n, or n covers them)."""
        mine = sorted(os.sched_getaffinity(0))
        if n is None or n >= len(mine):
            return None
        with self._lock:
            chosen = set(sorted(mine, key=lambda cpu: (self._load[cpu], cpu))[:n])
            self._load.update(chosen)
        return chosen

    def give(self, cpus: set[int]) -> None:
        with self._lock:
            self._load.subtract(cpus)


CPU_SHARES = CpuShares()  # one service per process: its kernels share its CPUs


@dataclass
class KernelProc:
    """A kernel process of a deployment and the service's end of its channel."""

    pod: str
    index: int
    log: KernelLog
    gpu: str | None = None
    limits: Limits = field(default_factory=Limits)
    on_death: Callable[[], None] = lambda: None
    proc: subprocess.Popen[bytes] | None = None
    sock: socket.socket | None = None
    reader: Any = None
    state: str = "starting"  # starting, idle, busy, stopping
    started_at: float = field(default_factory=time.time)
    ready_at: float | None = None
    tasks_done: int = 0
    exit_reason: str = "stop"
    cpus: set[int] | None = None
    memory_used_mb: float | None = None  # set when the kernel was killed past its memory limit
    dead: threading.Event = field(default_factory=threading.Event)
    _ending: threading.Event = field(default_factory=threading.Event)
    _watcher: threading.Thread | None = None
    _pump_lock: threading.Lock = field(default_factory=threading.Lock)
    _ended: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "pod": self.pod,
            "pid": self.proc.pid if self.proc else None,
            "state": self.state,
            "gpu": self.gpu,
            "cpus": sorted(self.cpus) if self.cpus is not None else None,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
            "tasks_done": self.tasks_done,
            "log": str(self.log.path),
        }

    # --- start --------------------------------------------------------------------------------

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
        """Start the process in a session of its own on `python`, pin it to its CPUs, send it
        the boot frame (kernel file, custom args, ids) and wait for on_kernel_start to return."""
        parent, child = socket.socketpair()
        env = {**env, "MLOPS_KERNEL_FD": str(child.fileno())}
        try:
            self.proc = subprocess.Popen(
                reaper.wrap([python, "-u", str(BOOT)]),
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(child.fileno(),),
                start_new_session=True,
            )
        except OSError as exc:
            parent.close()
            raise KernelStartError(f"kernel {self.pod} could not be started with {python}: {exc}") from None
        finally:
            child.close()
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        pidfile = os.open(run_dir / f"{self.pod}.pid", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(pidfile, "w") as out:
            out.write(str(self.proc.pid))
        self.sock, self.reader = parent, parent.makefile("rb")
        # The process runs nothing but its boot script until the boot frame arrives: pinned
        # now (the reaper first, so a kernel it forks later inherits it), every thread the
        # kernel file starts inherits the pinning.
        self.cpus = CPU_SHARES.take(self.limits.cpus)
        if self.cpus is not None:
            try:
                for pid in process_tree(self.proc.pid):
                    os.sched_setaffinity(pid, self.cpus)
            except OSError as exc:
                CPU_SHARES.give(self.cpus)
                self.cpus = None
                self.log.feed(self.pod, f"[mlops] CPU affinity not set: {exc}\n".encode())
        placed = "".join(
            [
                f", CPUs {','.join(map(str, sorted(self.cpus)))}" if self.cpus is not None else "",
                f", GPU {self.gpu}" if self.gpu is not None else "",
                f", memory limit {self.limits.memory_mb:g} MB" if self.limits.memory_mb is not None else "",
            ]
        )
        self.log.feed(
            self.pod, f"[mlops] kernel {self.pod} started (pid {self.proc.pid}, {python}{placed})\n".encode()
        )
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._watcher = threading.Thread(target=self._watch, name=f"watch-{self.pod}", daemon=True)
        self._watcher.start()
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
            if self.memory_used_mb is not None:
                raise KernelStartError(f"kernel {self.pod} {self.memory_message()} while starting")
            raise KernelStartError(
                f"kernel {self.pod} exited (code {self.exit_code(2.0)}) before it was ready"
            )
        if msg[0].get("op") == "start_failed":
            last = (msg[0].get("error") or "").strip().splitlines()[-1:] or ["unknown error"]
            raise KernelStartError(f"kernel {self.pod} failed to start (on_kernel_start): {last[0]}")
        if msg[0].get("op") != "ready":
            raise KernelStartError(f"kernel {self.pod} sent {msg[0].get('op')!r} instead of ready")

    def memory_message(self) -> str:
        return (
            f"exceeded memory_allocation ({self.limits.memory_mb:g} MB): its processes held "
            f"{self.memory_used_mb:.0f} MB"
        )

    # --- the watcher ----------------------------------------------------------------------------

    def _watch(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        out, pid = self.proc.stdout.fileno(), self.proc.pid
        poller = select.poll()
        poller.register(out, select.POLLIN)
        pidfd = None
        with contextlib.suppress(OSError, AttributeError):
            pidfd = os.pidfd_open(pid)
            poller.register(pidfd, select.POLLIN)
        output_open = True
        try:
            while True:
                events = poller.poll(WATCH_INTERVAL * 1000)
                for fd, _ in events:
                    if fd == out and not self.pump():
                        poller.unregister(out)
                        output_open = False
                    elif fd == pidfd:
                        poller.unregister(pidfd)
                if not self.dead.is_set():
                    if exited(pid):
                        self._died()
                    elif self.limits.memory_mb is not None:
                        self._check_memory(pid)
                # Done once the output is closed, or, when a process that escaped the kill still
                # holds it, once the kernel is ended and nothing more is pending.
                if self.dead.is_set() and (not output_open or (self._ending.is_set() and not events)):
                    return
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def pump(self) -> bool:
        """Copy what the kernel has written so far into the log; False once its output closed.
        The pool calls it when a batch is answered, so a task's output is in the log by then."""
        assert self.proc is not None and self.proc.stdout is not None
        with self._pump_lock:
            for _ in range(PUMP_READS):  # bounded: a kernel printing without pause holds no one up
                try:
                    data = os.read(self.proc.stdout.fileno(), READ_SIZE)
                except BlockingIOError:
                    return True
                except (OSError, ValueError):  # closed by end()
                    return False
                if not data:
                    return False
                self.log.feed(self.pod, data)
            return True

    def _check_memory(self, pid: int) -> None:
        assert self.limits.memory_mb is not None
        used = resident_mb([p for p in process_tree(pid) if p != pid])  # not its reaper
        if used > self.limits.memory_mb:
            self.memory_used_mb = used
            with self._pump_lock:  # a line of its own, not inside one the pool is pumping
                self.log.feed(self.pod, f"[mlops] kernel {self.memory_message()}: killed\n".encode())
            self.kill()

    def _died(self) -> None:
        """The kernel's own process exited: wake whoever waits on its socket or for its death."""
        self.dead.set()
        with contextlib.suppress(OSError):
            if self.sock is not None:
                self.sock.shutdown(socket.SHUT_RDWR)
        self.on_death()

    # --- state and end ---------------------------------------------------------------------------

    def exited(self) -> bool:
        return self.proc is None or self.dead.is_set() or exited(self.proc.pid)

    def exit_code(self, wait: float) -> int | None:
        """The exit code (negative: the signal) once the process ended within `wait` seconds;
        the process is not reaped, so its children are still found by its ids."""
        if self.proc is None or not self.dead.wait(wait):
            return None
        with contextlib.suppress(ChildProcessError):
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None:
                return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the kernel and every process it started: its reaper kills them all and
        removes their /dev/shm files; what is left (the reaper itself killed) goes by session
        and pod name."""
        if self.proc is not None and self.proc.returncode is None:
            reaper.stop(self.proc.pid)
            kill_kernel(self.proc.pid, self.pod)

    def end(self, run_dir: Path) -> None:
        """End the kernel: politely (shutdown frame) when it stops or is released, then kill
        what is left of it, its children included, even those that left its session."""
        if self._ended:
            return
        self._ended = True
        if self.proc is not None:
            if not self.exited() and self.exit_reason in ("stop", "released") and self.sock is not None:
                with contextlib.suppress(OSError):
                    self.state = "stopping"
                    self.sock.settimeout(1.0)
                    wire.send(self.sock, {"op": "shutdown"})
                self.dead.wait(SHUTDOWN_GRACE)
            self.kill()
            code = self.proc.wait()
            if self.cpus is not None:
                CPU_SHARES.give(self.cpus)
            self._ending.set()
            kill_kernel(-1, self.pod)  # what forked meanwhile, found by its environment alone
            if self._watcher is not None:
                self._watcher.join(1.0 + 2 * WATCH_INTERVAL)
            reason = (
                f"exceeded memory_allocation, {self.exit_reason}" if self.memory_used_mb else self.exit_reason
            )
            with self._pump_lock:
                self.log.close_pod(self.pod, f"[mlops] kernel {self.pod} ended ({reason}, exit code {code})")
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            log.info("kernel %s ended (%s, exit code %s)", self.pod, reason, code)
        for closable in (self.reader, self.sock):
            with contextlib.suppress(OSError):
                if closable is not None:
                    closable.close()
        with contextlib.suppress(OSError):
            (run_dir / f"{self.pod}.pid").unlink()
