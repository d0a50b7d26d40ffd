"""Kernel processes as the operating system sees them (Linux /proc): where their entry point is,
which processes belong to a kernel, how much memory they hold, and how they are all killed.

A kernel runs in a session of its own (its pid is the session and group id); the processes it
starts stay in that session unless they leave it (setsid, a daemon's double fork). Every one of
them inherits the kernel's `MSD_POD_NAME`, unique per kernel, so a process that left the session
is still found by its environment. While the kernel's own process is not yet reaped (a zombie at
worst), its pid, and so its session and group ids, cannot be reused by another program.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

KERNEL_PATH = Path(__file__).resolve().parent / "kernel_path"
BOOT = KERNEL_PATH / "_mlops_kernel_boot.py"
POD_VARIABLE = "MSD_POD_NAME"
KILL_PATIENCE = 10.0  # seconds to wait for SIGKILLed kernel processes to be gone
PAGE = os.sysconf("SC_PAGE_SIZE")


def cmdline(pid: int) -> str | None:
    """A process's command line (Linux /proc); None where it cannot be read."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, session) of a process; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[2]), int(fields[3])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie left by a killed process does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _stat(pid)
    return stat is None or stat[0] != "Z"


def exited(pid: int) -> bool:
    """Whether our child `pid` has exited, without reaping it (its ids stay reserved)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _has_pod(pid: int, pod: bytes) -> bool:
    try:
        return pod in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def kernel_processes(leader: int, pod: str | None = None) -> list[int]:
    """Live processes of the kernel whose process is `leader`: its session and process group,
    and (with `pod`) every process whose environment names the pod, wherever it went."""
    marker = f"{POD_VARIABLE}={pod}".encode() if pod else None
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        stat = _stat(pid)
        if stat is None or stat[0] == "Z":
            continue
        if leader in (stat[1], stat[2]) or (marker is not None and _has_pod(pid, marker)):
            found.append(pid)
    return found


def process_tree(leader: int) -> list[int]:
    """`leader` and its descendants, walked through /proc's children lists (cheap: no scan of
    every process); the session scan of `kernel_processes` where the kernel lacks those lists."""
    tree, todo = [], [leader]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        try:
            tasks = list(os.scandir(f"/proc/{pid}/task"))
        except OSError:
            continue
        for task in tasks:
            try:
                todo += [int(c) for c in Path(task.path, "children").read_text().split()]
            except FileNotFoundError:
                return kernel_processes(leader)
            except (OSError, ValueError):
                continue
    return tree


def kill_kernel(leader: int, pod: str | None = None) -> int:
    """SIGKILL every process of the kernel (see `kernel_processes`), again while some fork
    meanwhile, and return once none is left (a killed process may take a moment to go on a
    loaded machine) or after KILL_PATIENCE; the number killed."""
    killed: set[int] = set()
    denied: set[int] = set()  # not ours to kill (never expected: a kernel's processes are ours)
    deadline = time.monotonic() + KILL_PATIENCE
    while (pids := set(kernel_processes(leader, pod)) - denied) and time.monotonic() < deadline:
        fresh = pids - killed
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
            except PermissionError:
                denied.add(pid)
        if not fresh:
            time.sleep(0.005)  # all signalled already: give them time to die
    return len(killed)


def resident_mb(pids: list[int]) -> float:
    """Memory these processes hold together, in MB: the resident set of a lone process; the
    proportional share (PSS) of each of several, so pages they share (a fork's) count once."""
    if len(pids) == 1:
        with contextlib.suppress(OSError, IndexError, ValueError):
            return int(Path(f"/proc/{pids[0]}/statm").read_text().split()[1]) * PAGE / 2**20
        return 0.0
    total_kb = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
                    break
    return total_kb / 1024


def reap_leftover_kernels(run_dir: Path) -> bool:
    """Kill the kernels a service left behind (it was killed), with every process they started,
    from their pid files (`<pod>.pid`); True if any ran. A pid now used by another program is
    left alone."""
    found = False
    for pidfile in run_dir.glob("*.pid") if run_dir.is_dir() else []:
        with contextlib.suppress(ValueError, OSError):
            pid = int(pidfile.read_text())
            ours = BOOT.name in (cmdline(pid) or BOOT.name) and alive(pid)
            # Not our child: its group is only ours while its own process still runs.
            if kill_kernel(pid if ours else -1, pidfile.stem):
                found = True
            pidfile.unlink()
    return found
