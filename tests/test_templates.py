"""Every shipped template: its shape (a parameters cell with help per parameter, a markdown
heading per step, thin cells, no stored outputs) and an nbval run of all of them with their
defaults on one fresh workspace, in the workflow's order (stage, provider, deploy, monitor)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mlops_widgets.runner import list_templates
from mlops_widgets.runner.templates import cell_heading
from mlops_widgets.workspace import Workspace

# What a template's defaults rely on having run before it (stage before deploy, provider and
# deploy before monitor); templates not named here run afterwards, by name.
WORKFLOW_ORDER = [
    "A_MLOps_Pipeline",
    "C1_OpenScale_Dummy_ML_Provider",
    "A2_WMLA_Model_Deploy",
    "A4_Batch_Scoring",
    "A3_OpenScale_Configuration",
]
TEMPLATES = list_templates()
LOGIC = (ast.If, ast.For, ast.While, ast.Try, ast.With, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)


def test_the_pipeline_template_is_shipped() -> None:
    assert "A_MLOps_Pipeline" in [t.name for t in TEMPLATES]


@pytest.mark.parametrize("template", TEMPLATES, ids=[t.name for t in TEMPLATES])
def test_template_shape(template) -> None:
    nb = nbformat.reads(template.raw.decode(), as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5)
    assert nb.metadata.kernelspec.name == "python3"
    assert all(c.get("id") for c in nb.cells), "every cell has an id"
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one parameters cell"
    assert template.parameters, "the parameters cell declares parameters"
    for p in template.parameters.values():
        assert p.help, f"parameter {p.name} has a # comment saying what it is"
    assert cell_heading(nb.cells[0]), "the first cell is the title"
    previous = None
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {i} has stored output"
            if i > tagged[0]:
                assert previous is not None and previous.cell_type == "markdown" and cell_heading(previous), (
                    f"cell {i}: each step's code cell follows a markdown heading saying what it does"
                )
                logic = [type(n).__name__ for n in ast.parse(cell.source).body if isinstance(n, LOGIC)]
                assert not logic, f"cell {i}: no logic in cells ({', '.join(logic)}): call ops instead"
        previous = cell
    assert any("record(" in c.source for c in nb.cells if c.cell_type == "code"), "results are recorded"


def test_templates_run_with_their_defaults_under_nbval(workspace: Workspace, tmp_path: Path) -> None:
    """`pytest --nbval-lax` on every template, in a child pytest whose kernels see only the fresh
    workspace; services the templates started (the local inference service) are stopped after."""
    by_name = {t.name: t.path for t in TEMPLATES}
    names = [n for n in WORKFLOW_ORDER if n in by_name] + sorted(set(by_name) - set(WORKFLOW_ORDER))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "PYTEST_"))}
    env["MLOPS_HOME"] = str(workspace.root)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax",
        "-q",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(tmp_path),
        "-o",
        "addopts=",
        *(str(by_name[n]) for n in names),
    ]
    try:
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280)
    finally:
        _stop_services(workspace)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def _stop_services(workspace: Workspace) -> None:
    """The local inference service outlives the notebook that started it (A2): stop it."""
    from mlops_widgets.backends.local.inference import stop_service

    stop_service(workspace)
