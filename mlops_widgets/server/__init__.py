"""The Jupyter server extension: REST endpoints for the JupyterLab extension (sidebar, run view,
notebook toolbar), served by Jupyter's own server under its authentication (token, XSRF): no
port of our own.

The workspace is the server's $MLOPS_HOME (what `mlops lab` sets), else the default one; the
backend $MLOPS_BACKEND, else local. Each request opens what it needs: handlers run read-only
queries on a worker thread (the embedded database belongs to the thread that opened it); a
template run is a job in a process of its own (jobs.py, worker.py), so nothing it does reaches
the server, and leaves an executed notebook in the audit trail.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlops_widgets.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    import atexit

    from mlops_widgets.server import views
    from mlops_widgets.server.handlers import routes
    from mlops_widgets.server.jobs import Jobs

    jobs = Jobs(views.workspace().root, views.backend_name())
    atexit.register(jobs.close)  # runs still going when the server stops are interrupted, recorded so
    serverapp.web_app.settings["mlops_jobs"] = jobs
    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", routes(base))
    serverapp.log.info("mlops_widgets: REST endpoints under %smlops/", base)
