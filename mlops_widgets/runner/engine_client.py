"""The papermill and nbclient classes behind the `mlops` engine (runner/engine.py): papermill's
execution manager calling the run's hooks around each cell, and papermill's notebook client
running the warm kernel's prelude. Imported only once papermill is (papermill imports the engine
module through its entry point, so that module must not import papermill itself)."""

from __future__ import annotations

import time
from queue import Empty
from typing import IO, Any, Protocol

from nbclient.util import ensure_async, run_sync
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NotebookExecutionManager


class Hooks(Protocol):
    def kernel_started(self, km: Any) -> None: ...

    def cell_start(self, index: int) -> None: ...

    def cell_complete(self, index: int) -> None: ...


class PreludeFailed(RuntimeError):
    """The silent set-up code of a warm kernel failed: the run's cells never ran."""


class Manager(NotebookExecutionManager):
    """papermill's execution manager calling the caller's hooks around each cell."""

    def __init__(self, nb: Any, hooks: Hooks | None, **kwargs: Any) -> None:
        super().__init__(nb, **kwargs)
        self.hooks = hooks

    def cell_start(self, cell: Any, cell_index: Any = None, **kwargs: Any) -> None:
        if self.hooks is not None:
            self.hooks.cell_start(cell_index)
        super().cell_start(cell, cell_index, **kwargs)

    def cell_complete(self, cell: Any, cell_index: Any = None, **kwargs: Any) -> None:
        super().cell_complete(cell, cell_index, **kwargs)
        if self.hooks is not None:
            self.hooks.cell_complete(cell_index)


class Client(PapermillNotebookClient):
    """papermill's notebook client telling the hooks its kernel and running the prelude once its
    kernel client is connected."""

    def __init__(self, nb_man: Any, prelude: str | None, hooks: Hooks | None, **kwargs: Any) -> None:
        super().__init__(nb_man, **kwargs)
        self.prelude, self.hooks = prelude, hooks

    async def async_start_new_kernel_client(self) -> Any:
        if self.hooks is not None:
            self.hooks.kernel_started(self.km)
        if not self.prelude:
            return await super().async_start_new_kernel_client()
        # A warm kernel is known to be up: the prelude's reply and a first IOPub message prove
        # this client is connected, without jupyter_client's 0.2 s flush of IOPub.
        self.kc = self.km.client()
        await ensure_async(self.kc.start_channels())
        try:
            reply = await self.async_wait_for_reply(
                self.kc.execute(self.prelude, silent=True, store_history=False), None
            )
            if (reply or {}).get("content", {}).get("status") != "ok":
                raise PreludeFailed("the kernel could not be given the run's settings")
            await self._subscribed()
        except Exception:
            await self._async_cleanup_kernel()
            raise
        self.kc.allow_stdin = False
        return self.kc

    async def _subscribed(self) -> None:
        """Wait until this client's IOPub subscription gets messages (a subscription made
        after a message was published misses it): kernel_info requests until one arrives."""
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            try:
                await ensure_async(self.kc.iopub_channel.get_msg(timeout=0.05))
                return
            except Empty:
                self.kc.kernel_info()
        raise PreludeFailed("the kernel's output channel did not answer")

    # nbclient's blocking twin is bound to its own coroutine: bound again to this one.
    start_new_kernel_client = run_sync(async_start_new_kernel_client)


def execute_managed(
    nb_man: Any,
    kernel_name: str,
    log_output: bool = False,
    start_timeout: int = 60,
    execution_timeout: int | None = None,
    kernel_env: dict[str, str] | None = None,
    kernel_cwd: str | None = None,
    kernel_log: IO[bytes] | None = None,
    km: Any = None,
    prelude: str | None = None,
    hooks: Hooks | None = None,
    **kwargs: Any,
) -> Any:
    """What NBClientEngine.execute_managed_notebook does, with the engine's extra arguments."""
    kwargs.pop("input_path", None)
    client = Client(
        nb_man,
        prelude,
        hooks,
        km=km,
        kernel_name=kernel_name,
        timeout=execution_timeout,
        startup_timeout=start_timeout,
        log_output=log_output,
        **{k: v for k, v in kwargs.items() if k not in ("stdout_file", "stderr_file")},
    )
    start: dict[str, Any] = {}
    if km is None or not km.has_kernel:  # a kernel nbclient starts: environment, folder, log
        if kernel_env is not None:
            start["env"] = dict(kernel_env)
        if kernel_cwd is not None:
            start["cwd"] = kernel_cwd
        if kernel_log is not None:
            start["stdout"] = start["stderr"] = kernel_log
    try:
        return client.execute(**start)
    finally:
        # nbclient stops its kernel client only when it made the manager itself; ours always
        # comes from the runner, and an unstopped client keeps its ZMQ context (two threads),
        # its sockets and its heartbeat thread for the life of the process.
        if client.kc is not None:
            client.kc.stop_channels()
