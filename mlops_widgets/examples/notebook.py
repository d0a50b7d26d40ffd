"""The example notebook that opens the MLOps panel (used by `mlops lab` and Binder)."""

from __future__ import annotations

import json
from pathlib import Path

NAME = "MLOps_Panel.ipynb"

INTRO = """# MLOps panel

Run the cell below to open the panel on this workspace. Each tab follows the workflow:
**Prepare** (stage a model), **Deploy**, **Monitor**, **Status** and **Runs** (the audit trail:
every step's executed notebook, re-runnable and clonable)."""


def write_panel_notebook(folder: Path, workspace: Path) -> Path:
    """Write `MLOps_Panel.ipynb` into `folder`, opening the panel on `workspace` (kept if present,
    so a user's edits survive another `mlops lab`)."""
    path = folder / NAME
    if path.exists():
        return path
    try:
        ws = str(workspace.relative_to(folder)) or "."
    except ValueError:
        ws = str(workspace)
    code = f"from mlops_widgets import MLOpsPanel\n\nMLOpsPanel(workspace={ws!r})"
    nb = {
        "cells": [
            {"cell_type": "markdown", "id": "intro", "metadata": {}, "source": INTRO},
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "panel",
                "metadata": {},
                "outputs": [],
                "source": code,
            },
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1) + "\n")
    return path
