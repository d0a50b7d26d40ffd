"""Batch scoring: send a folder of images through a deployment and keep the predicted masks.

This is what feeds the monitors: the segmentation monitor compares `<name>_Seg.png` in the
volume's dir_pred with the ground truth in dir_gt, so predictions are written there under that name.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from mlops_widgets.backends.base import Backend, Progress
from mlops_widgets.errors import MlopsError
from mlops_widgets.ops import deploy, space
from mlops_widgets.workspace import atomic_write

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def prediction_dir(backend: Backend, deployment_name: str) -> Path:
    """Where the deployment's monitors read predictions: dir_pred on its storage volume (the
    monitors of one entry share it in the original's configs; the first one is used)."""
    _, entry = space.get_entry(backend, deployment_name=deployment_name)
    monitors = entry.get("openscale_custom_metric_provider") or {}
    if not monitors:
        raise MlopsError(f"the entry of {deployment_name!r} has no monitors: give an output folder")
    settings = next(iter(monitors.values()))
    volume_dir = getattr(backend.monitoring, "volume_dir", None)
    if volume_dir is None:
        raise MlopsError(f"the {backend.name} backend has no local storage volumes: give an output folder")
    return volume_dir(settings["volume_display_name"]) / settings["dir_pred"]


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
    out = Path(output_dir) if output_dir else prediction_dir(backend, deployment_name)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, image in enumerate(images, 1):
        body = json.dumps({"image": base64.b64encode(image.read_bytes()).decode("ascii"), "name": image.stem})
        answer = deploy.infer(backend, deployment_name, body)
        try:
            mask = base64.b64decode(json.loads(answer)["mask"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MlopsError(f"{image.name}: the deployment's answer has no base64 'mask': {answer[:200]!r}") from exc
        target = out / f"{image.stem}_Seg.png"
        atomic_write(target, mask)
        written.append(target.name)
        if progress:
            progress(i, len(images), image.name)
    return {"count": len(written), "output_dir": str(out), "predictions": written}
