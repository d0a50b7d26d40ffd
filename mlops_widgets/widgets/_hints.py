"""How the panel says what fixes an error: each hint action rendered as the panel's controls
(tab, field, button), never a CLI flag or command (those are the CLI's, cli/_hints.py).

An action without an entry shows the hint's plain text, which names no flag either. Keep the
table in alphabetical order; a rendering may use the hint's `args` as `{name}` fields.
"""

from __future__ import annotations

from mlops_widgets.errors import Hint, MlopsError, render_error, render_hint

RENDERINGS: dict[str, str] = {
    "clone.replace": "choose another name under Clone to (Runs tab)",
    "config.list": "the Staged model list of the Deploy tab shows the entries",
    "deploy.delete": "delete it first: pick {deployment} under Deployments (Deploy tab) and press Delete",
    "deploy.list": "the Deployment list of the Deploy tab shows their names",
    "deploy.logs": "its kernel logs say more: pick {deployment} under Deployments (Deploy tab), then Logs",
    "deploy.start": "add {env} as a custom arg, then press Start (Deploy tab)",
    "deploy.stop": "stop it first: pick {deployment} under Deployments (Deploy tab) and press Stop",
    "monitor.create": "press Create monitors in the Monitor tab first",
    "provider.create": "press Create provider in the Monitor tab",
    "runs.clone": "give {params} again in the run's parameters, then Clone (Runs tab)",
    "runs.list": "the Runs tab lists the runs",
    "runs.rerun": "give {params} again in the run's parameters, then Re-run (Runs tab)",
    "stage.deployed": "delete deployment {deployment} in the Deploy tab first, or choose "
    "\u201cadd new assets of the same name\u201d under Same names (Prepare tab)",
    "stage.first": "stage a model with Stage in the Prepare tab first",
    "stage.new": "press Stage in the Prepare tab to stage the model and its dependency again",
    "stage.replace": "choose \u201creplace the old assets\u201d or \u201cadd new assets of the same name\u201d "
    "under Same names (Prepare tab)",
    "stage.retry": "press Stage again (Prepare tab) to replace the entries as they are now",
}


def render(hint: Hint) -> str:
    """The panel's words for `hint`."""
    return render_hint(hint, RENDERINGS)


def message(error: MlopsError) -> str:
    """What the panel shows for `error`: the message, then the hint in the panel's words."""
    return render_error(error, RENDERINGS)
