"""Deploy steps: what template A2_WMLA_Model_Deploy and the `mlops deploy` commands call.

A2 as the original ran it, with its defects dropped: check the name and the entry; build the
submission folder (the dependency zip unpacked safely, the model asset unpacked under the
deployment folder, model.json with mk_environments); deploy it; write deployment_name and
deployment_url into the entry; set the profile from resource_configs; start; wait until ready.
Every step can be run again after a failure half-way, and `deploy_delete` cleans up whatever a
failed run left, so no state gets stuck. Backend-agnostic: only `Backend` protocols are used.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from mlops_widgets.backends.base import Backend, Progress
from mlops_widgets.config import RESOURCE_DEFAULTS, check_deployment_name
from mlops_widgets.errors import ConflictError, MlopsError, NotFoundError
from mlops_widgets.ops import space

READY = ("IDLE", "BUSY")
POLICY_KEYS = ("kernel_min", "kernel_max", "kernel_delay_release_time", "task_execution_timeout", "task_batch_size")
WAIT_TIMEOUT = 300.0
# The model.json of a submission folder, as the original's A2 wrote it.
MODEL_JSON_DEFAULTS: dict[str, Any] = {
    "readme": "README.md",
    "tag": "test",
    "weight_path": "./",
    "runtime": "dlipy3",
    "framework": "PyTorch",
    "schema_version": "1",
}


def _wmla(entry: dict[str, Any]) -> dict[str, Any]:
    return entry.get("wmla_deployment") or {}


def _view_or_none(backend: Backend, name: str) -> dict[str, Any] | None:
    try:
        return backend.inference.view(name)
    except NotFoundError:
        return None


# --- checks -------------------------------------------------------------------------------------


def check_create(backend: Backend, name: str, model_asset_id: str) -> dict[str, Any]:
    """The original's checks before a deploy: the name rule, the name not used by another entry,
    the asset staged and not already deployed. A deploy of the same asset under the same name
    that did not finish may run again. Returns the entry."""
    check_deployment_name(name)
    entries = space.list_entries(backend)
    _, entry = space.get_entry(backend, model_asset_id=model_asset_id, entries=entries)
    for key, other in entries.items():
        if key != model_asset_id and _wmla(other).get("deployment_name") == name:
            raise ConflictError(
                f"deployment name {name!r} is already used by the entry of model asset {key}: "
                "choose another name"
            )
    current = _wmla(entry).get("deployment_name")
    if current and current != name:
        raise ConflictError(
            f"model asset {model_asset_id} is already deployed as {current!r}: "
            f"run `mlops deploy delete --name {current}` first"
        )
    if current == name:
        view = _view_or_none(backend, name)
        if view is not None and view["state"] == "started" and view["status"] in READY:
            raise ConflictError(
                f"model asset {model_asset_id} is already deployed as {name!r} and running; "
                f"`mlops deploy delete --name {name}` removes it"
            )
    if not _wmla(entry).get("dependency_filename") or not entry.get("model_asset"):
        raise MlopsError(
            f"the entry of model asset {model_asset_id} lacks model_asset or "
            "wmla_deployment.dependency_filename: stage it with `mlops prepare stage`"
        )
    return entry


# --- the submission folder -------------------------------------------------------------------------


def safe_unzip(archive: Path, dest: Path) -> list[str]:
    """Unpack `archive` into `dest`, refusing any entry that would land outside it (absolute
    paths, drive letters, `..`, links pointing out): no zip slip. Returns the entry names."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    names = []
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            raw = info.filename.replace("\\", "/")
            parts = PurePosixPath(raw).parts
            if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw) or ".." in parts:
                raise MlopsError(f"{archive.name}: refusing entry {info.filename!r}, it points outside the folder")
            target = root.joinpath(*parts)
            if not target.resolve().is_relative_to(root):
                raise MlopsError(f"{archive.name}: refusing entry {info.filename!r}, it goes through a link out of the folder")
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                link = zf.read(info).decode()
                if os.path.isabs(link) or not (target.parent / link).resolve().is_relative_to(root):
                    raise MlopsError(f"{archive.name}: refusing link {info.filename!r} -> {link!r}, it points outside the folder")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.unlink(missing_ok=True)
                target.symlink_to(link)
            elif info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            names.append(info.filename)
    return names


def _unpack_asset(backend: Backend, asset_id: str, asset_name: str, dest: Path, scratch: Path) -> Path:
    """Download an asset; a zip is unpacked into `dest`, any other file copied into it."""
    download = backend.space.download(asset_id, scratch / asset_name)
    if asset_name.endswith(".zip") and zipfile.is_zipfile(download):
        safe_unzip(download, dest)
    else:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(download, dest / asset_name)
    download.unlink()
    return dest


def mk_environments(entry: dict[str, Any], model_asset_id: str) -> list[dict[str, str]]:
    """What every kernel finds in its environment about the model: the space and the asset."""
    return [
        {"name": "SPACE_ID", "value": str(entry.get("deployment_space_id") or "")},
        {"name": "MODEL_ASSET", "value": str(entry.get("model_asset") or "")},
        {"name": "MODEL_ASSET_ID", "value": model_asset_id},
    ]


def write_model_json(
    folder: Path, name: str, kernel_filename: str, environments: list[dict[str, str]]
) -> dict[str, Any]:
    """model.json: one the dependency brought is kept, with name, kernel_path and the
    environments set (those of the same names replaced)."""
    path = folder / "model.json"
    model: dict[str, Any] = dict(MODEL_JSON_DEFAULTS)
    if path.is_file():
        try:
            model.update(json.loads(path.read_text()))
        except ValueError as exc:
            raise MlopsError(f"the dependency's model.json is not valid JSON: {exc}") from None
    ours = {e["name"] for e in environments}
    kept = [e for e in model.get("mk_environments") or [] if e.get("name") not in ours]
    model.update(name=name, kernel_path=kernel_filename, mk_environments=[*kept, *environments])
    model.setdefault("attributes", [])
    path.write_text(json.dumps(model, indent=2))
    return model


def submission_dir(backend: Backend, name: str) -> Path:
    return backend.workspace.root / "tmp" / f"submission-{check_deployment_name(name)}"


def build_submission_folder(
    backend: Backend, name: str, model_asset_id: str, kernel_filename: str = "kernel.py"
) -> Path:
    """The deployment folder A2 built: the dependency zip unpacked (its single top folder, if it
    has one, taken as the folder), README.md ensured, the model asset unpacked beside it as
    `<asset name without .zip>/`, model.json written. Rebuilt from scratch on every call."""
    _, entry = space.get_entry(backend, model_asset_id=model_asset_id)
    dependency = _wmla(entry).get("dependency_filename")
    if not dependency:
        raise MlopsError(f"the entry of model asset {model_asset_id} has no dependency_filename: stage it first")
    found = backend.space.list_assets(dependency, keep_only_latest=True)
    if not found:
        raise NotFoundError(f"the dependency asset {dependency!r} is not in the space: stage it again")
    folder = submission_dir(backend, name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        unpacked = _unpack_asset(backend, found[0].asset_id, dependency, Path(scratch) / "dependency", Path(scratch))
        entries = list(unpacked.iterdir())
        if not (unpacked / kernel_filename).exists() and len(entries) == 1 and entries[0].is_dir():
            unpacked = entries[0]
        for item in unpacked.iterdir():
            shutil.move(str(item), folder / item.name)
    if not (folder / kernel_filename).is_file():
        listing = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise MlopsError(
            f"the dependency {dependency} has no kernel file {kernel_filename!r} (it holds {listing}): "
            "pass --kernel-filename"
        )
    if not (folder / "README.md").exists():
        (folder / "README.md").write_text(f"# {name}\n\nDeployed by mlops-widgets from {dependency}.\n")
    model_asset = str(entry.get("model_asset") or "")
    model_dir = folder / (model_asset[:-4] if model_asset.endswith(".zip") else model_asset)
    if model_dir.resolve().parent != folder.resolve():
        raise MlopsError(f"model asset name {model_asset!r} cannot be a folder name")
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        if model_asset.endswith(".zip"):
            _unpack_asset(backend, model_asset_id, model_asset, model_dir, Path(scratch))
        else:
            _unpack_asset(backend, model_asset_id, model_asset, folder, Path(scratch))
    write_model_json(folder, name, kernel_filename, mk_environments(entry, model_asset_id))
    return folder


# --- profile --------------------------------------------------------------------------------------


def profile_from_resource_configs(rc: dict[str, Any] | None) -> dict[str, Any]:
    """The EDI profile the original set from an entry's resource_configs: the kernel policy
    (defaults: the config model's, kernel_max 3, 60 s release delay and task timeout), the CPU
    and memory resources, and one exclusive GPU per kernel when enable_gpus."""
    values = {**RESOURCE_DEFAULTS, **{k: v for k, v in (rc or {}).items() if v is not None}}
    policy = {key: int(values[key]) for key in POLICY_KEYS}
    if policy["kernel_max"] != -1:
        policy["kernel_max"] = max(policy["kernel_max"], policy["kernel_min"])
    profile: dict[str, Any] = {
        "policy": policy,
        "kernel": {"gpu": "exclusive" if values.get("enable_gpus") is True else "no"},
    }
    n_cpus, memory = values.get("n_cpus"), values.get("memory_allocation")
    parts = []
    if n_cpus:
        parts += [f"ncpus={n_cpus}", f"ncpus_limit={n_cpus}"]
    if memory:
        parts += [f"mem={int(memory)}", f"mem_limit={int(memory)}"]
    if parts:
        profile["resource_allocation"] = {"kernel": {"resources": ",".join(parts)}}
    return profile


# --- steps ----------------------------------------------------------------------------------------


def deploy_folder(
    backend: Backend,
    name: str,
    folder: Path,
    *,
    custom_args: dict[str, str] | None = None,
    secret_args: dict[str, str] | None = None,
    remove_folder: bool = False,
) -> dict[str, Any]:
    """Deploy (or update) the folder under `name`, stopping a running deployment of that name
    first (the original forced the update). `remove_folder` drops the built folder afterwards."""
    check_deployment_name(name)
    view = _view_or_none(backend, name)
    if view is not None and view["state"] == "started":
        backend.inference.stop(name)
    result = backend.inference.deploy(name, Path(folder), custom_args=custom_args, secret_args=secret_args)
    if remove_folder:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def record_deployment(backend: Backend, model_asset_id: str, name: str) -> dict[str, str]:
    """Write deployment_name and deployment_url into the entry."""
    url = backend.inference.url(name)

    def change(entry: dict[str, Any]) -> None:
        wmla = entry.setdefault("wmla_deployment", {})
        wmla["deployment_name"], wmla["deployment_url"] = name, url

    space.update_entry(backend, model_asset_id, change)
    return {"deployment_name": name, "deployment_url": url}


def apply_profile(backend: Backend, name: str, model_asset_id: str) -> dict[str, Any]:
    """Set the deployment's profile from the entry's resource_configs (it must be stopped)."""
    _, entry = space.get_entry(backend, model_asset_id=model_asset_id)
    return backend.inference.update_profile(name, profile_from_resource_configs(_wmla(entry).get("resource_configs")))


def wait_ready(
    backend: Backend, name: str, *, timeout: float = WAIT_TIMEOUT, progress: Progress | None = None
) -> dict[str, Any]:
    """Poll until the deployment serves (IDLE or BUSY), as the original polled `dlim model view`
    for IDLE; a failed start raises with its error and the kernel log's tail."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        view = backend.inference.view(name)
        status = view["status"]
        kernel_min = ((view.get("profile") or {}).get("policy") or {}).get("kernel_min")
        ready = sum(1 for k in view.get("kernels", []) if k.get("state") in ("idle", "busy"))
        if progress:
            progress(ready, kernel_min, f"{name}: {status}")
        if status in READY:
            return view
        if status == "FAILED" or view["state"] != "started":
            detail = f"\n{view['error_log']}" if view.get("error_log") else ""
            raise MlopsError(
                f"deployment {name} did not start: {view.get('error') or status}{detail}\n"
                f"(full kernel logs: `mlops deploy logs --name {name}`)"
            )
        if time.monotonic() >= deadline:
            raise MlopsError(
                f"deployment {name} was not ready within {timeout:g} s (status {status}); "
                f"see `mlops deploy logs --name {name}`"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def progress_printer(print_line: Callable[[str], None] = print) -> Progress:
    """A Progress for wait_ready that prints one line whenever the status or the number of ready
    kernels changes (a notebook cell's output, a log)."""
    last: list[tuple[int, int | None, str]] = []

    def report(done: int, total: int | None, what: str) -> None:
        if not last or last[-1] != (done, total, what):
            last.append((done, total, what))
            print_line(f"{what} ({done}/{total if total is not None else '?'} kernels ready)")

    return report


def start(
    backend: Backend,
    name: str,
    *,
    wait: bool = True,
    timeout: float = WAIT_TIMEOUT,
    progress: Progress | None = None,
    secret_args: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Start a deployment and, unless kernel_min is 0 (no kernel until the first request), wait
    until it is ready."""
    view = backend.inference.start(check_deployment_name(name), secret_args=secret_args)
    kernel_min = ((view.get("profile") or {}).get("policy") or {}).get("kernel_min", 1)
    if wait and kernel_min:
        view = wait_ready(backend, name, timeout=timeout, progress=progress)
    return view


def stop(backend: Backend, name: str) -> dict[str, Any]:
    return backend.inference.stop(check_deployment_name(name))


def deploy_create(
    backend: Backend,
    name: str,
    model_asset_id: str,
    *,
    kernel_filename: str = "kernel.py",
    custom_args: dict[str, str] | None = None,
    secret_args: dict[str, str] | None = None,
    wait: bool = True,
    timeout: float = WAIT_TIMEOUT,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every step of A2 in one call (the template runs them one cell each)."""
    check_create(backend, name, model_asset_id)
    folder = build_submission_folder(backend, name, model_asset_id, kernel_filename)
    deploy_folder(backend, name, folder, custom_args=custom_args, secret_args=secret_args, remove_folder=True)
    recorded = record_deployment(backend, model_asset_id, name)
    apply_profile(backend, name, model_asset_id)
    view = start(backend, name, wait=wait, timeout=timeout, progress=progress)
    return {**recorded, "model_asset_id": model_asset_id, "status": view["status"]}


def deploy_delete(
    backend: Backend, name: str, *, remove_monitor: bool = False, remove_config: bool = False
) -> dict[str, Any]:
    """Undeploy (stopping it first), then drop the monitor subscription when asked, then drop the
    entry (`remove_config`) or clear its deployment_name and deployment_url. Works on whatever a
    failed deploy left; NotFoundError only when neither a deployment nor an entry has the name."""
    check_deployment_name(name)
    try:
        key: str | None = space.get_entry(backend, deployment_name=name)[0]
    except NotFoundError:
        key = None
    view = _view_or_none(backend, name)
    if view is not None:
        if view["state"] == "started":
            backend.inference.stop(name)
        backend.inference.undeploy(name)
    dropped: list[str] = []
    if remove_monitor:
        from mlops_widgets.ops import monitor

        dropped = monitor.delete_subscription_for(backend, name)
    if key is not None:
        if remove_config:
            space.delete_entry(backend, model_asset_id=key)
        else:

            def clear(entry: dict[str, Any]) -> None:
                wmla = entry.setdefault("wmla_deployment", {})
                wmla["deployment_name"] = wmla["deployment_url"] = None

            space.update_entry(backend, key, clear)
    if view is None and key is None and not dropped:
        raise NotFoundError(f"no deployment named {name!r} and no entry refers to it: see `mlops deploy list`")
    return {
        "deployment_name": name,
        "undeployed": view is not None,
        "model_asset_id": key,
        "entry": None if key is None else ("removed" if remove_config else "cleared"),
        "deleted_subscription_ids": dropped,
    }


# --- queries --------------------------------------------------------------------------------------


def _by_deployment(backend: Backend) -> dict[str, str]:
    return {
        _wmla(e)["deployment_name"]: key
        for key, e in space.list_entries(backend).items()
        if _wmla(e).get("deployment_name")
    }


def deploy_list(backend: Backend) -> list[dict[str, Any]]:
    """Deployments with their entry's model asset id, plus entries naming a deployment that does
    not exist (a deploy that failed half-way: state "absent")."""
    owners = _by_deployment(backend)
    rows = []
    for view in backend.inference.list():
        rows.append({
            "name": view["name"],
            "state": view["state"],
            "status": view["status"],
            "kernels": len(view.get("kernels") or []),
            "model_asset_id": owners.pop(view["name"], None),
            "url": view.get("url"),
            "error": view.get("error"),
        })
    for name, key in sorted(owners.items()):
        rows.append({
            "name": name, "state": "absent", "status": "NOT DEPLOYED", "kernels": 0,
            "model_asset_id": key, "url": None,
            "error": f"the entry names a deployment that does not exist: `mlops deploy create --name {name} "
                     f"--model-asset-id {key}` again, or `mlops deploy delete --name {name}`",
        })
    return rows


def deploy_view(backend: Backend, name: str) -> dict[str, Any]:
    """The deployment's view with the model asset id of its entry."""
    view = backend.inference.view(check_deployment_name(name))
    return {**view, "model_asset_id": _by_deployment(backend).get(name)}


def infer(backend: Backend, name: str, data: bytes | str) -> bytes:
    """Send one request body to the deployment, verbatim."""
    return backend.inference.infer(check_deployment_name(name), data.encode() if isinstance(data, str) else data)


def logs(backend: Backend, name: str) -> str:
    return backend.inference.logs(check_deployment_name(name))


def split_custom_args(
    pairs: list[str], is_secret: Callable[[str], bool], environ: dict[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """`K=V` or `K` (value from environment variable K) into (custom args, secret custom args),
    a key being secret when `is_secret(K)`."""
    env = os.environ if environ is None else environ
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not key.isidentifier():
            raise MlopsError(f"custom arg {pair!r}: {key!r} is not a valid Python name (use K=V or K)")
        if not sep:
            if key not in env:
                raise MlopsError(f"custom arg {key}: the environment variable {key} is not set (use {key}=VALUE)")
            value = env[key]
        (secret if is_secret(key) else plain)[key] = value
    return plain, secret
