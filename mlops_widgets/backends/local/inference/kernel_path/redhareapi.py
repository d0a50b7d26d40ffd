"""WMLA EDI's kernel API (`redhareapi`), as the cluster's runtime gives it to a kernel file.

This folder is put on sys.path only of kernel processes started by mlops-widgets' local
inference service, so it never shadows IBM's real module in a user's environment. A kernel
file written for WMLA runs here unmodified:

    import redhareapiversion
    from redhareapi import Kernel

    class MatchKernel(Kernel):
        def on_kernel_start(self, kernel_context): ...
        def on_task_invoke(self, task_context): ...
        def on_kernel_shutdown(self): ...

    if __name__ == '__main__':
        MatchKernel().run()

`Kernel.run()` talks to the service over a socket inherited from it (the small framed protocol
of `_mlops_wire.py`, which the service shares). Outside the service, build a
`TaskContext` yourself to call `on_task_invoke` in-process (tests, benchmarks).

Kernels of any runtime import this file, so it runs on Python 3.8 and later with the standard
library alone.
"""

from __future__ import annotations

import datetime
import os
import socket
import sys
import traceback
from typing import Any

from _mlops_wire import recv as _recv
from _mlops_wire import send as _send

# Filled by the boot script of a kernel process: the channel to the service and what it said.
_channel: socket.socket | None = None
_reader: Any = None
_boot: dict[str, Any] = {}
_run_called = False


def _attach(sock: socket.socket) -> dict[str, Any]:
    """Adopt the service's channel and read the boot frame (kernel file, custom args, ids)."""
    global _channel, _reader, _boot
    _channel, _reader = sock, sock.makefile("rb")
    msg = _recv(_reader)
    if msg is None:
        raise SystemExit("the inference service closed the channel before booting this kernel")
    _boot = msg[0]
    return _boot


# EDI's kernel log levels, lowest first; `DLIM_MK_LOG_LEVEL` (model.json mk_environments or the
# profile's kernel envs, INFO on a cluster's default profile) sets the lowest one written.
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40}


def _threshold() -> int:
    return _LEVELS.get(os.environ.get("DLIM_MK_LOG_LEVEL", "").strip().upper(), _LEVELS["INFO"])


def _log(level: str, msg: Any) -> None:
    if _LEVELS[level] < _threshold():
        return
    stamp = datetime.datetime.now().isoformat(sep=" ", timespec="milliseconds")
    sys.stderr.write(f"{stamp} {level} {msg}\n")
    sys.stderr.flush()


class KernelContext:
    """What `on_kernel_start` learns about itself and its model."""

    def __init__(self, instance_id: str = "", kernel_id: str = "", model_description: str = "{}"):
        self._instance_id = instance_id
        self._kernel_id = kernel_id
        self._model_description = model_description

    def get_instance_id(self) -> str:
        return self._instance_id

    def get_id(self) -> str:
        return self._kernel_id

    def get_model_description(self) -> str:
        """model.json's fields plus `model_path`, as a JSON string (as EDI gives it)."""
        return self._model_description


class TaskContext:
    """One task of a dispatch; `next()` walks the batch (None after the last task)."""

    def __init__(
        self,
        data: str | bytes = "",
        *,
        task_id: str = "0",
        session_id: str = "",
        uuid: str = "",
        job_id: str = "",
        version: str = "1",
        model_name: str = "",
    ) -> None:
        self._data = data
        self._output: str | bytes | None = None
        self._id = task_id
        self._session_id = session_id
        self._uuid = uuid
        self._job_id = job_id
        self._version = version
        self._model_name = model_name
        self._next: TaskContext | None = None

    @classmethod
    def batch(cls, inputs: list[str | bytes], **common: Any) -> TaskContext:
        """A chain of tasks linked through next(), as one dispatch of `task_batch_size` tasks."""
        tasks = [cls(data, task_id=str(i), **common) for i, data in enumerate(inputs)]
        for a, b in zip(tasks, tasks[1:]):  # noqa: B905 (runtimes may predate 3.10)
            a._next = b
        return tasks[0]

    def get_input_data(self) -> str:
        """The request body as a string (kernels `json.loads` it)."""
        data = self._data
        return data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data

    def set_output_data(self, data: str | bytes) -> None:
        """The response body, sent back verbatim."""
        self._output = data

    def get_output_data(self) -> str | bytes | None:
        return self._output

    def get_id(self) -> str:
        return self._id

    def get_session_id(self) -> str:
        return self._session_id

    def get_uuid(self) -> str:
        return self._uuid

    def get_job_id(self) -> str:
        return self._job_id

    def get_version(self) -> str:
        return self._version

    def get_model_name(self) -> str:
        return self._model_name

    def next(self) -> TaskContext | None:
        return self._next


class Kernel:
    """Base class of EDI kernels: the three hooks are no-ops until a kernel overrides them."""

    def on_kernel_start(self, kernel_context: KernelContext) -> None:
        """Once per kernel process; the kernel takes no task until it returns."""

    def on_task_invoke(self, task_context: TaskContext) -> None:
        """Once per dispatch (a batch of tasks)."""

    def on_kernel_shutdown(self) -> None:
        """On scale-down or stop."""

    @staticmethod
    def log_debug(msg: Any) -> None:
        _log("DEBUG", msg)

    @staticmethod
    def log_info(msg: Any) -> None:
        _log("INFO", msg)

    @staticmethod
    def log_warn(msg: Any) -> None:
        _log("WARN", msg)

    @staticmethod
    def log_error(msg: Any) -> None:
        _log("ERROR", msg)

    def run(self) -> None:
        """Start, then serve the service's dispatches until it says stop or goes away."""
        global _run_called
        _run_called = True
        if _channel is None:
            raise RuntimeError(
                "Kernel.run() serves tasks for an inference service; this process was not started "
                "by one. Call on_task_invoke(TaskContext(data)) to try a kernel in-process."
            )
        boot = _boot
        try:
            self.on_kernel_start(
                KernelContext(
                    boot.get("instance_id", ""),
                    boot.get("kernel_id", ""),
                    boot.get("model_description", "{}"),
                )
            )
        except BaseException:
            error = traceback.format_exc()
            sys.stderr.write(error)
            sys.stderr.flush()
            _send(_channel, {"op": "start_failed", "error": error})
            raise SystemExit(1) from None
        _send(_channel, {"op": "ready"})
        try:
            self._serve(_channel, _reader, boot.get("model_name", ""))
        finally:
            try:
                self.on_kernel_shutdown()
            except Exception:
                traceback.print_exc()

    def _serve(self, sock: socket.socket, reader: Any, model_name: str) -> None:
        while True:
            msg = _recv(reader)
            if msg is None or msg[0].get("op") == "shutdown":
                return
            header, bodies = msg
            tasks = [
                TaskContext(
                    body,
                    task_id=t["id"],
                    session_id=t.get("session", ""),
                    uuid=t.get("uuid", ""),
                    model_name=model_name,
                )
                for t, body in zip(header["tasks"], bodies)  # noqa: B905
            ]
            for a, b in zip(tasks, tasks[1:]):  # noqa: B905
                a._next = b
            try:
                self.on_task_invoke(tasks[0])
            except Exception:
                error = traceback.format_exc()
                sys.stderr.write(error)
                sys.stderr.flush()
                _send(sock, {"op": "failed", "error": error})
                continue
            outputs = [t._output for t in tasks]
            _send(
                sock,
                {"op": "done", "set": [o is not None for o in outputs]},
                [o.encode("utf-8", "surrogateescape") if isinstance(o, str) else (o or b"") for o in outputs],
            )
