"""Template runs: run, re-run, and a clone's plan and run (a clone of a run re-runs it, a clone
of a template runs the template: decided here for every front end)."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_widgets.app._base import AppBase
from mlops_widgets.errors import MlopsError
from mlops_widgets.runner.trail import RunRecord


@dataclass(frozen=True)
class ClonePlan:
    """A cloned notebook's origin ({"run_id", "template"} or {"template", ...}), the literal
    values of its injected parameters cell, and the secrets it reads."""

    origin: dict[str, str]
    parameters: dict[str, Any]
    secret_names: list[str]


def clone_plan(path: Path) -> ClonePlan:
    """Read a clone (see App.clone_plan); one clear error when it is not one."""
    import ast
    import json

    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MlopsError(f"{path.name}: cannot read the notebook ({exc})") from None
    origin = (nb.get("metadata", {}).get("mlops") or {}).get("cloned_from")
    if not origin:
        raise MlopsError(
            f"{path.name} was not cloned from a template or a run: nothing to run in the audit trail"
        )
    params: dict[str, Any] = {}
    secrets: list[str] = []
    for cell in nb.get("cells", []):
        if "injected-parameters" not in (cell.get("metadata", {}).get("tags") or []):
            continue
        source = "".join(cell.get("source", ""))
        # The template's defaults left as written in a clone's one parameters cell: not parameters.
        defaults = cell.get("metadata", {}).get("mlops_defaults") or {}
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise MlopsError(f"the parameters cell does not parse: {exc.msg} (line {exc.lineno})") from None
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                name, value = node.targets[0].id, node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                name, value = node.target.id, node.value
            else:
                continue
            if name in defaults and ast.get_source_segment(source, value) == defaults[name]:
                continue
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "secret":
                secrets.append(name)
                continue
            try:
                params[name] = ast.literal_eval(value)
            except ValueError:
                raise MlopsError(
                    f"parameter {name}: its value must be a plain value (text, number, list, dict), not code"
                ) from None
    return ClonePlan(origin, params, secrets)


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

    def clone_plan(self, path: Path) -> ClonePlan:
        """What running the cloned notebook `path` in the audit trail does: its origin (a run or
        a template), the values of its parameters cell and the secrets it asks for."""
        return clone_plan(path)

    def run_clone(
        self,
        path: Path,
        *,
        secrets: Mapping[str, str] | None = None,
        progress: Any = None,
        cancel: threading.Event | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> RunRecord:
        """Run a clone's parameters: a clone of a run re-runs it with them, a clone of a
        template runs the template (validated as any run)."""
        plan = clone_plan(path)
        if plan.origin.get("run_id"):
            return self.rerun(
                plan.origin["run_id"], plan.parameters, secrets=secrets, progress=progress, cancel=cancel
            )
        return self.run(
            plan.origin["template"],
            plan.parameters,
            secrets=secrets,
            progress=progress,
            cancel=cancel,
            cwd=cwd,
        )
