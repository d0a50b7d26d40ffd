"""Template runs: run, re-run, and the audit trail's one action on a notebook (app/notebooks.py:
an executed run's notebook opens its run, a clone of a run re-runs it, a clone of a template runs
the template, any other notebook runs as a template of its own: decided here for every front end)."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_widgets.app._base import AppBase
from mlops_widgets.app.notebooks import NotebookPlan, notebook_plan, parameter_values, refuse_run_notebook
from mlops_widgets.runner.trail import RunRecord


class RunsMixin(AppBase):
    """Template runs of `App`."""

    def rerun(
        self,
        run_id: str,
        params: Mapping[str, Any] | None = None,
        *,
        secrets: Mapping[str, str] | None = None,
        progress: Any = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> RunRecord:
        """Run a past run again (its template copy; `params` replace some; its secrets again)."""
        from mlops_widgets.runner import rerun

        return rerun(
            run_id,
            params=params or None,
            workspace=self.workspace,
            secrets=secrets or None,
            progress=progress,
            cancel=cancel,
            timeout=timeout,
        )

    def notebook_plan(self, path: Path) -> NotebookPlan:
        """What JupyterLab's one action on the notebook `path` does: open its run (an executed
        run's notebook), run a clone's parameters, or run it as a template (app/notebooks.py)."""
        return notebook_plan(self.workspace, path)

    def run_notebook(
        self,
        path: Path,
        params: Mapping[str, str] | None = None,
        *,
        secrets: Mapping[str, str] | None = None,
        progress: Any = None,
        cancel: threading.Event | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> RunRecord:
        """Run a notebook in the audit trail: a clone of a run re-runs it with the clone's
        parameters cell, a clone of a template runs the template (in `cwd`); any other notebook
        runs as a template of its own, in its folder, `params` being the form's texts (read as
        the command line reads them). An executed run's notebook is refused: re-run its run."""
        plan = self.notebook_plan(path)
        if plan.run is not None:
            raise refuse_run_notebook(plan.run)
        if plan.clone is not None:
            origin, values = plan.clone.origin, plan.clone.parameters
            if origin.get("run_id"):
                return self.rerun(origin["run_id"], values, secrets=secrets, progress=progress, cancel=cancel)
            return self.run(
                origin["template"], values, secrets=secrets, progress=progress, cancel=cancel, cwd=cwd
            )
        assert plan.template is not None
        values = parameter_values(plan.template, dict(params or {}))
        return self.run(
            plan.template.path, values, secrets=secrets, progress=progress, cancel=cancel, cwd=path.parent
        )
