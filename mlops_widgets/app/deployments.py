"""Deployments: create, start, stop, profile change, infer, and delete with its plan (no
schedule outlives its deployment)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from typing import Any

from mlops_widgets.app._base import AppBase
from mlops_widgets.app.results import DeletionPlan, DeploymentDeleted
from mlops_widgets.backends.views import DeploymentView
from mlops_widgets.ops.deploy import DeploymentDetail, DeploymentRow
from mlops_widgets.runner.trail import RunRecord

DEPLOY_TEMPLATE = "A2_WMLA_Model_Deploy"


class DeploymentsMixin(AppBase):
    """Deployment actions and queries of `App`."""

    # --- queries (nothing recorded) --------------------------------------------------------------

    def deployments(self) -> list[DeploymentRow]:
        """Every deployment (name, state, status, kernels, model asset id, url, error), and the
        entries naming one that does not exist (state "absent": a deploy that failed half-way)."""
        from mlops_widgets.ops import deploy

        return deploy.deploy_list(self.backend)

    def deployment(self, name: str) -> DeploymentDetail:
        """One deployment's view (kernels, profile, errors) with its entry's model asset id and,
        for a model staged from a training job, that job."""
        from mlops_widgets.ops import deploy

        return deploy.deploy_view(self.backend, name)

    def deployment_logs(self, name: str, *, tail: int | None = None, follow: bool = False) -> Iterator[str]:
        """The kernels' log lines, each prefixed with its kernel (the last `tail`; `follow`: then
        each line as it is written, until closed)."""
        from mlops_widgets.ops import deploy

        return deploy.logs(self.backend, name, tail=tail, follow=follow)

    def deploy_check(self, name: str, model_asset_id: str) -> None:
        """Raise why `deploy_create(name, model_asset_id)` would be refused now (name taken,
        entry missing or already deployed), for a form to say before its Deploy."""
        from mlops_widgets.ops import deploy

        deploy.check_create(self.backend, name, model_asset_id)

    # --- actions ---------------------------------------------------------------------------------

    def deploy_start(
        self,
        name: str,
        *,
        wait: bool = True,
        timeout: float | None = None,
        progress: Callable[[int, int | None, str], None] | None = None,
        secret_args: dict[str, str] | None = None,
    ) -> DeploymentView:
        """Start a deployment (and the local service when it is down), waiting up to `timeout`
        seconds (default ops.deploy's) unless not `wait`; returns its view."""
        from mlops_widgets.ops import deploy

        with self._event("deploy.start", {"deployment_name": name, "wait": wait}, name) as event:
            view = deploy.start(
                self.backend,
                name,
                wait=wait,
                timeout=deploy.WAIT_TIMEOUT if timeout is None else timeout,
                progress=progress,
                secret_args=secret_args,
            )
            event.result = {"status": view.status}
        return view

    def deploy_stop(self, name: str) -> DeploymentView:
        """Stop a deployment's kernels; returns its view."""
        from mlops_widgets.ops import deploy

        with self._event("deploy.stop", {"deployment_name": name}, name) as event:
            view = deploy.stop(self.backend, name)
            event.result = {"status": view.status}
        return view

    def deployment_delete_plan(self, name: str) -> DeletionPlan:
        """What `deploy_delete(name)` would affect, for the question asked before it."""
        from mlops_widgets.errors import NotFoundError
        from mlops_widgets.ops import schedule, space

        try:
            key: str | None = space.get_entry(self.backend, deployment_name=name)[0]
        except NotFoundError:
            key = None
        try:
            self.backend.inference.view(name)
            deployed = True
        except NotFoundError:
            deployed = False
        instances = schedule.monitor_instances_of(self.backend, name)
        return DeletionPlan(
            deployment_name=name,
            deployed=deployed,
            model_asset_id=key,
            monitors=sorted(i.monitor_id for i, _scheduled in instances),
            schedules=sorted(f"{i.monitor_id} every {s.every}, {s.status}" for i, s in instances if s),
        )

    def deploy_delete(
        self, name: str, *, remove_monitor: bool = False, remove_config: bool = False
    ) -> DeploymentDeleted:
        """Undeploy (stopping first); drop its monitors (`remove_monitor`) or take their schedules
        off; drop the entry (`remove_config`) or clear its deployment fields."""
        from mlops_widgets.ops import deploy, schedule

        options = {"remove_monitor": remove_monitor, "remove_config": remove_config}
        with self._event("deploy.delete", {"deployment_name": name, **options}, name) as event:
            unscheduled = [] if remove_monitor else schedule.unschedule(self.backend, name)
            done = deploy.deploy_delete(self.backend, name, **options)
            event.result = {**done, "unscheduled": unscheduled}
        return DeploymentDeleted(**done, unscheduled=unscheduled)

    def deploy_create(
        self,
        name: str,
        model_asset_id: str,
        *,
        kernel_filename: str | None = None,
        general_dependencies: list[str] | None = None,
        custom_args: dict[str, str] | None = None,
        secret_args: dict[str, str] | None = None,
        wait_timeout: float = 300.0,
        connection_timeout: int | None = None,
        progress: Any = None,
        cancel: threading.Event | None = None,
    ) -> RunRecord:
        """Deploy a staged model and wait until it serves (template A2_WMLA_Model_Deploy).
        Custom args with a secret's name (KEY, TOKEN, PASSWORD...) and `secret_args` (those the
        user marked secret) go to the run as secrets, never written anywhere; `connection_timeout` is kept in the entry's resource_configs so
        later deploys use it too. Refused before the run when the name is taken or the entry is
        missing."""
        from mlops_widgets.config.model import CONNECTION_TIMEOUT_MAX
        from mlops_widgets.errors import MlopsError
        from mlops_widgets.ops import deploy
        from mlops_widgets.secret_names import is_secret_name

        if connection_timeout is not None and (
            isinstance(connection_timeout, bool)
            or not isinstance(connection_timeout, int)
            or not 1 <= connection_timeout <= CONNECTION_TIMEOUT_MAX
        ):
            raise MlopsError(
                f"connection timeout: a whole number of seconds from 1 to {CONNECTION_TIMEOUT_MAX}, "
                f"got {connection_timeout!r}"
            )
        args = dict(custom_args or {})
        secret = {**{k: v for k, v in args.items() if is_secret_name(k)}, **(secret_args or {})}
        plain = {k: v for k, v in args.items() if k not in secret}
        deploy.check_create(self.backend, name, model_asset_id)
        if connection_timeout is not None:
            deploy.keep_resource_configs(
                self.backend, model_asset_id, {"connection_timeout": connection_timeout}
            )
        params = {
            "deployment_name": name,
            "model_asset_id": model_asset_id,
            "kernel_filename": kernel_filename or "",
            "general_dependencies": list(general_dependencies or []) or None,
            "custom_args": plain,
            "wait_timeout": float(wait_timeout),
        }
        return self.run(DEPLOY_TEMPLATE, params, secrets=secret, progress=progress, cancel=cancel)

    def profile_change(self, name: str, resource_configs: dict[str, Any]) -> dict[str, Any]:
        """Change a deployment's profile by its entry's resource_configs (kernel_min, n_cpus...):
        the values are validated as part of the entry, applied to the deployment when it is
        deployed (it must be stopped) and kept in the entry, so every later deploy applies them
        again. Returns the deployment's profile (None when it is not deployed)."""
        from mlops_widgets.config import validate_entry
        from mlops_widgets.errors import NotFoundError
        from mlops_widgets.monitors import known_definitions
        from mlops_widgets.ops import deploy, space

        key, entry = space.get_entry(self.backend, deployment_name=name)
        changed = copy.deepcopy(entry)
        wmla = changed.setdefault("wmla_deployment", {})
        wmla["resource_configs"] = {**(wmla.get("resource_configs") or {}), **resource_configs}
        validate_entry(changed, definitions=known_definitions(self.workspace))
        params = {"deployment_name": name, "resource_configs": resource_configs}
        with self._event("deploy.profile", params, name) as event:
            try:
                self.backend.inference.view(name)
                profile: dict[str, Any] | None = self.backend.inference.update_profile(
                    name, deploy.profile_from_resource_configs(wmla["resource_configs"])
                )
            except NotFoundError:
                profile = None
            deploy.keep_resource_configs(self.backend, key, resource_configs)
            event.result = {"model_asset_id": key, "applied": profile is not None}
        return {"model_asset_id": key, "profile": profile}

    def infer(self, name: str, data: bytes | str) -> bytes:
        """Send one request body to the deployment; its kernel's answer, verbatim (not recorded:
        a request changes nothing, and its body may be anything)."""
        from mlops_widgets.ops import deploy

        return deploy.infer(self.backend, name, data)
