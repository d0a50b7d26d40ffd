"""Deployments: start, stop, and delete with its plan (no schedule outlives its deployment)."""

from __future__ import annotations

from collections.abc import Callable

from mlops_widgets.app._base import AppBase
from mlops_widgets.app.results import DeletionPlan, DeploymentDeleted
from mlops_widgets.backends.views import DeploymentView


class DeploymentsMixin(AppBase):
    """Deployment actions of `App`."""

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
            monitors=sorted(i["monitor_id"] for i in instances),
            schedules=sorted(
                f"{i['monitor_id']} every {i['schedule']['every']}, {i['schedule']['status']}"
                for i in instances
                if i["schedule"]
            ),
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
