"""The submission folder: the deployment folder A2 built for `dlim model deploy`.

As the original built it: the entry's dependency asset unpacked (its single top folder
flattened), the general dependencies (the helper modules the original team kept in the space)
beside the kernel, README.md, and model.json with `mk_environments` naming the space and the
model asset. Unlike the original, the model asset is also unpacked into the folder (kernels may
still download it from the space at start, as the DeepLIIF kernel does), the dependency is taken
by the asset id recorded in the entry (never by its file name, which several assets may share),
and every archive is unpacked by `backends.archives.safe_unzip`. Rebuilt from scratch each time.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlops_widgets import edi_helpers
from mlops_widgets.backends.archives import safe_unzip, top_folder
from mlops_widgets.backends.base import Asset, Backend
from mlops_widgets.backends.packing import copy_sparse
from mlops_widgets.config import check_deployment_name
from mlops_widgets.errors import Hint, MlopsError, NotFoundError
from mlops_widgets.ops import space

DEFAULT_KERNEL = "kernel.py"
# What the original A2 downloaded from the space into every folder, by file name.
GENERAL_DEPENDENCIES: tuple[str, ...] = edi_helpers.MODULES
# model.json as the original's A2 wrote it; the dependency's own model.json wins over these.
MODEL_JSON_DEFAULTS: dict[str, Any] = {
    "readme": "README.md",
    "tag": "test",
    "weight_path": "./",
    "runtime": "dlipy3",
    "framework": "PyTorch",
    "schema_version": "1",
    "attributes": [],
}


def _stage_again(model_asset_id: str) -> Hint:
    return Hint("stage.new", "stage the model and its dependency again", {"model_asset_id": model_asset_id})


# --- the environment every kernel gets ----------------------------------------------------------


def mk_environments(backend: Backend, entry: dict[str, Any], model_asset_id: str) -> list[dict[str, str]]:
    """What every kernel finds in its environment: the original's WML_SPACE_ID and
    WML_SPACE_MODEL, ours (SPACE_ID, MODEL_ASSET, MODEL_ASSET_ID), and where the helper modules
    act (`Backend.kernel_environment`: MLOPS_BACKEND, then MLOPS_HOME and MLOPS_VOLUMES locally;
    on a cluster BASE_URL and MLOPS_CPD_CA_BUNDLE)."""
    space_id = str(entry.get("deployment_space_id") or backend.space.space_id)
    model_asset = str(entry.get("model_asset") or "")
    values = {
        "WML_SPACE_ID": space_id,
        "WML_SPACE_MODEL": model_asset,
        "SPACE_ID": space_id,
        "MODEL_ASSET": model_asset,
        "MODEL_ASSET_ID": model_asset_id,
        **backend.kernel_environment(),
    }
    return [{"name": k, "value": v} for k, v in values.items()]


# --- model.json -----------------------------------------------------------------------------------


def _inside(folder: Path, name: str) -> Path:
    """`folder/name`, refused when a link there leads out of the folder."""
    path = folder / name
    if path.is_symlink() and not path.resolve().is_relative_to(folder.resolve()):
        raise MlopsError(f"the dependency's {name} is a link out of the deployment folder")
    return path


def _replace(path: Path, text: str) -> None:
    """Write our own file, never through a link the dependency put there."""
    if path.is_symlink():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def read_model_json(folder: Path) -> dict[str, Any]:
    """The dependency's own model.json, {} when it has none."""
    path = _inside(folder, "model.json")
    if not path.exists():
        return {}
    try:
        model = json.loads(path.read_text())
    except ValueError as exc:
        raise MlopsError(f"the dependency's model.json is not valid JSON: {exc}") from None
    if not isinstance(model, dict):
        raise MlopsError("the dependency's model.json is not a JSON object")
    return model


def write_model_json(
    folder: Path, name: str, kernel_filename: str, environments: list[dict[str, str]]
) -> dict[str, Any]:
    """model.json: our defaults, then the dependency's own fields (they win: runtime, tag,
    framework, attributes...), then name (the deployment's) and kernel_path; mk_environments
    keeps the dependency's entries except those of our names, which carry this deployment."""
    own = read_model_json(folder)
    model: dict[str, Any] = {**MODEL_JSON_DEFAULTS, **own}
    ours = {e["name"] for e in environments}
    kept = [e for e in own.get("mk_environments") or [] if isinstance(e, dict) and e.get("name") not in ours]
    model.update(name=name, kernel_path=kernel_filename, mk_environments=[*kept, *environments])
    _replace(folder / "model.json", json.dumps(model, indent=2))
    return model


# --- building -------------------------------------------------------------------------------------


def submission_dir(backend: Backend, name: str) -> Path:
    """Where `name`'s folder is built: under the workspace's `tmp/` (created 0700, as the
    workspace's folders are), not created itself."""
    return backend.workspace.dir("tmp") / f"submission-{check_deployment_name(name)}"


def dependency_asset(backend: Backend, model_asset_id: str, entry: dict[str, Any]) -> Asset:
    """The entry's dependency asset, by the id recorded at staging. An entry written before ids
    were recorded (or added from the original's YAML) names only a file: it is taken when exactly
    one asset has that name, and refused when several do (which one was meant is unknowable)."""
    wmla = entry.get("wmla_deployment") or {}
    asset_id, filename = wmla.get("dependency_asset_id"), wmla.get("dependency_filename")
    if asset_id:
        try:
            return backend.space.get_asset(asset_id)
        except NotFoundError:
            raise NotFoundError(
                f"the dependency asset {asset_id} ({filename}) of model asset {model_asset_id} is no longer in the space",
                hint=_stage_again(model_asset_id),
            ) from None
    if not filename:
        raise MlopsError(
            f"the entry of model asset {model_asset_id} has no dependency", hint=_stage_again(model_asset_id)
        )
    found = backend.space.list_assets(filename)
    if len(found) == 1:
        return found[0]
    raise (NotFoundError if not found else MlopsError)(
        f"the entry of model asset {model_asset_id} names its dependency only by file name, and "
        f"{len(found) or 'no'} asset{'s' if len(found) != 1 else ''} in the space {'have' if len(found) > 1 else 'has'} "
        f"the name {filename!r}",
        hint=_stage_again(model_asset_id),
    )


def _unpack(
    backend: Backend,
    asset: Asset,
    dest: Path,
    scratch: Path,
    *,
    flatten_unless: str = "",
    flatten_if: str = "",
) -> None:
    """Download an asset; a zip is unpacked into `dest` (new), any other file copied into it. A
    zip whose entries share one top folder loses it unless a file `flatten_unless` lies at the
    top (the dependency), or when that folder is named `flatten_if` (the model)."""
    download = backend.space.download(asset.asset_id, scratch / "download")
    try:
        if asset.name.endswith(".zip") and zipfile.is_zipfile(download):
            strip = top_folder(download, flatten_unless) if flatten_unless else ""
            if flatten_if and top_folder(download, "") == flatten_if:
                strip = flatten_if
            safe_unzip(download, dest, strip=strip, label=f"the asset {asset.name}")
        else:
            dest.mkdir(parents=True, exist_ok=True)
            target = dest / asset.name
            if target.exists() or target.is_symlink():
                raise MlopsError(
                    f"the deployment folder already holds {asset.name!r}, where the asset {asset.name} goes"
                )
            copy_sparse(download, target)
    finally:
        download.unlink(missing_ok=True)


def _general_dependencies(backend: Backend, folder: Path, names: Sequence[str], scratch: Path) -> None:
    """Each general dependency: the dependency's own copy, else the space's latest asset of that
    name (as A2 fetched them), else our bundled helper module."""
    in_space: dict[str, Asset] | None = None  # the space's newest asset of each name, listed once
    for name in names:
        if Path(name).name != name or name in ("", ".", ".."):
            raise MlopsError(f"general dependency {name!r} must be a plain file name")
        target = folder / name
        if target.exists() or target.is_symlink():
            continue
        if in_space is None:
            in_space = {a.name: a for a in backend.space.list_assets(keep_only_latest=True)}
        if name in in_space:
            shutil.copyfile(backend.space.download(in_space[name].asset_id, scratch / name), target)
        elif name in edi_helpers.MODULES:
            shutil.copyfile(edi_helpers.path(name), target)
        else:
            raise NotFoundError(
                f"general dependency {name!r} is neither in the deployment folder nor an asset of the space",
                hint=Hint(
                    "stage.general_dependency",
                    f"upload {name} to the space, or leave it out of the general dependencies",
                    {"name": name},
                ),
            )


def build_submission_folder(
    backend: Backend,
    name: str,
    model_asset_id: str,
    kernel_filename: str | None = None,
    general_dependencies: Sequence[str] | None = None,
) -> Path:
    """The deployment folder of `name`: the dependency unpacked (its single top folder, if it has
    one and no kernel at the top, taken as the folder), the general dependencies (default: the
    four helper modules), README.md ensured, the model asset unpacked as `<asset name without
    .zip>/`, model.json written. `kernel_filename`: default the dependency's model.json
    kernel_path, else kernel.py."""
    _, entry = space.get_entry(backend, model_asset_id=model_asset_id)
    dependency = dependency_asset(backend, model_asset_id, entry)
    folder = submission_dir(backend, name)
    shutil.rmtree(folder, ignore_errors=True)
    try:
        _build(
            backend, name, model_asset_id, entry, dependency, folder, kernel_filename, general_dependencies
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # nothing half-built is left in the workspace
        raise
    return folder


def _build(
    backend: Backend,
    name: str,
    model_asset_id: str,
    entry: dict[str, Any],
    dependency: Asset,
    folder: Path,
    kernel_filename: str | None,
    general_dependencies: Sequence[str] | None,
) -> None:
    """The steps of `build_submission_folder`, into the fresh `folder`."""
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        scratch = Path(tmp)
        _unpack(backend, dependency, folder, scratch, flatten_unless=kernel_filename or DEFAULT_KERNEL)
        kernel = kernel_filename or str(read_model_json(folder).get("kernel_path") or DEFAULT_KERNEL)
        if not _inside(folder, kernel).is_file():
            listing = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
            raise MlopsError(
                f"the dependency {dependency.name} has no kernel file {kernel!r} (it holds {listing})",
                hint=Hint(
                    "deploy.kernel_filename", "name the kernel file of the dependency", {"found": listing}
                ),
            )
        _general_dependencies(
            backend,
            folder,
            GENERAL_DEPENDENCIES if general_dependencies is None else general_dependencies,
            scratch,
        )
        if not (folder / "README.md").exists() and not (folder / "README.md").is_symlink():
            _replace(folder / "README.md", f"# {name}\n\nDeployed by mlops-widgets from {dependency.name}.\n")
        model_asset = str(entry.get("model_asset") or "")
        if model_asset_id == dependency.asset_id:
            pass  # staged without a model: the deployment folder holds its weights
        elif model_asset.endswith(".zip"):
            model_dir = folder / model_asset[:-4]
            if model_dir.resolve().parent != folder.resolve() or model_dir.exists() or model_dir.is_symlink():
                raise MlopsError(
                    f"the model asset {model_asset!r} unpacks into {model_dir.name!r}, which the dependency already holds"
                    if model_dir.parent == folder
                    else f"model asset name {model_asset!r} cannot be a folder name"
                )
            # A zip made of a folder of the same name (`zip -r M.zip M`) unpacks flat into M/.
            _unpack(
                backend,
                backend.space.get_asset(model_asset_id),
                model_dir,
                scratch,
                flatten_if=model_dir.name,
            )
        else:
            _unpack(backend, backend.space.get_asset(model_asset_id), folder, scratch)
    write_model_json(folder, name, kernel, mk_environments(backend, entry, model_asset_id))
