"""The local inference service's domain: deployments, their kernels, and EDI's documents of them.

One per workspace (the HTTP layer, `server.py`, serves it on 127.0.0.1). Deployments persist
under `<workspace>/inference/`; those left started are started again when the service comes
back, except that secret custom args live only in this process's memory. Start and stop are
asynchronous as on EDI: they return at once and the instance's state tells when they are done.
"""

from __future__ import annotations

import getpass
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_widgets import events_feed
from mlops_widgets.backends.local.inference import edi
from mlops_widgets.backends.local.inference.gpus import Gpus
from mlops_widgets.backends.local.inference.kernel_path import _mlops_wire as wire
from mlops_widgets.backends.local.inference.pool import KernelPool
from mlops_widgets.backends.local.inference.runtimes import Runtimes
from mlops_widgets.backends.local.inference.store import (
    DEFAULT_PROFILE,
    Store,
    merge_profile,
    now,
    read_model_json,
)
from mlops_widgets.backends.local.inference.tasks import ServiceError, Task
from mlops_widgets.config import check_deployment_name
from mlops_widgets.errors import ConflictError, Hint, MlopsError, NotFoundError
from mlops_widgets.workspace import Workspace

log = logging.getLogger("mlops.inference")

API = "/dlim/v1"
CLIENT_HEADER = "X-Mlops-Client"  # sent by our client: its profile changes come from the entry
NOT_REMOVABLE = "The model cannot be removed if it's started."


def info_path(workspace: Workspace) -> Path:
    return workspace.root / "inference" / "service.json"


def read_info(workspace: Workspace) -> dict[str, Any]:
    try:
        return json.loads(info_path(workspace).read_text())
    except (OSError, ValueError):
        return {}


def stop_hint(name: str) -> Hint:
    return Hint("deploy.stop", f"stop deployment {name} first", {"deployment": name})


def missing_secret(name: str, key: str) -> MlopsError:
    return MlopsError(
        f"deployment {name}: the secret custom arg {key} is kept only in the inference service's "
        "memory and the service has restarted since",
        hint=Hint(
            "deploy.start",
            f"set the environment variable {key} and start deployment {name} again",
            {"deployment": name, "env": key},
        ),
    )


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def profile_changes(old: dict[str, Any], new: dict[str, Any], path: str = "") -> dict[str, list[Any]]:
    """What differs between two stored profiles: {"policy.kernel_min": [1, 2], ...}."""
    out: dict[str, list[Any]] = {}
    for key in sorted({*old, *new}):
        a, b, where = old.get(key), new.get(key), f"{path}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.update(profile_changes(a, b, where + "."))
        elif a != b:
            out[where] = [a, b]
    return out


class Service:
    """Deployments and their kernel pools; every management call holds one lock (they are rare)."""

    def __init__(self, workspace: Workspace, base_url: str) -> None:
        self.workspace = workspace
        self.store = Store(workspace)
        self.base_url = base_url
        self.pools: dict[str, KernelPool] = {}
        self.stopping: dict[str, threading.Thread] = {}
        self.secrets: dict[str, dict[str, str]] = {}
        self.gpus = Gpus()
        self.lock = threading.RLock()
        self.creator = getpass.getuser()
        # Told of changes made through EDI's API by other clients (the server wires companions).
        self.announce: Callable[[str, dict[str, Any]], None] = lambda action, params: None

    def url(self, name: str) -> str:
        return f"{self.base_url}{API}/inference/{name}"

    # --- EDI documents ------------------------------------------------------------------------

    def model(self, name: str) -> dict[str, Any]:
        record = self.store.load(name)
        pool = self.pools.get(name)
        return edi.model_doc(
            record,
            model_path=str(self.store.model_dir(name)),
            size=folder_size(self.store.model_dir(name)),
            service_uri=self.url(name),
            creator=self.creator,
            started_at=int(pool.started_at) if pool is not None else 0,
        )

    def models(self) -> list[dict[str, Any]]:
        return [self.model(n) for n in self.store.names()]

    def instance(self, name: str) -> dict[str, Any]:
        record = self.store.load(name)
        pool = self.pools.get(name)
        if name in self.stopping:
            return edi.instance_doc(name, edi.STOPPING, None)
        if pool is None or record["state"] != "started":
            return edi.instance_doc(name, edi.DISABLED, None)
        described = pool.describe()
        uptime = max(time.time() - pool.started_at, 1.0)
        described["request_per_sec"] = described["requests"]["total"] / uptime
        state = {
            "FAILED": edi.ERROR,
            "STARTING": edi.STARTING,
            "STOPPING": edi.STOPPING,
            "STOPPED": edi.DISABLED,
        }.get(described["status"], edi.ENABLED)
        return edi.instance_doc(name, state, described)

    def profile(self, name: str) -> dict[str, Any]:
        record = self.store.load(name)
        return edi.profile_doc(
            name,
            record["profile"],
            created=record.get("deployed_at"),
            updated=record.get("updated_at"),
            log_directory=str(self.store.logs_dir(name)),
            working_directory=str(self.store.dir(name)),
            run_as=self.creator,
        )

    def readme(self, name: str) -> str:
        """The README the deployment's model.json names (EDI requires one in every folder)."""
        record = self.store.load(name)
        folder = self.store.model_dir(name)
        path = (folder / str(record["model"].get("readme") or "README.md")).resolve()
        if not path.is_relative_to(folder.resolve()) or not path.is_file():
            path = folder / "README.md"
        try:
            return path.read_text(errors="replace")
        except OSError as exc:
            raise NotFoundError(f"deployment {name} has no readable README: {exc}") from None

    def diagnostics(self, name: str) -> dict[str, Any]:
        """What EDI's documents do not carry (ours, under /mlops/v1): kernel processes, the error
        of a failed start with its log's tail, warnings, request counts."""
        self.store.load(name)
        pool = self.pools.get(name)
        out: dict[str, Any] = {
            "name": name,
            "kernels": [],
            "error": None,
            "error_log": None,
            "warnings": [],
            "queued": 0,
            "requests": {"total": 0, "failed": 0},
        }
        if pool is not None and pool.state != "stopped":
            described = pool.describe()
            out.update(
                {k: described[k] for k in ("kernels", "error", "error_log", "warnings", "queued", "requests")}
            )
        return out

    # --- management -------------------------------------------------------------------------

    def _settle(self, name: str) -> None:
        """Wait for an asynchronous stop of `name` to finish (a few seconds at most)."""
        thread = self.stopping.get(name)
        if thread is not None:
            thread.join()

    def deploy(
        self,
        name: str,
        folder: Path,
        custom_args: dict[str, str] | None = None,
        secret_args: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        check_deployment_name(name)
        custom_args, secret_args = dict(custom_args or {}), dict(secret_args or {})
        for key in [*custom_args, *secret_args]:
            if not isinstance(key, str) or not key.isidentifier():
                raise MlopsError(f"custom arg {key!r} is not a valid Python name")
        model = read_model_json(folder)
        Runtimes(self.workspace).python(model.get("runtime"))  # an unknown runtime is refused now
        with self.lock:
            self._settle(name)
            old = self.store.load(name) if self.store.exists(name) else None
            if old and old["state"] == "started":
                raise ConflictError(
                    f"deployment {name} is started: stop it before deploying over it", hint=stop_hint(name)
                )
            self.store.install(name, folder)
            self.store.save(
                {
                    "name": name,
                    "model": model,
                    "profile": old["profile"] if old else merge_profile(DEFAULT_PROFILE, {}),
                    "state": "stopped",
                    "custom_args": {k: str(v) for k, v in custom_args.items()},
                    "secret_args": sorted(secret_args),
                    "deployed_at": old["deployed_at"] if old else now(),
                    "updated_at": now(),
                }
            )
            self.secrets[name] = {k: str(v) for k, v in secret_args.items()}
            self.pools.pop(name, None)
            log.info("deployed %s from %s", name, folder)
            return self.model(name)

    def update_profile(self, name: str, doc: dict[str, Any], *, client: str | None = None) -> dict[str, Any]:
        """Lay `doc` (IBM's ModelAppProfile or some of our sections) over the stored profile.
        A change by another client than ours (`client`: its name) is announced with what it
        changed, so that it is recorded in the audit trail and kept in the entry."""
        if not isinstance(doc, dict):
            raise MlopsError("a profile must be a JSON object")
        with self.lock:
            self._settle(name)
            record = self.store.load(name)
            if record["state"] == "started":
                raise ConflictError(
                    f"the profile of deployment {name} can only be changed while it is stopped",
                    hint=stop_hint(name),
                )
            old = record["profile"]
            record["profile"] = merge_profile(old, edi.profile_update(doc))
            record["updated_at"] = now()
            self.store.save(record)
            changed = profile_changes(old, record["profile"])
            if client is not None and changed:
                log.info("profile of %s changed through EDI's API by %s: %s", name, client, changed)
                self.announce(
                    "deploy.profile_edit", {"deployment_name": name, "client": client, "changed": changed}
                )
            return self.profile(name)

    def start(self, name: str, supplied: dict[str, str] | None = None) -> dict[str, Any]:
        """Start the kernels in the background; the instance shows `enabled` once they serve."""
        with self.lock:
            self._settle(name)
            record = self.store.load(name)
            held = self.secrets.setdefault(name, {})
            for key, value in (supplied or {}).items():
                if key in record.get("secret_args", []) and key not in held:
                    held[key] = str(value)
            pool = self.pools.get(name)
            if pool is not None and pool.state == "started":
                return self.instance(name)
            missing = [k for k in record.get("secret_args", []) if k not in held]
            if missing:
                raise missing_secret(name, missing[0])
            if pool is not None:
                pool.stop()
            self._pool(name, record).start()
            record["state"] = "started"
            self.store.save(record)
            self._publish_state(name, "started")
            return self.instance(name)

    def _pool(self, name: str, record: dict[str, Any]) -> KernelPool:
        """The deployment's kernel pool, registered but with no kernel started yet."""
        pool = KernelPool(
            name,
            record,
            model_dir=self.store.model_dir(name),
            logs_dir=self.store.logs_dir(name),
            run_dir=self.store.run_dir,
            custom_args=record.get("custom_args", {}),
            secret_args=self.secrets.get(name, {}),
            python=Runtimes(self.workspace).python(record["model"].get("runtime")),
            gpus=self.gpus,
        )
        pool.on_state = lambda state: self._publish_state(name, state)
        self.pools[name] = pool
        return pool

    def _publish_state(self, name: str, state: str) -> None:
        """A deployment's state change, to the workspace's change feed (front ends follow it):
        started, ready, kernel_replaced, failed, stopped."""
        events_feed.publish(self.workspace, "deployment", name, state=state, source="service")

    def stop(self, name: str) -> dict[str, Any]:
        """Stop the kernels in the background (on_kernel_shutdown first); the instance shows
        `stopping`, then `disabled` once every kernel is gone."""
        with self.lock:
            record = self.store.load(name)
            pool = self.pools.pop(name, None)
            if record["state"] != "stopped":
                record["state"] = "stopped"
                self.store.save(record)
            if pool is not None and name not in self.stopping:
                thread = threading.Thread(
                    target=self._stop_pool, args=(name, pool), name=f"stop-{name}", daemon=True
                )
                self.stopping[name] = thread
                thread.start()
            return self.instance(name)

    def _stop_pool(self, name: str, pool: KernelPool) -> None:
        try:
            pool.stop()
        finally:
            self.stopping.pop(name, None)

    def undeploy(self, name: str) -> dict[str, Any]:
        with self.lock:
            self._settle(name)
            record = self.store.load(name)
            if record["state"] == "started":
                raise ConflictError(f"{NOT_REMOVABLE} Deployment {name} is started.", hint=stop_hint(name))
            self.pools.pop(name, None)
            self.secrets.pop(name, None)
            self.store.remove(name)
            return {"status": "deleted", "name": name}

    def restore(self) -> None:
        """Start again what was started when the service last ran."""
        for name in self.store.names():
            with self.lock:
                record = self.store.load(name)
                if record["state"] != "started":
                    continue
                try:
                    pool = self._pool(name, record)
                except MlopsError as exc:  # its runtime was deleted meanwhile
                    log.error("deployment %s not restored: %s", name, exc)
                    continue
                # Secrets live in memory only: kernels booted without them would run with their
                # custom args missing, so none starts until a start supplies them.
                missing = [k for k in record.get("secret_args", []) if k not in self.secrets.get(name, {})]
                if missing:
                    pool.fail(str(missing_secret(name, missing[0])))
                else:
                    pool.start()

    def shutdown(self) -> None:
        """Stop every kernel; deployments keep their state so the next service restores them."""
        with self.lock:
            pools, self.pools = list(self.pools.values()), {}
            stopping = list(self.stopping.values())
        threads = [threading.Thread(target=r.stop) for r in pools]
        for t in threads:
            t.start()
        for t in [*threads, *stopping]:
            t.join()

    # --- inference ----------------------------------------------------------------------------

    def submit(self, name: str, body: wire.Blob, on_done: Callable[[Task], None]) -> tuple[KernelPool, Task]:
        """Queue an inference request for deployment `name`; `on_done(task)` runs once it is
        answered. The caller waits at most the pool's `wait_limit()`, then `give_up`s on it."""
        pool = self.pools.get(name)
        if pool is None:
            self.store.load(name)  # NotFoundError for a deployment that does not exist
            raise ServiceError(503, f"deployment {name} is not started")
        return pool, pool.submit(body, on_done)
