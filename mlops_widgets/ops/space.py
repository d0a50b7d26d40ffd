"""Space steps: stage model and dependency files, and keep the deployment metadata entries.

The deployment metadata document maps model asset id -> entry, exactly as the original's
`deployment_metadata.yml`; every change goes through `Space.update_document`, so concurrent
writers never lose each other's entries.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from mlops_widgets.backends.base import DEPLOYMENT_METADATA, Asset, Backend, Progress
from mlops_widgets.backends.packing import asset_name
from mlops_widgets.config import validate_entry
from mlops_widgets.errors import ConflictError, Hint, MlopsError, NotFoundError
from mlops_widgets.monitors import known_definitions
from mlops_widgets.workspace import atomic_write

log = logging.getLogger(__name__)

OnClash = Literal["error", "overwrite", "new"]
REPLACE_HINT = Hint("stage.replace", "replace them, or add new assets of the same names beside them")


def clashes(backend: Backend, *paths: str | Path) -> list[Asset]:
    """Assets already in the space under the names these paths would be staged as."""
    found: list[Asset] = []
    for p in paths:
        found.extend(backend.space.list_assets(asset_name(p)))
    return found


def check_stage(
    backend: Backend, model: Path | None, dependency: Path, on_clash: OnClash
) -> tuple[set[str], set[str]]:
    """Refuse a stage before anything is uploaded: a missing path, assets of the same names
    (unless told what to do with them), or replacing a deployed model. Returns the ids of the
    assets an "overwrite" replaces and the keys of the entries seen. Front ends call it first, to
    show the error before a run. `model` None: the deployment folder holds the model."""
    paths = [("model", model), ("dependency", dependency)] if model else [("dependency", dependency)]
    for label, p in paths:
        if not p.exists():
            raise NotFoundError(f"the {label} path {p} does not exist")
    old = clashes(backend, *(p for _, p in paths))
    if old and on_clash == "error":
        names = ", ".join(sorted({a.name for a in old}))
        raise ConflictError(f"the space already has assets named {names}", hint=REPLACE_HINT)
    replaced = {a.asset_id for a in old} if on_clash == "overwrite" else set()
    entries = list_entries(backend)
    for key, existing in entries.items():
        deployed = (existing.get("wmla_deployment") or {}).get("deployment_name")
        if key in replaced and deployed:
            raise ConflictError(
                f"model asset {key} is deployed as {deployed!r}",
                hint=Hint(
                    "stage.deployed",
                    "delete that deployment first, or add new assets beside the old ones instead of replacing them",
                    {"deployment": deployed},
                ),
            )
    return replaced, set(entries)


def stage(
    backend: Backend,
    path_model: str | Path | None,
    path_dependency: str | Path,
    entry: dict[str, Any],
    *,
    on_clash: OnClash = "error",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Upload the model and the dependency (folders zipped) and write their entry.

    on_clash decides what happens when assets of the same names exist, as the original's prompt
    did: "error" refuses, "overwrite" replaces the old assets and their entries once the new ones
    are in (refused while one of them is deployed), "new" adds another asset of the same name.
    Without a model path ("" or None) the deployment folder holds the model's weights: it is
    uploaded once and is the model asset too (the entry is keyed by its id).
    Returns the model asset id, the dependency asset id and the entry as written.
    """
    model, dependency = (Path(path_model) if path_model else None), Path(path_dependency)
    with _Turn(backend, asset_name(model or dependency)) as turn:
        entry, _warnings = validate_entry(entry, definitions=known_definitions(backend.workspace))
        result = _stage(backend, model, dependency, entry, on_clash, progress, turn)
        turn.wait_for_later_stages()
    still_staged(backend, result["model_asset_id"])
    return result


def _stage(
    backend: Backend,
    model: Path | None,
    dependency: Path,
    entry: dict[str, Any],
    on_clash: OnClash,
    progress: Progress | None,
    turn: _Turn,
) -> dict[str, Any]:
    replaced, seen = check_stage(backend, model, dependency, on_clash)
    uploaded: list[str] = []
    try:  # all or nothing: what this stage uploaded goes again if any step fails
        model_asset = backend.space.upload(model, progress=progress) if model is not None else None
        if model_asset is not None:
            uploaded.append(model_asset.asset_id)
        dependency_asset = backend.space.upload(dependency, progress=progress)
        uploaded.append(dependency_asset.asset_id)
        model_asset = model_asset or dependency_asset

        entry = copy.deepcopy(entry)
        entry["model_asset"] = model_asset.name
        entry["deployment_space_id"] = backend.space.space_id
        entry.setdefault("wmla_deployment", {})["dependency_filename"] = dependency_asset.name
        entry["wmla_deployment"]["dependency_asset_id"] = dependency_asset.asset_id  # deploy takes it by id

        def apply(doc: dict[str, Any]) -> None:
            # The entries of this model's name must be those the check saw: else another
            # command staged or dropped one meanwhile, and this stage yields to it.
            vanished = (replaced & seen) - set(doc)
            appeared = {
                k for k, e in doc.items() if k not in seen and e.get("model_asset") == model_asset.name
            }
            if on_clash != "new" and (vanished or appeared):
                raise ConflictError(
                    f"the entries of model {model_asset.name} were changed by another command while "
                    "this stage ran; nothing was staged",
                    hint=Hint("stage.retry", "stage again to replace the entries as they are now"),
                )
            turn.claim()
            for key in replaced:  # the entries of replaced model assets go with them
                doc.pop(key, None)
            doc[model_asset.asset_id] = entry

        backend.space.update_document(DEPLOYMENT_METADATA, apply)
    except BaseException:
        for asset_id in uploaded:
            with contextlib.suppress(MlopsError):
                backend.space.delete(asset_id)
        raise
    for asset_id in replaced:  # only once the new entry is written: a crash loses nothing
        with contextlib.suppress(NotFoundError):  # another stage's cleanup may have been first
            backend.space.delete(asset_id)
    log.info(
        "staged %s as asset %s (dependency %s)",
        model or dependency,
        model_asset.asset_id,
        dependency_asset.asset_id,
    )
    return {
        "model_asset_id": model_asset.asset_id,
        "dependency_asset_id": dependency_asset.asset_id,
        "model_asset": model_asset.name,
        "dependency_filename": dependency_asset.name,
        "deployment_space_id": backend.space.space_id,
        "entry": entry,
    }


def still_staged(backend: Backend, model_asset_id: str) -> None:
    """ConflictError when the entry a stage wrote is gone: a stage of the same model that ran
    at the same time replaced it, so the id this one would print no longer exists."""
    if model_asset_id not in list_entries(backend):
        raise ConflictError(
            f"model asset {model_asset_id} was replaced by another command staging the same model at "
            "the same time: that command's assets are the staged ones, this one's are gone",
            hint=Hint("config.list", "the list of entries shows the staged models"),
        )


class _Turn:
    """A stage's place among stages of the same model running at the same time: the one that
    started last wins. Each holds an exclusive lock on a file named by its start for as long as
    it runs (released by the kernel if its process dies); `claim` (inside the metadata update)
    refuses to replace a later stage's entry, `wait_for_later_stages` waits for the stages that
    started after this one, so a stage that lost says so instead of printing a gone asset id."""

    def __init__(self, backend: Backend, name: str) -> None:
        key = hashlib.sha256(name.encode()).hexdigest()[:16]
        self.folder = backend.workspace.dir("tmp", "stages", key)
        self.ticket = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        self.name = name

    def __enter__(self) -> _Turn:
        fd = os.open(self.folder / f"{self.ticket}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        self._lock = os.fdopen(fd, "w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        (self.folder / f"{self.ticket}.lock").unlink(missing_ok=True)
        self._lock.close()

    def claim(self) -> None:
        committed = self.folder / "committed"
        latest = committed.read_text() if committed.exists() else ""
        if latest > self.ticket:
            raise ConflictError(
                f"another command staging model {self.name} started after this one and was staged "
                "first; nothing was staged",
                hint=Hint("stage.retry", "stage again to replace the entries as they are now"),
            )
        atomic_write(committed, self.ticket)

    def wait_for_later_stages(self) -> None:
        for other in sorted(self.folder.glob("*.lock")):
            if other.stem > self.ticket:
                with contextlib.suppress(FileNotFoundError), open(other) as fh:
                    fcntl.flock(fh, fcntl.LOCK_SH)  # granted once that stage has ended


def list_entries(backend: Backend) -> dict[str, dict[str, Any]]:
    """Every entry of the deployment metadata, keyed by model asset id."""
    return backend.space.read_document(DEPLOYMENT_METADATA)


def get_entry(
    backend: Backend,
    model_asset_id: str | None = None,
    deployment_name: str | None = None,
    *,
    entries: dict[str, dict[str, Any]] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The entry for a model asset id or a deployment name, with its key. `entries`: the
    deployment metadata when the caller has already read it (on cpd each read is a download)."""
    entries = list_entries(backend) if entries is None else entries
    if model_asset_id is not None:
        if model_asset_id not in entries:
            raise NotFoundError(f"no entry for model asset id {model_asset_id} in the deployment metadata")
        return model_asset_id, entries[model_asset_id]
    if deployment_name is None:
        raise MlopsError("give a deployment name or a model asset id")
    for key, entry in entries.items():
        if (entry.get("wmla_deployment") or {}).get("deployment_name") == deployment_name:
            return key, entry
    raise NotFoundError(
        f"no entry has deployment name {deployment_name!r}",
        hint=Hint("config.list", "the list of entries shows their deployment names"),
    )


def staged_asset_id(backend: Backend, model_asset_id: str = "") -> str:
    """The given model asset id, or when empty the most recently staged entry's (so a template's
    default deploys what was just staged)."""
    if model_asset_id:
        return model_asset_id
    entries = list_entries(backend)
    if not entries:
        raise NotFoundError(
            "the deployment metadata has no entry yet", hint=Hint("stage.first", "stage a model first")
        )
    return next(reversed(entries))


def update_entry(
    backend: Backend, model_asset_id: str, change: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Change one entry in place, atomically; NotFoundError when it does not exist."""
    result: dict[str, Any] = {}

    def apply(doc: dict[str, Any]) -> None:
        _, entry = get_entry(backend, model_asset_id, entries=doc)
        change(entry)
        result.update(entry)

    backend.space.update_document(DEPLOYMENT_METADATA, apply)
    return result


def add_entries(backend: Backend, entries: dict[str, dict[str, Any]], *, force: bool = False) -> list[str]:
    """Add validated entries keyed by model asset id; an existing key is replaced only with force."""

    def apply(doc: dict[str, Any]) -> None:
        taken = sorted(k for k in entries if k in doc)
        if taken and not force:
            raise ConflictError(
                f"the deployment metadata already has an entry for {', '.join(taken)}",
                hint=Hint("config.replace", "replace the existing entry", {"keys": ", ".join(taken)}),
            )
        doc.update(entries)

    backend.space.update_document(DEPLOYMENT_METADATA, apply)
    return list(entries)


def delete_entry(backend: Backend, *, name: str | None = None, model_asset_id: str | None = None) -> str:
    """Drop the entry of a deployment name or model asset id; returns its model asset id."""
    key, _ = get_entry(backend, model_asset_id=model_asset_id, deployment_name=name)

    def apply(doc: dict[str, Any]) -> None:
        doc.pop(key, None)

    backend.space.update_document(DEPLOYMENT_METADATA, apply)
    return key
