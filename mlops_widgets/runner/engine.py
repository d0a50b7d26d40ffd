"""The `mlops` papermill engine: papermill's nbclient engine with the runner's needs passed as
public arguments, registered in papermill's `papermill.engine` entry-point group (as Elyra
registers its own), so `papermill.execute_notebook(..., engine_name="mlops", ...)` reaches it.
This module imports no papermill at the top: papermill loads it while papermill itself is being
imported (the classes that subclass papermill's are in engine_client.py).

Extra arguments (papermill hands unknown keyword arguments of `execute_notebook` to the engine):

    kernel_env   the environment of the kernel the engine starts (nbclient hands it to
                 `KernelManager.start_kernel(env=...)`: settings and secrets, never the notebook)
    kernel_cwd   the kernel's working folder
    kernel_log   a binary file for the kernel's own stdout/stderr (not the cells' output)
    km           the kernel manager to use (nbclient's own argument): when it has a started
                 kernel (a warm kernel) the kernel_* arguments are unused; the caller shuts it
                 down
    prelude      code run silently in the kernel before the first cell, never part of the
                 notebook (how a warm kernel gets its run's settings)
    hooks        an object with `kernel_started(km)` (the kernel to interrupt or kill),
                 `cell_start(index)` (may raise to stop before the cell) and
                 `cell_complete(index)`: progress and cancellation
"""

from __future__ import annotations

from typing import Any

ENGINE_NAME = "mlops"


class MlopsEngine:
    """papermill's nbclient engine with kernel environment, warm kernel and hooks (see module).
    papermill calls engines through these three class methods."""

    @classmethod
    def execute_notebook(
        cls,
        nb: Any,
        kernel_name: str,
        output_path: str | None = None,
        progress_bar: bool = True,
        log_output: bool = False,
        autosave_cell_every: int = 30,
        hooks: Any = None,
        **kwargs: Any,
    ) -> Any:
        """As papermill's Engine.execute_notebook, with the hooks given to the manager too."""
        from mlops_widgets.runner.engine_client import Manager, execute_managed

        nb_man = Manager(
            nb,
            hooks,
            output_path=output_path,
            progress_bar=progress_bar,
            log_output=log_output,
            autosave_cell_every=autosave_cell_every,
        )
        nb_man.notebook_start()
        try:
            execute_managed(nb_man, kernel_name, log_output=log_output, hooks=hooks, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb

    @classmethod
    def nb_kernel_name(cls, nb: Any, name: str | None = None) -> str:
        from papermill.utils import nb_kernel_name

        return nb_kernel_name(nb, name)

    @classmethod
    def nb_language(cls, nb: Any, language: str | None = None) -> str:
        from papermill.utils import nb_language

        return nb_language(nb, language)
