"""How a run ends whatever ends it: the leftovers of crashed runs cleaned before a run starts,
and, when the run is driven from the main thread (the CLI), SIGTERM and SIGHUP turned into a
stop of the run, recorded as interrupted with the notebook so far, before the signal takes
its usual course. Ctrl-C cancels the run the same way.

The execution then runs in a worker thread while the main thread waits: Python runs signal
handlers in the main thread only, and nbclient replaces SIGTERM's handler inside its own event
loop when that loop runs in the main thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from mlops_widgets.runner.control import RunControl
from mlops_widgets.runner.kernel import in_thread
from mlops_widgets.runner.trail import RUNS_DIR
from mlops_widgets.workspace import Workspace

ENDING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def clean_staging(ws: Workspace, min_age_s: float = 60.0) -> None:
    """Remove the hidden folders of runs whose saving never finished (a crash, a full disk):
    those of a process that is gone, once they are a minute old (`.<run id>.<pid>.tmp`)."""
    runs = ws.root / RUNS_DIR
    if not runs.is_dir():
        return
    now = time.time()
    for path in runs.glob(".*.tmp"):
        pid = path.name.removesuffix(".tmp").rpartition(".")[2]
        try:
            old = now - path.lstat().st_mtime > min_age_s
        except OSError:
            continue
        if old and not (pid.isdigit() and _alive(int(pid))):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def deferred_signals(control: RunControl) -> Iterator[list[int]]:
    """On the main thread: SIGTERM and SIGHUP (unless ignored) stop the run as interrupted instead
    of ending the process at once; the signals received are listed in what this yields, so the caller can
    deliver them (`redeliver`) once the run is recorded. Elsewhere: nothing changes."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, _frame: Any) -> None:
        received.append(signum)
        control.stop("interrupted")

    # A signal the process ignores stays ignored (`nohup mlops run ...`: hang-ups must not end
    # the run); otherwise redelivering it would do nothing and the run would only end "interrupted".
    previous = {
        sig: signal.signal(sig, handler)
        for sig in ENDING_SIGNALS
        if signal.getsignal(sig) is not signal.SIG_IGN
    }
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def redeliver(received: list[int]) -> None:
    """Give the process the first ending signal it got while a run was being recorded: its
    previous handler (by default: the end of the process) runs now."""
    if received:
        signal.raise_signal(received[0])


def run_waiting(body: Callable[[], Any], control: RunControl) -> Any:
    """`body()` in a worker thread while the main thread waits (signals are handled meanwhile;
    Ctrl-C cancels the run); on any other thread, `body()` right here. Returns its result or
    raises its exception."""
    if threading.current_thread() is not threading.main_thread():
        return body()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = body()
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc

    worker = threading.Thread(target=in_thread, args=(work,), name=f"mlops-run-{control.run_id}", daemon=True)
    worker.start()
    while worker.is_alive():
        try:
            worker.join(0.2)
        except KeyboardInterrupt:
            control.stop("cancelled")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
