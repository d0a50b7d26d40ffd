"""What a notebook in JupyterLab's file browser is to the audit trail, read without a kernel:
the executed notebook of a run (opened as its run), a clone of a run or a template (its
parameters cell runs through the runner), or any other notebook (run as a template of its own,
its `parameters` cell giving what it takes). JupyterLab's context menu and notebook toolbar ask
`notebook_plan` once and offer the one action it names.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_widgets.errors import MlopsError
from mlops_widgets.runner.templates import Template
from mlops_widgets.runner.trail import RUNS_DIR, RunRecord, get_run
from mlops_widgets.workspace import Workspace

OPEN, CLONE, TEMPLATE = "open", "clone", "template"


@dataclass(frozen=True)
class NotebookPlan:
    """The one action a notebook offers: OPEN its `run`, run a CLONE's parameters (`clone`), or
    run it as a TEMPLATE (`template`, whose parameters the form asks)."""

    action: str
    run: RunRecord | None = None
    clone: ClonePlan | None = None
    template: Template | None = None


def _read(path: Path) -> dict[str, Any]:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MlopsError(f"{path.name}: cannot read the notebook ({exc})") from None
    if not isinstance(nb, dict):
        raise MlopsError(f"{path.name} is not a notebook (no cells)")
    return nb


def runs_folder(ws: Workspace) -> Path:
    """The folder of `ws`'s audit trail (one folder per run), resolved."""
    return (ws.root / RUNS_DIR).resolve()


def run_of_notebook(ws: Workspace, path: Path) -> RunRecord | None:
    """The run whose executed notebook `path` is (a folder of `ws`'s audit trail), else None."""
    if path.parent.parent != runs_folder(ws):
        return None
    try:
        record = get_run(path.parent.name, ws)
    except MlopsError:
        return None
    return record if record.kind == "template" and record.notebook.resolve() == path else None


def notebook_plan(ws: Workspace, path: Path) -> NotebookPlan:
    """What the lab's action on the notebook `path` (resolved) does; one clear error when the
    notebook cannot be read or its parameters cell does not parse."""
    run = run_of_notebook(ws, path)
    if run is not None:
        return NotebookPlan(OPEN, run=run)
    if (_read(path).get("metadata", {}).get("mlops") or {}).get("cloned_from"):
        return NotebookPlan(CLONE, clone=clone_plan(path))
    template = Template(path)
    template.parameters  # noqa: B018  (parsed now: a cell that does not parse is said here)
    return NotebookPlan(TEMPLATE, template=template)


def parameter_values(template: Template, texts: dict[str, str]) -> dict[str, Any]:
    """A form's texts as the template's values, each read as the command line reads it (verbatim
    for text, YAML otherwise); a name the template does not take is left for the runner to refuse."""
    declared = template.parameters
    return {name: declared[name].coerce(text) if name in declared else text for name, text in texts.items()}


def parameter_problems(template: Template, texts: dict[str, str]) -> dict[str, str]:
    """Each form text the template's parameter would refuse, with the runner's words: what a
    form says beside the field while the user types (`parameter_values` raises the first)."""
    problems: dict[str, str] = {}
    for name, text in texts.items():
        if name in template.parameters:
            try:
                template.parameters[name].coerce(text)
            except MlopsError as exc:
                problems[name] = str(exc)
    return problems


def refuse_run_notebook(run: RunRecord) -> MlopsError:
    """Running an executed run's notebook would record a copy of a copy: re-run the run instead."""
    return MlopsError(
        f"this notebook is the executed notebook of run {run.short_id} ({run.template}): "
        "re-run that run from its tab in the audit trail instead"
    )


@dataclass(frozen=True)
class ClonePlan:
    """A cloned notebook's origin ({"run_id", "template"} or {"template", ...}), the literal
    values of its injected parameters cell, and the secrets it reads."""

    origin: dict[str, str]
    parameters: dict[str, Any]
    secret_names: list[str]


def clone_plan(path: Path) -> ClonePlan:
    """Read a clone (see App.clone_plan); one clear error when it is not one."""
    nb = _read(path)
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
