"""The environment a kernel process gets: the user's ordinary environment, less credentials and
less what belongs to the notebook, run or tool that happened to start the service, plus EDI's
kernel variables.

    kept       the user's variables (HOME, PATH, LANG, proxies, their own settings...)
    dropped    credentials (`masking.is_credential`: by name, or a URL value carrying one):
               secrets reach kernels only as secret custom args; mlops-widgets' own variables (MLOPS_*: the run id,
               the caller's workspace and backend); a notebook's or debugger's (JPY_*,
               JUPYTER_*, IPYKERNEL*, MPLBACKEND, PYDEVD*, DEBUGPY*, PAPERMILL*, ...)
    added      mk_environments of model.json, the profile's kernel envs, REDHARE_MODEL_NAME,
               REDHARE_MODEL_PATH, MSD_POD_NAME, CUDA_VISIBLE_DEVICES (one GPU each)

A kernel of another runtime (a Python other than the service's own) also loses the variables
that would lead it to the service's packages: PYTHONPATH, PYTHONHOME, VIRTUAL_ENV, and the
service's environment's bin folder on PATH, where the runtime's own comes first instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_widgets.masking import is_credential

NOT_INHERITED_PREFIXES = (
    "MLOPS_",
    "JPY_",
    "JUPYTER_",
    "IPYKERNEL",
    "PYDEVD",
    "DEBUGPY",
    "PAPERMILL",
    "VSCODE_",
    "ELECTRON_",
)
NOT_INHERITED = frozenset(
    {
        "MPLBACKEND",
        "CLICOLOR",
        "CLICOLOR_FORCE",
        "FORCE_COLOR",
        "PAGER",
        "GIT_PAGER",
        "KERNEL_LAUNCH_TIMEOUT",
        "PYTHONBREAKPOINT",
    }
)
FOREIGN_RUNTIME_DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "CONDA_PREFIX")


def without_credentials(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` less credential-looking variables ($MLOPS_SECRET_*, DB_PASSWD, *_TOKEN..., a URL
    with a password): processes the service starts get secrets only as secret custom args."""
    return {k: v for k, v in environ.items() if not is_credential(k, v)}


def ordinary(environ: Mapping[str, str]) -> dict[str, str]:
    """The user's ordinary environment: no credential, no notebook, run or mlops variable."""
    return {
        k: v
        for k, v in without_credentials(environ).items()
        if k not in NOT_INHERITED and not k.startswith(NOT_INHERITED_PREFIXES)
    }


def for_runtime(env: dict[str, str], python: str) -> dict[str, str]:
    """`env` for a process on `python`: for another interpreter than ours, nothing leading to
    our packages, and its own bin folder first on PATH."""
    if python == sys.executable:
        return env
    ours = str(Path(sys.executable).parent)
    env = {k: v for k, v in env.items() if k not in FOREIGN_RUNTIME_DROPPED}
    path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p != ours]
    env["PATH"] = os.pathsep.join([str(Path(python).parent), *path])
    return env


def kernel_environment(
    base: Mapping[str, str],
    *,
    name: str,
    model: Mapping[str, Any],
    profile: Mapping[str, Any],
    model_dir: Path,
    pod: str,
    gpu: str | None,
    python: str,
) -> dict[str, str]:
    """EDI's kernel environment over the ordinary part of `base`: model.json's mk_environments,
    the profile's kernel envs, REDHARE_MODEL_NAME/PATH, MSD_POD_NAME, and the kernel's GPU."""
    env = for_runtime(ordinary(base), python)
    for item in [*(model.get("mk_environments") or []), *(profile["kernel"].get("envs") or [])]:
        env[str(item["name"])] = str(item.get("value", ""))
    env.update(
        PYTHONUNBUFFERED="1",
        REDHARE_MODEL_NAME=name,
        REDHARE_MODEL_PATH=str(model_dir),
        MSD_POD_NAME=pod,
    )
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env
