"""How the panel says what fixes an error: each hint action rendered as the panel's controls
(tab, field, button), never a CLI flag or command (those are the CLI's, cli/_hints.py).

An action without an entry shows the hint's plain text, which names no flag either. Keep the
table in alphabetical order; a rendering may use the hint's `args` as `{name}` fields.
"""

from __future__ import annotations

import re

from mlops_widgets.errors import Hint, MlopsError, render_error, render_hint

# Config keys -> the panel's control that holds them (docs/reference/glossary.md): the config model's
# messages name keys, the panel names its fields; the keys themselves show only in tooltips.
CONTROLS: dict[str, str] = {
    "connection_timeout": "Connection timeout (s)",
    "custom_args": "Custom args",
    "dependency_asset_id": "Deployment folder",
    "dependency_filename": "Deployment folder",
    "deployment_id": "Deployment",
    "deployment_name": "Deployment name",
    "deployment_space_id": "Deployment space",
    "deployment_url": "Deployment address",
    "dir_gt": "Ground-truth folder",
    "dir_pred": "Predictions folder",
    "enable_gpus": "Use GPUs",
    "kernel_delay_release_time": "Idle release (s)",
    "kernel_filename": "Worker script",
    "kernel_max": "Inference workers max",
    "kernel_min": "Inference workers min",
    "memory_allocation": "Memory (MB)",
    "model_asset": "Staged model",
    "model_asset_id": "Staged model",
    "model_name": "Model name",
    "most_recent": "Recent days",
    "n_cpus": "CPUs",
    "n_min_kernels": "Inference workers min",
    "n_replicas": "Inference workers max",
    "openscale_custom_metric_provider": "Monitors",
    "openscale_subscription_id": "Subscription",
    "path_dependency": "Deployment folder",
    "path_model": "Model file/folder",
    "resource_configs": "Resources",
    "task_batch_size": "Batch size",
    "task_execution_timeout": "Task timeout (s)",
    "training_job": "Training job",
    "volume_display_name": "Storage volume",
    "wmla_deployment": "Deployment",
}
# A config path as messages write it: `wmla_deployment.resource_configs.kernel_min`, `dir_gt`.
_PATH = re.compile(r"(?<![\w/\\.-])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?![\w/\\-])")

RENDERINGS: dict[str, str] = {
    "clone.replace": "choose another name under Clone to (Runs tab)",
    "config.list": "the Staged model list of the Deploy tab shows the entries",
    "deploy.delete": "delete it first: pick {deployment} under Deployments (Deploy tab) and press Delete",
    "deploy.list": "the Deployment list of the Deploy tab shows their names",
    "deploy.logs": "its kernel logs say more: pick {deployment} under Deployments (Deploy tab), then Logs",
    "deploy.start": "add {env} as a custom arg, then press Start (Deploy tab)",
    "deploy.stop": "stop it first: pick {deployment} under Deployments (Deploy tab) and press Stop",
    "monitor.create": "press Create monitors in the Monitor tab first",
    "monitor.schedule": "type a repeat under Every and press Set schedule (Monitor tab) first",
    "monitor.schedule.longer": "type a longer repeat under Every, at least {every} (Monitor tab)",
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


def words(text: str) -> str:
    """`text` with each config key (or dotted path ending in one) replaced by the name of its
    control: "kernel_min (5) is greater than kernel_max (2)" reads "Inference workers min (5) is
    greater than Inference workers max (2)"."""

    def control(match: re.Match[str]) -> str:
        path = match.group(0)
        last = path.rsplit(".", 1)[-1]
        if last in CONTROLS and ("_" in path or "." in path):
            return CONTROLS[last]
        return path

    return _PATH.sub(control, text)


def render(hint: Hint) -> str:
    """The panel's words for `hint`."""
    return words(render_hint(hint, RENDERINGS))


def message(error: MlopsError) -> str:
    """What the panel shows for `error`: the message, then the hint in the panel's words."""
    return words(render_error(error, RENDERINGS))
