"""The MLOps panel (ipywidgets): forms with live validation that drive the templates.

Imported only by those who open the panel (`from mlops_widgets import MLOpsPanel` is lazy), so
the CLI never pays for ipywidgets.
"""

from mlops_widgets.widgets.panel import MLOpsPanel

__all__ = ["MLOpsPanel"]
