"""Batch scoring: send a folder of images through a deployment and keep the predicted masks.

This is what feeds the monitors: the segmentation monitor compares `<name>_Seg.png` in the
volume's dir_pred with the ground truth in dir_gt, so predictions are written there under that name,
through the backend's storage volumes (a folder on the local backend, the volumes API on cpd).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_widgets.backends.base import Backend, Progress
from mlops_widgets.errors import Hint, MlopsError
from mlops_widgets.ops import deploy, space
from mlops_widgets.workspace import atomic_write

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def prediction_folder(backend: Backend, deployment_name: str) -> tuple[str, str]:
    """Where the deployment's monitors read predictions: (storage volume, dir_pred) of its entry
    (the monitors of one entry share them in the original's configs; the first one is used)."""
    _, entry = space.get_entry(backend, deployment_name=deployment_name)
    monitors = entry.get("openscale_custom_metric_provider") or {}
    if not monitors:
        raise MlopsError(
            f"the entry of {deployment_name!r} has no monitors, so no storage volume to write predictions to",
            hint=Hint("score.output", "give an output folder"),
        )
    settings = next(iter(monitors.values()))
    return settings.get("volume_display_name") or "", settings["dir_pred"]


def _writer(
    backend: Backend, deployment_name: str, output_dir: str | Path | None
) -> tuple[Callable[[str, bytes], object], str]:
    """How each mask is written, and where (said in words): into `output_dir` on this machine,
    else into the monitors' dir_pred through the backend's storage volumes."""
    if output_dir:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        return lambda name, data: atomic_write(out / name, data), str(out)
    volume, folder = prediction_folder(backend, deployment_name)
    folder = folder.rstrip("/")
    local = backend.volumes.local_path(volume, folder)
    where = str(local) if local is not None else f"{folder} on storage volume {volume}"
    return lambda name, data: backend.volumes.write(volume, f"{folder}/{name}", data), where


def score_folder(
    backend: Backend,
    deployment_name: str,
    images_dir: str | Path,
    output_dir: str | Path | None = None,
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Infer every image of `images_dir` (sorted) and write each mask as `<stem>_Seg.png`.

    The request is the example kernel's JSON `{"image": <base64>, "name": <stem>}` and the answer
    must carry `mask` (base64 PNG), as DeepLIIF-style kernels return.
    """
    images = sorted(p for p in Path(images_dir).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise MlopsError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {images_dir}")
    write, where = _writer(backend, deployment_name, output_dir)
    written = []
    for i, image in enumerate(images, 1):
        body = json.dumps({"image": base64.b64encode(image.read_bytes()).decode("ascii"), "name": image.stem})
        answer = deploy.infer(backend, deployment_name, body)
        try:
            mask = base64.b64decode(json.loads(answer)["mask"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MlopsError(
                f"{image.name}: the deployment's answer has no base64 'mask': {answer[:200]!r}"
            ) from exc
        name = f"{image.stem}_Seg.png"
        write(name, mask)
        written.append(name)
        if progress:
            progress(i, len(images), image.name)
    return {"count": len(written), "output_dir": where, "predictions": written}
