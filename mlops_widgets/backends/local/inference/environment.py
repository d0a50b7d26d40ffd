"""The environment a kernel process gets."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_widgets.secret_names import is_secret_name


def without_credentials(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` less the caller's credentials (secret-looking names, $MLOPS_SECRET_* among them):
    kernels get their secrets only as custom args, whoever started the service."""
    return {k: v for k, v in environ.items() if not is_secret_name(k)}


def kernel_environment(
    base: Mapping[str, str],
    *,
    name: str,
    model: Mapping[str, Any],
    profile: Mapping[str, Any],
    model_dir: Path,
    pod: str,
    gpu: str | None,
) -> dict[str, str]:
    """EDI's kernel environment over `base`: model.json's mk_environments, the profile's
    kernel envs, REDHARE_MODEL_NAME/PATH, MSD_POD_NAME, and the kernel's GPU."""
    env = without_credentials(base)
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
