"""Kernel processes as the operating system sees them: where their entry point is, whether a
pid still runs, and how the ones a dead service left behind are found and killed (Linux /proc)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

KERNEL_PATH = Path(__file__).resolve().parent / "kernel_path"
BOOT = KERNEL_PATH / "_mlops_kernel_boot.py"


def cmdline(pid: int) -> str | None:
    """A process's command line (Linux /proc); None where it cannot be read."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie left by a killed process does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def reap_leftover_kernels(run_dir: Path) -> bool:
    """Kill the kernels a service left behind (it was killed) from their pid files; True if any ran.
    A pid now used by another program is left alone."""
    found = False
    for pidfile in run_dir.glob("*.pid") if run_dir.is_dir() else []:
        with contextlib.suppress(ValueError, OSError):
            pid = int(pidfile.read_text())
            if BOOT.name in (cmdline(pid) or BOOT.name) and alive(pid):
                found = True
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            pidfile.unlink()
    return found
