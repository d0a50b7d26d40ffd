"""The reaper: runs one command (a deployment's kernel, a template run's kernel, a training
worker) as its child and makes sure nothing the command starts outlives it.

    python -I reaper.py [--owner PID] -- COMMAND [ARG...]      (see `wrap`)

A process that calls setsid, double-forks and clears its environment leaves its session and its
`MSD_POD_NAME` behind: nothing in /proc ties it to its kernel any more, except its ancestry. The
reaper keeps that tie: it declares itself a child subreaper (Linux `PR_SET_CHILD_SUBREAPER`),
so every orphaned descendant is re-parented to it instead of to init, and the tree below the
reaper is the command's whole family, whatever its members did. When the command exits, or the
reaper gets SIGUSR2 (its owner ends it: `stop`), or, with --owner, its owner dies, the
reaper SIGKILLs every descendant until none is left, removes the shared-memory files they
created, and exits as the command did (its code, or its signal). SIGTERM and SIGHUP are passed
on to the command (a polite end, as to the command itself); SIGINT is ignored: an owner
interrupting a kernel signals its whole process group, the command included.

Two kinds of descendant are spared, by design, with all below them: mlops' own detached
processes, which outlive whoever started them. A workspace's inference service and its
supervisor (a template run's kernel may start them) and a training job's supervisor (a job outlives the run that
submitted it; its workers run under reapers of their own). Each is recognised by its command
line running that module and by its own record naming its pid (`<workspace>/inference/
service.json`, `<job>/job.json`): a process can only be spared by being one of them.

Shared memory (/dev/shm) has no record of who created a file, so the reaper watches: on every
file created there (inotify) and every TICK seconds it notes the /dev/shm files its descendants
hold open or mapped (/proc/<pid>/fd and maps), with their inode; at the end it removes those
still there with the same inode. A file created and closed between two looks (a small, quick
write) can escape; any file in use (a SharedMemory block, a write in progress) is seen.

Standard library only, run by path with `-I`, so it starts fast on the owner's interpreter and
imports nothing of the package.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
TICK = 0.5  # seconds between looks at /dev/shm holders and at the owner
KILL_PATIENCE = 10.0  # seconds to wait for SIGKILLed descendants to be gone
SHM = "/dev/shm"
# The detached processes spared: (module on the command line, the argument before the folder it
# serves, the record in that folder naming its pid and under which key).
DETACHED = (
    (b"mlops_widgets.backends.local.training_supervisor", b"-m", 1, "job.json", "supervisor_pid"),
    (b"mlops_widgets.backends.local.inference.server", b"--workspace", 0, "inference/service.json", "pid"),
    (
        b"mlops_widgets.backends.local.inference.supervisor",
        b"--workspace",
        0,
        "inference/supervisor.json",
        "pid",
    ),
)
STOP_SIGNAL = signal.SIGUSR2
_IN_CREATE, _IN_MOVED_TO, _IN_NONBLOCK, _IN_CLOEXEC = 0x100, 0x80, 0o4000, 0o2000000


def wrap(command: list[str]) -> list[str]:
    """`command` run under a reaper on this interpreter, ended when this process (its owner)
    dies. The owner is named by pid: one that died before the reaper first looked at its parent
    would otherwise pass unnoticed (the reaper re-parented from its start, seen alive for hours)."""
    return [sys.executable, "-I", __file__, "--owner", str(os.getpid()), "--", *command]


def _gone(pid: int) -> bool:
    """Whether `pid` has exited (a child is not reaped: its ids stay reserved)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


def stop(pid: int, patience: float = KILL_PATIENCE) -> bool:
    """End the reaper `pid` and, through it, everything below it (SIGUSR2: it kills them and
    cleans up before it exits); whether it ended within `patience` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, STOP_SIGNAL)
    deadline = time.monotonic() + patience
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --- inside the reaper -------------------------------------------------------------------------


def _spared(pid: int) -> bool:
    """Whether `pid` is one of mlops' detached processes (see DETACHED): a training job's
    supervisor (`python -m <module> JOB_DIR`) or a workspace's inference service (`python -c
    "...from <module> import main; main()" --workspace WS --daemon`), its record naming it."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    for module, flag, skip, record, key in DETACHED:
        code = argv[2] if len(argv) > 2 and argv[1] == b"-c" else b""
        runs = argv[1:3] == [b"-m", module] or code.endswith(b"from " + module + b" import main; main()")
        if not runs or flag not in argv:
            continue
        with contextlib.suppress(OSError, ValueError, IndexError, AttributeError):
            folder = argv[argv.index(flag) + 1 + skip].decode()
            return json.loads(Path(folder, record).read_text()).get(key) == pid
    return False


def descendants() -> list[int]:
    """Every live process below this one (orphans included: they are re-parented to it), less
    a training job's supervisor and what is below it."""
    found, todo = [], [os.getpid()]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                kids = [int(k) for k in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
            except FileNotFoundError:  # a kernel without children lists: by parent, from /proc
                return _descendants_by_parent()
            except (OSError, ValueError):
                continue
            kids = [k for k in kids if not _spared(k)]
            found += kids
            todo += kids
    return found


def _descendants_by_parent() -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [os.getpid()]
    while todo:
        kids = [k for k in parents.get(todo.pop(), []) if not _spared(k)]
        found += kids
        todo += kids
    return found


def shm_held(pids: list[int]) -> dict[str, int]:
    """/dev/shm files (path -> inode) these processes hold open or mapped."""
    held: dict[str, int] = {}
    prefix = SHM + "/"
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith(prefix) and not target.endswith(" (deleted)"):
                        held[target] = os.stat(f"/proc/{pid}/fd/{fd}").st_ino
        with contextlib.suppress(OSError), open(f"/proc/{pid}/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if (
                    len(fields) == 6
                    and fields[5].startswith(prefix)
                    and not fields[5].endswith("(deleted)\n")
                ):
                    held[fields[5].rstrip("\n")] = int(fields[4])
    return held


def remove_shm(tracked: dict[str, int]) -> None:
    """Remove the tracked files still there as they were seen (same inode, ours, regular)."""
    for path, inode in tracked.items():
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if st.st_ino == inode and st.st_uid == os.getuid() and Path(path).is_file():
                os.unlink(path)


def _watch_shm() -> int | None:
    """An inotify descriptor woken by files created in /dev/shm; None where there is none."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return None
        if libc.inotify_add_watch(fd, SHM.encode(), _IN_CREATE | _IN_MOVED_TO) < 0:
            os.close(fd)
            return None
        return fd
    except (OSError, AttributeError):
        return None


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError, OSError):
        while os.read(fd, 65536):
            pass


def _reap(ended: dict[int, int]) -> None:
    """Reap every exited child, noting its wait status in `ended`."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        ended[pid] = status


def _kill_all(tracked: dict[str, int], ended: dict[int, int]) -> None:
    """SIGKILL every descendant, again while some fork meanwhile, reaping them, until none is
    left (or KILL_PATIENCE passed); what they held in /dev/shm noted first."""
    deadline = time.monotonic() + KILL_PATIENCE
    while (pids := descendants()) and time.monotonic() < deadline:
        tracked.update(shm_held(pids))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)
        _reap(ended)
    _reap(ended)


def main(argv: list[str]) -> int:
    if "--" not in argv or not argv[argv.index("--") + 1 :]:
        print("usage: reaper.py [--owner PID] -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    command, options = argv[argv.index("--") + 1 :], argv[: argv.index("--")]
    owner = int(options[options.index("--owner") + 1]) if "--owner" in options else None
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    ending: list[int] = []
    passed_on: list[int] = []
    handled = (STOP_SIGNAL, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGINT)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(STOP_SIGNAL, lambda signum, _: ending.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, _: passed_on.append(signum))
    signal.signal(signal.SIGHUP, lambda signum, _: passed_on.append(signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    child = os.fork()
    if child == 0:
        signal.set_wakeup_fd(-1)
        for signum in handled:
            signal.signal(signum, signal.SIG_DFL)
        try:
            os.execvp(command[0], command)
        except OSError as exc:
            os.write(2, f"cannot run {command[0]}: {exc}\n".encode())
        os._exit(127)
    shm = _watch_shm()
    mine = {0, 1, 2, wake_r, wake_w, *([shm] if shm is not None else [])}
    for fd in [int(f) for f in os.listdir("/proc/self/fd")]:  # the command's, not the reaper's
        if fd not in mine:
            with contextlib.suppress(OSError):
                os.close(fd)
    tracked: dict[str, int] = {}
    ended: dict[int, int] = {}
    while child not in ended:
        with contextlib.suppress(InterruptedError):
            select.select([wake_r, *([shm] if shm is not None else [])], [], [], TICK)
        _drain(wake_r)
        if shm is not None:
            _drain(shm)
            tracked.update(shm_held(descendants()))
        while passed_on:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, passed_on.pop())
        _reap(ended)
        if child not in ended and (ending or (owner is not None and os.getppid() != owner)):
            _kill_all(tracked, ended)
    _kill_all(tracked, ended)
    remove_shm(tracked)
    status = ended[child]
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    ended_by = os.WTERMSIG(status)
    if ended_by != signal.SIGKILL:  # its handler cannot be set (nor changed from the default)
        signal.signal(ended_by, signal.SIG_DFL)
    os.kill(os.getpid(), ended_by)
    return 128 + ended_by


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
