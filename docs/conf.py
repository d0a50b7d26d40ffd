"""Sphinx configuration of the mlops-widgets documentation (MyST Markdown, the PyData theme).

Build: `bash dev.sh docs` (HTML in docs/_build/html); the test suite builds it with warnings as
errors (tests/test_docs.py). Pages are found by the toctrees' globs in index.md: a new page under
docs/ appears without editing this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

from mlops_widgets import __version__  # noqa: E402

project = "mlops-widgets"
author = "the mlops-widgets contributors"
copyright = "2026, the mlops-widgets contributors"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx_click",
    "sphinxcontrib.mermaid",
    "mlops_docs",  # docs/_ext/mlops_docs.py: the config reference from the JSON Schema
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 4
myst_fence_as_directive = ["mermaid"]  # ```mermaid fences render as diagrams, as on GitHub
nitpicky = True

html_theme = "pydata_sphinx_theme"
html_title = "mlops-widgets"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_depth": 2,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
