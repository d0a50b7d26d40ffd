"""Clone a template or a past run into an editable notebook with its parameters filled in.

The clone has one parameters cell: the template's, with papermill's injected values in place
(exactly what a run would execute); secret parameters are injected as code reading the
environment, never as values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_widgets.errors import ConflictError, Hint, MlopsError
from mlops_widgets.runner.notebook import one_parameters_cell, parameterize, template_notebook
from mlops_widgets.runner.params import validate_parameters
from mlops_widgets.runner.prepare import refuse_masked
from mlops_widgets.runner.templates import Template, get_template
from mlops_widgets.runner.trail import get_run
from mlops_widgets.workspace import Workspace, atomic_write


def _write(nb: Any, dest: str | os.PathLike[str], force: bool) -> Path:
    import nbformat

    path = Path(dest).expanduser().resolve()
    if path.suffix != ".ipynb":
        raise MlopsError(f"{dest}: a notebook's name must end with .ipynb")
    if path.exists() and not force:
        raise ConflictError(
            f"{path} already exists",
            hint=Hint("clone.replace", "choose another name, or replace it", {"path": str(path)}),
        )
    for cell in nb.cells:  # papermill needs a tags list on every cell; the user's copy does not
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
    atomic_write(path, nbformat.writes(nb))
    return path


def _clone(
    template: Template,
    params: Mapping[str, Any],
    secret_names: list[str],
    origin: dict[str, str],
    workspace: Workspace,
) -> Any:
    declared = template.parameters
    secret_params = [n for n in secret_names if n in declared and declared[n].secret]
    plain = {k: v for k, v in params.items() if not (k in declared and declared[k].secret)}
    checked = validate_parameters(template, plain, workspace=workspace)
    nb = one_parameters_cell(parameterize(template_notebook(template), checked, secret_params))
    nb.metadata["mlops"] = {"cloned_from": origin}
    return nb


def clone_template(
    template: str | os.PathLike[str] | Template,
    dest: str | os.PathLike[str],
    params: Mapping[str, Any] | None = None,
    *,
    workspace: Workspace | str | os.PathLike[str] | None = None,
    force: bool = False,
) -> Path:
    """Write `template` to `dest` with `params` filled in (validated as for a run in
    `workspace`, default the current one). A secret parameter given here is written as code
    reading its environment variable, not its value."""
    tmpl = get_template(template)
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    params = dict(params or {})
    secret_names = [n for n in tmpl.secret_names if n in params]
    nb = _clone(tmpl, params, secret_names, {"template": tmpl.name, "template_hash": tmpl.hash}, ws)
    return _write(nb, dest, force)


def clone_run(
    run: str,
    dest: str | os.PathLike[str],
    workspace: Workspace | str | os.PathLike[str] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Write a past run's template copy to `dest` with the run's parameters filled in (`params`
    replace some: a parameter stored masked must be given again)."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    record = get_run(run, ws)
    if record.kind != "template":
        raise MlopsError(
            f"{record.run_id} is an event record ({record.template}), not a template run: it has no notebook"
        )
    parameters = {**record.parameters, **(params or {})}
    refuse_masked(record.run_id, parameters, "runs.clone")
    tmpl = Template(record.template_copy, name=record.template)
    origin = {"run_id": record.run_id, "template": record.template}
    nb = _clone(tmpl, parameters, record.secret_names, origin, ws)
    return _write(nb, dest, force)
