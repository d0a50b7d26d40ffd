"""mlops-widgets: deploy and monitor image models from Jupyter.

Kept import-light: the CLI imports this package on every start, so nothing heavy
(papermill, nbformat, ipywidgets, the IBM SDKs) is imported here.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["MLOpsPanel", "__version__"]


def __getattr__(name: str) -> Any:
    # ipywidgets is only paid for by those who open the panel.
    if name == "MLOpsPanel":
        from mlops_widgets.widgets import MLOpsPanel

        return MLOpsPanel
    raise AttributeError(name)
