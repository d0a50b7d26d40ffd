"""Template runs: run, re-run, clone, the audit trail's one action on a notebook (app/notebooks.py:
an executed run's notebook opens its run, a clone of a run re-runs it, a clone of a template runs
the template, any other notebook runs as a template of its own: decided here for every front end),
and the reads of the audit trail and of the templates."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_widgets.app._base import AppBase
from mlops_widgets.app.monitoring import EVALUATE_TEMPLATE
from mlops_widgets.app.notebooks import (
    NotebookPlan,
    notebook_plan,
    parameter_problems,
    parameter_values,
    refuse_run_notebook,
    runs_folder,
)
from mlops_widgets.runner.templates import Template
from mlops_widgets.runner.trail import RunRecord, RunSummary


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

    def notebook_problems(self, path: Path, texts: Mapping[str, str]) -> dict[str, str]:
        """What a run of the notebook `path` would refuse in the form's `texts`, field by field
        (none for a clone, whose values are its parameters cell's, or a run's notebook)."""
        template = self.notebook_plan(path).template
        return parameter_problems(template, dict(texts)) if template is not None else {}

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

    # Reads: the audit trail and the templates (no event recorded).

    def runs(
        self,
        *,
        template: str | None = None,
        status: str | None = None,
        deployment_name: str | None = None,
        monitor_id: str | None = None,
        trigger: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
    ) -> list[RunSummary]:
        """The audit trail, newest first (template runs and events), filtered by template (an
        event's action), status, deployment and start time (`since` inclusive, `until`
        exclusive, UTC ISO); `monitor_id` or `trigger` ("schedule" or "manual") keep the monitor
        evaluations of that monitor, run so. `limit` None or 0: all."""
        from mlops_widgets.runner import list_runs

        evaluations = monitor_id is not None or trigger is not None
        found = list_runs(
            self.workspace,
            template=template or (EVALUATE_TEMPLATE if evaluations else None),
            status=status,
            deployment_name=deployment_name,
            since=since,
            until=until,
            limit=None if evaluations else limit or None,
        )
        if trigger is not None:  # "schedule", else asked for
            found = [r for r in found if (r.triggered_by == "schedule") == (trigger == "schedule")]
        if monitor_id is not None:
            found = [r for r in found if self._evaluated(r.run_id, monitor_id)]
        return found[:limit] if evaluations and limit else found

    def _evaluated(self, run_id: str, monitor_id: str) -> bool:
        """Whether a monitor evaluation run evaluated `monitor_id` (asked for by name, or among
        every monitor evaluated)."""
        record = self.run_record(run_id)
        params = record.parameters or {}
        if params.get("monitor_id") == monitor_id:
            return True
        evaluated = [r.get("monitor_id") for r in (record.results or {}).get("runs") or []]
        return params.get("monitor_id") is None and monitor_id in evaluated

    def run_record(self, run: str) -> RunRecord:
        """One run's record: `run` is its id, or a unique prefix of its id or of its short id."""
        from mlops_widgets.runner import get_run

        return get_run(run, self.workspace)

    def run_template_copy(self, run: str | RunRecord) -> Template:
        """The template a past run ran (its stored copy): what its parameters were declared as."""
        record = run if isinstance(run, RunRecord) else self.run_record(run)
        return Template(record.template_copy, name=record.template)

    def runs_folder(self) -> Path:
        """The folder of the audit trail (one folder per run), resolved."""
        return runs_folder(self.workspace)

    @staticmethod
    def templates() -> list[Template]:
        """The templates shipped with the package, by name, with their parameters."""
        from mlops_widgets.runner import list_templates

        return list_templates()

    @staticmethod
    def template(template: str | os.PathLike[str] | Template) -> Template:
        """A shipped template by name (`.ipynb` optional), or a notebook path."""
        from mlops_widgets.runner import get_template

        return get_template(template)

    def clone_template(
        self,
        template: str | os.PathLike[str],
        dest: str | os.PathLike[str],
        params: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
    ) -> Path:
        """Write `template` to the notebook `dest` with `params` filled in (validated as for a
        run), to edit and run by hand; a secret is written as code reading its variable."""
        from mlops_widgets.runner import clone_template

        return clone_template(template, dest, params, workspace=self.workspace, force=force)

    def clone_run(
        self,
        run: str,
        dest: str | os.PathLike[str],
        params: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
    ) -> Path:
        """Write a past run's template copy to the notebook `dest` with its parameters filled
        in (`params` replace some: one stored masked must be given again)."""
        from mlops_widgets.runner import clone_run

        return clone_run(run, dest, self.workspace, params=params, force=force)

    def keep_spare_kernel(self) -> None:
        """Keep a kernel started ahead for this workspace and backend, so that this process's
        next template runs skip a kernel start (long-lived front ends: the panel)."""
        from mlops_widgets.runner import warm

        warm.keep_spare(True, workspace=self.workspace, backend=self.backend_name)
