"""Links from the panel to notebooks in JupyterLab, without JavaScript.

JupyterLab opens `<base_url>lab/tree/<path relative to its root>`; the kernel knows neither the
root nor the base URL, but the server that started it wrote both into its runtime file
(`jpserver-<pid>.json`), whose folder the kernel inherits.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


@dataclass(frozen=True)
class LabServer:
    root: Path
    base_url: str


def _runtime_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


def find_server(cwd: Path | None = None) -> LabServer | None:
    """The running Jupyter server whose root holds `cwd` (the notebook's folder), if any."""
    here = (cwd or Path.cwd()).resolve()
    best: LabServer | None = None
    try:
        files = sorted(_runtime_dir().glob("jpserver-*.json"))
    except OSError:
        return None
    for f in files:
        try:
            info = json.loads(f.read_text())
            root = Path(info["root_dir"]).expanduser().resolve()
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if here == root or root in here.parents:
            candidate = LabServer(root, info.get("base_url") or "/")
            if best is None or len(str(candidate.root)) > len(str(best.root)):
                best = candidate
    return best


def lab_url(target: str | os.PathLike[str], server: LabServer | None) -> str | None:
    """The JupyterLab URL opening `target`, or None when the server cannot serve it (outside its
    root, or under a hidden folder, which Jupyter refuses by default)."""
    if server is None:
        return None
    try:
        rel = Path(target).resolve().relative_to(server.root)
    except ValueError:
        return None
    if any(part.startswith(".") for part in rel.parts):
        return None
    base = server.base_url if server.base_url.endswith("/") else server.base_url + "/"
    return f"{base}lab/tree/{quote(rel.as_posix())}"


def open_link(
    target: str | os.PathLike[str],
    label: str,
    server: LabServer | None,
    run_id: str | None = None,
    workspace: str | os.PathLike[str] | None = None,
) -> str:
    """An HTML anchor opening `target` in a new JupyterLab tab, or a note saying why it cannot.
    With `run_id` (an executed notebook of the audit trail) the MLOps extension opens the run in
    a read-only tab of this JupyterLab instead (it catches clicks on `data-run` links; the run
    is looked up in `workspace`)."""
    url = lab_url(target, server)
    if run_id is not None:
        where = f" data-workspace='{html.escape(os.fspath(workspace))}'" if workspace else ""
        return (
            f"<a class='mlops-open-link' data-run='{html.escape(run_id)}'{where} href='{html.escape(url or '#')}' "
            f"target='_blank' rel='noopener'>{html.escape(label)}</a>"
        )
    if url is None:
        why = (
            "not under this JupyterLab's root or in a hidden folder"
            if server is not None
            else "no JupyterLab server found for this kernel"
        )
        return (
            f"<code>{html.escape(str(target))}</code> <span class='mlops-muted'>({why}: "
            "use Clone to get a copy beside this notebook)</span>"
        )
    return (
        f"<a class='mlops-open-link' href='{html.escape(url)}' target='_blank' rel='noopener' "
        f">{html.escape(label)}</a>"
    )


def notebook_dir() -> Path:
    """The notebook's folder: the kernel's working directory under JupyterLab."""
    session = os.environ.get("JPY_SESSION_NAME")
    if session and os.path.isabs(session):
        return Path(session).parent
    return Path.cwd()
