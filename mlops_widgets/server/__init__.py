"""The Jupyter server extension: REST endpoints for the JupyterLab extension (sidebar, run view,
notebook toolbar), served by Jupyter's own server under its authentication (token, XSRF): no
port of our own.

The workspace is the server's $MLOPS_HOME (what `mlops lab` sets), else the default one; the
backend $MLOPS_BACKEND, else local. Each request opens what it needs: handlers run read-only
queries on a worker thread (the embedded database belongs to the thread that opened it) and
hand state changes to the runner, so every one leaves an executed notebook in the audit trail.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlops_widgets.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from mlops_widgets.server.handlers import routes

    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", routes(base))
    serverapp.log.info("mlops_widgets: REST endpoints under %smlops/", base)
